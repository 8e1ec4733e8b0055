import ClientProto
import Foundation
import TLS
import UV

/// The Sutra SDK: a connection to a cluster, shared by any number of tasks.
///
/// One private libuv event loop runs on the client's own thread with one TCP connection per node; requests are
/// multiplexed on it by id and answered out of order. The client learns the cluster (nodes, shard leaders, shard
/// count) from any endpoint on first use and routes each keyed request to the leader of its concept's shard
/// (`id.shard(of: numShards)`); stale reads and multi-shard operations go to any node.
///
/// Guarantees:
/// - Every call finishes — with a result, a typed `SutraError`, or `CancellationError` — within about
///   `Options.requestTimeout` of being made, whatever the nodes do.
/// - Transient failures (not the leader, unavailable, broken connections, no answer) are retried with
///   exponential backoff and full jitter; `NOT_LEADER` hints are followed and the shard map is refreshed.
/// - Each write carries this client's `clientID` and a sequence number assigned once and reused on every
///   retry, so a write retried after a failover applies at most once. Any number of writes may be in flight:
///   each request also carries the lowest sequence still outstanding, below which shards may forget outcomes.
/// - Final answers (`invalidArgument`, `notFound`, `tooLarge`, `unsupportedVersion`, `unauthenticated`,
///   `permissionDenied`) are thrown at once.
///
/// Call `close()` when done; it fails calls still running with `SutraError.closed` and stops the loop thread.
public final class SutraClient: Sendable {
    /// Tuning of a `SutraClient`. The defaults suit a cluster on a LAN.
    public struct Options: Sendable, Hashable {
        /// The overall deadline of one call, retries included (default 5 s). Past it the call throws
        /// `SutraError.timeout`.
        public var requestTimeout: Duration
        /// How long one attempt may wait for its answer before it is retried, possibly elsewhere (default 2 s).
        /// A retried write keeps its sequence, so a slow first attempt cannot apply twice.
        public var attemptTimeout: Duration
        /// Backoff before the first retry is uniform in [0, base]; it doubles per retry (default 10 ms).
        public var retryBaseDelay: Duration
        /// The backoff ceiling (default 500 ms).
        public var retryMaxDelay: Duration
        /// The largest frame sent or accepted (default 100 MiB, the node's default). A larger request throws
        /// `tooLarge` without being sent; a larger response is skipped (its call retries, then times out).
        public var maxFrameSize: Int
        /// A connection that owes answers and has heard nothing from its node for this long sends the node a
        /// `Hello` probe (default 250 ms). Nodes answer it on their event loop at once, however slow their
        /// disk or busy their shards.
        public var probeAfter: Duration
        /// A probe unanswered for this long marks the node unresponsive — a frozen process (SIGSTOP, a VM
        /// pause) or a host gone without a TCP reset: the connection is closed, its requests are retried
        /// elsewhere at once instead of after `attemptTimeout`, and the node is avoided for a second unless it
        /// answers meanwhile (default 500 ms).
        public var probeTimeout: Duration
        /// The bearer token every connection presents in its `Hello` (nil: none — for nodes without a tokens
        /// file). A node with tokens refuses requests without a valid one with `SutraError.unauthenticated`, and
        /// those the token's role does not allow with `SutraError.permissionDenied`. Never logged or printed.
        public var token: String?
        /// TLS to the nodes' client ports (nil: plaintext). The client verifies every node's certificate
        /// against `caFile` and checks it names the endpoint's address (an IP SAN for IP endpoints).
        public var tls: TLSOptions?
        /// Gateway mode (default off): every request goes to the first endpoint that answers, which forwards what
        /// it does not lead to the shard's leader over its peer link — one address to open in a firewall, at the
        /// cost of a hop. Off: the client routes each request to its shard's leader by itself.
        public var viaGateway = false

        public init(requestTimeout: Duration = .seconds(5), attemptTimeout: Duration = .seconds(2),
                    retryBaseDelay: Duration = .milliseconds(10), retryMaxDelay: Duration = .milliseconds(500),
                    maxFrameSize: Int = defaultMaxFrameSize, probeAfter: Duration = .milliseconds(250),
                    probeTimeout: Duration = .milliseconds(500), token: String? = nil, tls: TLSOptions? = nil) {
            self.token = token
            self.tls = tls
            self.requestTimeout = requestTimeout
            self.attemptTimeout = attemptTimeout
            self.retryBaseDelay = retryBaseDelay
            self.retryMaxDelay = retryMaxDelay
            self.maxFrameSize = maxFrameSize
            self.probeAfter = probeAfter
            self.probeTimeout = probeTimeout
        }
    }

