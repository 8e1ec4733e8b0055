import ClusterMap
import Raft
import Shard

/// Reads of shards this node holds no replica of — a replication factor below the node count, or a node that
/// joined — asked of a node that holds them (`ShardRead`, forward op 5), and the serving side of those reads.
/// A shard counts as held here only while this node votes in its group: a learner may be far behind, and a
/// replica that moved away keeps its last state until the shard comes back, which must never be read.
extension NodeCore {
    /// Whether this node votes in shard `s`'s group (and so may serve its reads): its core counts itself a voter
    /// and the cluster map, once there is one, lists a replica here — a replica removed from the group may
    /// never hear of its removal (the entry went to the others), and its core would think it votes for good.
    package func holds(_ s: Int) -> Bool {
        guard replicas[s].raft.confState.voters.contains(config.nodeID) else { return false }
        guard let map = meta.map, s < map.shardCount else { return true }
        return map.shards[s].holds(config.nodeID)
    }

    /// Shards this node votes in, ascending.
    package var heldShards: [Int] { replicas.indices.filter(holds) }

    /// The node to ask for a read of shard `s` on try `attempt`: the map's voters of the shard but this one,
    /// connected ones first, the leader hint first among them, then by id — each try the next.
    func readTarget(shard s: Int, attempt: Int) -> NodeID? {
        guard let map = meta.map, s < map.shardCount else { return nil }
        let p = map.shards[s]
        let candidates = p.voters.filter { $0 != config.nodeID }.sorted { a, b in
            let ka = (io.isConnected(a) ? 0 : 1, a == p.leaderHint ? 0 : 1, a)
            let kb = (io.isConnected(b) ? 0 : 1, b == p.leaderHint ? 0 : 1, b)
            return ka < kb
        }
        return candidates.isEmpty ? nil : candidates[attempt % candidates.count]
    }

    /// Asks a node holding shard `s` for `read` (tried again at the next voter, while the leadership settles,
    /// until it answers; a malformed read is not retried).
    func readElsewhere(_ read: ShardRead, shard s: Int, _ done: @escaping (Result<ShardReadAnswer, ClientError>) -> Void) {
        var attempt = 0
        untilLeaderSettles({ e in if case .rejected = e { return false }; return true }, { [unowned self] (tried: @escaping (Result<ShardReadAnswer, ReplicaError>) -> Void) in
            guard let target = self.readTarget(shard: s, attempt: attempt) else {
                tried(.failure(.unavailable("this node holds no replica of shard \(s) and knows no node that does (no cluster map yet); retry")))
                return
            }
            attempt += 1
            self.askRead(read, shard: s, at: target, tried)
        }) { [weak self] result in
            guard let self else { return }
            done(result.mapError { self.clientError($0, shard: s, forwarded: true) })
        }
    }

    /// One try of `read` at node `target` (which should hold every shard it names; `s` is the frame's shard).
    func askRead(_ read: ShardRead, shard s: Int, at target: NodeID, _ done: @escaping (Result<ShardReadAnswer, ReplicaError>) -> Void) {
        let v = io.wireVersion(of: target)
        if v > 0, v < PeerFrame.replicationVersion {
            done(.failure(.unavailable("node \(target), which holds shard \(s), runs an older release that serves no read for another node; retry once it is upgraded")))
            return
        }
        if case .digest = read.query, v > 0, v < PeerFrame.shardDigestVersion {
            done(.failure(.unavailable("node \(target), which holds shard \(s), runs an older release that computes no digest for another node; retry once it is upgraded")))
            return
        }
        metrics.remoteReads += 1
        forward(.read(read), shard: s, to: target) { result in
            switch result {
            case .answer(let a): done(.success(a))
            case .failed(let e): done(.failure(e))
            case .ok: done(.failure(.rejected("node \(target) answered a shard read with a number")))
            }
        }
    }

    // MARK: serving

