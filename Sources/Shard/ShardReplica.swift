import Raft
import WAL

/// Why a request to a shard replica did not succeed.
public enum ReplicaError: Error, Equatable, Sendable {
    /// This replica does not lead the shard; `leader` is the leader it knows (`noNode` if none).
    case notLeader(leader: NodeID)
    /// The outcome is unknown or the shard cannot serve now (leadership changed while the write was in
    /// flight, shutting down): retry — the client sequence makes a retried write apply once.
    case unavailable(String)
    /// The state machine refused the write (validated identically on every replica); nothing changed.
    case rejected(String)
}

extension ReplicaError {
    /// A leader handing its leadership to another replica refuses proposals until the handoff ends: nothing was
    /// proposed, so the request may be sent again (to the new leader) without applying twice.
    public static let transferringLeadership = ReplicaError.unavailable("the shard is transferring its leadership; retry")
}

/// One shard replica: its Raft group (consensus core), its durable log (a view of the node's shared WAL), its
/// state machine and its vector index, plus the bookkeeping that answers clients.
///
/// The node drives it from its loop thread: feed it ticks and messages through `raft`, collect `raft.ready()`
/// into the turn's group-commit write, and once that write is durable call `finish(_:)`, which applies the
/// committed entries, answers the proposals and reads that became final, and advances the core.
/// Guarantees: a proposal is answered success only after its entry, proposed in this leader's term, was
/// committed and applied; a read is answered only once a ReadIndex round confirmed leadership and the state
/// has applied up to that index (linearizable). Not thread-safe.
public final class ShardReplica {
    public typealias WriteCompletion = (Result<UInt64, ReplicaError>) -> Void
    public typealias ReadCompletion = (Result<Void, ReplicaError>) -> Void
    /// The state machine's own answer (`.pending` included), for the transaction steps that need it.
    public typealias ApplyCompletion = (Result<ApplyResult, ReplicaError>) -> Void

    public let shard: Int
    public let raft: RaftNode
    public let log: GroupLog
    public let limits: ShardLimits
    public private(set) var state: ShardState
    /// The node's vector index, shared by every replica it hosts.
    public let vectors: ConceptVectors
    public let shardCount: Int
    /// Highest log index applied to `state` (entries without a command included).
    public private(set) var appliedIndex: LogIndex
    /// Index of the newest snapshot taken or installed here.
    public private(set) var snapshotIndex: LogIndex

    private var proposals: [LogIndex: (term: Term, done: ApplyCompletion)] = [:]
    /// The state of the last snapshot image from a peer that `checkSnapshot` restored, kept for its install: a
    /// big image is decoded once, not once to check it and again to install it. Dropped at the next install.
    private var checkedSnapshot: (index: LogIndex, term: Term, state: ShardState)?
    private var readsWaiting: [ReadCompletion] = []
    private var readsInFlight: [UInt64: [ReadCompletion]] = [:]
    private var readsConfirmed: [(index: LogIndex, waiters: [ReadCompletion])] = []
    private var nextReadID: UInt64 = 1
    /// Counters for metrics.
    public private(set) var appliedWrites: UInt64 = 0
    public private(set) var leaderChanges: UInt64 = 0
    /// Snapshots received from a leader and installed here (a follower too far behind the compacted log).
    public private(set) var installedSnapshots: UInt64 = 0
    /// Sees every command this replica applies and the state machine's answer, in log order (the cluster
    /// simulation checks transaction decisions with it). Nil in production.
    public var applyObserver: ((_ shard: Int, _ request: ShardRequest, _ result: ApplyResult) -> Void)?