    /// This client's identity in every write (random, non-zero, fixed for the client's life).
    public let clientID: UInt64
    /// The endpoints the client was given.
    public let endpoints: [String]

    private let engine: Engine
    private let wakeup: LoopWakeup
    private let lifecycle: Locked<Lifecycle>

    private struct Lifecycle {
        var closeRequested = false
        var finished = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var lastCallID: UInt64 = 0
    }

    /// Starts the client's loop thread. Nothing is sent until the first call.
    ///
    /// - Parameter endpoints: one or more nodes' client addresses, `host:port` (IPv4 or `[IPv6]` literals, or host
    ///   names, resolved at every connection attempt). Any one reachable node is enough: the client learns the
    ///   others from it.
    /// - Throws: `SutraError.invalidEndpoint`, `SutraError.invalidArgument` for bad options,
    ///   `SutraError.startFailed` if the loop cannot start.
    public init(endpoints: [String], options: Options = Options()) throws {
        guard !endpoints.isEmpty else { throw SutraError.invalidArgument("at least one endpoint is needed") }
        var seeds: [Endpoint] = []
        for text in endpoints {
            guard let e = Endpoint(text) else { throw SutraError.invalidEndpoint(text) }
            if !seeds.contains(e) { seeds.append(e) }
        }
        func ms(_ d: Duration) -> Int64 {
            let (s, atto) = d.components
            return s * 1000 + atto / 1_000_000_000_000_000
        }
        let timeout = ms(options.requestTimeout), attempt = ms(options.attemptTimeout)
        let base = ms(options.retryBaseDelay), cap = ms(options.retryMaxDelay)
        let probeAfter = ms(options.probeAfter), probeTimeout = ms(options.probeTimeout)
        if let t = options.token, t.isEmpty || t.utf8.count > 512 || t.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            throw SutraError.invalidArgument("the token must be 1…512 printable ASCII characters without spaces")
        }
        guard timeout > 0, attempt > 0, base > 0, cap >= base, options.maxFrameSize > 0, probeAfter > 0, probeTimeout > 0 else {
            throw SutraError.invalidArgument(
                "timeouts and delays must be at least 1 ms (retryMaxDelay ≥ retryBaseDelay), maxFrameSize positive")
        }
        var config = EngineConfig(requestTimeoutMs: UInt64(timeout), attemptTimeoutMs: UInt64(attempt),
                                  backoffBaseMs: UInt64(base), backoffCapMs: UInt64(cap),
                                  maxFrameSize: options.maxFrameSize, probeAfterMs: UInt64(probeAfter),
                                  probeTimeoutMs: UInt64(probeTimeout), token: options.token ?? "")
        config.viaGateway = options.viaGateway
        if let tls = options.tls {
            do {
                config.tlsContext = try TLSContext(TLSContext.Configuration(
                    role: .client, certificateChainPath: tls.certificateFile, privateKeyPath: tls.keyFile,
                    trustRootsPath: tls.caFile, verification: .serverOnly, requireTLS13: false))
            } catch {
                throw SutraError.invalidArgument("TLS options: \(error)")
            }
        }
        let engineConfig = config
        let clientID = UInt64.random(in: 1...UInt64.max)
        let lifecycle = Locked(Lifecycle())
        let started = Locked<Result<(LoopWakeup, Engine), SutraError>?>(nil)
        let ready = DispatchSemaphore(value: 0)

