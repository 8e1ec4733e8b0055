import NodeCore
import Foundation
import Codec
import HTTP
import Raft
import Shard
import SecureStream
import UV

/// The HTTP/JSON API (for curl and scripts) on its own port: parses with http_parser on the loop thread,
/// serves every route through `NodeServer.execute`, and answers pipelined requests in order.
///
/// Guarantees: a malformed or over-limit request gets a clear JSON error (4xx) and only its own connection is
/// affected; a request that cannot be framed (bad HTTP) closes that connection after the error response.
final class HTTPFrontEnd {
    unowned let node: NodeServer
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPConnectionState] = [:]

    init(node: NodeServer) { self.node = node }

    func start(host: String, port: Int) throws {
        listener = try TCPListener(loop: node.loop, host: host, port: port) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let conn): self.accept(conn)
            case .failure(let e): self.node.clientPorts.acceptFailed(e, port: "HTTP")
            }
        }
    }

    func stop() {
        listener?.close()
        listener = nil
        for c in connections.values {
            c.flow.close()
            if !c.conn.isClosing { c.conn.close() }
        }
        connections = [:]
    }

    /// The answer to a connection over the cap: plaintext gets a 503 and is closed; a TLS port just closes (a
    /// handshake to say no would cost more than the connection).
    private func refuse(_ tcp: TCPConnection) {
        guard !node.clientTLS.isOn else { tcp.close(); return }
        var r = HTTPFrontEnd.errorResponse(status: 503, code: "UNAVAILABLE", "too many client connections (the node's cap is \(node.clientPorts.connectionCap)); retry later")
        r.keepAlive = false
        r.headers.add("Retry-After", "1")
        tcp.write(r.serialize()) { [tcp] _ in if !tcp.isClosing { tcp.close() } }
    }

    private func accept(_ tcp: TCPConnection) {
        guard node.clientPorts.admits() else { refuse(tcp); return }
        guard let conn = node.clientTLS.stream(for: tcp) else { return }
        let state = HTTPConnectionState(conn: conn, maxBody: node.config.maxFrameBytes, ports: node.clientPorts)
        connections[ObjectIdentifier(conn)] = state
        state.onClose = { [weak self, weak state] in
            guard let self, let state else { return }
            self.drop(state)
        }
        state.flow.onTimeout = { [weak self, weak state] why in
            guard let self, let state else { return }
            if why == .request {
                var r = HTTPFrontEnd.errorResponse(status: 408, code: "REQUEST_TIMEOUT", "the request did not arrive within \(self.node.clientPorts.limits.requestTimeoutMs) ms")
                r.keepAlive = false
                if !state.conn.isClosing {
                    state.flow.close()
                    state.conn.pauseReading()
                    state.conn.write(r.serialize()) { [weak self, weak state] _ in
                        guard let self, let state else { return }
                        self.drop(state)
                    }
                    return
                }
            }
            self.drop(state)
        }
        try? conn.setNoDelay(true)
        do {
            try conn.startReading { [weak self, weak state] event in
                guard let self, let state else { return }
                switch event {
                case .data(let bytes):
                    let results = state.parser.feed(bytes)
                    state.flow.received(partialBytes: state.parser.bufferedByteCount, midRequest: state.parser.isMidRequest)
                    for result in results {
                        switch result {
                        case .success(let req):
                            let slot = state.reserve(closeAfter: !req.keepAlive)
                            // Started when the connection's limits allow; the client may be gone by the time the
                            // answer is ready: hold the state weakly.
                            state.flow.submit { [weak self, weak state] in
                                guard let self, let state else { return }
                                self.handle(req, from: state.peer, flow: state.flow) { [weak state] resp in
                                    guard let state else { return }
                                    state.complete(slot, resp)
                                    state.flow.finished()
                                }
                            }
                        case .failure(let err):
                            let slot = state.reserve(closeAfter: true)
                            state.flow.submit { [weak state] in
                                guard let state else { return }
                                state.complete(slot, HTTPFrontEnd.errorResponse(status: err.status, code: "BAD_REQUEST", err.message))
                                state.flow.finished()
                            }
                        }
                    }
                case .endOfFile, .error:
                    self.drop(state)
                }
            }
        } catch {
            drop(state)
        }
    }

    private func drop(_ state: HTTPConnectionState) {
        state.flow.close()
        if !state.conn.isClosing { state.conn.close() }
        connections[ObjectIdentifier(state.conn)] = nil
    }

    var openConnections: Int { connections.count }

    // MARK: routing

    /// What a request needs: an answer now, an operation, or a body to decode first (pure, Sendable: it may run
    /// on the thread pool when the body is big).
    private enum Plan {
        case answer(HTTPResponse)
        case op(ClientOp)
        case decode(@Sendable () throws -> ClientOp)
        /// `GET /v1/digest`: not a client operation of the core, the driver hashes the shards off the loop.
        case digest
        /// The online backup routes (`NodeServer+Backup.swift`), served by the driver like the digest.
        case backupTake(fenceSeconds: Int, waitSeconds: Int)
        case backupShard(id: UInt64, shard: Int)
        case backupRelease(id: UInt64)
    }

    private func handle(_ req: HTTPRequest, from peer: String, flow: ClientFlow, _ respond: @escaping (HTTPResponse) -> Void) {
        if req.method == "HEAD" {
            // As GET (same authorization, same status and headers), without the body.
            var get = req
            get.method = "GET"
            handle(get, from: peer, flow: flow) { r in
                var head = r
                head.headOnly = true
                respond(head)
            }
            return
        }
        let session = ClientSession(clientID: UInt64(req.headers["x-sutra-client-id"] ?? "") ?? 0,
                                    sequence: UInt64(req.headers["x-sutra-sequence"] ?? "") ?? 0)
        let route = HTTPFrontEnd.route(req.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)).0
        // An id-less create under an Idempotency-Key is a put-if-absent whose refusal is a retry's replay.
        let idempotent = req.method == "POST" && route == "concepts" && req.headers["idempotency-key"] != nil
        let seedRoute = route.flatMap { SeedRoutes.methods[$0] != nil ? $0 : nil }
        switch plan(req, from: peer) {
        case .answer(let r): respond(r)
        case .op(let op): run(op, session, seedRoute: seedRoute, respond)
        case .digest:
            node.contentDigests { result in
                switch result {
                case .success(let digests): respond(.json(body: JSONReply.digests(digests, node: self.node.config.nodeID)))
                case .failure(let e): respond(HTTPFrontEnd.response(for: e))
                }
            }
        case .backupTake(let fence, let wait):
            node.takeBackup(fenceSeconds: fence, waitSeconds: wait) { result in
                switch result {
                case .success(let manifest): respond(.json(body: manifest))
                case .failure(let e): respond(HTTPFrontEnd.response(for: e))
                }
            }
        case .backupShard(let id, let shard):
            node.backupShard(id: id, shard: shard) { result in
                switch result {
                case .success(let file):
                    respond(HTTPResponse(status: 200, headers: ["Content-Type": "application/octet-stream", "X-Sutra-Sha256": lowerHex(file.sha256)], body: file.bytes))
                case .failure(let e): respond(HTTPFrontEnd.response(for: e))
                }
            }
        case .backupRelease(let id):
            switch node.releaseBackup(id: id) {
            case .success: respond(.json(body: Array(#"{"released":true}"#.utf8)))
            case .failure(let e): respond(HTTPFrontEnd.response(for: e))
            }
        case .decode(let decode):
            guard req.body.count >= node.clientPorts.limits.offLoopDecodeBytes else {
                do { run(try decode(), session, idempotent: idempotent, seedRoute: seedRoute, respond) } catch { respond(HTTPFrontEnd.problemResponse(error)) }
                return
            }
            // A big body (a bulk batch of vectors) is parsed on the thread pool so the loop keeps its heartbeats;
            // later requests on this connection wait, so they still run in the order they were sent.
            flow.holdOrder()
            node.clientPorts.countOffLoopDecode()
            do {
                try node.loop.queueWork({ () -> Result<ClientOp, RequestProblem> in
                    do { return .success(try decode()) } catch let p as RequestProblem { return .failure(p) } catch { return .failure(RequestProblem("\(error)")) }
                }, completion: { [weak self, weak flow] result in
                    guard let self else { return }
                    switch result {
                    case .success(let op): self.run(op, session, idempotent: idempotent, seedRoute: seedRoute, respond)
                    case .failure(let p): respond(HTTPFrontEnd.problemResponse(p))
                    }
                    flow?.releaseOrder()
                })
            } catch {
                flow.releaseOrder()
                respond(HTTPFrontEnd.errorResponse(status: 503, code: "UNAVAILABLE", "cannot decode the request: \(error)"))
            }
        }
    }

    static func problemResponse(_ error: Error) -> HTTPResponse {
        if let p = error as? RequestProblem {
            return errorResponse(status: p.tooLarge ? 413 : 400, code: p.tooLarge ? "TOO_LARGE" : "INVALID_ARGUMENT", p.message)
        }
        return errorResponse(status: 400, code: "INVALID_ARGUMENT", "\(error)")
    }

    private func plan(_ req: HTTPRequest, from peer: String) -> Plan {
        let parts = req.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let (route, param) = HTTPFrontEnd.route(parts)
        if let refusal = authorizationRefusal(req, route: route, parts: parts, source: peer) { return .answer(refusal) }
        if let route, let unknown = HTTPFrontEnd.unknownQueryParameter(req, route: route) { return .answer(unknown) }
        let consistency: ReadConsistency = req.query["consistency"] == "stale" ? .stale : .linearizable
        if let c = req.query["consistency"], c != "stale", c != "linearizable" {
            return .answer(HTTPFrontEnd.errorResponse(status: 400, code: "INVALID_ARGUMENT", "consistency must be linearizable or stale, not '\(c)'"))
        }
        let body = req.body
        let dimension = node.config.dimension
        do {
            switch (req.method, route) {
            case ("GET", "health"):
                // `healthy`: the seed documents' checks read it (`jq .healthy`); the process answers, so it is.
                return .answer(.json(body: Array(#"{"healthy":true,"status":"ok"}"#.utf8)))
            case ("GET", "ready"):
                let ready = node.isReady
                return .answer(.json(status: ready ? 200 : 503, body: Array((ready ? #"{"ready":true}"# : #"{"ready":false}"#).utf8)))
            case ("GET", "metrics"):
                var r = HTTPResponse.text(node.renderMetrics())
                r.headers = ["Content-Type": "text/plain; version=0.0.4"]
                return .answer(r)
            case ("POST", "concepts"):
                let key = try IdempotencyKey(req)
                return .decode {
                    let obj = try JSONBody(body)
                    try obj.onlyFields(JSONBody.conceptFields + JSONBody.conditionFields, in: "a concept")
                    if let key, obj.object["id"] == nil {
                        // An id-less create under a key: the key names the concept; only the first attempt writes
                        // it (a retry finds it there and is answered with it: HTTPFrontEnd.replayCreate).
                        guard try obj.putCondition() == nil else { throw RequestProblem("a create under an Idempotency-Key takes no if_* condition") }
                        return .putIf(try obj.concept(dimension: dimension, idWhenAbsent: key.conceptID()), .absent)
                    }
                    let concept = try obj.concept(dimension: dimension)
                    if let condition = try obj.putCondition() { return .putIf(concept, condition) }
                    return .put(concept)
                }
            case ("GET", "concept"):
                return .op(.get(try JSONBody.id(param, "id"), consistency))
            case ("DELETE", "concept"):
                return .op(.delete(try JSONBody.id(param, "id")))
            case ("PATCH", "concept"):
                let id = try JSONBody.id(param, "id")
                return .decode {
                    let obj = try JSONBody(body)
                    try obj.onlyFields(Array(JSONBody.conceptFields.dropFirst()) + JSONBody.conditionFields, in: "a partial update")
                    return .patch(id, try obj.conceptPatch(), try obj.putCondition())
                }
            case ("GET", "neighbors"):
                let dir: NeighborDirection
                switch req.query["direction"] ?? "both" {
                case "out", "outgoing": dir = .outgoing
                case "in", "incoming": dir = .incoming
                case "both": dir = .both
                case let d: throw RequestProblem("direction must be out, in or both, not '\(d)'")
                }
                let type = try req.query["type"].map { try JSONBody.associationType($0) }
                return .op(.neighbors(try JSONBody.id(param, "id"), dir, type, consistency))
            case ("POST", "associations"):
                return .decode {
                    let obj = try JSONBody(body)
                    try obj.onlyFields(JSONBody.associationFields, in: "an association")
                    let a = try obj.association()
                    return .associate(source: a.0, target: a.1, type: a.2, confidence: a.3)
                }
            case ("DELETE", "associations"):
                guard let src = req.query["source"], let dst = req.query["target"] else {
                    throw RequestProblem("source and target (query parameters) are required: DELETE /v1/associations?source=ID&target=ID[&type=T]")
                }
                let type = try req.query["type"].map { try JSONBody.associationType($0) } ?? .semantic
                return .op(.dissociate(source: try JSONBody.id(src, "source"), target: try JSONBody.id(dst, "target"), type: type))
            case ("GET", "path"):
                guard let f = req.query["from"], let t = req.query["to"] else { throw RequestProblem("from and to are required") }
                let depthText = req.query["max_depth"] ?? "6"
                guard let depth = Int(depthText) else { throw RequestProblem("max_depth '\(depthText)' is not a number") }
                return .op(.path(from: try JSONBody.id(f, "from"), to: try JSONBody.id(t, "to"), maxDepth: depth, consistency))
            case ("POST", "search"):
                return .decode {
                    let obj = try JSONBody(body)
                    try obj.onlyFields(JSONBody.searchFields, in: "a search")
                    let q = try obj.vectorQuery()
                    return .search(vector: try obj.floats("vector") ?? [], q, consistency)
                }
            case ("POST", "batch"):
                let key = try IdempotencyKey(req)
                return .decode { .batch(try JSONBody(body).batchItems(dimension: dimension, idempotency: key)) }
            case ("POST", "flush"):
                switch req.query["compact"] {
                case nil: return .op(.flush(compactLog: false))
                case "log"?: return .op(.flush(compactLog: true))
                case let other?: throw RequestProblem("compact must be 'log' (keep no log entry behind the snapshots), not '\(other)'")
                }
            case ("POST", "transfer-leader"):
                guard let s = req.query["shard"].flatMap({ Int($0) }) else { throw RequestProblem("shard (a number) is required") }
                var to: NodeID?
                if let t = req.query["to"] {
                    guard let n = UInt64(t) else { throw RequestProblem("to '\(t)' is not a node id") }
                    to = n
                }
                return .op(.transferLeader(shard: s, to: to))
            case ("POST", "nodes"):
                return .decode {
                    let obj = try JSONBody(body)
                    try obj.onlyFields(JSONBody.nodeFields, in: "a node")
                    guard let id = try obj.int("id"), id > 0 else { throw RequestProblem("id (a node id, 1 or more) is required") }
                    func address(_ k: String) throws -> String {
                        guard let a = try obj.string(k), !a.isEmpty else { throw RequestProblem("\(k) (host:port) is required") }
                        return a
                    }
                    return .membership(.addNode(id: UInt64(id), peerAddress: try address("peer_address"),
                                                clientAddress: try address("client_address"), httpAddress: try address("http_address")))
                }
            case ("POST", "node-drain"), ("POST", "node-remove"), ("POST", "node-replace"):
                guard let id = UInt64(param), id > 0 else { throw RequestProblem("'\(param.prefix(32))' is not a node id (1 or more)") }
                switch route {
                case "node-drain": return .op(.membership(.drain(id)))
                case "node-remove": return .op(.membership(.remove(id)))
                default:
                    let text = req.query["with"] ?? ""
                    guard let with = UInt64(text), with > 0 else { throw RequestProblem("with (the id of the node that takes node \(id)'s replicas) is required, not '\(text.prefix(32))'") }
                    return .op(.membership(.replace(id, with: with)))
                }
            case ("POST", "rebalance"):
                return .op(.membership(.rebalance))
            case ("POST", "shard-move"):
                guard let shard = Int(param), shard >= 0 else { throw RequestProblem("'\(param.prefix(32))' is not a shard number") }
                func node(_ k: String) throws -> UInt64 {
                    let text = req.query[k] ?? ""
                    guard let n = UInt64(text), n > 0 else { throw RequestProblem("\(k) (a node id, 1 or more) is required, not '\(text.prefix(32))'") }
                    return n
                }
                return .op(.membership(.moveReplica(shard: shard, from: try node("from"), to: try node("to"))))
            case ("POST", "fsync-delay"):
                let text = req.query["ms"] ?? ""
                guard let ms = Int(text) else { throw RequestProblem("ms (a number of milliseconds) is required, not '\(text)'") }
                return .op(.fsyncDelay(ms: ms))
            case ("GET", "cluster"), ("GET", "stats"), ("GET", "transaction-stats"):
                return .op(.cluster)
            case ("POST", "seed-flush"):
                return .op(.flush(compactLog: false))
            case ("POST", "learn"):
                let key = try IdempotencyKey(req)
                return .decode { try SeedRoutes.learn(body, dimension: dimension, key: key) }
            case ("POST", "query"):
                return .decode { try SeedRoutes.query(body, consistency: consistency) }
            case ("POST", "seed-search"):
                return .decode { try SeedRoutes.search(body, consistency: consistency) }
            case ("GET", "digest"):
                return .digest
            case ("POST", "backup"):
                func seconds(_ name: String, _ fallback: Int) throws -> Int {
                    guard let t = req.query[name] else { return fallback }
                    guard let v = Int(t), (1...3600).contains(v) else { throw RequestProblem("\(name) must be a number of seconds in 1…3600, not '\(t)'") }
                    return v
                }
                return .backupTake(fenceSeconds: try seconds("fence_seconds", 60), waitSeconds: try seconds("wait_seconds", 30))
            case ("GET", "backup-shard"):
                let p = param.split(separator: "/").map(String.init)
                guard p.count == 2, p[0].count == 16, let id = UInt64(p[0], radix: 16), let shard = Int(p[1]), shard >= 0 else {
                    throw RequestProblem("a backup shard is /v1/admin/backup/{16 hex digits}/shards/{shard number, 0 or more}")
                }
                return .backupShard(id: id, shard: shard)
            case ("DELETE", "backup-release"):
                guard param.count == 16, let id = UInt64(param, radix: 16) else { throw RequestProblem("a backup id is 16 hex digits, not '\(param)'") }
                return .backupRelease(id: id)
            case (_, .some(let r)):
                let allowed = HTTPFrontEnd.methods[r] ?? []
                var answer = HTTPFrontEnd.errorResponse(status: 405, code: "METHOD_NOT_ALLOWED", "\(req.method) is not allowed on \(req.path); allowed: \(allowed.joined(separator: ", "))")
                answer.headers.add("Allow", allowed.joined(separator: ", "))
                return .answer(answer)
            default:
                return .answer(HTTPFrontEnd.errorResponse(status: 404, code: "NOT_FOUND", "no route \(req.method) \(req.path)"))
            }
        } catch {
            return .answer(HTTPFrontEnd.problemResponse(error))
        }
    }

    /// The methods each route answers (the `Allow` header of a 405). HEAD goes wherever GET does.
    static let methods: [String: [String]] = [
        "health": ["GET", "HEAD"], "ready": ["GET", "HEAD"], "metrics": ["GET", "HEAD"], "concepts": ["POST"],
        "concept": ["GET", "HEAD", "PATCH", "DELETE"], "neighbors": ["GET", "HEAD"], "associations": ["POST", "DELETE"],
        "path": ["GET", "HEAD"], "search": ["POST"], "batch": ["POST"], "flush": ["POST"], "cluster": ["GET", "HEAD"],
        "digest": ["GET", "HEAD"], "transfer-leader": ["POST"], "backup": ["POST"], "fsync-delay": ["POST"],
        "backup-shard": ["GET", "HEAD"], "backup-release": ["DELETE"],
        "nodes": ["POST"], "node-drain": ["POST"], "node-remove": ["POST"], "node-replace": ["POST"], "rebalance": ["POST"],
        "shard-move": ["POST"],
    ].merging(SeedRoutes.methods) { a, _ in a }

    /// The query parameters each route reads; any other is refused (a misspelt one would be silently ignored).
    static let queryParameters: [String: [String]] = [
        "concept": ["consistency"], "neighbors": ["direction", "type", "consistency"],
        "path": ["from", "to", "max_depth", "consistency"], "search": ["consistency"], "flush": ["compact"],
        "transfer-leader": ["shard", "to"], "associations": ["source", "target", "type"], "query": ["consistency"], "seed-search": ["consistency"], "fsync-delay": ["ms"], "backup": ["fence_seconds", "wait_seconds"],
        "node-replace": ["with"], "shard-move": ["from", "to"],
    ]

    /// A 400 naming the first query parameter `route` does not read (sorted, so the answer is stable).
    static func unknownQueryParameter(_ req: HTTPRequest, route: String) -> HTTPResponse? {
        let known = queryParameters[route] ?? []
        guard let bad = req.query.keys.sorted().first(where: { !known.contains($0) }) else { return nil }
        let what = known.isEmpty ? "\(req.method) \(req.path) (it takes no query parameters)" : "\(req.method) \(req.path)"
        return errorResponse(status: 400, code: "INVALID_ARGUMENT", FieldNames.unknown(bad, kind: "query parameter", in: what, known: known))
    }

    /// The route a path names, and its id parameter (concept routes).
    static func route(_ p: [String]) -> (String?, String) {
        switch p.count {
        case 1 where ["health", "ready", "metrics"].contains(p[0]): return (p[0], "")
        case 1 where SeedRoutes.route(p[0]) != nil: return (SeedRoutes.route(p[0]), "")
        case 2 where p[0] == "v1" && p[1] == "concepts": return ("concepts", "")
        case 2 where p[0] == "v1" && ["associations", "path", "search", "batch", "flush", "cluster", "digest"].contains(p[1]): return (p[1], "")
        case 3 where p[0] == "v1" && p[1] == "admin" && p[2] == "transfer-leader": return ("transfer-leader", "")
        case 3 where p[0] == "v1" && p[1] == "admin" && p[2] == "backup": return ("backup", "")
        case 4 where p[0] == "v1" && p[1] == "admin" && p[2] == "backup": return ("backup-release", p[3])
        case 6 where p[0] == "v1" && p[1] == "admin" && p[2] == "backup" && p[4] == "shards": return ("backup-shard", p[3] + "/" + p[5])
        case 4 where p[0] == "v1" && p[1] == "admin" && p[2] == "fault" && p[3] == "fsync-delay": return ("fsync-delay", "")
        case 3 where p[0] == "v1" && p[1] == "admin" && p[2] == "nodes": return ("nodes", "")
        case 3 where p[0] == "v1" && p[1] == "admin" && p[2] == "rebalance": return ("rebalance", "")
        case 5 where p[0] == "v1" && p[1] == "admin" && p[2] == "shards" && p[4] == "move": return ("shard-move", p[3])
        case 5 where p[0] == "v1" && p[1] == "admin" && p[2] == "nodes" && ["drain", "remove", "replace"].contains(p[4]): return ("node-" + p[4], p[3])
        case 3 where p[0] == "v1" && p[1] == "concepts": return ("concept", p[2])
        case 4 where p[0] == "v1" && p[1] == "concepts" && p[3] == "neighbors": return ("neighbors", p[2])
        default: return (nil, "")
        }
    }

    private func run(_ op: ClientOp, _ session: ClientSession, idempotent: Bool = false, seedRoute: String? = nil,
                     _ respond: @escaping (HTTPResponse) -> Void) {
        node.execute(op, session: session) { [weak self] result in
            if let route = seedRoute, let answer = SeedRoutes.answer(route: route, op: op, result, uptimeSeconds: Date().timeIntervalSince1970 - ProcessStats.startTime) {
                respond(answer)
                return
            }
            switch result {
            case .success(let reply): respond(.json(body: JSONReply.encode(reply, for: op)))
            case .failure(let e) where idempotent && e.code == .preconditionFailed:
                guard case .putIf(let c, .absent) = op, let self else { respond(HTTPFrontEnd.response(for: e)); return }
                self.replayCreate(c.id, respond)
            case .failure(let e): respond(HTTPFrontEnd.response(for: e))
            }
        }
    }

    /// A create retried under the same Idempotency-Key: the concept its key names exists (the first attempt made
    /// it), so the answer is the first one's — its id and the version that created it — marked as a replay.
    private func replayCreate(_ id: ConceptID, _ respond: @escaping (HTTPResponse) -> Void) {
        node.execute(.get(id, .linearizable), session: ClientSession()) { result in
            switch result {
            case .success(.concept(let c)):
                var w = JSONWriter()
                w.beginObject(); w.key("id"); w.string(id.description); w.key("version"); w.uint(c.createdAt); w.endObject()
                var r = HTTPResponse.json(body: w.bytes)
                r.headers.add("Idempotent-Replayed", "true")
                respond(r)
            case .success:
                respond(HTTPFrontEnd.errorResponse(status: 500, code: "INTERNAL", "a concept read answered something else"))
            case .failure(let e) where e.code == .notFound:
                // Deleted between the two steps: the retry may go ahead as a first attempt would.
                respond(HTTPFrontEnd.errorResponse(status: 409, code: "CONFLICT", "the concept this Idempotency-Key names was deleted while the create was retried; retry"))
            case .failure(let e): respond(HTTPFrontEnd.response(for: e))
            }
        }
    }

    static func response(for e: ClientError) -> HTTPResponse {
        let status: Int
        let code: String
        switch e.code {
        case .notLeader: status = 421; code = "NOT_LEADER"
        case .invalidArgument: status = 400; code = "INVALID_ARGUMENT"
        case .notFound: status = 404; code = "NOT_FOUND"
        case .tooLarge: status = 413; code = "TOO_LARGE"
        case .unavailable: status = 503; code = "UNAVAILABLE"
        case .timeout: status = 504; code = "TIMEOUT"
        case .internal: status = 500; code = "INTERNAL"
        case .conflict: status = 409; code = "CONFLICT"
        case .preconditionFailed: status = 412; code = "PRECONDITION_FAILED"
        case .diskFull: status = 507; code = "DISK_FULL"
        }
        var err: [String: Any] = ["code": code, "message": e.message]
        if e.leader != noNode {
            err["leader"] = e.leader
            err["leader_address"] = e.leaderHTTPAddress
            err["leader_client_address"] = e.leaderClientAddress
        }
        var r = HTTPResponse.json(status: status, body: JSONReply.serialize(["error": err]))
        if e.code == .notLeader, !e.leaderHTTPAddress.isEmpty {
            r.headers.add("Location", "http://\(e.leaderHTTPAddress)")
            r.headers.add("X-Sutra-Leader", e.leaderHTTPAddress)
        }
        if e.code == .unavailable || e.code == .conflict { r.headers.add("Retry-After", "1") }
        return r
    }

    static func errorResponse(status: Int, code: String, _ message: String) -> HTTPResponse {
        .json(status: status, body: JSONReply.serialize(["error": ["code": code, "message": message]]))
    }
}

/// One HTTP connection: its parser and the responses waiting for their turn (pipelined requests are answered
/// in the order they arrived, whatever order they finish in).
final class HTTPConnectionState {
    let conn: SecureStream
    let parser: HTTPRequestParser
    /// Its share of the node's client limits (in-flight, unsent bytes, per-turn slices, timeouts).
    let flow: ClientFlow
    /// The client's address, for refusal logs.
    let peer: String
    /// Bytes of answers finished but waiting for an earlier one (pipelining order).
    private var heldBytes = 0
    /// Closes the connection after an answer that ends it, through the front end (which forgets it).
    var onClose: () -> Void = {}
    private var nextSlot = 0
    private var nextToWrite = 0
    private var done: [Int: (HTTPResponse, Bool)] = [:]
    private var closeAfter: [Int: Bool] = [:]
    private var closed = false

    init(conn: SecureStream, maxBody: Int, ports: ClientPorts) {
        self.conn = conn
        peer = conn.peerHost ?? "unknown"
        parser = HTTPRequestParser(maxBodyBytes: maxBody + 4096)
        flow = ClientFlow(ports: ports, stream: conn)
        flow.heldBytes = { [unowned self] in self.heldBytes }
    }

    func reserve(closeAfter close: Bool) -> Int {
        let s = nextSlot
        nextSlot += 1
        closeAfter[s] = close
        return s
    }

    func complete(_ slot: Int, _ response: HTTPResponse) {
        var r = response
        let close = closeAfter.removeValue(forKey: slot) ?? true
        r.keepAlive = !close
        done[slot] = (r, close)
        heldBytes += r.body.count
        while let (resp, close) = done.removeValue(forKey: nextToWrite) {
            nextToWrite += 1
            heldBytes -= resp.body.count
            guard !closed, !conn.isClosing else { continue }
            if close {
                // The connection ends with this answer: read nothing more, and close only once the kernel has
                // taken all of it (closing with the write still queued would cut a big answer short).
                closed = true
                conn.pauseReading()
                conn.write(resp.serialize()) { [weak self] _ in self?.onClose() }
            } else {
                // When the kernel has taken it, a connection paused for unsent answers may read again.
                conn.write(resp.serialize()) { [weak flow] _ in flow?.wrote() }
            }
        }
    }
}

/// A client mistake found while decoding a request body or URL.
struct RequestProblem: Error {
    var message: String
    var tooLarge = false
    init(_ m: String, tooLarge: Bool = false) {
        message = m
        self.tooLarge = tooLarge
    }
}
