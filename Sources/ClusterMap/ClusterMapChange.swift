/// One change of the cluster map: the payload of one meta-group log entry.
///
/// A shard's replica set changes only through a move, one per shard at a time, in the order Raft needs for
/// one-at-a-time membership changes: `beginMove` (the target becomes a learner) → `promoteMove` (it votes) →
/// `finishMove` (the source leaves). The shard's own Raft group makes the matching configuration changes; the
/// map records what was decided and how far each move got, so a move interrupted by a crash resumes from it (or
/// `abortMove` rolls one back: its target leaves, its source stays).
public enum ClusterMapChange: Sendable, Equatable {
    /// The cluster's first map: the meta group's first change, proposed by its first leader from its own flags
    /// (every replica, a node that joins later too, then starts from the same map). Only a group without a map
    /// applies it (`ClusterMap.creating`); `applying` refuses it.
    case create(ClusterMap)
    /// A new node announces itself; it joins as `joining`. Its id must never have been used.
    case addNode(ClusterMap.Node)
    /// A node's life-cycle step: joining → active, active ⇄ draining, draining or joining → removed (holding
    /// nothing). A removed node stays removed.
    case setNodeState(node: UInt64, ClusterMap.NodeState)
    /// Starts moving shard `shard`'s replica from `from` (nil: re-create a missing replica) to `to`.
    case beginMove(shard: Int, from: UInt64?, to: UInt64)
    /// The move's target has caught up and votes.
    case promoteMove(shard: Int)
    /// The move's source has left the shard (after leadership left it): the move is done.
    case finishMove(shard: Int)
    /// Rolls back a move whose target has not been promoted: the learner is removed.
    case abortMove(shard: Int)
    /// Drops a voting replica without a replacement (a shard above its replication factor, or an operator's
    /// explicit removal); refused if fewer than a majority of the replication factor would remain.
    case removeReplica(shard: Int, node: UInt64)
    /// Who leads the shard now, as a routing hint.
    case setLeaderHint(shard: Int, node: UInt64)
    /// Where a member node listens (`host:port` each), as it announces itself: a cluster's first map knows
    /// its nodes' ids only, and a node that moved to another address says so. Refused for a removed node.
    case setAddresses(node: UInt64, peer: String, client: String, http: String)
}

/// Why a change (or a new map) was refused; the map is unchanged. `reason` is for the operator, e.g.
/// `removing node 3 from shard 2 would leave 1 of its 3 replicas: fewer than a majority`.
public struct ClusterMapRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension ClusterMap {
    /// The map after `change`, or why the change is refused. Deterministic: replicas applying the same log
    /// agree on every outcome, refusals included.
    public func applying(_ change: ClusterMapChange) -> Result<ClusterMap, ClusterMapRefusal> {
        var m = self
        if let why = m.apply(change) { return .failure(ClusterMapRefusal(why)) }
        m.version += 1
        assert(m.checkInvariants() == nil, "a change broke the map: \(m.checkInvariants() ?? "")")
        return .success(m)
    }

    private func shardIndexProblem(_ s: Int) -> String? {
        (0..<shardCount).contains(s) ? nil : "shard \(s) does not exist (the cluster has \(shardCount) shards: 0–\(shardCount - 1))"
    }

    /// The map a group without one holds after `change`, or why not: only `.create` of a valid map applies.
    public static func creating(_ change: ClusterMapChange) -> Result<ClusterMap, ClusterMapRefusal> {
        guard case .create(let m) = change else { return .failure(ClusterMapRefusal("the cluster map is not created yet")) }
        if let why = m.checkInvariants() { return .failure(ClusterMapRefusal("the first map is invalid: \(why)")) }
        return .success(m)
    }