    /// A read asked by `peer` for shards it holds no replica of: served from this node's replicas after the
    /// barrier a local read of the same consistency takes (and the transactions holding intents on what it
    /// reads resolved), refused if this node does not vote in every shard it names.
    func serveRead(_ read: ShardRead, shard s: Int, from peer: NodeID, reply: @escaping (ForwardResult) -> Void) {
        if let why = read.problem(shardCount: replicas.count, dimension: limits.dimension) {
            refused(.malformedForward(why), shard: UInt32(s), from: peer, detail: "a shard read")
            reply(.failed(.rejected("malformed shard read: \(why)")))
            return
        }
        let shards: [Int]
        if case .search(_, _, let named) = read.query { shards = named } else { shards = [s] }
        if let missing = shards.first(where: { !holds($0) }) {
            reply(.failed(.unavailable("node \(config.nodeID) holds no replica of shard \(missing) (it moved); retry")))
            return
        }
        metrics.remoteReadsServed += 1
        barrier(shards, read.consistency) { [weak self] failure in
            guard let self else { return }
            if let failure { reply(.failed(.unavailable(failure.message))); return }
            self.settle(read, shard: s, shards: shards) { [weak self] settled in
                guard let self else { return }
                switch settled {
                case .failure(let e): reply(.failed(.unavailable(e.message)))
                case .success:
                    if case .digest = read.query {
                        // Hashing a whole shard takes a while: off the loop, from a copy-on-write image.
                        let image = self.replicas[s].state.contentImage(shard: s)
                        self.io.runOffLoop({ ShardDigest.compute(image) }) { reply(.answer(.digest($0))) }
                    } else {
                        reply(self.answer(read, shard: s, shards: shards))
                    }
                }
            }
        }
    }

    /// A read barrier on each of `shards` (held here) for a linearizable read; nothing for a stale one.
    func barrier(_ shards: [Int], _ consistency: ReadConsistency, _ done: @escaping (ClientError?) -> Void) {
        if consistency == .stale || config.unsafeLocalReads { done(nil); return }
        onEveryShard(of: shards, { s, answered in self.readBarrier(shard: s, answered) }, done)
    }

    /// For a linearizable read: waits for the transactions holding intents on what `read` reads (every intent of
    /// the shards for a search) to resolve here, and for the vector index to hold every applied change.
    private func settle(_ read: ShardRead, shard s: Int, shards: [Int], _ done: @escaping (Result<Void, ClientError>) -> Void) {
        guard read.consistency == .linearizable, !config.unsafeLocalReads else { done(.success(())); return }
        let txns = replicas[s].state.txns
        switch read.query {
        case .concept(let id), .neighbors(let id, _, _):
            waitForIntents(shard: s, txns.pending(touching: id), done)
        case .outEdges(let ids):
            var touching = Set<TxnID>()
            for id in ids { touching.formUnion(txns.pending(touching: id)) }
            waitForIntents(shard: s, touching, done)
        case .digest:
            settleIntents(of: [s], done)
        case .search:
            settleIntents(of: shards) { [weak self] settled in
                guard case .success = settled else { done(settled); return }
                self?.whenVectorsCurrent { done(.success(())) }
            }
        }
    }

    /// Every intent present now on each of `shards` resolved here.
    func settleIntents(of shards: [Int], _ done: @escaping (Result<Void, ClientError>) -> Void) {
        var remaining = shards.count
        var failure: ClientError?
        if shards.isEmpty { done(.success(())); return }
        for s in shards {
            waitForIntents(shard: s, Set(replicas[s].state.txns.intents.keys)) { result in
                if case .failure(let e) = result, failure == nil { failure = e }
                remaining -= 1
                if remaining == 0 { done(failure.map { .failure($0) } ?? .success(())) }
            }
        }
    }

    private func answer(_ read: ShardRead, shard s: Int, shards: [Int]) -> ForwardResult {
        let state = replicas[s].state
        switch read.query {
        case .concept(let id):
            return .answer(.concept(state.concept(id)))
        case .neighbors(let id, let direction, let type):
            return .answer(.neighbors(exists: state.concept(id) != nil, neighborEdges(state, id, direction, type)))
        case .outEdges(let ids):
            return .answer(.outEdges(ids.map { state.neighbors(of: $0, direction: .outgoing) }))
        case .search(let vector, let query, _):
            switch searchHere(vector, query, shards: shards) {
            case .success(let hits): return .answer(.search(hits))
            case .failure(let e): return .failed(.unavailable(e.message))
            }
        case .digest:
            preconditionFailure("a digest is answered off the loop (serveRead)")
        }
    }

    func neighborEdges(_ state: ShardState, _ id: ConceptID, _ direction: NeighborDirection, _ type: AssociationType?) -> [NeighborEdge] {
        var out: [NeighborEdge] = []
        if direction != .incoming {
            out += state.neighbors(of: id, direction: .outgoing, type: type).map { NeighborEdge(edge: $0, direction: .outgoing) }
        }
        if direction != .outgoing {
            out += state.neighbors(of: id, direction: .incoming, type: type).map { NeighborEdge(edge: $0, direction: .incoming) }
        }
        return out
    }