        let seedList = seeds
        let thread = Thread {
            do {
                let loop = try EventLoop()
                let wakeup = try LoopWakeup(loop: loop)
                let engine = Engine(loop: loop, config: engineConfig, clientID: clientID, seeds: seedList)
                let turnEnd = try LoopCheck(loop: loop) { engine.flushWrites() }
                engine.turnEnd = turnEnd
                started.withLock { $0 = .success((wakeup, engine)) }
                ready.signal()
                withExtendedLifetime(engine) {
                    loop.run()  // until the shutdown posted by close() or deinit stops it
                    loop.close()
                }
            } catch {
                started.withLock { $0 = .failure(.startFailed("\(error)")) }
                ready.signal()
            }
            let waiters = lifecycle.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.finished = true
                defer { s.closeWaiters = [] }
                return s.closeWaiters
            }
            for w in waiters { w.resume() }
        }
        thread.name = "sutra-client"
        thread.start()
        ready.wait()
        switch started.withLock({ $0 })! {
        case .success(let (wakeup, engine)):
            self.wakeup = wakeup
            self.engine = engine
        case .failure(let error):
            throw error
        }
        self.clientID = clientID
        self.endpoints = endpoints
        self.lifecycle = lifecycle
    }

    deinit {
        let (wakeup, engine) = (self.wakeup, self.engine)
        lifecycle.withLock { s in
            guard !s.closeRequested else { return }
            s.closeRequested = true
            _ = wakeup.post { SutraClient.stopLoop(engine, wakeup) }
        }
    }

    /// Fails every call still running with `SutraError.closed`, closes the connections and stops the loop
    /// thread; returns once the thread is done. Idempotent; calls made afterwards throw `SutraError.closed`.
    public func close() async {
        let (wakeup, engine, lifecycle) = (self.wakeup, self.engine, self.lifecycle)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let finished = lifecycle.withLock { s -> Bool in
                if s.finished { return true }
                s.closeWaiters.append(done)
                if !s.closeRequested {
                    s.closeRequested = true
                    _ = wakeup.post { SutraClient.stopLoop(engine, wakeup) }
                }
                return false
            }
            if finished { done.resume() }
        }
    }

    private static func stopLoop(_ engine: Engine, _ wakeup: LoopWakeup) {
        engine.shutdown()
        wakeup.close()
        engine.loop.stop()
    }

    // MARK: operations

    /// Writes a concept (creating or replacing it) on its shard's leader. Returns the write's version.
    @discardableResult
    public func put(_ concept: NewConcept) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.putConcept.concept = concept.proto
        return try writeVersion(await perform(
            CallSpec(operation: "put", request: r, route: .leader(key: concept.id), writeKeys: [concept.id])))
    }

    /// Compare-and-set: writes the concept only if its current state meets `condition`; otherwise throws
    /// `SutraError.preconditionFailed` and nothing changes. Returns the new version.
    @discardableResult
    public func put(_ concept: NewConcept, if condition: PutCondition) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.putConcept.concept = concept.proto
        switch condition {
        case .absent: r.putConcept.expectAbsent = true
        case .content(let c): r.putConcept.expectContent = Data(c)
        case .version(let v): r.putConcept.expectVersion = v
        }
        return try writeVersion(await perform(
            CallSpec(operation: "put", request: r, route: .leader(key: concept.id), writeKeys: [concept.id])))
    }

    /// Reads a concept; nil if it does not exist. `.linearizable` (the default) asks the shard's leader,
    /// `.stale` any node.
    public func get(_ id: ConceptID, consistency: Consistency = .linearizable) async throws -> Concept? {
        var r = Sutra_V1_Request()
        r.getConcept.id = Data(id.bytes)
        r.consistency = consistency.proto
        let response: Sutra_V1_Response
        do {
            response = try await perform(CallSpec(operation: "get", request: r, route: readRoute(id, consistency),
                                                  writeKeys: nil))
        } catch SutraError.notFound {
            return nil
        }
        guard case .concept(let c)? = response.result else {
            throw SutraError.invalidResponse("get was answered without a concept")
        }
        return try Concept(proto: c)
    }

    /// Deletes a concept and every association that touches it, on every shard, atomically. Returns the write's
    /// version; throws `notFound` if it does not exist, `tooLarge` when it has more associations than one delete
    /// removes (remove some with `dissociate` first).
    @discardableResult
    public func delete(_ id: ConceptID) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.deleteConcept.id = Data(id.bytes)
        return try writeVersion(await perform(
            CallSpec(operation: "delete", request: r, route: .leader(key: id), writeKeys: [id])))
    }

    /// Adds (or replaces) the association `source → target` of `type`. Sent to the leader of the source's
    /// shard, which also updates the target's. Returns the write's version.
    @discardableResult
    public func associate(source: ConceptID, target: ConceptID, type: AssociationType,
                          confidence: Float = 1) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.associate.association = Association(source: source, target: target, type: type, confidence: confidence).proto
        return try writeVersion(await perform(
            CallSpec(operation: "associate", request: r, route: .leader(key: source), writeKeys: [source, target])))
    }

    /// Changes only the given fields of concept `id` (nil: kept; `removeEmbedding`: it keeps none), atomically at
    /// its shard, if `condition` (`.content` or `.version`) holds — else `preconditionFailed`; `notFound` when it
    /// does not exist. Returns the write's version. Needs every node on release 0.2.
    @discardableResult
    public func patch(_ id: ConceptID, content: [UInt8]? = nil, embedding: [Float]? = nil, removeEmbedding: Bool = false,
                      strength: Float? = nil, confidence: Float? = nil, if condition: PutCondition? = nil) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.patchConcept.id = Data(id.bytes)
        if let content { r.patchConcept.content = Data(content) }
        if let embedding { r.patchConcept.embedding = embedding }
        r.patchConcept.removeEmbedding = removeEmbedding
        if let strength { r.patchConcept.strength = strength }
        if let confidence { r.patchConcept.confidence = confidence }
        switch condition {
        case nil: break
        case .content(let b)?: r.patchConcept.expectContent = Data(b)
        case .version(let v)?: r.patchConcept.expectVersion = v
        case .absent?: throw SutraError.invalidArgument("a patch changes an existing concept: .absent does not apply")
        }
        return try writeVersion(await perform(
            CallSpec(operation: "patch", request: r, route: .leader(key: id), writeKeys: [id])))
    }

    /// Removes the association `source → target` of `type`: both of its edge records, at once (one transaction
    /// when the two concepts live on different shards). Removing one that is not there succeeds. Returns the
    /// write's version. Against a 0.1 node: `invalidArgument` (it does not know the request).
    @discardableResult
    public func dissociate(source: ConceptID, target: ConceptID, type: AssociationType) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.deleteAssociation.source = Data(source.bytes)
        r.deleteAssociation.target = Data(target.bytes)
        r.deleteAssociation.type = type.proto
        return try writeVersion(await perform(
            CallSpec(operation: "dissociate", request: r, route: .leader(key: source), writeKeys: [source, target])))
    }

    /// Lists a concept's associations in `direction`, of one `type` or (nil) all.
    public func neighbors(of id: ConceptID, direction: Direction = .outgoing, type: AssociationType? = nil,
                          consistency: Consistency = .linearizable) async throws -> [Neighbor] {
        var r = Sutra_V1_Request()
        r.neighbors.id = Data(id.bytes)
        r.neighbors.direction = direction.proto
        if let type { r.neighbors.type = type.proto }
        r.consistency = consistency.proto
        let response = try await perform(
            CallSpec(operation: "neighbors", request: r, route: readRoute(id, consistency), writeKeys: nil))
        guard case .neighbors(let list)? = response.result else {
            throw SutraError.invalidResponse("neighbors was answered without a neighbour list")
        }
        return try list.edges.map { e throws(SutraError) in try Neighbor(proto: e) }
    }

    /// A shortest path (fewest hops, at most `maxDepth`, 1…20) from `from` to `to` along outgoing associations.
    public func findPath(from: ConceptID, to: ConceptID, maxDepth: Int = 6,
                         consistency: Consistency = .linearizable) async throws -> PathResult {
        var r = Sutra_V1_Request()
        r.consistency = consistency.proto
        r.findPath.from = Data(from.bytes)
        r.findPath.to = Data(to.bytes)
        r.findPath.maxDepth = try uint32(maxDepth, "maxDepth")
        let response = try await perform(CallSpec(operation: "findPath", request: r, route: .anyNode, writeKeys: nil))
        guard case .path(let p)? = response.result else {
            throw SutraError.invalidResponse("findPath was answered without a path result")
        }
        let ids = try p.ids.map { d throws(SutraError) in try conceptID(d, "path element") }
        return PathResult(path: p.found ? ids : nil, visited: Int(p.visited))
    }

    /// The `k` (1…1000) concepts whose embeddings are nearest to `vector` (the cluster's dimension), nearest
    /// first. `ef` is the search breadth (0: the node's default for k; larger is slower and more exact).
    /// `exact`: compare with every vector (recall 1). `filter`: only concepts passing it are answers (applied
    /// inside the search: k answers whenever k concepts pass). `exact` and `filter` need release 0.2 on the node
    /// that answers; a 0.1 node refuses them (`invalidArgument`) rather than ignoring them.
    public func search(vector: [Float], k: Int = 10, ef: Int = 0, exact: Bool = false, filter: SearchFilter? = nil,
                       consistency: Consistency = .linearizable) async throws -> [SearchHit] {
        try await search(vector: vector, text: "", k: k, ef: ef, exact: exact, filter: filter, consistency: consistency)
    }

    /// Like `search(vector:)`, by a text the node embeds through its embedding service (`--embedding-service`;
    /// without one: `unavailable`). Needs release 0.2 on the node that answers.
    public func search(text: String, k: Int = 10, ef: Int = 0, exact: Bool = false, filter: SearchFilter? = nil,
                       consistency: Consistency = .linearizable) async throws -> [SearchHit] {
        guard !text.isEmpty else { throw SutraError.invalidArgument("the search text is empty") }
        return try await search(vector: [], text: text, k: k, ef: ef, exact: exact, filter: filter, consistency: consistency)
    }

    private func search(vector: [Float], text: String, k: Int, ef: Int, exact: Bool, filter: SearchFilter?,
                        consistency: Consistency) async throws -> [SearchHit] {
        var r = Sutra_V1_Request()
        r.consistency = consistency.proto
        var s = Sutra_V1_Search()
        s.vector = vector
        s.text = text
        s.k = try uint32(k, "k")
        s.ef = try uint32(ef, "ef")
        s.exact = exact
        if let filter, !filter.isEmpty {
            if let v = filter.minStrength { s.filter.minStrength = v }
            if let v = filter.minConfidence { s.filter.minConfidence = v }
            if let t = filter.associationType { s.filter.associationType = t.proto }
        }
        if exact || s.hasFilter || !text.isEmpty { r.searchV2 = s } else { r.search = s }
        let response = try await perform(CallSpec(operation: "search", request: r, route: .anyNode, writeKeys: nil))
        guard case .search(let s)? = response.result else {
            throw SutraError.invalidResponse("search was answered without a search result")
        }
        return try s.hits.map { h throws(SutraError) in SearchHit(id: try conceptID(h.id, "search hit"), distance: h.distance) }
    }

    /// Applies up to 1,000 writes, all or nothing — across shards too (one two-phase-commit transaction).
    /// Sent to the leader of the first item's shard, which coordinates it. Returns the batch's version.
    @discardableResult
    public func batch(_ items: [BatchItem]) async throws -> UInt64 {
        var r = Sutra_V1_Request()
        r.batch.items = items.map(\.proto)
        var keys: [ConceptID] = []
        for item in items {
            keys.append(item.routingKey)
            if case .associate(let a) = item { keys.append(a.target) }
        }
        let route: Route = items.first.map { .leader(key: $0.routingKey) } ?? .anyNode
        return try writeVersion(await perform(CallSpec(operation: "batch", request: r, route: route, writeKeys: keys)))
    }

    /// Asks a node to flush (make durable and snapshot-ready) what it holds.
    public func flush() async throws {
        var r = Sutra_V1_Request()
        r.flush = Sutra_V1_Flush()
        _ = try await perform(CallSpec(operation: "flush", request: r, route: .anyNode, writeKeys: nil))
    }

    /// The cluster as one node sees it. Also refreshes the client's shard map.
    public func clusterInfo() async throws -> ClusterInfo {
        var r = Sutra_V1_Request()
        r.clusterInfo = Sutra_V1_ClusterInfo()
        let response = try await perform(CallSpec(operation: "clusterInfo", request: r, route: .anyNode, writeKeys: nil))
        guard case .cluster(let s)? = response.result else {
            throw SutraError.invalidResponse("clusterInfo was answered without a cluster state")
        }
        return ClusterInfo(proto: s)
    }

    // MARK: plumbing

    private func readRoute(_ id: ConceptID, _ consistency: Consistency) -> Route {
        consistency == .linearizable ? .leader(key: id) : .anyReplica(key: id)
    }

    private func uint32(_ v: Int, _ name: String) throws(SutraError) -> UInt32 {
        guard let u = UInt32(exactly: v) else { throw .invalidArgument("\(name) = \(v) is out of range") }
        return u
    }

    private func writeVersion(_ response: Sutra_V1_Response) throws(SutraError) -> UInt64 {
        guard case .write(let w)? = response.result else {
            throw .invalidResponse("a write was answered without a write result")
        }
        return w.version
    }

    /// Runs one call on the loop: posts it, and cancels it there if the calling task is cancelled.
    private func perform(_ spec: CallSpec) async throws -> Sutra_V1_Response {
        let (wakeup, engine, lifecycle) = (self.wakeup, self.engine, self.lifecycle)
        let id = lifecycle.withLock { s -> UInt64 in
            s.lastCallID += 1
            return s.lastCallID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Sutra_V1_Response, any Error>) in
                // Posting under the lifecycle lock orders every call before the shutdown, and a cancellation
                // either sees the call posted (and follows it) or is seen here.
                let refusal = lifecycle.withLock { s -> (any Error)? in
                    if s.closeRequested { return SutraError.closed }
                    if Task.isCancelled { return CancellationError() }
                    let posted = wakeup.post { engine.start(spec, id: id) { cont.resume(with: $0) } }
                    return posted ? nil : SutraError.closed
                }
                if let refusal { cont.resume(throwing: refusal) }
            }
        } onCancel: {
            lifecycle.withLock { s in
                if !s.closeRequested { _ = wakeup.post { engine.cancel(id) } }
            }
        }
    }
}