    /// Opens the replica from its durable log: loads the newest snapshot (if any) and lets the core replay the
    /// committed tail. A snapshot that fails its checks stops the node: it is never skipped.
    public init(shard: Int, shardCount: Int, raftConfig: RaftConfig, log: GroupLog, limits: ShardLimits, vectors: ConceptVectors) throws {
        self.shard = shard
        self.log = log
        self.limits = limits
        // The newest snapshot restored from its mapped file (checked against its checksum first): no copy of the
        // image on the heap, only the state.
        let snap = Snapshot(metadata: log.snapshotMetadata)
        if let image = try log.snapshotImage() {
            state = try ShardReplica.restoreImage(image, limits: limits)
        } else {
            state = ShardState(limits: limits)
        }
        appliedIndex = snap.metadata.index
        snapshotIndex = snap.metadata.index
        self.vectors = vectors
        self.shardCount = shardCount
        var cfg = raftConfig
        cfg.applied = snap.metadata.index
        raft = RaftNode(config: cfg, storage: log)
        if !vectors.covers(shard: shard, snapshotIndex: snap.metadata.index) {
            vectors.rebuild(shard: shard, shardCount: shardCount, from: state)
        } else {
            vectors.refreshAttributes(shard: shard, from: state)
        }
        attachIndexes()
    }

    private func attachIndexes() {
        let v = vectors, s = shard
        state.onConceptChange = { id, concept in
            v.enqueue(id, shard: s, embedding: concept?.embedding, attributes: concept.map(FilterAttributes.init) ?? .unknown)
        }
    }

    public var isLeader: Bool { raft.role == .leader }

    /// Proposals and reads waiting here (diagnostics).
    public var waiting: (proposals: [LogIndex], reads: Int) {
        (proposals.keys.sorted(), readsWaiting.count + readsInFlight.values.map(\.count).reduce(0, +) + readsConfirmed.map(\.waiters.count).reduce(0, +))
    }

    /// Whether concept `id` (of this shard) passes a search filter, read from the applied state in place (a
    /// search asks this for every candidate: a copy of the state per call cost ~0.7 µs).
    public func admits(_ id: ConceptID, _ filter: SearchFilter) -> Bool {
        guard let c = state.concepts[id] else { return false }
        return filter.admits(c) { state.hasAssociation(id, type: $0) }
    }

    /// Whether concept `id` (of this shard) has an association of `type`, in either direction.
    public func hasAssociation(_ id: ConceptID, type: AssociationType) -> Bool { state.hasAssociation(id, type: type) }

    // MARK: writes

    /// Proposes a write. `done` runs once: with the version (log index) it was applied at, or an error.
    public func propose(_ request: ShardRequest, _ done: @escaping WriteCompletion) {
        proposeForResult(request) { result in
            switch result {
            case .failure(let e): done(.failure(e))
            case .success(.applied(let v)): done(.success(v))
            case .success(.rejected(let why)): done(.failure(.rejected(why)))
            case .success(.pending(let since)): done(.success(since))
            }
        }
    }

    /// Proposes a write and answers with the state machine's result as it is (`.pending` included).
    public func proposeForResult(_ request: ShardRequest, _ done: @escaping ApplyCompletion) {
        guard raft.role == .leader else { done(.failure(.notLeader(leader: raft.leader))); return }
        do {
            let index = try raft.propose(request.encode())
            proposals[index] = (raft.term, done)
        } catch {
            done(.failure(error == .transferInProgress ? .transferringLeadership : .notLeader(leader: raft.leader)))
        }
    }

    // MARK: reads

    /// Waits until a read of this replica's state is linearizable: its leadership confirmed by a quorum after
    /// the call (ReadIndex) and the state applied up to that point. Reads arriving in one loop turn share one
    /// round (`startReads`).
    public func linearizableRead(_ done: @escaping ReadCompletion) {
        guard raft.role == .leader else { done(.failure(.notLeader(leader: raft.leader))); return }
        readsWaiting.append(done)
    }

    /// Starts one ReadIndex round for every read queued since the last call (the node calls it once a turn).
    public func startReads() {
        guard !readsWaiting.isEmpty else { return }
        let waiters = readsWaiting
        readsWaiting = []
        let id = nextReadID
        nextReadID += 1
        do {
            try raft.readIndex(requestID: id)
            readsInFlight[id] = waiters
        } catch {
            for w in waiters { w(.failure(.notLeader(leader: raft.leader))) }
        }
    }

