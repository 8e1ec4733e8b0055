import Foundation
import Logging
import NodeCore
import Raft
import Shard
import UV
import WAL
import Release

/// One Sutra node process: the libuv driver around `NodeCore`. It owns the loop, the shared WAL, the peer
/// transport, the client front ends, the tick timer and the signal handlers; every decision — what is durable
/// before what is sent or answered, forwards, reads, placement, transactions — is the core's.
///
/// Everything runs on the loop thread except the WAL's fsync, which runs on libuv's thread pool. At the end of
/// each loop turn (`LoopCheck`) the driver runs a slice of vector indexing and the core's `endOfTurn`; the write
/// the core asks for (`startWrite`) is encoded here, made durable on the thread pool, applied to the group logs,
/// and reported back (`writeCompleted`). A write that finds no space waits and is retried (`NodeCore+DiskSpace`);
/// any other failed write or fsync stops the process: the log's state is unknown, and recovery on restart is the
/// only safe path.
public final class NodeServer {
    public let config: NodeConfig
    let loop: EventLoop
    let logger: Logger
    let engine: LogEngine
    /// The meta group's log (`meta/` in the data directory), apart from the shards' WAL so that a data directory
    /// stays readable by releases before the meta group (they refuse a WAL holding a group they do not know; they
    /// ignore this directory). A turn's write that holds meta-group records writes both logs before it completes.
    let metaEngine: LogEngine
    var transport: PeerTransport!
    /// Peer-link TLS contexts and mode (loaded at start; `.insecure` with --insecure-peers or a single node).
    let peerSecurity: PeerSecurity
    private(set) var core: NodeCore!

    var tickTimer: UV.Timer?
    var turnHook: LoopCheck?
    var signals: [SignalWatcher] = []
    var binaryFrontEnd: BinaryFrontEnd?
    var httpFrontEnd: HTTPFrontEnd?
    /// Client authorization (tokens, roles), consulted by both front ends; reloaded on SIGHUP.
    var clientAuth: ClientAuth!
    /// TLS on the client ports (off without a certificate); reloaded on SIGHUP.
    var clientTLS: ClientTLS!
    /// Node-wide client flow control: connection cap, partial-request budget, per-turn slices, timeouts.
    var clientPorts: ClientPorts!
    /// The embedding service's client (`--embedding-service`), nil without one.
    var embedder: EmbeddingClient?
    /// The longest gap between two Raft ticks since the node started (ms): how long the loop was held.
    private(set) var maxTickGapMs: UInt64 = 0
    private var lastTickMs: UInt64 = 0
    /// Fires at once while index work is queued, so the loop keeps turning (and polling I/O) between slices.
    private var indexingTimer: UV.Timer?
    /// How long one slice of vector indexing may hold the loop.
    static let indexingSliceMs = 5
    /// Test-only slow disk (`--enable-fault-injection`): each WAL write sleeps this long before its fdatasync.
    var fsyncDelayMs = 0
    /// Runs first on SIGHUP (the executable reopens its log file here).
    public var onReload: (() -> Void)?
    /// The WAL write that found no space, kept (with when it started) until the core asks for it again.
    var stalledWrite: (TurnWrite, UInt64)?
    /// WAL bytes written since the free space was last measured: measured again after every eighth of the floor
    /// (at least 1 MiB), so writes cannot run past the floor between the once-a-second measurements.
    var walBytesSinceDiskMeasure: UInt64 = 0
    /// A content digest is being hashed on the thread pool (one at a time per node: each costs O(n log n)).
    var digestInFlight = false
    /// The online backup this node took and is serving to its taker (`NodeServer+Backup.swift`).
    var heldBackup: HeldBackup?
    var backupEncodingInFlight = false
    var backupTaking = false

