import Foundation
import Logging
import Raft
import Shard
import Txn2PC
import UV
import WAL

/// One Sutra node: a libuv loop hosting every shard's replica, the shared WAL, the peer transport and the
/// client front ends. Everything runs on the loop thread except the WAL's fsync, which runs on libuv's thread
/// pool.
///
/// A loop turn: callbacks (peer frames, client requests, the tick timer) step the shards' Raft cores; at the
/// end of the turn (`LoopCheck`) the node sends what may go out at once (heartbeats, the leaders' appends),
/// gathers every shard's `Ready` into ONE `WriteBatch`, and hands its fsync to the thread pool (group commit).
/// When the write is durable it sends the messages that depended on it (votes, append acks), applies committed
/// entries and answers the clients whose writes became final. Guarantees: nothing is acknowledged — to a peer
/// or a client — before the write it depends on is fsynced; a failed fsync stops the process (the log's state
/// is unknown, and recovery on restart is the only safe path).
public final class NodeServer {
    public let config: NodeConfig
    let loop: EventLoop
    let logger: Logger
    let engine: LogEngine
    var replicas: [ShardReplica] = []
    var transport: PeerTransport!
    let metrics: NodeMetrics
    let limits: ShardLimits
    /// One HNSW index over the embeddings of every shard this node hosts.
    let vectors: ConceptVectors

    var tickTimer: UV.Timer?
    var turnHook: LoopCheck?
    var signals: [SignalWatcher] = []
    var shutdownDeadline: UInt64 = 0
    var binaryFrontEnd: BinaryFrontEnd?
    var httpFrontEnd: HTTPFrontEnd?

    private var writeInFlight = false
    /// Test-only slow disk (`--enable-fault-injection`): each WAL write sleeps this long before its fdatasync.
    var fsyncDelayMs = 0
    /// This node's write speed and its peers' acknowledgement speed: moves leadership off a slow disk.
    var diskHealth: DiskHealth
    private var outgoing: [NodeID: [ShardMessage]] = [:]
    /// Snapshots taken this turn, saved (and the log compacted behind them) by the next group-commit write.
    private var snapshotsToSave: [(shard: Int, snapshot: Snapshot)] = []
    private var afterNextWrite: [() -> Void] = []
    /// Searches waiting for the vector index to apply its queued changes.
    private var vectorWaiters: [() -> Void] = []
    /// Fires at once while index work is queued, so the loop keeps turning (and polling I/O) between slices.
    private var indexingTimer: UV.Timer?
    /// How long one slice of vector indexing may hold the loop.
    static let indexingSliceMs = 5
    /// Hard states whose only change was the commit index, written with the next WAL write.
    private var lazyHardStates: [Int: HardState] = [:]
    /// The term and vote last handed to the WAL per shard.
    private var persistedVotes: [Int: (term: Term, vote: NodeID)] = [:]
    /// Reads waiting for this node's replica of a shard to apply up to an index (forwarded ReadIndex).
    var appliedWaiters: [[(index: LogIndex, done: () -> Void)]] = []
    var forwards: [UInt64: (peer: NodeID, deadline: UInt64, done: (ForwardResult) -> Void)] = [:]
    var nextForwardID: UInt64 = 1
    var stopping = false
    var ticks: UInt64 = 0
    /// Ticks until each shard this node should lead may start an election early (spreads leaders at start).
    var startupCampaign: [Int: Int] = [:]
    /// Cross-shard transactions this node coordinates (as leader of their record shards).
    var coordinator: TxnCoordinator!
    /// Resolution of intents whose coordinator went quiet (as leader of participant shards).
    var recovery: IntentRecovery!
    /// The client identity of transactions started for anonymous (HTTP) requests; random per process.
    let txnClientID = UInt64.random(in: 1...UInt64.max)
    var nextTxnSequence: UInt64 = 0
    /// Reads waiting for intents on a shard to resolve.
    var intentWaiters: [[(ids: Set<TxnID>, deadline: UInt64, done: (Result<Void, ClientError>) -> Void)]] = []

    public init(config: NodeConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.loop = try EventLoop()
        self.limits = {
            var l = ShardLimits(dimension: config.dimension)
            l.maxBatch = 1000
            return l
        }()
        metrics = NodeMetrics(shards: config.numShards)
        diskHealth = DiskHealth(slowMs: Double(config.slowDiskMs))
        vectors = ConceptVectors(dimension: config.dimension)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        engine = try LogEngine(directory: config.dataDir + "/wal", logger: logger)
        try openShards()
        appliedWaiters = Array(repeating: [], count: config.numShards)
        intentWaiters = Array(repeating: [], count: config.numShards)
        var t = TxnTimeouts()
        t.intentTicks = max(1, config.txnIntentTimeoutMs / config.tickMs)
        t.prepareTicks = max(1, config.txnPrepareTimeoutMs / config.tickMs)
        t.retryTicks = max(1, 100 / config.tickMs)
        coordinator = TxnCoordinator(host: self, timeouts: t)
        recovery = IntentRecovery(host: self, timeouts: t)
    }