    // MARK: the Ready cycle

    /// Completes a `Ready` whose snapshot, entries and hard state are durable and whose messages were sent:
    /// installs the snapshot, applies committed entries, answers clients, and advances the core.
    public func finish(_ rd: Ready) {
        if let snap = rd.snapshot, !snap.isEmpty { install(snap) }
        for e in rd.committedEntries { apply(e) }
        settleReads(rd.readStates, dropped: rd.droppedReads)
        raft.advance()
        serveConfirmedReads()
        if let ss = rd.softState {
            leaderChanges += 1
            if ss.role != .leader { failAll(.notLeader(leader: ss.leader)) }
        }
    }

    private func apply(_ e: Entry) {
        guard e.index > appliedIndex else { return }
        appliedIndex = e.index
        bytesSinceSnapshot += e.byteSize
        guard e.kind == .normal, !e.data.isEmpty else {
            // A proposal made here whose index another leader filled with its own empty entry or a membership
            // change (leadership lost and won back between two turns, so no role change was seen): not applied.
            if let p = proposals.removeValue(forKey: e.index) {
                p.done(.failure(.unavailable("leadership changed before the write committed; retry")))
            }
            return
        }
        let request: ShardRequest
        do {
            request = try ShardRequest.decode(e.data)
        } catch {
            // Refuse, never skip, an entry this version does not understand: every replica must apply the same log.
            preconditionFailure("shard \(shard): log entry \(e.index) cannot be decoded (\(error)); a newer Sutra wrote it?")
        }
        let result = state.apply(request, at: e.index)
        appliedWrites += 1
        applyObserver?(shard, request, result)
        guard let p = proposals.removeValue(forKey: e.index) else { return }
        guard p.term == e.term else {
            p.done(.failure(.unavailable("leadership changed before the write committed; retry")))
            return
        }
        p.done(.success(result))
    }

    /// Whether a snapshot image received from a peer restores (checked before the message reaches Raft); the
    /// restored state is kept for the install of that snapshot. The image of a snapshot (index, term) is the
    /// state machine after that log prefix, the same on every replica: a state restored from it serves the
    /// install of any copy of it.
    public func checkSnapshot(_ snap: Snapshot) -> Bool {
        guard let restored = try? ShardState.restore(from: snap.data, limits: limits) else { return false }
        checkedSnapshot = (snap.metadata.index, snap.metadata.term, restored)
        return true
    }

    /// `checkSnapshot` for an image streamed into a file, restored elsewhere (off the loop, from the mapped file,
    /// by `restoreImage`): the state is kept for the install of the snapshot at `metadata`.
    public func adoptCheckedSnapshot(_ metadata: SnapshotMetadata, state restored: ShardState) {
        precondition(restored.limits.dimension == limits.dimension, "shard \(shard): a restored state of another dimension")
        checkedSnapshot = (metadata.index, metadata.term, restored)
    }

    /// Restores a received image (checked against its file's checksum first) into a new state — on any thread:
    /// it reads the image and builds a state nobody else holds. Throws why it does not restore.
    public static func restoreImage(_ image: SnapshotImage, limits: ShardLimits) throws -> ShardState {
        try image.withBytes { (buf) throws(ShardSnapshotError) in try ShardState.restore(from: buf, limits: limits) }
    }

    /// Drops the state `checkSnapshot` kept unless Raft took that snapshot to install (a stale or duplicate
    /// snapshot message is ignored by Raft: its restored state must not stay in memory). The node calls it after
    /// stepping a snapshot message.
    public func keepCheckedSnapshotOnlyIfPending() {
        guard let c = checkedSnapshot else { return }
        if let p = raft.pendingSnapshot, p.index == c.index, p.term == c.term { return }
        checkedSnapshot = nil
    }