    public init(config: NodeConfig, logger: Logger, auth: ClientAuthSettings = ClientAuthSettings(),
                clientLimits: ClientLimits = ClientLimits(), embedding: EmbeddingServiceConfig? = nil) throws {
        self.config = config
        self.logger = logger
        _ = ProcessStats.startTime   // fixed now: process_start_time_seconds
        self.loop = try EventLoop()
        if let embedding {
            guard config.dimension > 0 else { throw ConfigurationRefusal("--embedding-service needs a cluster with embeddings (--dimension > 0)") }
            embedder = try EmbeddingClient(config: embedding, dimension: config.dimension, loop: loop, logger: logger)
            logger.info("texts are embedded by \(embedding.url)\(embedding.model.isEmpty ? "" : " (model \(embedding.model))"), timeout \(embedding.timeoutSeconds) s")
        }
        clientPorts = ClientPorts(limits: clientLimits, loop: loop, logger: logger)
        if let cert = config.tlsCert, let key = config.tlsKey, let ca = config.tlsCA, !config.insecurePeers {
            do {
                peerSecurity = try PeerSecurity.load(certificate: cert, key: key, ca: ca, mode: PeerTLSMode(rawValue: config.peerTLS) ?? .required)
            } catch {
                throw NodeStartError("peer TLS: \(error)")
            }
        } else {
            peerSecurity = .insecure
        }
        clientAuth = try ClientAuth(settings: auth, logger: logger)
        let tls = try ClientTLS(settings: auth, logger: logger)
        clientTLS = tls
        if let problem = ClientTLS.insecureListenProblem(host: config.listenHost, tls: tls.isOn, allowInsecure: auth.allowInsecureClients) {
            throw NodeStartError(problem)
        }
        if auth.allowInsecureClients && !tls.isOn && !ClientTLS.isLoopback(config.listenHost) {
            logger.warning("--allow-insecure-clients: clients on \(config.listenHost) are served WITHOUT TLS")
        }
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // Owner only, also for a directory made by an older release or by hand (least privilege).
        chmod(config.dataDir, 0o700)
        let identity = try DataIdentityFile.check(dataDir: config.dataDir, config: config)
        if identity == .fresh {
            // Recorded before the WAL exists: a directory with data always says what it was created for.
            try DataIdentityFile.write(.of(config), dataDir: config.dataDir)
        }
        do {
            engine = try LogEngine(directory: config.dataDir + "/wal", logger: logger)
        } catch {
            switch error {
            case .corruption, .unsupportedVersion:
                // Damage or a newer format: restarting cannot help, and dropping it would lose acknowledged
                // writes. The operator wipes the directory and the node rejoins (docs/OPERATIONS.md).
                throw ConfigurationRefusal("\(error) (the node's data is damaged: wipe \(config.dataDir) and let it rejoin from its peers, see docs/OPERATIONS.md)")
            default:
                throw error
            }
        }
        do {
            var small = LogEngine.Options()
            small.segmentSize = 4 << 20
            small.preallocateBytes = 64 << 10
            metaEngine = try LogEngine(directory: config.dataDir + "/meta", options: small, logger: logger)
        } catch {
            switch error {
            case .corruption, .unsupportedVersion:
                throw ConfigurationRefusal("the cluster map's log: \(error) (the node's data is damaged: wipe \(config.dataDir) and let it rejoin from its peers, see docs/OPERATIONS.md)")
            default:
                throw error
            }
        }
        let vectors = ConceptVectors(dimension: config.dimension)
        let logs = try openLogs()
        switch identity {
        case .adopt:
            try DataIdentityFile.write(.of(config), dataDir: config.dataDir)
            logger.notice("data directory \(config.dataDir) predates identity files: adopted as cluster '\(config.clusterID)', node \(config.nodeID), \(config.numShards) shards, dimension \(config.dimension) (from the flags; recorded in \(DataIdentityFile.path(in: config.dataDir)))")
        case .upgrade(let id):
            try DataIdentityFile.write(id, dataDir: config.dataDir)
            logger.notice("data directory \(config.dataDir): identity updated to this build's formats (WAL \(id.walFormat), snapshot \(id.snapshotFormat), command \(id.commandFormat))")
        case .matches, .fresh:
            break
        }
        if let why = vectors.load(from: vectorDirectory, shardCount: config.numShards) {
            logger.info("vector index: \(why); rebuilding it from the shard snapshots")
        }
        // A new incarnation per process: forward replies meant for an earlier process are never matched.
        let incarnation = UInt64.random(in: 1...UInt64.max)
        core = try NodeCore(config: config, logs: logs, vectors: vectors, io: self, incarnation: incarnation, logger: logger)
        let restored = core.replicas.reduce(0) { $0 + $1.state.conceptCount }
        logger.info("opened \(config.numShards) shards from \(config.dataDir) (\(restored) concepts from snapshots)")
    }

