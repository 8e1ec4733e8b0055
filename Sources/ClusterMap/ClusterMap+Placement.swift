/// Where replicas and leaders go: the map a new cluster starts from, and the moves that bring a map back to an
/// even placement (off draining nodes, onto new ones, back up to the replication factor). Pure and
/// deterministic: the same map gives the same plan on every node.
extension ClusterMap {
    /// A new cluster's map: every node active, the shards' S·R replica slots dealt round-robin over the nodes
    /// by id (each node holds ⌊S·R/N⌋ or ⌈S·R/N⌉ replicas), and leader hints from `preferredLeaders()`. With
    /// R = N every node holds every shard and shard `s` prefers node `ids[s % N]`, as before the map existed.
    public static func create(clusterID: String, nodes given: [Node], shardCount: Int, replication: Int) -> Result<ClusterMap, ClusterMapRefusal> {
        func refuse(_ why: String) -> Result<ClusterMap, ClusterMapRefusal> { .failure(ClusterMapRefusal(why)) }
        guard !clusterID.isEmpty, clusterID.utf8.count <= maxClusterIDBytes else { return refuse("the cluster id must have 1–\(maxClusterIDBytes) bytes") }
        guard (1...maxShards).contains(shardCount) else { return refuse("shard count \(shardCount); allowed: 1…\(maxShards)") }
        guard (1...maxReplication).contains(replication) else { return refuse("replication factor \(replication); allowed: 1…\(maxReplication)") }
        guard given.count <= maxNodes else { return refuse("\(given.count) nodes; at most \(maxNodes)") }
        guard replication <= given.count else {
            return refuse("replication factor \(replication) needs at least \(replication) nodes; \(given.count) given")
        }
        var nodes: [UInt64: Node] = [:]
        for n in given {
            guard n.id != 0 else { return refuse("node id 0 is reserved") }
            guard nodes[n.id] == nil else { return refuse("node \(n.id) is listed twice") }
            if let why = addressProblem(n) { return refuse(why) }
            var active = n
            active.state = .active
            nodes[n.id] = active
        }
        let ids = nodes.keys.sorted()
        // The S·R replica slots dealt round-robin over the nodes: shard s takes the R nodes after shard s−1's.
        let shards = (0..<shardCount).map { s in
            ShardPlacement(voters: (0..<replication).map { ids[(s * replication + $0) % ids.count] })
        }
        var map = ClusterMap(clusterID: clusterID, shardCount: shardCount, replication: replication, version: 0, nodes: nodes, shards: shards)
        for (s, l) in map.preferredLeaders().enumerated() { map.shards[s].leaderHint = l }
        assert(map.checkInvariants() == nil)
        return .success(map)
    }

    /// The map a new cluster starts from, computed alike by every node from what they must agree on (the
    /// cluster id, the node ids, the shard count, the replication factor — compared on every peer link), its
    /// addresses not yet announced (`ClusterMapChange.setAddresses` fills them in). Replication = the node
    /// count: every node holds every shard.
    public static func bootstrap(clusterID: String, nodeIDs: [UInt64], shardCount: Int, replication: Int) -> Result<ClusterMap, ClusterMapRefusal> {
        create(clusterID: clusterID, nodes: nodeIDs.map { Node(id: $0, peerAddress: "", clientAddress: "", httpAddress: "") },
               shardCount: shardCount, replication: replication)
    }

    /// One replica move a rebalancer may start now.
    public struct PlannedMove: Sendable, Equatable, CustomStringConvertible {
        public var shard: Int
        public var from: UInt64?
        public var to: UInt64
        public var change: ClusterMapChange { .beginMove(shard: shard, from: from, to: to) }
        public var description: String { "shard \(shard): \(from.map { "node \($0)" } ?? "new replica") → node \(to)" }
    }