    /// The k nearest concepts of `shards` (held here) in this node's vector index, the filter read from each
    /// candidate's replica. The index may also hold a shard that moved away (its replica keeps its last state):
    /// only the named shards' concepts are answers.
    func searchHere(_ vector: [Float], _ query: VectorQuery, shards: [Int]) -> Result<[SearchHit], ClientError> {
        let wanted = Set(shards)
        let shardCount = config.numShards
        let within: ((ConceptID) -> Bool)? = wanted.count == replicas.count ? nil : { wanted.contains($0.shard(of: shardCount)) }
        let admits: ((ConceptID) -> Bool)? = query.filter.flatMap { f in
            f.isEmpty ? nil : { [replicas] id in replicas[id.shard(of: shardCount)].admits(id, f) }
        }
        do {
            let (hits, method) = try vectors.search(vector, query, admits: admits, within: within)
            metrics.vectorSearches[method, default: 0] += 1
            return .success(hits.map { SearchHit(id: $0.id, distance: $0.distance) })
        } catch {
            return .failure(ClientError(.internal, "\(error)"))
        }
    }
}

/// Client reads that need shards held elsewhere: one shard's (get, neighbours), and those that walk or search
/// every shard (paths, vector search) — this node's shards read here, the others asked of nodes that hold them.
extension NodeCore {
    /// A client's read of shard `s`, which this node holds no replica of: asked of a node that does, `reply`
    /// turning the answer into the client's (nil: the answer did not fit the question). A client that routes by
    /// itself (the SDK) is sent to the shard's leader instead.
    func readHeldElsewhere(_ query: ShardRead.Query, _ consistency: ReadConsistency, shard s: Int, session: ClientSession,
                           _ done: @escaping ClientCompletion,
                           reply: @escaping (ShardReadAnswer) -> Result<ClientReply, ClientError>?) {
        guard session.mayForward else { done(.failure(notLeader(s))); return }
        readElsewhere(ShardRead(query, consistency), shard: s) { result in
            switch result {
            case .failure(let e): done(.failure(e))
            case .success(let answer):
                done(reply(answer) ?? .failure(ClientError(.internal, "a node holding shard \(s) answered another question")))
            }
        }
    }

    /// Why `what` cannot be served here: this node does not hold every shard (nil when it does).
    func notEveryShardHere(_ what: String) -> ClientError? {
        let held = heldShards
        guard held.count < replicas.count else { return nil }
        return ClientError(.unavailable, "\(what) reads every shard from one node, and node \(config.nodeID) holds \(held.count) of \(replicas.count) (shards \(held.map(String.init).joined(separator: ", "))): with a replication factor below the node count this is not supported yet")
    }

    /// A shortest-path search over shards held here and elsewhere, level by level (`PathWalk`): each level's
    /// out-edges read here for the shards held here (after one barrier on them, as a local path search), and
    /// asked of their holders for the others (a barrier there per level). The answer is the one a node holding
    /// every shard gives; a linearizable one sees every write acknowledged before it began.
    func pathAcrossNodes(_ from: ConceptID, _ to: ConceptID, _ depth: Int, _ consistency: ReadConsistency, _ done: @escaping ClientCompletion) {
        let held = heldShards
        let walk: PathWalk
        do { walk = try PathWalk(from: from, to: to, maxDepth: depth) } catch {
            done(.failure(ClientError(.tooLarge, "path search: \(error)")))
            return
        }
        barrier(held, consistency) { [weak self] failure in
            guard let self else { return }
            if let failure { done(.failure(failure)); return }
            let settleFirst: (@escaping (Result<Void, ClientError>) -> Void) -> Void = consistency == .stale || self.config.unsafeLocalReads
                ? { $0(.success(())) } : { self.settleIntents(of: held, $0) }
            settleFirst { [weak self] settled in
                guard let self else { return }
                if case .failure(let e) = settled { done(.failure(e)); return }
                self.walkLevel(walk, Set(held), consistency, done)
            }
        }
    }