    /// Every shard's log from the WAL, and the meta group's (group = the shard count) from its own log; a group
    /// seen for the first time gets the cluster's membership (a directory of a release before the meta group
    /// gets the meta group's here, like a new one).
    private func openLogs() throws -> [GroupLog] {
        let existing = engine.groupIDs
        let metaGroup = UInt64(config.numShards)
        if let other = metaEngine.groupIDs.first(where: { $0 != metaGroup }) {
            throw ConfigurationRefusal("--shards \(config.numShards) but the cluster map's log in \(config.dataDir)/meta is group \(other); the shard count is fixed when a cluster is created")
        }
        // Every shard of a node that created the cluster has a log from its first start; a node that joined
        // has logs only of the shards whose replicas reached it so far — its meta group's log (group = the
        // shard count) pins the count then.
        let complete = existing == (0..<UInt64(config.numShards)).map({ $0 })
        if !existing.isEmpty && (existing.last! >= metaGroup || (!complete && metaEngine.groupIDs.isEmpty)) {
            throw ConfigurationRefusal("--shards \(config.numShards) but data directory \(config.dataDir) holds shards \(existing.map(String.init).joined(separator: ", ")); the shard count is fixed when a cluster is created")
        }
        var initial = WriteBatch()
        for s in 0..<config.numShards {
            let log = engine.group(UInt64(s))
            // A shard this node holds no replica of (replication below the node count) starts without members,
            // like a joining node's: it has nothing to write until a move brings the shard here.
            if log.snapshotMetadata.confState.isEmpty && log.lastIndex() == 0 && !config.join,
               case let members = NodeCore.initialMembership(config, shard: s), members.contains(config.nodeID) {
                initial.setInitialMembership(group: UInt64(s), members)
            }
        }
        if !initial.isEmpty { try engine.write(initial) }
        let metaLog = metaEngine.group(metaGroup)
        if metaLog.snapshotMetadata.confState.isEmpty && metaLog.lastIndex() == 0 && !config.join {
            var m = WriteBatch()
            m.setInitialMembership(group: metaGroup, NodeCore.metaMembership(config))
            try metaEngine.write(m)
        }
        return (0..<config.numShards).map { engine.group(UInt64($0)) } + [metaLog]
    }

    var vectorDirectory: String { config.dataDir + "/vectors" }

    /// The replication factor this node compares with its peers': the cluster map's once it exists (the flag
    /// only places a new cluster), the flag's before — none for a node that joins (the map it will learn
    /// decides), which is then not compared.
    var handshakeReplication: Int {
        if let map = core.clusterMap {
            if let given = config.replication, given != map.replication {
                logger.warning("--replication \(given) is ignored: this cluster was created with replication factor \(map.replication) (its map keeps it)")
            }
            return map.replication
        }
        return config.join ? 0 : config.replicationFactor
    }

