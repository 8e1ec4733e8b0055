import Raft
import Shard

/// Serving client operations: validation at the edge, routing to shards, reads and writes.
extension NodeCore {
    /// Serves one client request. `done` runs exactly once, on the loop thread.
    package func execute(_ op: ClientOp, session: ClientSession, _ done: @escaping ClientCompletion) {
        if stopping, op.isWrite {
            done(.failure(ClientError(.unavailable, "the node is shutting down; retry at another node")))
            return
        }
        metrics.requests += 1
        if op.isWrite, let full = diskFullRefusal {
            metrics.writesRefusedDiskFull += 1
            done(.failure(full))
            return
        }
        if let problem = validate(op) { done(.failure(problem)); return }
        switch op {
        case .put(let c):
            write(.putConcept(c), shard: shard(of: c.id), session: session, done)
        case .putIf(let c, let condition):
            write(.putConceptIf(c, condition), shard: shard(of: c.id), session: session, done)
        case .patch(let id, let patch, let condition):
            guard peersReadGraphIntegrity else {
                done(.failure(ClientError(.unavailable, "a partial update needs every node on peer wire \(PeerFrame.graphIntegrityVersion) (release 0.2) or later; finish the upgrade, or put the whole concept")))
                return
            }
            write(.patchConcept(id, patch, condition), shard: shard(of: id), session: session, done)
        case .delete(let id):
            deleteConcept(id, session: session, done)
        case .associate(let source, let target, let type, let confidence):
            associate(source, target, type, confidence, session: session, done)
        case .dissociate(let source, let target, let type):
            dissociate(source, target, type, session: session, done)
        case .get(let id, let consistency):
            if !holds(shard(of: id)) {
                readHeldElsewhere(.concept(id), consistency, shard: shard(of: id), session: session, done) { answer in
                    guard case .concept(let c) = answer else { return nil }
                    return c.map { .success(.concept($0)) } ?? .failure(ClientError(.notFound, "concept \(id) not found"))
                }
                return
            }
            // `settling`: a put of this concept may still be an intent of a transaction already acknowledged
            // (a cross-shard batch); a linearizable get waits for it like a neighbours read does.
            read(shard: shard(of: id), consistency, session: session, settling: id) { r in
                guard let c = r.state.concept(id) else { return .failure(ClientError(.notFound, "concept \(id) not found")) }
                return .success(.concept(c))
            } done: { done($0) }
        case .neighbors(let id, let direction, let type, let consistency):
            if !holds(shard(of: id)) {
                readHeldElsewhere(.neighbors(id, direction, type), consistency, shard: shard(of: id), session: session, done) { answer in
                    guard case .neighbors(let exists, let out) = answer else { return nil }
                    if out.isEmpty && !exists { return .failure(ClientError(.notFound, "concept \(id) not found")) }
                    return .success(.neighbors(out))
                }
                return
            }
            read(shard: shard(of: id), consistency, session: session, settling: id) { [unowned self] r in
                let out = self.neighborEdges(r.state, id, direction, type)
                if out.isEmpty && r.state.concept(id) == nil { return .failure(ClientError(.notFound, "concept \(id) not found")) }
                return .success(.neighbors(out))
            } done: { done($0) }
        case .path(let from, let to, let depth, let consistency) where heldShards.count < replicas.count:
            pathAcrossNodes(from, to, depth, consistency, done)
        case .search(let vector, let query, let consistency) where heldShards.count < replicas.count:
            searchAcrossNodes(vector, query, consistency, done)
        case .path(let from, let to, let depth, let consistency):
            allShards(consistency) { [weak self] in
                guard let self else { return }
                if consistency == .stale { done(self.findPath(from, to, depth)); return }
                // Out-edges of a committed multi-shard batch may still be intents on some shard: wait for
                // every intent present now to resolve (they are few and short-lived) before walking.
                self.settleAllIntents { settled in
                    switch settled {
                    case .success: done(self.findPath(from, to, depth))
                    case .failure(let e): done(.failure(e))
                    }
                }
            } failed: { done(.failure($0)) }
        case .search(let vector, let query, let consistency):
            allShards(consistency) { [weak self] in
                guard let self else { return }
                // A linearizable search needs every acknowledged write in the graph: first the intents of
                // transactions present now (a cross-shard batch's puts), then the queued index work. A stale one
                // is served from the graph as it is (it may lag the state).
                if consistency == .stale { done(self.search(vector, query)); return }
                self.settleAllIntents { settled in
                    switch settled {
                    case .success: self.whenVectorsCurrent { done(self.search(vector, query)) }
                    case .failure(let e): done(.failure(e))
                    }
                }
            } failed: { done(.failure($0)) }
        case .batch(let items):
            batch(items, session: session, done)
        case .flush(let compactLog):
            if compactLog, let s = replicas.first(where: { !$0.state.backupFences.isEmpty }) {
                // A snapshot taken now would hold the fence (format 4), which the older release cannot read.
                done(.failure(ClientError(.unavailable, "shard \(s.shard) has a backup fence raised (a backup is being taken); compact the log once it ends")))
                return
            }
            let n = requestSnapshots(compactLog: compactLog)
            afterNextDurableWrite { [weak self] in
                self?.io.saveVectorIndex()
                self?.metrics.flushes += 1
                done(.success(.flushed(shards: n)))
            }
            endOfTurn(now: now)
        case .cluster:
            done(.success(.cluster(clusterStatus())))
        case .transferLeader(let s, let to):
            done(transferLeader(shard: s, to: to))
        case .membership(let request):
            changeMembership(request, done)
        case .fsyncDelay:
            // A test hook of the production driver's disk, which serves it before it reaches the core.
            done(.failure(ClientError(.invalidArgument, "fault injection is off on this node; it is a test-only switch (--enable-fault-injection)")))
        }
    }


