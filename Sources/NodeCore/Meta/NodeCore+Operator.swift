import ClusterMap
import Raft

/// Operators' membership requests (`sutra node add | drain | remove | replace`, `sutra rebalance`,
/// `sutra move-replica`): each is a few
/// changes of the cluster map, proposed to the meta group from any node. The moves that follow run by themselves
/// (`NodeCore+Membership.swift`); `sutra status` shows them.
extension NodeCore {
    func changeMembership(_ request: MembershipRequest, _ done: @escaping (Result<ClientReply, ClientError>) -> Void) {
        guard let map = meta.map else {
            done(.failure(ClientError(.unavailable, "the cluster map is not created yet (the meta group has no leader, or a node of an older release leads the cluster); retry")))
            return
        }
        let changes: [ClusterMapChange]
        switch request {
        case .addNode(let id, let peer, let client, let http):
            changes = [.addNode(ClusterMap.Node(id: id, peerAddress: peer, clientAddress: client, httpAddress: http))]
        case .drain(let id):
            // A drain with nowhere to go would leave the node draining for good, its replicas in place.
            if let node = map.nodes[id], node.state == .active,
               let stuck = map.shards(on: id).first(where: { s in !map.nodeIDs(.active).contains { $0 != id && !map.shards[s].holds($0) } }) {
                done(.failure(ClientError(.invalidArgument, "draining node \(id) has nowhere to go: every other active node already holds shard \(stuck); add a node first and replace \(id) by it (sutra node replace \(id) --with NEW)")))
                return
            }
            changes = [.setNodeState(node: id, .draining)]
        case .remove(let id):
            changes = [.setNodeState(node: id, .removed)]
        case .replace(let id, let with):
            guard id != with else { done(.failure(ClientError(.invalidArgument, "a node cannot replace itself"))); return }
            guard let old = map.nodes[id], old.state != .removed else {
                done(.failure(ClientError(.notFound, "node \(id) is not a member of the cluster"))); return
            }
            guard let new = map.nodes[with] else {
                done(.failure(ClientError(.notFound, "node \(with) is not a member: add it first (sutra node add \(with) …, then start it with --join)"))); return
            }
            guard new.state == .joining || new.state == .active else {
                done(.failure(ClientError(.invalidArgument, "node \(with) is \(new.state): it takes no replica"))); return
            }
            // The old node drains first: between the two changes the planner must not see a new, empty active
            // node beside a full cluster — it would balance replicas of healthy nodes onto it before the old
            // node's (churn the simulation caught, ending in a stalled move).
            changes = (old.state == .draining ? [] : [.setNodeState(node: id, .draining)])
                + (new.state == .joining ? [.setNodeState(node: with, .active)] : [])
        case .rebalance:
            // A joining node whose process never linked up would only be a target nobody can reach: those the
            // meta leader — or this node — is not connected to stay joining.
            let ready = map.nodeIDs(.joining).filter { id in
                guard let n = map.nodes[id], !n.addressesUnknown else { return false }
                return io.isConnected(id)
            }
            changes = ready.map { .setNodeState(node: $0, .active) }
        case .moveReplica(let shard, let from, let to):
            if let why = moveProblem(map, shard: shard, from: from, to: to) {
                done(.failure(ClientError(why.notFound ? .notFound : .invalidArgument, why.text)))
                return
            }
            changes = [.beginMove(shard: shard, from: from, to: to)]
        }
        apply(changes[...], done)
    }

    /// Why an operator's move of shard `shard`'s replica from `from` to `to` is refused now (nil: propose it).
    /// The map's own rules (`beginMove`) are checked again by the meta group; these are said first, plainly, and
    /// add what only a node can see: the target is linked (a move to a node nobody reaches would never catch up).
    private func moveProblem(_ map: ClusterMap, shard: Int, from: UInt64, to: UInt64) -> (text: String, notFound: Bool)? {
        guard (0..<map.shardCount).contains(shard) else { return ("shard \(shard) does not exist (0…\(map.shardCount - 1))", true) }
        guard from != to else { return ("a replica cannot move to the node it is on", false) }
        let p = map.shards[shard]
        guard map.nodes[from] != nil else { return ("node \(from) is not a member of the cluster", true) }
        guard p.voters.contains(from) else {
            return ("node \(from) holds no voting replica of shard \(shard) (its voters: \(p.voters.map(String.init).joined(separator: ", ")))", false)
        }
        guard let target = map.nodes[to] else { return ("node \(to) is not a member: add it first (sutra node add \(to) …)", true) }
        guard target.state == .active else {
            return ("node \(to) is \(target.state): only an active node takes a replica (a joining one: sutra rebalance activates it)", false)
        }
        guard !p.holds(to) else { return ("node \(to) already holds shard \(shard)", false) }
        if let m = p.move { return ("shard \(shard) already has a move in flight (\(m)); one at a time: wait for it (sutra status)", false) }
        if let d = p.voters.first(where: { $0 != from && map.nodes[$0]?.state != .active }) {
            return ("shard \(shard) has a replica on node \(d), which is \(map.nodes[d].map { "\($0.state)" } ?? "gone"): its repair goes first; ask again once it has moved (sutra status)", false)
        }
        guard to == config.nodeID || io.isConnected(to) else {
            return ("node \(to) is not reachable from node \(config.nodeID): a replica moved there could not catch up", false)
        }
        return nil
    }

    /// Proposes `changes` one after the other; answers with this node's view once it applied the last.
    private func apply(_ changes: ArraySlice<ClusterMapChange>, _ done: @escaping (Result<ClientReply, ClientError>) -> Void) {
        guard let change = changes.first else {
            done(.success(.cluster(clusterStatus())))
            return
        }
        proposeMapChange(change) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(.rejected(let why)):
                done(.failure(ClientError(.invalidArgument, why)))
            case .failure(let e):
                done(.failure(ClientError(.unavailable, "\(e)")))
            case .success(let version):
                self.logger.notice("cluster map: \(change) (version \(version))")
                self.whenMapReaches(version) { self.apply(changes.dropFirst(), done) }
            }
        }
    }

    /// Runs `body` once this node applied the map up to `version` (at most `leaderWaitTicks` later).
    private func whenMapReaches(_ version: UInt64, deadline: UInt64? = nil, _ body: @escaping () -> Void) {
        let end = deadline ?? ticks + leaderWaitTicks
        if (meta.map?.version ?? 0) >= version || ticks >= end { body(); return }
        after(ticks: 1) { [weak self] in self?.whenMapReaches(version, deadline: end, body) }
    }
}