    /// Opens every shard from the WAL; a shard seen for the first time gets the cluster's membership.
    private func openShards() throws {
        let voters = ConfState(voters: Array(config.peers.keys))
        let existing = engine.groupIDs
        if !existing.isEmpty && existing != (0..<UInt64(config.numShards)).map({ $0 }) {
            throw NodeStartError("the data directory holds shards \(existing.first!)…\(existing.last!) (\(existing.count)) but this node is configured with \(config.numShards) shards; the shard count is fixed when a cluster is created")
        }
        var initial = WriteBatch()
        for s in 0..<config.numShards {
            let log = engine.group(UInt64(s))
            if log.snapshotMetadata.confState.isEmpty && log.lastIndex() == 0 {
                initial.setInitialMembership(group: UInt64(s), voters)
            }
        }
        if !initial.isEmpty { try engine.write(initial) }
        if let why = vectors.load(from: vectorDirectory, shardCount: config.numShards) {
            logger.info("vector index: \(why); rebuilding it from the shard snapshots")
        }
        for s in 0..<config.numShards {
            var rc = RaftConfig(id: config.nodeID, seed: config.nodeID &* 0x9E37_79B9 &+ UInt64(s))
            rc.electionTick = config.electionTicks
            rc.heartbeatTick = 1
            let replica = try ShardReplica(shard: s, shardCount: config.numShards, raftConfig: rc, log: engine.group(UInt64(s)),
                                           limits: limits, vectors: vectors)
            replicas.append(replica)
            if preferredLeader(of: s) == config.nodeID { startupCampaign[s] = 2 }
        }
        let restored = replicas.reduce(0) { $0 + $1.state.conceptCount }
        logger.info("opened \(config.numShards) shards from \(config.dataDir) (\(restored) concepts from snapshots)")
    }

    var vectorDirectory: String { config.dataDir + "/vectors" }

    /// Saves the vector index beside the snapshots (flush, graceful shutdown). Blocks the loop while writing.
    func saveVectors() {
        guard config.dimension > 0 else { return }
        let started = ContinuousClock.now
        var positions: [Int: UInt64] = [:]
        for r in replicas { positions[r.shard] = r.appliedIndex }
        do {
            try vectors.save(to: vectorDirectory, positions: positions, shardCount: config.numShards)
            logger.info("vector index saved (\(vectors.count) vectors) in \(ContinuousClock.now - started)")
        } catch {
            logger.error("vector index not saved (it will be rebuilt at the next start): \(error)")
        }
    }

    /// The node that should lead shard `s` when every node is up: shards are dealt round-robin over node ids.
    func preferredLeader(of s: Int) -> NodeID {
        let ids = config.peers.keys.sorted()
        return ids[s % ids.count]
    }