    // MARK: validation at the edge

    func validate(_ op: ClientOp) -> ClientError? {
        func concept(_ c: Concept) -> ClientError? {
            if c.content.count > limits.maxContentBytes {
                return ClientError(.tooLarge, "content is \(c.content.count) bytes; the limit is \(limits.maxContentBytes)")
            }
            if let e = c.embedding {
                if e.count > ShardLimits.maxDimension {
                    return ClientError(.tooLarge, "embedding has \(e.count) dimensions; the limit is \(ShardLimits.maxDimension)")
                }
                if e.count != limits.dimension {
                    return ClientError(.invalidArgument, "embedding has \(e.count) dimensions; this cluster's dimension is \(limits.dimension)")
                }
                if e.contains(where: { !$0.isFinite }) { return ClientError(.invalidArgument, "embedding contains a non-finite value") }
            }
            return unitInterval(c.strength, "strength") ?? unitInterval(c.confidence, "confidence")
        }
        /// Strengths and confidences (of concepts and associations) are weights in [0, 1].
        func unitInterval(_ v: Float, _ name: String) -> ClientError? {
            v.isFinite && v >= 0 && v <= 1 ? nil : ClientError(.invalidArgument, "\(name) is \(v); it must lie in [0, 1]")
        }
        switch op {
        case .put(let c), .putIf(let c, _): return concept(c)
        case .patch(let id, let p, let condition):
            if p.isEmpty { return ClientError(.invalidArgument, "a partial update of \(id) changes no field (give content, embedding, strength or confidence)") }
            if case .absent? = condition { return ClientError(.invalidArgument, "a partial update changes an existing concept: if_absent does not apply") }
            // The fields as a whole concept would carry them (the kept ones were checked when written).
            return concept(Concept(id: id, content: p.content ?? [], embedding: (p.embedding?.isEmpty ?? true) ? nil : p.embedding,
                                   strength: p.strength ?? 1, confidence: p.confidence ?? 1))
        case .associate(let source, let target, _, let conf):
            if source == target { return ClientError(.invalidArgument, "an association from a concept to itself is not allowed (\(source))") }
            return unitInterval(conf, "confidence")
        case .dissociate(let source, let target, _):
            if source == target { return ClientError(.invalidArgument, "there is no association from a concept to itself (\(source))") }
        case .path(_, _, let depth, _):
            if depth > PathSearch.maxDepthLimit { return ClientError(.tooLarge, "max_depth is \(depth); the limit is \(PathSearch.maxDepthLimit)") }
            if depth < 1 { return ClientError(.invalidArgument, "max_depth is \(depth); allowed: 1…\(PathSearch.maxDepthLimit)") }
        case .search(let v, let query, _):
            let k = query.k, ef = query.ef
            if query.text != nil { return ClientError(.unavailable, "a text query needs an embedding service (--embedding-service), and this node has none configured; send a vector instead") }
            if let f = query.filter {
                if let m = f.minStrength, let e = unitInterval(m, "filter.min_strength") { return e }
                if let m = f.minConfidence, let e = unitInterval(m, "filter.min_confidence") { return e }
            }
            if k > 1000 { return ClientError(.tooLarge, "k is \(k); the limit is 1000") }
            if k < 1 { return ClientError(.invalidArgument, "k is \(k); allowed: 1…1000") }
            if ef < 0 || ef > 10_000 { return ClientError(.invalidArgument, "ef is \(ef); allowed: 0…10000") }
            if limits.dimension == 0 { return ClientError(.invalidArgument, "this cluster stores no embeddings (dimension 0)") }
            if v.count > ShardLimits.maxDimension { return ClientError(.tooLarge, "query has \(v.count) dimensions; the limit is \(ShardLimits.maxDimension)") }
            if v.count != limits.dimension { return ClientError(.invalidArgument, "query has \(v.count) dimensions; this cluster's dimension is \(limits.dimension)") }
            if v.contains(where: { !$0.isFinite }) { return ClientError(.invalidArgument, "query contains a non-finite value") }
        case .batch(let items):
            if items.count > limits.maxBatch { return ClientError(.tooLarge, "batch of \(items.count) items; the limit is \(limits.maxBatch)") }
            if items.isEmpty { return ClientError(.invalidArgument, "empty batch") }
            for (i, item) in items.enumerated() {
                var problem: ClientError?
                switch item {
                case .put(let c): problem = concept(c)
                case .associate(_, _, _, let conf) where unitInterval(conf, "confidence") != nil: problem = unitInterval(conf, "confidence")
                case .associate(let source, let target, _, _) where source == target:
                    problem = ClientError(.invalidArgument, "an association from a concept to itself is not allowed (\(source))")
                default: break
                }
                if var p = problem { p.message = "item \(i): \(p.message)"; return p }
            }
        default: break
        }
        return nil
    }

