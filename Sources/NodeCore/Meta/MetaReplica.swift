import ClusterMap
import Raft
import WAL

/// This node's replica of the cluster's meta group: the small Raft group whose replicated state is the
/// `ClusterMap` (nodes, their states and addresses, every shard's replica set and leader hint).
///
/// It is driven exactly like a shard's replica, in the same turn and the same group-commit write: ticks and
/// messages go to `raft`, its `Ready` joins the turn's write, and once that write is durable `finish(_:)`
/// installs a snapshot, applies committed changes in log order and answers their proposers. Its log is WAL
/// group `group` (= the shard count) and travels on the peer wire as "shard" `group`.
///
/// The group starts without a map: its first leader proposes `.create` with the map its flags describe, and every
/// replica — a node that joins years later too — applies that same first entry. (A map computed by each node from
/// its own flags would let two nodes given different flags diverge, and a joining node has no such flags.)
///
/// Guarantees: every replica that applied the same prefix of the log holds the same map (a change's outcome,
/// refusals included, depends only on the map before it — `ClusterMap.applying`); a proposal is answered
/// success only once its entry, proposed in this leader's term, is committed and applied; an entry already
/// committed in this node's own log that does not decode stops the node, naming the group and index (local
/// damage is never skipped). Not thread-safe: the loop thread only.
package final class MetaReplica {
    package typealias Completion = (Result<ClusterMap, MetaError>) -> Void

    /// The group's id on the wire and in the WAL: just past the last shard.
    package let group: Int
    package let raft: RaftNode
    let log: GroupLog
    /// The map as of `appliedIndex`; nil until the group's first change (`.create`) is applied.
    package private(set) var map: ClusterMap?
    /// The cluster this group belongs to: a created map, and a snapshot from a peer, must be of it.
    package let clusterID: String
    package let shardCount: Int
    package private(set) var appliedIndex: LogIndex
    package private(set) var snapshotIndex: LogIndex
    /// Changes the map refused when applied (the same on every replica), for metrics.
    package private(set) var refusedChanges: UInt64 = 0
    private var proposals: [LogIndex: (term: Term, done: Completion)] = [:]

    /// Take a snapshot of the map (and compact the log behind it) after this many applied entries.
    static let snapshotEntries: LogIndex = 1_000

    /// Opens the meta replica over its durable log: the newest snapshot's map (none: no map yet), then Raft
    /// replays the committed tail. A snapshot that does not decode, or names another cluster or shard count, stops
    /// the node.
    package init(group: Int, raftConfig: RaftConfig, log: GroupLog, clusterID: String, shardCount: Int) throws {
        self.group = group
        self.log = log
        self.clusterID = clusterID
        self.shardCount = shardCount
        let snap = log.snapshotMetadata.index == 0 ? Snapshot(metadata: log.snapshotMetadata) : try log.snapshotWithData()
        if !snap.isEmpty && !snap.data.isEmpty {
            switch ClusterMap.decode(snap.data) {
            case .success(let m):
                guard m.clusterID == clusterID, m.shardCount == shardCount else {
                    throw MetaLogDamage(description: "the cluster map saved at index \(snap.metadata.index) is of cluster '\(m.clusterID)' with \(m.shardCount) shards, not '\(clusterID)' with \(shardCount)")
                }
                map = m
            case .failure(let e):
                throw MetaLogDamage(description: "the cluster map snapshot at index \(snap.metadata.index) (meta group \(group)) does not decode: \(e)")
            }
        }
        appliedIndex = snap.metadata.index
        snapshotIndex = snap.metadata.index
        var cfg = raftConfig
        cfg.applied = snap.metadata.index
        cfg.group = "meta"
        raft = RaftNode(config: cfg, storage: log)
    }

    /// What `change` makes of the map as it stands (nil: not created yet).
    func outcome(of change: ClusterMapChange, on map: ClusterMap?) -> Result<ClusterMap, ClusterMapRefusal> {
        guard let map else {
            return ClusterMap.creating(change).flatMap { m in
                m.clusterID == clusterID && m.shardCount == shardCount ? .success(m)
                    : .failure(ClusterMapRefusal("a first map of cluster '\(m.clusterID)' with \(m.shardCount) shards, not '\(clusterID)' with \(shardCount)"))
            }
        }
        return map.applying(change)
    }

    package var isLeader: Bool { raft.role == .leader }

    /// Proposes `change`. `done` runs once: with the map after it, the refusal the map gave (`.refused`), or
    /// why its outcome is unknown (`.unavailable`, retry) or it was not proposed (`.notLeader`).
    package func propose(_ change: ClusterMapChange, _ done: @escaping Completion) {
        guard raft.role == .leader else { done(.failure(.notLeader(raft.leader))); return }
        // Refused at once when it would be refused on apply against the map as it stands (a change that fits the
        // map as it will be after the entries in flight is still proposed: apply decides).
        if proposals.isEmpty, case .failure(let why) = outcome(of: change, on: map) { done(.failure(.refused(why.reason))); return }
        do {
            let index = try raft.propose(change.encode())
            proposals[index] = (raft.term, done)
        } catch {
            done(.failure(error == .transferInProgress ? .unavailable("the meta group is transferring its leadership; retry") : .notLeader(raft.leader)))
        }
    }

    /// Completes a `Ready` whose writes are durable and whose messages were sent.
    package func finish(_ rd: Ready) {
        if let snap = rd.snapshot, !snap.isEmpty { install(snap) }
        for e in rd.committedEntries { apply(e) }
        raft.advance()
        if let ss = rd.softState, ss.role != .leader { failAll("the meta group's leadership was lost before the change was confirmed; retry") }
    }

    private func apply(_ e: Entry) {
        guard e.index > appliedIndex else { return }
        appliedIndex = e.index
        guard e.kind == .normal, !e.data.isEmpty else { return }
        let change: ClusterMapChange
        switch ClusterMapChange.decode(e.data) {
        case .success(let c): change = c
        case .failure(let why):
            // Every entry was checked before it entered the log (`MetaReplica.check`): this is local damage or a
            // newer release's change. Never skipped: every replica must apply the same log.
            preconditionFailure("meta group (WAL group \(group)): log entry \(e.index) cannot be decoded (\(why)); a newer Sutra wrote it?")
        }
        let result: Result<ClusterMap, MetaError>
        switch outcome(of: change, on: map) {
        case .success(let m):
            map = m
            result = .success(m)
        case .failure(let why):
            refusedChanges += 1
            result = .failure(.refused(why.reason))
        }
        guard let p = proposals.removeValue(forKey: e.index) else { return }
        p.done(p.term == e.term ? result : .failure(.unavailable("the meta group's leadership changed before the change committed; retry")))
    }

    private func install(_ snap: Snapshot) {
        switch ClusterMap.decode(snap.data) {
        case .success(let m): map = m
        case .failure(let why):
            // Checked before Raft took it (`check`); failing here is a bug, never a peer's doing.
            preconditionFailure("meta group: the snapshot at \(snap.metadata.index) does not decode after its check: \(why)")
        }
        appliedIndex = snap.metadata.index
        snapshotIndex = snap.metadata.index
        for (i, p) in proposals where i <= snap.metadata.index {
            p.done(.failure(.unavailable("replaced by a snapshot; retry")))
            proposals[i] = nil
        }
    }

    /// Fails every pending proposal (leadership lost, or the node is stopping): their outcome is unknown.
    package func failAll(_ why: String) {
        let ps = proposals
        proposals = [:]
        for (_, p) in ps.sorted(by: { $0.key < $1.key }) { p.done(.failure(.unavailable(why))) }
    }

    /// A snapshot of the map, when enough was applied since the last one, or when a learner waits for one (the
    /// node saves it with its write).
    package func takeSnapshotIfDue() -> Snapshot? {
        // A group with a learner and no snapshot yet takes one: the joining node starts from it.
        let joinerWaits = snapshotIndex == 0 && appliedIndex > 0 && !raft.confState.learners.isEmpty
        guard let map, appliedIndex >= snapshotIndex + MetaReplica.snapshotEntries || joinerWaits,
              let term = raft.term(at: appliedIndex) else { return nil }
        snapshotIndex = appliedIndex
        return Snapshot(metadata: SnapshotMetadata(index: appliedIndex, term: term, confState: raft.confState), data: map.encode())
    }

    /// The content check of a meta-group message from a peer: every entry decodes as a change, a snapshot as a
    /// map of this cluster with this shard count. Nothing this node could not apply enters its log.
    package func check(_ m: Message) -> PeerRejection? {
        if let why = PeerMessageCheck.checkEntries(m, decodes: { if case .success = ClusterMapChange.decode($0) { true } else { false } }) {
            return why
        }
        if let s = m.snapshot {
            guard case .success(let other) = ClusterMap.decode(s.data), other.clusterID == clusterID,
                  other.shardCount == shardCount else { return .undecodableSnapshot(index: s.metadata.index) }
        }
        return nil
    }
}

/// Why a cluster-map change did not (or may not have) taken effect.
package enum MetaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// This node does not lead the meta group; the leader it knows (`noNode`: none).
    case notLeader(NodeID)
    /// The outcome is unknown or the group cannot take changes now: retry.
    case unavailable(String)
    /// The map refused the change (the same refusal on every replica); nothing changed.
    case refused(String)

    package var description: String {
        switch self {
        case .notLeader(let l): l == noNode ? "the meta group has no leader right now; retry" : "node \(l) leads the meta group"
        case .unavailable(let why): why
        case .refused(let why): why
        }
    }
}

/// The meta group's durable state cannot be used (a snapshot that does not decode or belongs to another
/// cluster): the node refuses to start, naming it.
package struct MetaLogDamage: Error, CustomStringConvertible {
    package let description: String
}