    /// Starts listening and runs the loop until the node stops. Returns the process exit code.
    public func run(onReady: (() -> Void)? = nil) throws -> Int32 {
        let hello = PeerHello(clusterID: config.clusterID, node: config.nodeID,
                              clientAddress: config.clientAddress, httpAddress: config.httpAddress)
        var peerAddrs: [NodeID: PeerEndpoint] = [:]
        for (id, p) in config.peers { peerAddrs[id] = p }
        transport = PeerTransport(loop: loop, hello: hello, peers: peerAddrs, logger: logger)
        transport.onFrame = { [unowned self] peer, frame in self.receive(frame, from: peer) }
        transport.onLinkChange = { [unowned self] peer, up in if !up { self.failForwards(to: peer) } }
        try transport.start(listenHost: config.listenHost, port: config.peerPort)
        try startFrontEnds()
        tickTimer = try UV.Timer(loop: loop)
        tickTimer!.start(timeout: UInt64(config.tickMs), repeat: UInt64(config.tickMs)) { [unowned self] in self.tick() }
        turnHook = try LoopCheck(loop: loop) { [unowned self] in self.endOfTurn() }
        for sig in [SIGTERM, SIGINT] {
            signals.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] s in
                self.logger.notice("signal \(s): shutting down gracefully")
                self.beginShutdown()
            })
        }
        if config.faultInjection {
            logger.warning("--enable-fault-injection is on: POST /v1/admin/fault/fsync-delay can slow this node's disk (test-only)")
        }
        if config.unsafeLocalReads {
            logger.critical("--unsafe-local-reads is on: linearizable reads are answered from local state WITHOUT confirming leadership (a known-bad test build; stale reads will happen)")
        }
        logger.info("node \(config.nodeID) of cluster \(config.clusterID): peers on \(config.listenHost):\(config.peerPort), clients on \(config.clientAddress), HTTP on \(config.httpAddress)")
        onReady?()
        _ = loop.run()
        return 0
    }

    // MARK: the loop turn

    private func tick() {
        ticks += 1
        for r in replicas {
            r.raft.tick()
            if let left = startupCampaign[r.shard] {
                if r.raft.leader != noNode { startupCampaign[r.shard] = nil }
                else if left <= 0 { r.raft.campaign(); startupCampaign[r.shard] = nil }
                else { startupCampaign[r.shard] = left - 1 }
            }
        }
        tickTransactions()
        transport.keepAlive()
        if ticks % 5 == 0 { expireForwards() }
        if ticks % 50 == 0 { rebalanceLeaders() }
        if ticks % 25 == 0 { moveLeadershipOffASlowDisk() }
        if stopping { continueShutdown() }
    }

    /// Runs `body` once the vector index holds every change applied so far.
    func whenVectorsCurrent(_ body: @escaping () -> Void) {
        if vectors.pendingCount == 0 { body() } else { vectorWaiters.append(body) }
    }

    /// One bounded slice of queued vector indexing; keeps the loop turning while work remains.
    private func indexVectors() {
        guard vectors.pendingCount > 0 else { return }
        let more = vectors.process(until: .now + .milliseconds(NodeServer.indexingSliceMs))
        if more {
            if indexingTimer == nil { indexingTimer = try? UV.Timer(loop: loop) }
            indexingTimer?.start(timeout: 0) {}
        } else {
            let waiters = vectorWaiters
            vectorWaiters = []
            for w in waiters { w() }
        }
    }

    /// End of a loop turn: send what may go now, start the next group commit if none is in flight.
    func endOfTurn() {
        indexVectors()
        coordinator.flush()
        for r in replicas {
            r.startReads()
            queue(r.raft.takeImmediateMessages(), shard: r.shard)
            if r.entriesSinceSnapshot >= UInt64(config.snapshotEntries) || r.bytesSinceSnapshot >= config.snapshotBytes,
               let snap = r.takeSnapshot() {
                snapshotsToSave.append((r.shard, snap))
            }
        }
        if !writeInFlight { persistAndApply() }
        flushOutgoing()
        binaryFrontEnd?.flush()
    }

    private func persistAndApply() {
        var readies: [(ShardReplica, Ready)] = []
        var immediate: [(ShardReplica, Ready)] = []
        var synced: [(ShardReplica, Ready)] = []
        for r in replicas where r.raft.hasReady() {
            let rd = r.raft.ready()
            if needsSync(rd, shard: r.shard) {
                synced.append((r, rd))
            } else {
                // Only the commit index moved: apply now, persist the hard state with the next write.
                if let hs = rd.hardState { lazyHardStates[r.shard] = hs }
                immediate.append((r, rd))
            }
        }
        finish(immediate)
        readies = synced
        var batch = WriteBatch()
        let needWrite = !synced.isEmpty || !snapshotsToSave.isEmpty
        if needWrite {
            for (s, hs) in lazyHardStates.sorted(by: { $0.key < $1.key }) { batch.setHardState(group: UInt64(s), hs) }
            lazyHardStates = [:]
        }
        for (r, rd) in synced {
            batch.add(rd, group: UInt64(r.shard))
            if let hs = rd.hardState { persistedVotes[r.shard] = (hs.term, hs.vote) }
        }
        var compacted = 0
        for (s, snap) in snapshotsToSave {
            batch.saveSnapshot(group: UInt64(s), snap)
            let upTo = snap.metadata.index > LogIndex(config.compactMargin) ? snap.metadata.index - LogIndex(config.compactMargin) : 0
            if upTo > replicas[s].log.compactIndex { batch.compact(group: UInt64(s), upTo: upTo) }
            compacted += 1
        }
        snapshotsToSave = []
        let callbacks = afterNextWrite
        afterNextWrite = []
        if batch.isEmpty {
            finish(readies)
            for c in callbacks { c() }
            return
        }
        let prepared: PreparedWrite
        do {
            prepared = try engine.prepare(batch)
        } catch {
            fatalStop("preparing a WAL write failed: \(error)")
        }
        writeInFlight = true
        let started = DispatchTime.now().uptimeNanoseconds
        let bytes = prepared.byteCount
        let delayMicros = useconds_t(fsyncDelayMs * 1000)
        do {
            try loop.queueWork({ () -> Result<Void, WALError> in
                if delayMicros > 0 { usleep(delayMicros) }
                do throws(WALError) { try prepared.perform(); return .success(()) } catch { return .failure(error) }
            }, completion: { [unowned self] result in
                if case .failure(let e) = result {
                    self.engine.abandon(prepared, error: e)
                    self.fatalStop("WAL write failed, stopping rather than acknowledging anything: \(e)")
                }
                self.engine.complete(prepared)
                let took = DispatchTime.now().uptimeNanoseconds - started
                self.metrics.recordFsync(nanos: took, bytes: bytes, snapshots: compacted)
                self.diskHealth.wrote(nanos: took)
                self.writeInFlight = false
                self.finish(readies)
                for c in callbacks { c() }
                self.endOfTurn()
            })
        } catch {
            fatalStop("cannot queue the WAL write: \(error)")
        }
    }

    /// Whether a Ready must be fsynced before its messages go out and its entries apply: new entries, a
    /// snapshot, or a new term or vote. A hard state whose only change is the commit index does not: the
    /// commit index may be recovered lower after a crash (Raft re-learns it), so it is written with the next
    /// write instead of costing an fsync on every commit (etcd's `MustSync` rule). Snapshot saves always carry
    /// the pending hard states, so a compaction point never passes the persisted commit index.
    private func needsSync(_ rd: Ready, shard: Int) -> Bool {
        if !rd.entries.isEmpty || rd.snapshot != nil { return true }
        guard let hs = rd.hardState else { return false }
        let persisted = persistedVotes[shard] ?? {
            let h = replicas[shard].log.hardState
            return (h.term, h.vote)
        }()
        return hs.term != persisted.term || hs.vote != persisted.vote
    }

    /// The turn's write is durable: send what waited for it, apply, answer, advance.
    private func finish(_ readies: [(ShardReplica, Ready)]) {
        for (r, rd) in readies {
            queue(rd.messages, shard: r.shard)
            r.finish(rd)
            wakeAppliedWaiters(r.shard)
            wakeIntentWaiters(r.shard)
        }
    }

    /// Runs `done` after the next group-commit write is durable (flush uses it for its snapshots).
    func afterNextDurableWrite(_ done: @escaping () -> Void) {
        afterNextWrite.append(done)
    }

    func requestSnapshots() -> Int {
        var n = 0
        for r in replicas {
            if let snap = r.takeSnapshot() { snapshotsToSave.append((r.shard, snap)); n += 1 }
        }
        return n
    }

    // MARK: messages

    private func queue(_ msgs: [Message], shard: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        for m in msgs {
            if m.type == .append, !m.entries.isEmpty {
                diskHealth.sentAppend(to: m.to, shard: shard, lastIndex: m.index + LogIndex(m.entries.count), now: now)
            }
            outgoing[m.to, default: []].append(ShardMessage(shard: UInt32(shard), message: m))
        }
    }

    private func flushOutgoing() {
        for (peer, all) in outgoing where !all.isEmpty {
            var msgs = all
            if transport.version(of: peer) >= 2 {
                // Every shard's heartbeats of this turn travel as one compact list (wire version 2).
                var beats: [CoalescedHeartbeat] = []
                msgs = all.filter { m in
                    guard let h = CoalescedHeartbeat(shard: m.shard, m.message) else { return true }
                    beats.append(h)
                    return false
                }
                if !beats.isEmpty, !transport.send(.heartbeats(beats), to: peer) {
                    for s in Set(beats.map(\.shard)) { replicas[Int(s)].raft.reportUnreachable(peer) }
                }
                if msgs.isEmpty { continue }
            }
            let sent = transport.send(.raft(msgs), to: peer)
            for m in msgs where m.message.type == .snapshot {
                replicas[Int(m.shard)].raft.reportSnapshot(to: peer, failed: !sent)
            }
            if !sent { for s in Set(msgs.map(\.shard)) { replicas[Int(s)].raft.reportUnreachable(peer) } }
        }
        outgoing.removeAll(keepingCapacity: true)
        transport.flush()
    }

    func wakeAppliedWaiters(_ shard: Int) {
        guard !appliedWaiters[shard].isEmpty else { return }
        let applied = replicas[shard].appliedIndex
        var keep: [(index: LogIndex, done: () -> Void)] = []
        var ready: [() -> Void] = []
        for w in appliedWaiters[shard] { if w.index <= applied { ready.append(w.done) } else { keep.append(w) } }
        appliedWaiters[shard] = keep
        for d in ready { d() }
    }

    func closeLoopHandles() {
        indexingTimer?.close()
        tickTimer?.close()
        turnHook?.close()
        for s in signals { s.close() }
        signals = []
    }

    func fatalStop(_ why: String) -> Never {
        logger.critical("\(why)")
        exit(70)
    }
}

/// A node that cannot start: the message says which setting or file and why.
public struct NodeStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