    // MARK: writes

    private func request(_ c: ShardCommand, _ s: ClientSession) -> ShardRequest {
        ShardRequest(clientID: s.clientID, sequence: s.sequence, ackedBelow: s.ackedBelow, command: c)
    }

    /// A single-shard write, proposed by the shard's leader: this node, or the leader's node, to which it is
    /// forwarded (a client that routes by itself gets NOT_LEADER with a hint instead).
    func write(_ c: ShardCommand, shard s: Int, session: ClientSession, _ done: @escaping ClientCompletion) {
        let r = replicas[s]
        guard r.isLeader || session.mayForward else { done(.failure(notLeader(s))); return }
        let started = now
        let forwarded = forwardsClientRequest(shard: s)
        proposeAnywhere(shard: s, request(c, session)) { [weak self] result in
            guard let self else { return }
            self.metrics.recordWrite(shard: s, nanos: self.now - started)
            done(result.map { .write(version: $0) }.mapError { self.clientError($0, shard: s, forwarded: forwarded) })
        }
    }

    /// An association: the out-edge with the source, the in-edge with the target. Same shard: one entry,
    /// atomic. Different shards: one two-phase-commit transaction whose record lives on the source's shard
    /// (this node must lead it): both edges appear or neither.
    private func associate(_ source: ConceptID, _ target: ConceptID, _ type: AssociationType, _ confidence: Float,
                           session: ClientSession, _ done: @escaping ClientCompletion) {
        let s1 = shard(of: source), s2 = shard(of: target)
        let out = ShardCommand.putEdge(.outgoing, owner: source, Edge(other: target, type: type, confidence: confidence))
        let inc = ShardCommand.putEdge(.incoming, owner: target, Edge(other: source, type: type, confidence: confidence))
        // `write` and `transaction` route it: here, forwarded, or NOT_LEADER for a client that routes itself.
        if s1 == s2 { write(.batch([out, inc]), shard: s1, session: session, done); return }
        metrics.crossShardAssociations += 1
        transaction([TxnPart(shard: s1, commands: [out]), TxnPart(shard: s2, commands: [inc])], recordShard: s1, session: session, done)
    }

