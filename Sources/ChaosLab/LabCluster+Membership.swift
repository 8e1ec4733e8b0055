import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Membership changes on a lab cluster, through the nodes' admin routes as an operator makes them: a spare is
/// added to the cluster map and started empty with `--join`; a node is replaced by it (its replicas move through
/// Raft); a node that holds nothing any more is removed. `nodeIDs` follows: a spare becomes a member when it
/// starts, a node stops being one once removed.
extension LabCluster {
    /// The cluster map as node `id` sees it (`map` of `GET /v1/cluster`); nil if it does not answer.
    public func clusterMap(via id: Int, timeout: Double = 2) -> [String: Any]? {
        let r = http(id, "GET", "/v1/cluster", timeout: timeout)
        guard r.status == 200, let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] else { return nil }
        return o["map"] as? [String: Any]
    }

    /// A running member other than `excluding` that answers HTTP, lowest id first.
    public func answeringMember(excluding: Set<Int> = []) -> Int? {
        nodeIDs.first { id in
            !excluding.contains(id) && (try? node(id).state) == .running && http(id, "GET", "/health", timeout: 1).status == 200
        }
    }

    /// Where the other nodes reach node `id`'s peer port (through the proxy when the links run through it).
    public func peerAddress(of id: Int) throws -> String {
        let s = try node(id).spec
        return proxy?.front(of: id)?.description ?? "\(s.host):\(s.peerPort)"
    }

    /// Gives stopped node `id` the members of the moment as its `--peers` (itself included), and `--join` once
    /// the membership is no longer the first one: a node that starts without a cluster map — a spare, or a node
    /// whose disk was replaced — reaches the cluster through its flags, and the first members may be gone.
    public func pointAtTheMembers(_ id: Int) throws {
        let p = try node(id)
        var args = p.spec.arguments
        let members = Set(nodeIDs).union([id]).sorted()
        if let i = args.firstIndex(of: "--peers"), i + 1 < args.count {
            args[i + 1] = try members.map { m in "\(m)=\(try peerAddress(of: m))" }.joined(separator: ",")
        }
        if members != Array(1...options.nodes) && !args.contains("--join") { args.append("--join") }
        try p.setArguments(args)
    }

    /// Takes the lowest unused spare (nil if none is left) and marks it used.
    public func takeSpare() -> Int? {
        membershipLock.withLock { unusedSpares.isEmpty ? nil : unusedSpares.removeFirst() }
    }

    /// Adds spare `id` to the cluster map through a member (not `excluding`), starts it empty with `--join`
    /// and waits until it answers `/ready`; it is a member from then on.
    public func addNode(_ id: Int, excluding: Set<Int> = [], timeout: Double = 30) throws {
        let p = try node(id)
        guard id > options.nodes else { throw LabError.invalid("node \(id) is not a spare") }
        let s = p.spec
        let body = "{\"id\":\(id),\"peer_address\":\"\(try peerAddress(of: id))\","
            + "\"client_address\":\"\(s.host):\(s.clientPort)\",\"http_address\":\"\(s.host):\(s.httpPort)\"}"
        try admin("POST", "/v1/admin/nodes", body: body, excluding: excluding, timeout: timeout, accept: { r in
            r.status == 200 || r.text.contains("node \(id) is already a member")
        })
        membershipLock.withLock { if !currentMembers.contains(id) { currentMembers.append(id); currentMembers.sort() } }
        if p.state == .stopped {
            try pointAtTheMembers(id)
            try p.start()
        }
        try waitReady([id], timeout: timeout)
    }

    /// Asks the cluster to replace node `old` by member `new` (`POST /v1/admin/nodes/{old}/replace?with=`):
    /// `new` becomes active, `old` draining, and every replica of `old` moves to `new`.
    public func replaceNode(_ old: Int, with new: Int, excluding: Set<Int> = [], timeout: Double = 30) throws {
        try admin("POST", "/v1/admin/nodes/\(old)/replace?with=\(new)", excluding: excluding.union([old]), timeout: timeout)
    }

    /// Activates joining node `id` and lets the planner balance replicas onto it (`POST /v1/admin/rebalance`,
    /// asked again until the map shows `id` active: a member not linked to it yet leaves it joining).
    public func rebalance(activating id: Int, timeout: Double = 30) throws {
        let deadline = Monotonic.seconds() + timeout
        while true {
            try admin("POST", "/v1/admin/rebalance", excluding: [], timeout: max(1, deadline - Monotonic.seconds()))
            if let via = answeringMember(), let m = clusterMap(via: via),
               let n = (m["nodes"] as? [[String: Any]])?.first(where: { ($0["id"] as? Int) == id }), n["state"] as? String == "active" { return }
            guard Monotonic.seconds() < deadline else { throw LabError.timeout("node \(id) not active after \(timeout) s of rebalance requests") }
            usleep(300_000)
        }
    }

    /// Drains node `id` (`POST /v1/admin/nodes/{id}/drain`): its replicas move to the active nodes that lack them.
    public func drainNode(_ id: Int, excluding: Set<Int> = [], timeout: Double = 30) throws {
        try admin("POST", "/v1/admin/nodes/\(id)/drain", excluding: excluding.union([id]), timeout: timeout)
    }

    /// Moves shard `shard`'s replica on `from` to `to` by hand (`POST /v1/admin/shards/{shard}/move?from=&to=`,
    /// what `sutra move-replica` sends), asked again while the shard has another move in flight (a balance move
    /// the planner began a moment before) or no member takes it.
    public func moveReplica(shard: Int, from: Int, to: Int, timeout: Double = 30) throws {
        let deadline = Monotonic.seconds() + timeout
        while true {
            do {
                try admin("POST", "/v1/admin/shards/\(shard)/move?from=\(from)&to=\(to)", excluding: [], timeout: max(1, deadline - Monotonic.seconds()))
                return
            } catch LabError.invalid(let why) where why.contains("move in flight") && Monotonic.seconds() < deadline {
                usleep(300_000)
            }
        }
    }

    /// Waits until, in a member's map, shard `shard` has no move in flight; true when `to` holds it and `from`
    /// no longer does (the move finished), false when it ended otherwise (rolled back).
    public func waitUntilMoved(shard: Int, from: Int, to: Int, timeout: Double) throws -> Bool {
        let deadline = Monotonic.seconds() + timeout
        var last = "no member answered"
        while Monotonic.seconds() < deadline {
            if let via = answeringMember(), let m = clusterMap(via: via), let shards = m["shards"] as? [[String: Any]], shard < shards.count {
                let p = shards[shard]
                let voters = p["voters"] as? [Int] ?? []
                if p["move"] == nil { return voters.contains(to) && !voters.contains(from) }
                last = "shard \(shard): voters \(voters), a move in flight (node \(via)'s map)"
            }
            usleep(200_000)
        }
        throw LabError.timeout("the move of shard \(shard) from node \(from) to node \(to) did not end within \(timeout) s: \(last)")
    }

    /// Waits until, in a member's map, `node` is active and holds a replica and no move is in flight.
    public func waitUntilSettled(holding node: Int, timeout: Double) throws {
        let deadline = Monotonic.seconds() + timeout
        var last = "no member answered"
        while Monotonic.seconds() < deadline {
            if let via = answeringMember(), let m = clusterMap(via: via) {
                let shards = m["shards"] as? [[String: Any]] ?? []
                let holding = shards.filter { ($0["voters"] as? [Int] ?? []).contains(node) }.count
                let moving = shards.filter { $0["move"] != nil }.count
                if holding > 0 && moving == 0 { return }
                last = "node \(node) holds \(holding) replicas, \(moving) moves in flight (node \(via)'s map)"
            }
            usleep(200_000)
        }
        throw LabError.timeout("node \(node) not balanced onto after \(timeout) s: \(last)")
    }

    /// Waits until, in the map of a member other than `old`, no shard has a replica on `old` and no move is in
    /// flight.
    public func waitUntilVacated(_ old: Int, timeout: Double) throws {
        let deadline = Monotonic.seconds() + timeout
        var last = "no member answered"
        while Monotonic.seconds() < deadline {
            if let via = answeringMember(excluding: [old]), let m = clusterMap(via: via) {
                let shards = m["shards"] as? [[String: Any]] ?? []
                let holding = shards.filter { s in
                    ((s["voters"] as? [Int] ?? []) + (s["learners"] as? [Int] ?? [])).contains(old) || s["move"] != nil
                }
                if !shards.isEmpty && holding.isEmpty { return }
                last = "shards \(holding.compactMap { $0["shard"] as? Int }) still hold node \(old) or move (node \(via)'s map)"
            }
            usleep(200_000)
        }
        throw LabError.timeout("node \(old) not vacated after \(timeout) s: \(last)")
    }

    /// Removes node `old` from the cluster map (it must hold no replica); it is no member from then on (its
    /// process is left as it is: stop it when it is alive).
    public func removeNode(_ old: Int, timeout: Double = 30) throws {
        try admin("POST", "/v1/admin/nodes/\(old)/remove", excluding: [old], timeout: timeout)
        membershipLock.withLock { currentMembers.removeAll { $0 == old } }
    }

    /// One admin request through a running member, retried (another member, after a pause) until it is
    /// accepted or `timeout` passes: a request may meet a meta group electing its leader, or a node killed.
    private func admin(_ method: String, _ path: String, body: String = "", excluding: Set<Int>, timeout: Double,
                       accept: (HTTPReply) -> Bool = { $0.status == 200 }) throws {
        let deadline = Monotonic.seconds() + timeout
        var last = "no member answered"
        var tried = 0
        while Monotonic.seconds() < deadline {
            let members = nodeIDs.filter { !excluding.contains($0) && (try? node($0).state) == .running }
            if !members.isEmpty {
                let via = members[tried % members.count]
                tried += 1
                let r = http(via, method, path, body: body, timeout: 10)
                if accept(r) { return }
                last = "node \(via): HTTP \(r.status) \(r.text.prefix(300))"
                // A refusal that will not change by waiting (4xx other than a redirect) ends it.
                if (400..<500).contains(r.status) && r.status != 421 && r.status != 429 && r.status != 408 {
                    throw LabError.invalid("\(method) \(path) refused: \(last)")
                }
            }
            usleep(300_000)
        }
        throw LabError.timeout("\(method) \(path) not accepted within \(timeout) s: \(last)")
    }
}