    /// Starts listening and runs the loop until the node stops. Returns the process exit code.
    public func run(onReady: (() -> Void)? = nil) throws -> Int32 {
        let hello = PeerHello(clusterID: config.clusterID, node: config.nodeID,
                              clientAddress: config.clientAddress, httpAddress: config.httpAddress)
        var peerAddrs: [NodeID: PeerEndpoint] = [:]
        for (id, p) in config.peers { peerAddrs[id] = p }
        let peerConfig = PeerConfig(shardCount: UInt32(config.numShards), dimension: UInt32(config.dimension),
                                    walFormat: WALFormat.version, snapshotFormat: ShardState.snapshotVersion,
                                    entryFormat: UInt32(ShardRequest.version), replication: UInt32(handshakeReplication))
        // A link is replaced by a new connection only after twice the election timeout of silence (the longest
        // randomized timeout): a restarted peer behind a socket that never closed gets back in that soon.
        transport = PeerTransport(loop: loop, hello: hello, config: peerConfig, maxFrameBytes: config.maxPeerFrameBytes,
                                  replaceAfterSilenceMs: UInt64(2 * config.electionTicks * config.tickMs),
                                  peers: peerAddrs, security: peerSecurity, logger: logger)
        transport.warnIfInsecure(now: loop.now)
        transport.onFrame = { [unowned self] peer, frame in self.core.receive(frame, from: peer, now: self.nanos) }
        transport.onLinkChange = { [unowned self] peer, up in
            if !up { self.core.advanceClock(to: self.nanos); self.core.linkDown(peer) }
        }
        try transport.start(listenHost: config.listenHost, port: config.peerPort)
        try startFrontEnds()
        measureDiskSpace()
        tickTimer = try UV.Timer(loop: loop)
        lastTickMs = loop.now
        tickTimer!.start(timeout: UInt64(config.tickMs), repeat: UInt64(config.tickMs)) { [unowned self] in
            let nowMs = self.loop.now
            self.maxTickGapMs = max(self.maxTickGapMs, nowMs - self.lastTickMs)
            self.lastTickMs = nowMs
            self.core.tick(now: self.nanos)
            if self.core.ticks % self.core.stalledWriteRetryTicks == 0 { self.measureDiskSpace() }
            self.transport.keepAlive()
            if self.heldBackup != nil { self.dropIdleBackup() }
        }
        turnHook = try LoopCheck(loop: loop) { [unowned self] in self.endOfTurn() }
        for sig in [SIGTERM, SIGINT] {
            signals.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] s in
                self.logger.notice("signal \(s): shutting down gracefully")
                self.core.advanceClock(to: self.nanos)
                self.core.beginShutdown()
            })
        }
        signals.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in
            self.onReload?()
            self.clientAuth.reload()
            self.clientTLS.reload()
            self.transport.reloadCertificates()
        })
        if config.faultInjection {
            logger.warning("--enable-fault-injection is on: POST /v1/admin/fault/fsync-delay can slow this node's disk (test-only)")
        }
        if config.unsafeLocalReads {
            logger.critical("--unsafe-local-reads is on: linearizable reads are answered from local state WITHOUT confirming leadership (a known-bad test build; stale reads will happen)")
        }
        logger.info("sutra-node \(SutraRelease.version): node \(config.nodeID) of cluster \(config.clusterID) (incarnation \(String(core.incarnation, radix: 16))): peers on \(config.listenHost):\(config.peerPort), clients on \(config.clientAddress), HTTP on \(config.httpAddress)")
        onReady?()
        _ = loop.run()
        return 0
    }

    /// The loop's monotonic clock, nanoseconds.
    var nanos: UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Serves one client request (both front ends call this). `done` runs exactly once, on the loop thread.
    public func execute(_ op: ClientOp, session: ClientSession, _ done: @escaping ClientCompletion) {
        if case .fsyncDelay(let ms) = op { done(setFsyncDelay(ms: ms)); return }
        if let embedder {
            let texts = TextEmbedding.texts(for: op, maxBytes: embedder.config.maxTextBytes)
            if !texts.isEmpty {
                // Embedded before the write is proposed: the vector is in the log entry, the same on every replica.
                embedder.embed(texts) { [unowned self] result in
                    switch result {
                    case .success(let vectors): self.execute(TextEmbedding.filled(op, with: vectors), session: session, done)
                    case .failure(let e): done(.failure(e))
                    }
                }
                return
            }
        }
        core.advanceClock(to: nanos)
        if case .cluster = op {
            core.execute(op, session: session) { [unowned self] result in
                guard case .success(.cluster(var status)) = result else { done(result); return }
                status.peerSecurity = PeerSecurityStatus(mode: self.peerSecurity.mode.rawValue,
                                                         tlsPeers: self.transport.tlsPeers, plaintextPeers: self.transport.plaintextPeers)
                done(.success(.cluster(status)))
            }
            return
        }
        core.execute(op, session: session, done)
    }

    var isReady: Bool { core.isReady }

    /// End of a loop turn: one slice of vector indexing, the core's turn, and the binary clients' answers.
    func endOfTurn() {
        if core.indexVectors(until: .now + .milliseconds(NodeServer.indexingSliceMs)) {
            if indexingTimer == nil { indexingTimer = try? UV.Timer(loop: loop) }
            indexingTimer?.start(timeout: 0) {}
        }
        // Client requests waiting for a slice start before the core's turn, so their writes join this group commit.
        clientPorts.endOfTurn()
        core.endOfTurn(now: nanos)
        binaryFrontEnd?.flush()
    }

    func closeLoopHandles() {
        indexingTimer?.close()
        tickTimer?.close()
        turnHook?.close()
        embedder?.close()
        for s in signals { s.close() }
        signals = []
    }

    func fatalStop(_ why: String) -> Never {
        logger.critical("\(why)")
        exit(70)
    }
}