    private func install(_ snap: Snapshot) {
        if let c = checkedSnapshot, c.index == snap.metadata.index, c.term == snap.metadata.term {
            state = c.state
        } else {
            do {
                // The message came streamed (no data in it): its image is the log's snapshot now (installed and
                // durable before this runs), restored from the mapped file as at start.
                if snap.data.isEmpty, let image = try log.snapshotImage(), image.metadata == snap.metadata {
                    state = try ShardReplica.restoreImage(image, limits: limits)
                } else {
                    state = try ShardState.restore(from: snap.data, limits: limits)
                }
            } catch {
                preconditionFailure("shard \(shard): snapshot at \(snap.metadata.index) from the leader is unreadable: \(error)")
            }
        }
        checkedSnapshot = nil
        attachIndexes()
        vectors.rebuild(shard: shard, shardCount: shardCount, from: state)
        appliedIndex = snap.metadata.index
        snapshotIndex = snap.metadata.index
        bytesSinceSnapshot = 0
        installedSnapshots += 1
        for (i, p) in proposals where i <= snap.metadata.index {
            p.done(.failure(.unavailable("replaced by a snapshot; retry")))
            proposals[i] = nil
        }
    }

    /// Takes the reads Raft confirmed (or dropped) since the last turn without waiting for the next `Ready`
    /// (the node calls it every turn), and serves those already applied: reads go on while a WAL write is in
    /// flight or stalled on a full disk. A read confirmed at an index not yet applied waits, as always.
    public func takeConfirmedReads() {
        let (confirmed, dropped) = raft.takeReadStates()
        guard !confirmed.isEmpty || !dropped.isEmpty else { return }
        settleReads(confirmed, dropped: dropped)
        serveConfirmedReads()
    }

    private func settleReads(_ confirmed: [ReadState], dropped: [UInt64]) {
        for r in confirmed {
            if let waiters = readsInFlight.removeValue(forKey: r.requestID) {
                assert(readsConfirmed.last.map { $0.index <= r.index } ?? true, "read states confirmed out of index order")
                readsConfirmed.append((r.index, waiters))
            }
        }
        for d in dropped {
            for w in readsInFlight.removeValue(forKey: d) ?? [] { w(.failure(.unavailable("read dropped by a leadership change; retry"))) }
        }
    }

    private func serveConfirmedReads() {
        while let first = readsConfirmed.first, first.index <= appliedIndex {
            readsConfirmed.removeFirst()
            for w in first.waiters { w(.success(())) }
        }
    }

    /// Fails every pending proposal and read (leadership lost, or the node is stopping).
    public func failAll(_ error: ReplicaError) {
        let ps = proposals
        proposals = [:]
        let unknown = ReplicaError.unavailable("leadership lost before the write was confirmed; retry")
        for (_, p) in ps.sorted(by: { $0.key < $1.key }) { p.done(.failure(unknown)) }
        let reads = readsWaiting + readsInFlight.values.flatMap { $0 } + readsConfirmed.flatMap { $0.waiters }
        readsWaiting = []
        readsInFlight = [:]
        readsConfirmed = []
        for r in reads { r(.failure(error)) }
    }

    // MARK: snapshots

    /// Entries applied since the newest snapshot (the node snapshots when this grows past its threshold).
    public var entriesSinceSnapshot: UInt64 { appliedIndex - snapshotIndex }

    /// Bytes of log entries applied since the newest snapshot (the node also snapshots by log size).
    public private(set) var bytesSinceSnapshot = 0

    /// A snapshot of the applied state, for the node to save and compact the log behind. Nil if nothing was
    /// applied since the last one.
    public func takeSnapshot() -> Snapshot? {
        guard appliedIndex > snapshotIndex, let term = raft.term(at: appliedIndex) else { return nil }
        let meta = SnapshotMetadata(index: appliedIndex, term: term, confState: raft.confState)
        snapshotIndex = appliedIndex
        bytesSinceSnapshot = 0
        return Snapshot(metadata: meta, data: state.snapshotData())
    }
}
