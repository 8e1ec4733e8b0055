import ClusterMap
import Logging
import Raft
import Shard
import Txn2PC
import WAL

/// Everything one Sutra node decides, as code with no libuv, sockets, files or clock: every shard's replica,
/// the group-commit plan, forwards and their replies, the read waiters, read barriers, the `TxnHost` role for
/// the two-phase-commit drivers, leader placement and slow-disk moves.
///
/// It is driven — by `NodeServer` on a libuv loop in production, by the cluster simulation in tests — through a
/// handful of entry points, all on one thread: `tick(now:)` every tick, `receive(_:from:now:)` for each peer
/// frame, `execute(_:session:_:)` for each client request, `writeCompleted(now:tookNanos:)` when the write it
/// asked for is durable, and `endOfTurn(now:)` once per loop turn. Time enters as values (`now`, monotonic
/// nanoseconds; `ticks`). It reaches the world only through `NodeIO`.
///
/// A turn: the entry points step the shards' Raft cores; `endOfTurn` sends what may go at once (heartbeats,
/// leaders' appends), plans ONE write of every shard's `Ready` (`GroupCommit`) and hands it to `io.startWrite`.
/// When it is durable, `writeCompleted` sends what depended on it (votes, append acks), applies committed
/// entries and answers the clients whose writes became final. Guarantees: nothing is acknowledged — to a peer
/// or a client — before the write it depends on is durable; a forward reply is only ever matched to the request
/// of this process that it answers.
package final class NodeCore {
    package let config: NodeConfig
    package let logger: Logger
    let io: NodeIO
    package private(set) var replicas: [ShardReplica] = []
    /// This node's replica of the meta group, whose state is the cluster map (`MetaReplica`).
    package private(set) var meta: MetaReplica!
    /// The durable logs the replicas read, shard `s` at `s` and the meta group's last (the driver applies each
    /// completed write to them).
    let logs: [GroupLog]
    package let metrics: NodeMetrics
    let limits: ShardLimits
    /// One HNSW index over the embeddings of every shard this node hosts.
    package let vectors: ConceptVectors
    /// This process's identity among all processes this node has ever run (see `ForwardTable`).
    package let incarnation: UInt64

    var commit: GroupCommit
    var forwards: ForwardTable
    var waiters: ReadWaiters
    /// Snapshots streamed to peers in chunks, and images being assembled from peers' chunks (`SnapshotStreams`).
    var snapshotSender: SnapshotSender
    var snapshotAssembler: SnapshotAssembler
    /// This node's write speed and its peers' acknowledgement speed: moves leadership off a slow disk.
    var diskHealth: DiskHealth
    private var outgoing: [NodeID: [ShardMessage]] = [:]
    /// Simulation only (nil in production): sees every forward this process sends and the answer it is given.
    package var forwardProbe: ForwardProbe?
    /// Rate-limits the log line for messages refused from a peer (see `NodeCore+Peers.swift`).
    var peerRejectionLog = PeerRejectionLog()
    /// Rate-limits the log line for messages too big to send, per shard.
    var oversizeLog = PeerRejectionLog()
    /// Rate-limits the log line for snapshot images that cannot be read or kept, per shard.
    var snapshotReadLog = PeerRejectionLog()
    /// Images received from leaders whose install Raft holds pending, by shard: the write that makes the install
    /// durable adopts each one's file (`NodeCore+SnapshotStreams.swift`).
    var receivedImages: [Int: SnapshotImage] = [:]
    /// Whole received images being restored off the loop, by shard, with their message and sender.
    var restoring: [Int: (image: SnapshotImage, header: Message, peer: NodeID)] = [:]

    /// Monotonic nanoseconds, as last handed in by the driver.
    package private(set) var now: UInt64 = 0
    package private(set) var ticks: UInt64 = 0
    package internal(set) var stopping = false
    var shutdownStartedAt: UInt64 = 0
    var shutdownDeadline: UInt64 = 0
    /// Peers that announced a graceful shutdown (`PeerFrame.draining`) on their current link, with the tick each
    /// last said so: no leadership is handed to them (`isDraining`). Forgotten when the link goes down (the next
    /// process of that node starts afresh) and when not repeated for `drainingMemoryTicks` (a draining node says
    /// it every 10 ticks): an announcement that arrives late cannot bar a healthy peer from leading for good.
    var drainingHeard: [NodeID: UInt64] = [:]
    static let drainingMemoryTicks: UInt64 = 40
    /// A map change this node proposed by itself (`tellTheMap`) is in flight; when it last said it leads each shard.
    var mapChangeInFlight = false
    var leaderHintToldAt: [Int: UInt64] = [:]
    /// For shards outside this node's groups: the leader a NOT_LEADER answer named last (`knownLeader`).
    var outsideLeaders: [Int: NodeID] = [:]
    /// Shards whose leader here told the map a move's progress and waits for the answer (`reconcileMembership`).
    var movesTold: Set<Int> = []
    /// The peers (and addresses) last handed to the driver from the map (`mapApplied`).
    var peersTold: [NodeID: String] = [:]
    /// Ticks until each shard this node should lead may start an election early (spreads leaders at start).
    var startupCampaign: [Int: Int] = [:]
    /// Cross-shard transactions this node coordinates (as leader of their record shards).
    package var coordinator: TxnCoordinator!
    /// Resolution of intents whose coordinator went quiet (as leader of participant shards).
    package var recovery: IntentRecovery!
    /// The client identity of transactions started for anonymous (HTTP) requests: drawn from the incarnation,
    /// so two processes of this node never reuse a transaction id.
    let txnClientID: UInt64
    var nextTxnSequence: UInt64 = 0
    /// Online backups (`NodeCore+Backup.swift`): the one this node is taking, cross-shard transactions held
    /// back by a raised fence, when this node (as leader) first saw each fence, and timers in ticks.
    var backupInProgress = false
    var heldTransactions: [HeldTransaction] = []
    var fenceSeenAt: [Int: [UInt64: UInt64]] = [:]
    var tickTimers: [(at: UInt64, run: () -> Void)] = []
    /// Disk space (`NodeCore+DiskSpace.swift`): the data directory's file system is below its free-space floor;
    /// the write in flight found no space (when, and how many attempts so far).
    package internal(set) var diskLow = false
    package internal(set) var stalledWrite: (since: UInt64, attempts: Int)?

    /// How long a forwarded request may wait for the leader's answer.
    static let forwardTimeoutTicks: UInt64 = 150
    /// How long a linearizable read waits for the transactions holding intents on what it reads.
    static let txnReadWaitTicks: UInt64 = 250

    /// Opens every shard and the meta group over its durable log. `logs[s]` is shard `s`'s log (the WAL's view
    /// in production, a memory store in the simulation) and `logs[numShards]` the meta group's; a group seen for
    /// the first time must already hold the cluster's initial membership. `incarnation` must differ from every
    /// earlier process of this node (nonzero).
    package init(config: NodeConfig, logs: [GroupLog], vectors: ConceptVectors, io: NodeIO, incarnation: UInt64, logger: Logger) throws {
        precondition(logs.count == config.numShards + 1, "one log per shard, and the meta group's")
        precondition(incarnation != 0, "incarnation 0 is reserved")
        self.config = config
        self.logger = logger
        self.io = io
        self.logs = logs
        self.vectors = vectors
        self.incarnation = incarnation
        self.txnClientID = incarnation | 1 << 63
        limits = {
            var l = ShardLimits(dimension: config.dimension)
            l.maxBatch = 1000
            return l
        }()
        metrics = NodeMetrics(shards: config.numShards)
        diskHealth = DiskHealth(slowMs: Double(config.slowDiskMs))
        commit = GroupCommit(compactMargin: LogIndex(config.compactMargin))
        forwards = ForwardTable(incarnation: incarnation)
        waiters = ReadWaiters(shards: config.numShards)
        snapshotSender = SnapshotSender(chunkBytes: config.snapshotChunkBytes)
        snapshotAssembler = SnapshotAssembler(maxBytes: config.maxSnapshotBytes)
        for s in 0..<config.numShards {
            var rc = RaftConfig(id: config.nodeID, seed: config.nodeID &* 0x9E37_79B9 &+ UInt64(s) &+ incarnation &* 0x2545_F491)
            rc.electionTick = config.electionTicks
            rc.heartbeatTick = 1
            rc.group = "shard \(s)"
            let replica = try ShardReplica(shard: s, shardCount: config.numShards, raftConfig: rc, log: logs[s],
                                           limits: limits, vectors: vectors)
            replicas.append(replica)
            if preferredLeader(of: s) == config.nodeID { startupCampaign[s] = 2 }
        }
        var mc = RaftConfig(id: config.nodeID, seed: config.nodeID &* 0x9E37_79B9 &+ 0x4D45_5441 &+ incarnation &* 0x2545_F491)
        mc.electionTick = config.electionTicks
        mc.heartbeatTick = 1
        meta = try MetaReplica(group: config.numShards, raftConfig: mc, log: logs[config.numShards], clusterID: config.clusterID, shardCount: config.numShards)
        // Like a shard's preferred leader, the lowest node id campaigns for the meta group early: every node then
        // takes part in its first election (a blank replica that first hears a leader must abstain until rejoined).
        if config.peers.keys.min() == config.nodeID { startupCampaign[config.numShards] = 2 }
        var t = TxnTimeouts()
        t.intentTicks = max(1, config.txnIntentTimeoutMs / config.tickMs)
        t.prepareTicks = max(1, config.txnPrepareTimeoutMs / config.tickMs)
        t.retryTicks = max(1, 100 / config.tickMs)
        coordinator = TxnCoordinator(host: self, timeouts: t)
        recovery = IntentRecovery(host: self, timeouts: t)
    }

    /// The initial membership of shard `s` of a new cluster: its voters in the first map (`bootstrapMap`), the
    /// replicas dealt round-robin over the configured nodes (every node when the replication factor is the
    /// node count).
    package static func initialMembership(_ config: NodeConfig, shard s: Int) -> ConfState {
        ConfState(voters: bootstrapMap(config).shards[s].voters)
    }

    /// The meta group's initial membership: every configured node votes.
    package static func metaMembership(_ config: NodeConfig) -> ConfState {
        ConfState(voters: config.peers.keys.sorted())
    }

    /// The node that should lead shard `s` when every node is up: the cluster map's choice (leaderships spread
    /// evenly over each shard's voters); before the map exists, the first map's choice (`bootstrapMap`).
    func preferredLeader(of s: Int) -> NodeID {
        if let map = meta?.map, s < map.shardCount { return map.preferredLeaders()[s] }
        return initialPreferredLeaders[s]
    }

    /// Each shard's preferred leader in the first map of this configuration (one of its initial voters).
    private(set) lazy var initialPreferredLeaders: [NodeID] = NodeCore.bootstrapMap(config).preferredLeaders()

    func shard(of id: ConceptID) -> Int { id.shard(of: config.numShards) }

    /// Every other node: those the flags name and those the cluster map names, but for the ones it removed.
    package var otherNodes: [NodeID] {
        var ids = Set(config.peers.keys)
        if let map = meta?.map {
            for n in map.nodes.values { if n.state == .removed { ids.remove(n.id) } else { ids.insert(n.id) } }
        }
        ids.remove(config.nodeID)
        return ids.sorted()
    }

    // MARK: entry points

    /// One Raft tick of every shard, and the timers that run on ticks.
    package func tick(now: UInt64) {
        self.now = now
        ticks += 1
        for r in replicas {
            r.raft.tick()
            if let left = startupCampaign[r.shard] {
                if r.raft.leader != noNode { startupCampaign[r.shard] = nil }
                else if left <= 0 { r.raft.campaign(); startupCampaign[r.shard] = nil }
                else { startupCampaign[r.shard] = left - 1 }
            }
        }
        meta.raft.tick()
        if let left = startupCampaign[metaGroup] {
            if meta.raft.leader != noNode { startupCampaign[metaGroup] = nil }
            else if left <= 0 { meta.raft.campaign(); startupCampaign[metaGroup] = nil }
            else { startupCampaign[metaGroup] = left - 1 }
        }
        if ticks % 25 == 0 || (meta.map == nil && ticks % 5 == 0) { tellTheMap() }
        // Every 10 ticks; every 2 while replicas move (each move is several steps, each a round of this).
        if ticks % 10 == 5 || (ticks % 2 == 1 && meta.map.map { !$0.moving.isEmpty } == true) { reconcileMembership() }
        coordinator.tick()
        recovery.tick()
        // A read waiting for this replica to apply further, on a shard that moved away: nothing more will come.
        for s in waiters.shardsWithAppliedWaiters where !holds(s) {
            for w in waiters.takeAppliedWaiters(shard: s) { w(.failure(.unavailable("node \(config.nodeID) no longer holds shard \(s) (it moved); retry"))) }
        }
        for w in waiters.expireIntentWaiters(ticks: ticks) {
            w.done(.failure(ClientError(.unavailable, "a transaction touching this read on shard \(w.shard) is still unresolved; retry")))
        }
        if !heldTransactions.isEmpty { releaseHeldTransactions() }
        if !tickTimers.isEmpty { runDueTimers() }
        if ticks % 10 == 0 { liftExpiredFences() }
        if ticks % 5 == 0 { expireForwards() }
        tickSnapshotStreams()
        if ticks % 50 == 0 { rebalanceLeaders() }
        if ticks % 25 == 0 { moveLeadershipOffASlowDisk() }
        if stopping { continueShutdown() }
    }

    /// The driver's clock moved (a callback that is not a tick).
    package func advanceClock(to now: UInt64) {
        precondition(now >= self.now, "the monotonic clock went backwards")
        self.now = now
    }

    /// End of a loop turn: send what may go now, start the next group commit if none is in flight.
    package func endOfTurn(now: UInt64) {
        advanceClock(to: max(now, self.now))
        coordinator.flush()
        for r in replicas {
            r.startReads()
            queue(r.raft.takeImmediateMessages(), shard: r.shard)
            r.takeConfirmedReads()
            // A group with a learner and no snapshot yet takes one: a replica that joins needs a snapshot to start
            // from (the group's first members are in it), never the log from its first entry.
            let joinerWaits = r.snapshotIndex == 0 && r.appliedIndex > 0 && !r.raft.confState.learners.isEmpty
            if r.entriesSinceSnapshot >= UInt64(config.snapshotEntries) || r.bytesSinceSnapshot >= config.snapshotBytes || joinerWaits,
               let snap = r.takeSnapshot() {
                commit.saveSnapshot(shard: r.shard, snap)
            }
        }
        queue(meta.raft.takeImmediateMessages(), shard: metaGroup)
        if let snap = meta.takeSnapshotIfDue() { commit.saveSnapshot(shard: metaGroup, snap) }
        if !commit.writeInFlight { planWrite() }
        flushOutgoing()
    }

    /// The write handed to `io.startWrite` is durable and applied to the group logs.
    package func writeCompleted(now: UInt64, tookNanos: UInt64) {
        advanceClock(to: now)
        let done = commit.completed()
        stalledWriteWentThrough()
        diskHealth.wrote(nanos: tookNanos)
        metrics.recordWALWrite(nanos: tookNanos, snapshots: done.snapshots)
        finish(done.readies)
        for c in done.callbacks { c() }
        endOfTurn(now: now)
    }

    /// Runs `body` once the vector index holds every change applied so far.
    func whenVectorsCurrent(_ body: @escaping () -> Void) {
        if vectors.pendingCount == 0 { body() } else { waiters.waitVectors(body) }
    }

    /// The median of this node's recent WAL write + fdatasync times, ms (slow-disk detection; nil before one).
    package var ownWALWriteMs: Double? { diskHealth.ownWriteMs }

    /// Whether vector-index work is queued (the driver keeps the loop turning while it is).
    package var hasIndexWork: Bool { vectors.pendingCount > 0 }

    /// One bounded slice of queued vector indexing, until `deadline`; wakes linearizable searches once the index
    /// holds every applied change. Returns whether work remains.
    @discardableResult
    package func indexVectors(until deadline: ContinuousClock.Instant) -> Bool {
        guard vectors.pendingCount > 0 else { return false }
        if vectors.process(until: deadline) { return true }
        for w in waiters.wakeVectorWaiters() { w() }
        return false
    }

    // MARK: group commit

    private func planWrite() {
        var readies: [(shard: Int, ready: Ready)] = []
        for r in replicas where r.raft.hasReady() { readies.append((r.shard, r.raft.ready())) }
        if meta.raft.hasReady() { readies.append((metaGroup, meta.raft.ready())) }
        let plan = commit.plan(readies, log: { self.logs[$0] }, image: { self.takeReceivedImage(shard: $0, for: $1) })
        finish(plan.finishNow)
        for c in plan.callbacksNow { c() }
        if let batch = plan.batch { io.startWrite(batch) }
    }

    /// The Readies' writes are durable (or needed none): send what waited, apply, answer, advance.
    private func finish(_ readies: [(shard: Int, ready: Ready)]) {
        for (s, rd) in readies {
            queue(rd.messages, shard: s)
            if s == metaGroup { meta.finish(rd); mapApplied(); continue }
            replicas[s].finish(rd)
            wakeAppliedWaiters(s)
            // Hot path: only gather the shard's intents when a read waits on them.
            if waiters.hasIntentWaiters(shard: s) {
                for w in waiters.wakeIntentWaiters(shard: s, intents: replicas[s].state.txns.intents) { w(.success(())) }
            }
        }
    }

    /// Runs `done` after the next group-commit write is durable (flush uses it for its snapshots).
    func afterNextDurableWrite(_ done: @escaping () -> Void) {
        commit.afterNextDurableWrite(done)
    }

    /// Takes a snapshot of every shard that applied something since its last one; the next write saves them.
    /// With `compactLog`, that write also drops every log entry the shard's newest snapshot covers (a shard with
    /// nothing new is compacted to the snapshot it has).
    func requestSnapshots(compactLog: Bool = false) -> Int {
        var n = 0
        for r in replicas {
            if let snap = r.takeSnapshot() {
                commit.saveSnapshot(shard: r.shard, snap, keepNoMargin: compactLog)
                n += 1
            } else if compactLog, r.snapshotIndex > logs[r.shard].compactIndex {
                commit.compactFully(shard: r.shard, upTo: r.snapshotIndex)
            }
        }
        return n
    }

    // MARK: messages

    private func queue(_ msgs: [Message], shard: Int) {
        for m in msgs {
            if m.type == .append, !m.entries.isEmpty, shard != metaGroup {
                diskHealth.sentAppend(to: m.to, shard: shard, lastIndex: m.index + LogIndex(m.entries.count), now: now)
            }
            outgoing[m.to, default: []].append(ShardMessage(shard: UInt32(shard), message: m))
        }
    }

    private func flushOutgoing() {
        for peer in outgoing.keys.sorted() {
            guard var all = outgoing[peer], !all.isEmpty else { continue }
            let version = io.wireVersion(of: peer)
            if version > 0, version < PeerFrame.metaGroupVersion {
                // A peer of an older release has no meta group: its messages are not sent (lost, to Raft).
                all.removeAll { $0.shard == UInt32(metaGroup) }
                if all.isEmpty { continue }
            }
            // A snapshot message the core built from the log carries no image: it is streamed from the image's
            // file (bigger than a chunk, to a peer that streams), or the image is read into it (small ones).
            all = all.compactMap { m in
                var m = m
                return m.message.type != .snapshot || prepareSnapshot(&m, to: peer) ? m : nil
            }
            if all.isEmpty { continue }
            var msgs = all
            if io.wireVersion(of: peer) >= 2 {
                // Every shard's heartbeats of this turn travel as one compact list (wire version 2).
                var beats: [CoalescedHeartbeat] = []
                msgs = all.filter { m in
                    guard let h = CoalescedHeartbeat(shard: m.shard, m.message) else { return true }
                    beats.append(h)
                    return false
                }
                if !beats.isEmpty, !io.send(.heartbeats(beats), to: peer) {
                    for s in Set(beats.map(\.shard)).sorted() { groupRaft(Int(s)).reportUnreachable(peer) }
                }
                if msgs.isEmpty { continue }
            }
            for chunk in splitIntoFrames(msgs, peer: peer) {
                let sent = io.send(.raft(chunk), to: peer)
                for m in chunk where m.message.type == .snapshot {
                    groupRaft(Int(m.shard)).reportSnapshot(to: peer, failed: !sent)
                }
                if !sent { for s in Set(chunk.map(\.shard)).sorted() { groupRaft(Int(s)).reportUnreachable(peer) } }
            }
        }
        outgoing.removeAll(keepingCapacity: true)
        sendSnapshotChunks()
        io.flushPeers()
    }

    /// Splits a turn's messages to `peer` into frames no larger than the peer frame limit (the receiver closes a
    /// link that sends more). A single message above the limit — a snapshot of a shard bigger than
    /// `--peer-max-frame-bytes` — cannot be sent at all: it is dropped, reported failed to its shard, counted
    /// and logged (once per shard every 10 s), and the follower stays behind until the limit is raised.
    private func splitIntoFrames(_ msgs: [ShardMessage], peer: NodeID) -> [[ShardMessage]] {
        let budget = config.maxPeerFrameBytes - 9   // the frame's length, kind and count
        // The usual turn: everything fits in one frame.
        var total = 0
        for m in msgs {
            total += PeerFrame.encodedSize(m.message)
            if total > budget { break }
        }
        if total <= budget { return [msgs] }
        var frames: [[ShardMessage]] = []
        var current: [ShardMessage] = []
        var size = 0
        for m in msgs {
            let n = PeerFrame.encodedSize(m.message)
            if n > budget {
                metrics.peerOversizedMessages += 1
                if m.message.type == .snapshot { groupRaft(Int(m.shard)).reportSnapshot(to: peer, failed: true) }
                if oversizeLog.shouldLog(peer: NodeID(m.shard), now: now).log {
                    logger.error("shard \(m.shard): a \(m.message.type) of \(n) bytes for node \(peer) exceeds the peer frame limit of \(config.maxPeerFrameBytes) bytes (--peer-max-frame-bytes) and is not sent; node \(peer) cannot catch up on this shard until the limit is raised on every node")
                }
                continue
            }
            if size + n > budget, !current.isEmpty {
                frames.append(current)
                current = []
                size = 0
            }
            current.append(m)
            size += n
        }
        if !current.isEmpty { frames.append(current) }
        return frames
    }

    func wakeAppliedWaiters(_ shard: Int) {
        for w in waiters.wakeAppliedWaiters(shard: shard, applied: replicas[shard].appliedIndex) { w(.success(())) }
    }

    /// Fails every pending proposal and read (the node is stopping).
    func failEverything(_ why: String) {
        for r in replicas { r.failAll(.unavailable(why)) }
        meta.failAll(why)
    }
}