    /// The moves to start now, at most `limit` and one per shard (shards with a move in flight are skipped), in
    /// this order of need:
    /// 1. replicas on draining nodes, to the least loaded active node that lacks the shard;
    /// 2. shards with fewer voters than the replication factor, a new replica likewise;
    /// 3. balance: from the most to the least loaded active node while they differ by more than one replica.
    /// Targets are active nodes only (a joining node is activated first). Ties go to the lower id and shard.
    /// Each planned move counts toward the loads the next one sees, so one plan never overloads a node.
    /// `balance: false` plans steps 1 and 2 only. `usable` says which nodes may take part now (the meta leader's
    /// view: connected ones): a move never targets a node that cannot receive it, and balance moves only
    /// between usable nodes.
    public func planMoves(limit: Int = .max, balance: Bool = true, usable: (UInt64) -> Bool = { _ in true }) -> [PlannedMove] {
        var load = voterLoad()
        // Each move counts as finished. A promoted move's target is a voter of the map already (counted once by
        // `voterLoad`): only its source's replica is still to go. Counting the target twice made the planner swap
        // replicas between two nodes for ever while one move was promoted (the simulation's seed 207).
        for s in shards {
            guard let m = s.move else { continue }
            if m.phase == .catchingUp { load[m.to, default: 0] += 1 }
            if let f = m.from { load[f, default: 0] -= 1 }
        }
        let active = nodeIDs(.active).filter(usable)
        var busy = Set(moving)
        var plan: [PlannedMove] = []

        func target(for s: Int, excluding: UInt64? = nil) -> UInt64? {
            active.filter { !shards[s].holds($0) && $0 != excluding }.min { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }
        }
        func add(_ s: Int, from: UInt64?, to: UInt64) {
            plan.append(PlannedMove(shard: s, from: from, to: to))
            busy.insert(s)
            load[to, default: 0] += 1
            if let from { load[from, default: 0] -= 1 }
        }

        let draining = Set(nodeIDs(.draining))
        for s in 0..<shardCount where plan.count < limit && !busy.contains(s) {
            guard let from = shards[s].voters.first(where: draining.contains), let to = target(for: s) else { continue }
            add(s, from: from, to: to)
        }
        for s in 0..<shardCount where plan.count < limit && !busy.contains(s) && shards[s].voters.count < replication {
            guard let to = target(for: s) else { continue }
            add(s, from: nil, to: to)
        }
        // Balance is an optimisation: only once nothing drains and every shard has its replicas, and only for a
        // shard whose every voter can take part — a balance move of a shard with a dead voter could never promote
        // its target, and would hold the shard's repair back for good (the simulation found it: a replacement's
        // new node activated a moment before the dead node was marked draining).
        let healthy = draining.allSatisfy { shards(on: $0).isEmpty } && shards.allSatisfy { $0.voters.count >= replication }
        while balance && healthy && plan.count < limit {
            guard let most = active.max(by: { (load[$0] ?? 0, $1) < (load[$1] ?? 0, $0) }),
                  let least = active.min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }),
                  (load[most] ?? 0) - (load[least] ?? 0) > 1 else { break }
            // A shard the most loaded node votes in and the least loaded lacks (one always exists: the most
            // loaded holds more shards than the least).
            guard let s = (0..<shardCount).first(where: {
                !busy.contains($0) && shards[$0].voters.contains(most) && !shards[$0].holds(least) && shards[$0].voters.allSatisfy(usable)
            }) else { break }
            add(s, from: most, to: least)
        }
        return plan
    }

    /// Shards whose move's target is no longer an active node (drained, replaced or removed before the move
    /// finished — a machine that died while it joined): their moves are rolled back (`abortMove`), so the
    /// planner can send those replicas elsewhere. (A promoted target may never have become a voter: dead, it
    /// would hold its shard's move — and the shard — forever.) Also a move still catching up that is no repair
    /// (its source is an active node: a balance move, or one an operator asked for with `sutra move-replica`) on a
    /// shard that has another voter being drained or replaced: the repair goes first. Otherwise the move could
    /// hold the shard while its target waits to be promoted until every voter is reachable — never, when the
    /// draining one is a dead machine being replaced (the simulation's seeds 55 and 199). A promoted move is never
    /// rolled back for that: its target may be a Raft voter already, and the source on its way out (seed 175).
    public var movesToAbort: [Int] {
        (0..<shardCount).filter { s in
            guard let m = shards[s].move else { return false }
            if nodes[m.to]?.state != .active { return true }
            guard m.phase == .catchingUp, let from = m.from, nodes[from]?.state == .active else { return false }
            return shards[s].voters.contains { $0 != from && nodes[$0]?.state != .active }
        }
    }

    /// The leader hint each shard should have when every node is up: its replicas' leaderships spread evenly,
    /// each shard's on one of its voters (the fewest-led voter, lowest id on ties, in shard order).
    public func preferredLeaders() -> [UInt64] {
        var led: [UInt64: Int] = [:]
        return shards.map { p in
            let eligible = p.voters.filter { nodes[$0]?.state == .active }
            let pool = eligible.isEmpty ? p.voters : eligible
            let l = pool.min { (led[$0] ?? 0, $0) < (led[$1] ?? 0, $1) }!
            led[l, default: 0] += 1
            return l
        }
    }
}