extension NodeServer: NodeIO {
    package func send(_ frame: PeerFrame, to peer: NodeID) -> Bool { transport.send(frame, to: peer) }
    package func flushPeers() { transport.flush() }
    package func isConnected(_ peer: NodeID) -> Bool { transport.isConnected(peer) }
    package func wireVersion(of peer: NodeID) -> UInt32 { transport.version(of: peer) }
    package func linkStatus(of peer: NodeID) -> String { transport.status(of: peer) }

    package func clientAddresses(of peer: NodeID) -> (client: String, http: String)? {
        transport.peerHellos[peer].map { ($0.clientAddress, $0.httpAddress) }
    }

    /// Encodes the batch on the loop, makes it durable on the thread pool, applies it to the group logs here.
    package func startWrite(_ batch: WriteBatch) {
        let metaGroup = UInt64(config.numShards)
        let (metaPart, shardPart) = batch.split { $0 == metaGroup }
        let prepared: TurnWrite
        do {
            prepared = TurnWrite(shards: shardPart.isEmpty ? nil : try engine.prepare(shardPart),
                                 meta: metaPart.isEmpty ? nil : try metaEngine.prepare(metaPart))
        } catch {
            fatalStop("preparing a WAL write failed: \(error)")
        }
        perform(prepared, started: nanos)
    }

    /// The write in flight found no space: the same prepared write, again (`PreparedWrite.perform` may repeat).
    package func retryWrite() {
        guard let (prepared, started) = stalledWrite else { preconditionFailure("retryWrite without a stalled write") }
        stalledWrite = nil
        perform(prepared, started: started)
    }