    /// A batch: split by shard (associations into their two edges). All on one shard: one atomic entry,
    /// written wherever that shard's leader is. Across shards: one transaction, all or nothing, whose record
    /// lives on the first item's shard (this node must lead it — the SDK sends batches there).
    private func batch(_ items: [BatchItem], session: ClientSession, _ done: @escaping ClientCompletion) {
        var parts: [Int: [ShardCommand]] = [:]
        var first: Int?
        for item in items {
            switch item {
            case .put(let c):
                first = first ?? shard(of: c.id)
                parts[shard(of: c.id), default: []].append(.putConcept(c))
            case .delete(let id):
                first = first ?? shard(of: id)
                parts[shard(of: id), default: []].append(.deleteConcept(id))
            case .associate(let s, let t, let type, let conf):
                first = first ?? shard(of: s)
                parts[shard(of: s), default: []].append(.putEdge(.outgoing, owner: s, Edge(other: t, type: type, confidence: conf)))
                parts[shard(of: t), default: []].append(.putEdge(.incoming, owner: t, Edge(other: s, type: type, confidence: conf)))
            }
        }
        if parts.count == 1, let (s, cmds) = parts.first {
            let forwarded = forwardsClientRequest(shard: s)
            proposeAnywhere(shard: s, request(.batch(cmds), session)) { [weak self] result in
                guard let self else { return }
                done(result.map { .write(version: $0) }.mapError { self.clientError($0, shard: s, forwarded: forwarded) })
            }
            return
        }
        let record = first!
        let txnParts = parts.keys.sorted().map { TxnPart(shard: $0, commands: parts[$0]!) }
        transaction(txnParts, recordShard: record, session: session, done)
    }

    // MARK: reads