    private mutating func apply(_ change: ClusterMapChange) -> String? {
        switch change {
        case .create:
            return "the cluster map already exists (version \(version))"

        case .addNode(let n):
            guard n.id != 0 else { return "node id 0 is reserved" }
            guard nodes[n.id] == nil else {
                return nodes[n.id]!.state == .removed ? "node id \(n.id) belonged to a removed node; ids are never reused" : "node \(n.id) is already a member"
            }
            guard nodes.count < ClusterMap.maxNodes else { return "the cluster already has \(ClusterMap.maxNodes) nodes" }
            guard !n.addressesUnknown else { return "node \(n.id) needs its peer, client and HTTP addresses" }
            if let why = ClusterMap.addressProblem(n) { return why }
            var joining = n
            joining.state = .joining
            nodes[n.id] = joining
            return nil

        case .setNodeState(let id, let state):
            guard let n = nodes[id] else { return "node \(id) is not a member" }
            let holds = shards(on: id)
            switch (n.state, state) {
            case (.joining, .active), (.active, .draining), (.draining, .active):
                break
            case (.draining, .removed), (.joining, .removed):
                guard holds.isEmpty else { return "node \(id) still holds shard(s) \(holds): drain it first" }
            case (.active, .removed):
                return "node \(id) is active: drain it first (sutra node drain \(id))"
            case (.removed, _):
                return "node \(id) was removed; a removed node never comes back (add it under a new id)"
            case (let from, let to) where from == to:
                return "node \(id) is already \(to)"
            case (let from, let to):
                return "node \(id) cannot go from \(from) to \(to)"
            }
            assert(state != .removed || holds.isEmpty, "a removed node holds nothing")
            if state == .removed || state == .draining {
                // Leadership hints never point at a node on its way out.
                for s in 0..<shardCount where shards[s].leaderHint == id { shards[s].leaderHint = 0 }
            }
            nodes[id]!.state = state
            return nil

        case .beginMove(let s, let from, let to):
            if let why = shardIndexProblem(s) { return why }
            var p = shards[s]
            if let m = p.move { return "shard \(s) already has a move in flight (\(m)); one at a time" }
            guard let target = nodes[to] else { return "node \(to) is not a member" }
            guard target.state == .active || target.state == .joining else {
                return "node \(to) is \(target.state): it takes no new replica"
            }
            guard !p.holds(to) else { return "node \(to) already holds shard \(s)" }
            if let from {
                guard p.voters.contains(from) else { return "node \(from) holds no voting replica of shard \(s)" }
            } else {
                guard p.voters.count < replication else {
                    return "shard \(s) has its \(replication) replicas; name the replica the new one replaces"
                }
            }
            p.learners = [to]
            p.move = Move(from: from, to: to, phase: .catchingUp)
            shards[s] = p
            return nil

        case .promoteMove(let s):
            if let why = shardIndexProblem(s) { return why }
            var p = shards[s]
            guard var m = p.move, m.phase == .catchingUp else { return "shard \(s) has no move waiting for promotion" }
            p.learners = []
            p.voters = (p.voters + [m.to]).sorted()
            if m.from == nil {
                p.move = nil
            } else {
                m.phase = .promoted
                p.move = m
            }
            shards[s] = p
            return nil

        case .finishMove(let s):
            if let why = shardIndexProblem(s) { return why }
            var p = shards[s]
            guard let m = p.move, m.phase == .promoted, let from = m.from else { return "shard \(s) has no promoted move to finish" }
            p.voters.removeAll { $0 == from }
            if p.leaderHint == from { p.leaderHint = 0 }
            p.move = nil
            shards[s] = p
            return nil

        case .abortMove(let s):
            if let why = shardIndexProblem(s) { return why }
            var p = shards[s]
            guard let m = p.move else { return "shard \(s) has no move in flight" }
            // Promoted, the target is a voter of the map and the source still one: the target leaves again.
            if m.phase == .promoted {
                p.voters.removeAll { $0 == m.to }
                if p.leaderHint == m.to { p.leaderHint = 0 }
            }
            p.learners = []
            p.move = nil
            shards[s] = p
            return nil

        case .removeReplica(let s, let node):
            if let why = shardIndexProblem(s) { return why }
            var p = shards[s]
            guard p.voters.contains(node) else { return "node \(node) holds no voting replica of shard \(s)" }
            if let m = p.move { return "shard \(s) has a move in flight (\(m)): finish or abort it first" }
            let majority = replication / 2 + 1
            guard p.voters.count - 1 >= majority else {
                return "removing node \(node) from shard \(s) would leave \(p.voters.count - 1) of its \(replication) replicas: fewer than a majority"
            }
            p.voters.removeAll { $0 == node }
            if p.leaderHint == node { p.leaderHint = 0 }
            shards[s] = p
            return nil

        case .setAddresses(let id, let peer, let client, let http):
            guard let n = nodes[id] else { return "node \(id) is not a member" }
            guard n.state != .removed else { return "node \(id) was removed" }
            let announced = Node(id: id, peerAddress: peer, clientAddress: client, httpAddress: http, state: n.state)
            guard !announced.addressesUnknown else { return "node \(id) announces no address" }
            if let why = ClusterMap.addressProblem(announced) { return why }
            nodes[id] = announced
            return nil

        case .setLeaderHint(let s, let node):
            if let why = shardIndexProblem(s) { return why }
            guard shards[s].voters.contains(node) else { return "node \(node) holds no voting replica of shard \(s)" }
            shards[s].leaderHint = node
            return nil
        }
    }

    /// Why `n`'s addresses are unusable, or nil. A node whose three addresses are all empty has not announced
    /// them yet (a new cluster's map knows ids only) and passes.
    static func addressProblem(_ n: Node) -> String? {
        if n.addressesUnknown { return nil }
        for (name, a) in [("peer", n.peerAddress), ("client", n.clientAddress), ("HTTP", n.httpAddress)] {
            let b = a.utf8
            guard !b.isEmpty, b.count <= maxAddressBytes else { return "node \(n.id)'s \(name) address is empty or longer than \(maxAddressBytes) bytes" }
            guard b.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return "node \(n.id)'s \(name) address has a space or a control character" }
            guard let colon = a.lastIndex(of: ":"), let port = UInt16(a[a.index(after: colon)...]), port > 0 else {
                return "node \(n.id)'s \(name) address \(a) is not host:port"
            }
        }
        return nil
    }
}