    /// Runs `prepared` on the thread pool. Out of space: kept for `retryWrite` and reported (`writeStalled`); any
    /// other failure stops the process (the log's state is unknown; recovery on restart is the only safe path).
    private func perform(_ prepared: TurnWrite, started: UInt64) {
        let bytes = prepared.byteCount
        let delayMicros = useconds_t(fsyncDelayMs * 1000)
        do {
            try loop.queueWork({ () -> Result<Void, WALError> in
                if delayMicros > 0 { usleep(delayMicros) }
                do throws(WALError) { try prepared.perform(); return .success(()) } catch { return .failure(error) }
            }, completion: { [unowned self] result in
                if case .failure(let e) = result {
                    if e.isOutOfSpace {
                        self.stalledWrite = (prepared, started)
                        self.measureDiskSpace()
                        self.core.writeStalled(now: self.nanos, error: "\(e)")
                        return
                    }
                    if let p = prepared.shards { self.engine.abandon(p, error: e) }
                    if let p = prepared.meta { self.metaEngine.abandon(p, error: e) }
                    self.fatalStop("WAL write failed, stopping rather than acknowledging anything: \(e)")
                }
                if let p = prepared.shards { self.engine.complete(p) }
                if let p = prepared.meta { self.metaEngine.complete(p) }
                let now = self.nanos
                self.core.metrics.walBytes += UInt64(bytes)
                self.walBytesSinceDiskMeasure += UInt64(bytes)
                if self.config.minFreeDiskBytes > 0, self.walBytesSinceDiskMeasure >= max(1 << 20, self.config.minFreeDiskBytes / 8) {
                    self.walBytesSinceDiskMeasure = 0
                    self.measureDiskSpace()
                }
                self.core.writeCompleted(now: now, tookNanos: now - started)
                self.binaryFrontEnd?.flush()
            })
        } catch {
            fatalStop("cannot queue the WAL write: \(error)")
        }
    }

    /// Measures the space left for this node on its data directory's file system (statvfs: one system call)
    /// and tells the core, which refuses client writes below the floor.
    func measureDiskSpace() {
        var st = statvfs()
        guard statvfs(config.dataDir, &st) == 0 else { return }
        core.diskSpace(freeBytes: UInt64(st.f_bavail) &* UInt64(st.f_frsize))
    }

    /// Saves the vector index beside the snapshots (flush, graceful shutdown). Blocks the loop while writing.
    package func runOffLoop<T: Sendable>(_ work: @escaping @Sendable () -> T, then done: @escaping (T) -> Void) {
        do {
            try loop.queueWork(work, completion: done)
        } catch {
            // The thread pool refused the request (it never does while the loop runs): do it here, answer later.
            logger.warning("work could not be queued off the loop (\(error)); done on the loop")
            let result = work()
            guard let timer = try? UV.Timer(loop: loop) else { fatalStop("cannot run work off the loop, nor schedule its completion: \(error)") }
            timer.start(timeout: 0) { timer.close(); done(result) }
        }
    }

    package func saveVectorIndex() {
        guard config.dimension > 0 else { return }
        let started = ContinuousClock.now
        var positions: [Int: UInt64] = [:]
        for r in core.replicas { positions[r.shard] = r.appliedIndex }
        do {
            try core.vectors.save(to: vectorDirectory, positions: positions, shardCount: config.numShards)
            logger.info("vector index saved (\(core.vectors.count) vectors) in \(ContinuousClock.now - started)")
        } catch {
            logger.error("vector index not saved (it will be rebuilt at the next start): \(error)")
        }
    }

    package func peersChanged(_ peers: [NodeID: String]) {
        let endpoints = peers.compactMapValues { PeerEndpoint(hostPort: $0) }
        // The peers of the flags stay linked until the map names them removed (a joining node reaches the
        // cluster through them before it has a map).
        transport?.updatePeers(endpoints, keep: Set(config.peers.keys).intersection(core.otherNodes))
    }

    package func shutdownFinished() {
        stopFrontEnds()
        transport.stop()
        closeLoopHandles()
    }
}

/// A node that cannot start: the message says which setting or file and why.
public struct NodeStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// One turn's write: the shards' part in the WAL and the meta group's in its own log (either may be absent). It
/// is durable once both are; `perform` may repeat (a write that found no space is tried again whole).
struct TurnWrite: Sendable {
    let shards: PreparedWrite?
    let meta: PreparedWrite?

    var byteCount: Int { (shards?.byteCount ?? 0) + (meta?.byteCount ?? 0) }

    func perform() throws(WALError) {
        try shards?.perform()
        try meta?.perform()
    }
}