    private func walkLevel(_ walk: PathWalk, _ held: Set<Int>, _ consistency: ReadConsistency, _ done: @escaping ClientCompletion) {
        var walk = walk
        let level = Array(walk.frontierWithinBudget)
        var edges: [ConceptID: [Edge]] = [:]
        var remote: [Int: [ConceptID]] = [:]
        for id in level {
            let s = shard(of: id)
            if held.contains(s) { edges[id] = replicas[s].state.neighbors(of: id, direction: .outgoing) }
            else { remote[s, default: []].append(id) }
        }
        let expand = { [weak self] in
            guard let self else { return }
            do {
                switch try walk.expand(edges) {
                case .found(let hops): done(.success(.path(found: true, ids: [walk.from] + hops.map(\.other), visited: walk.expanded)))
                case .absent: done(.success(.path(found: false, ids: [], visited: walk.expanded)))
                case .next: self.walkLevel(walk, held, consistency, done)
                }
            } catch {
                done(.failure(ClientError(.tooLarge, "path search: \(error)")))
            }
        }
        // In shard order: the simulation replays a seed exactly (a dictionary's order changes between processes).
        let asks = remote.sorted { $0.key < $1.key }.flatMap { s, ids in stride(from: 0, to: ids.count, by: ShardRead.maxIDs).map { (s, Array(ids[$0..<min($0 + ShardRead.maxIDs, ids.count)])) } }
        if asks.isEmpty { expand(); return }
        var remaining = asks.count
        var failure: ClientError?
        for (s, ids) in asks {
            readElsewhere(ShardRead(.outEdges(ids), consistency), shard: s) { result in
                switch result {
                case .success(.outEdges(let lists)) where lists.count == ids.count:
                    for (id, l) in zip(ids, lists) { edges[id] = l }
                case .success:
                    failure = failure ?? ClientError(.internal, "a node holding shard \(s) answered another question")
                case .failure(let e):
                    failure = failure ?? e
                }
                remaining -= 1
                if remaining == 0 {
                    if let failure { done(.failure(failure)) } else { expand() }
                }
            }
        }
    }

    /// A vector search over shards held here and elsewhere: this node's shards searched here (after the barrier
    /// a local search takes), the others grouped by the node asked for them, each group one search there; the
    /// k nearest of all answers (ties by id). A group whose node fails is asked again shard by shard, each at
    /// its next holder.
    func searchAcrossNodes(_ vector: [Float], _ query: VectorQuery, _ consistency: ReadConsistency, _ done: @escaping ClientCompletion) {
        let held = heldShards
        let heldSet = Set(held)
        var groups: [NodeID: [Int]] = [:]
        var orphans: [Int] = []
        for s in 0..<replicas.count where !heldSet.contains(s) {
            if let t = readTarget(shard: s, attempt: 0) { groups[t, default: []].append(s) } else { orphans.append(s) }
        }
        var hits: [SearchHit] = []
        var failure: ClientError?
        var remaining = 1 + groups.count + orphans.count
        func answered(_ result: Result<[SearchHit], ClientError>) {
            switch result {
            case .success(let h): hits += h
            case .failure(let e): failure = failure ?? e
            }
            remaining -= 1
            guard remaining == 0 else { return }
            if let failure { done(.failure(failure)); return }
            let best = hits.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }.prefix(query.k)
            done(.success(.search(best.map { (id: $0.id, distance: $0.distance) })))
        }
        func oneShard(_ s: Int, _ finished: @escaping (Result<[SearchHit], ClientError>) -> Void) {
            readElsewhere(ShardRead(.search(vector: vector, query, shards: [s]), consistency), shard: s) { result in
                switch result {
                case .success(.search(let h)): finished(.success(h))
                case .success: finished(.failure(ClientError(.internal, "a node holding shard \(s) answered another question")))
                case .failure(let e): finished(.failure(e))
                }
            }
        }
        // This node's part.
        if held.isEmpty {
            answered(.success([]))
        } else {
            barrier(held, consistency) { [weak self] failed in
                guard let self else { return }
                if let failed { answered(.failure(failed)); return }
                if consistency == .stale || self.config.unsafeLocalReads { answered(self.searchHere(vector, query, shards: held)); return }
                self.settleIntents(of: held) { [weak self] settled in
                    guard let self else { return }
                    if case .failure(let e) = settled { answered(.failure(e)); return }
                    self.whenVectorsCurrent { answered(self.searchHere(vector, query, shards: held)) }
                }
            }
        }
        for s in orphans { oneShard(s, answered) }
        for (target, shards) in groups.sorted(by: { $0.key < $1.key }) {
            askRead(ShardRead(.search(vector: vector, query, shards: shards), consistency), shard: shards[0], at: target) { result in
                if case .success(.search(let h)) = result { answered(.success(h)); return }
                // That node failed (or moved a shard): each of its shards asked again, at the next holder.
                var left = shards.count
                var partial: [SearchHit] = []
                var partFailure: ClientError?
                for s in shards {
                    oneShard(s) { r in
                        switch r {
                        case .success(let h): partial += h
                        case .failure(let e): partFailure = partFailure ?? e
                        }
                        left -= 1
                        if left == 0 { answered(partFailure.map { .failure($0) } ?? .success(partial)) }
                    }
                }
            }
        }
    }
}