    /// A read of one shard. Linearizable: after a ReadIndex round at the shard's leader — here, or on the
    /// leader's node, this replica then waiting until it has applied that far (a client that routes by itself
    /// gets NOT_LEADER instead). Stale: this replica as it is.
    /// With `settling`, a linearizable read first waits for the transactions holding intents on that concept
    /// to resolve here, so it never shows half of one (an edge whose twin is already committed elsewhere).
    private func read(shard s: Int, _ consistency: ReadConsistency, session: ClientSession, settling: ConceptID? = nil,
                      _ body: @escaping (ShardReplica) -> Result<ClientReply, ClientError>, done: @escaping ClientCompletion) {
        let r = replicas[s]
        switch consistency {
        case .stale:
            done(body(r))
        case .linearizable where config.unsafeLocalReads:
            done(body(r))
        case .linearizable:
            guard r.isLeader || session.mayForward else { done(.failure(notLeader(s))); return }
            let forwarded = forwardsClientRequest(shard: s)
            readBarrier(shard: s) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success:
                    guard let id = settling else { done(body(r)); return }
                    self.waitForIntents(shard: s, r.state.txns.pending(touching: id)) { settled in
                        switch settled {
                        case .success: done(body(r))
                        case .failure(let e): done(.failure(e))
                        }
                    }
                case .failure(let e): done(.failure(self.clientError(e, shard: s, forwarded: forwarded)))
                }
            }
        }
    }

    /// Multi-shard reads (paths, vector search) run on this node's replicas of every shard; linearizable ones
    /// first pass a read barrier on every shard (ReadIndex at each leader, wherever it is).
    private func allShards(_ consistency: ReadConsistency, _ body: @escaping () -> Void, failed: @escaping (ClientError) -> Void) {
        if consistency == .stale { body(); return }
        onEveryShard({ s, done in self.readBarrier(shard: s, done) }) { failure in
            if let f = failure { failed(f) } else { body() }
        }
    }

    /// Runs `step` on each of `shards` (every shard when nil) at once; `done` once all have answered, with the
    /// first failure (as a client error: not-leader becomes unavailable — the caller cannot be redirected for a
    /// step on several shards).
    func onEveryShard(of shards: [Int]? = nil, _ step: (Int, @escaping (Result<Void, ReplicaError>) -> Void) -> Void,
                      _ done: @escaping (ClientError?) -> Void) {
        let shards = shards ?? Array(replicas.indices)
        if shards.isEmpty { done(nil); return }
        var remaining = shards.count
        var failure: ClientError?
        for s in shards {
            step(s) { [weak self] result in
                if case .failure(let e) = result, failure == nil {
                    failure = self?.clientError(e, shard: s) ?? ClientError(.unavailable, "the node is stopping")
                    if failure!.code == .notLeader { failure!.code = .unavailable }
                }
                remaining -= 1
                if remaining == 0 { done(failure) }
            }
        }
    }

    /// Every shard replica's data at an index at or past every write acknowledged before the call (a read
    /// barrier on every shard, then the intents held then resolved here), for an online backup's passes. Taking
    /// the images costs nothing (copy-on-write). Fails when a shard's leader cannot be reached, and on a node that
    /// does not hold every shard (a replication factor below the node count: not supported for backups yet).
    package func contentImages(_ done: @escaping (Result<[ShardContentImage], ClientError>) -> Void) {
        if let refusal = notEveryShardHere("a backup") { done(.failure(refusal)); return }
        allShards(.linearizable) { [weak self] in
            guard let self else { return }
            self.settleAllIntents { [weak self] settled in
                guard let self else { return }
                switch settled {
                case .success: done(.success(self.replicas.map { $0.state.contentImage(shard: $0.shard) }))
                case .failure(let e): done(.failure(e))
                }
            }
        } failed: { done(.failure($0)) }
    }

    private func settleAllIntents(_ done: @escaping (Result<Void, ClientError>) -> Void) {
        settleIntents(of: Array(replicas.indices), done)
    }

    private func findPath(_ from: ConceptID, _ to: ConceptID, _ depth: Int) -> Result<ClientReply, ClientError> {
        var visited = 0
        do {
            let hops = try PathSearch.shortestPath(from: from, to: to, maxDepth: depth) { id in
                visited += 1
                return self.replicas[self.shard(of: id)].state.neighbors(of: id, direction: .outgoing)
            }
            guard let hops else { return .success(.path(found: false, ids: [], visited: visited)) }
            return .success(.path(found: true, ids: [from] + hops.map(\.other), visited: visited))
        } catch {
            return .failure(ClientError(.tooLarge, "path search: \(error)"))
        }
    }

    private func search(_ vector: [Float], _ query: VectorQuery) -> Result<ClientReply, ClientError> {
        // The filter reads each candidate's own replica here: the node hosts every shard's replica, and a
        // linearizable search has waited for every one to apply what was acknowledged before it began.
        let admits: ((ConceptID) -> Bool)? = query.filter.flatMap { f in
            f.isEmpty ? nil : { [replicas, shardCount = config.numShards] id in replicas[id.shard(of: shardCount)].admits(id, f) }
        }
        do {
            let (hits, method) = try vectors.search(vector, query, admits: admits)
            metrics.vectorSearches[method, default: 0] += 1
            return .success(.search(hits))
        } catch {
            return .failure(ClientError(.internal, "\(error)"))
        }
    }

    // MARK: errors

    func notLeader(_ s: Int) -> ClientError {
        let leader = knownLeader(of: s)
        var e = ClientError(leader == noNode ? .unavailable : .notLeader,
                            leader == noNode ? "shard \(s) has no leader right now; retry" : "node \(config.nodeID) does not lead shard \(s); node \(leader) does")
        e.leader = leader
        if leader == config.nodeID {
            e.leaderClientAddress = config.clientAddress
            e.leaderHTTPAddress = config.httpAddress
        } else if let a = io.clientAddresses(of: leader) {
            e.leaderClientAddress = a.client
            e.leaderHTTPAddress = a.http
        }
        return e
    }

    /// The client's error for a shard's refusal. `forwarded`: the request went to the leader's node, which no
    /// longer leads — the client did nothing wrong and is not redirected (it asked to be served here): retry.
    func clientError(_ e: ReplicaError, shard s: Int, forwarded: Bool = false) -> ClientError {
        switch e {
        case .notLeader where forwarded:
            return ClientError(.unavailable, "the leadership of shard \(s) moved while the request was forwarded to its leader; retry")
        case .notLeader: return notLeader(s)
        case .unavailable(let why): return ClientError(.unavailable, why)
        case .rejected(let why):
            return txnError(why)
        }
    }
}
