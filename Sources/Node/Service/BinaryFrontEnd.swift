import NodeCore
import ClientProto
import Foundation
import Raft
import Shard
import SwiftProtobuf
import SecureStream
import UV

/// The binary client protocol (protobuf `sutra.v1` messages in length-prefixed frames, see
/// proto/sutra/v1/client.proto) that the SDK speaks.
///
/// Requests on a connection may be pipelined; each response carries its request's id and is sent as soon as
/// it is ready (out of order across shards). Responses finished in one loop turn go out in one write.
/// Guarantees: an over-limit frame is answered with TOO_LARGE and skipped — the connection stays usable; a
/// frame that is not a valid Request is answered with INVALID_ARGUMENT; only a broken stream closes it.
final class BinaryFrontEnd {
    unowned let node: NodeServer
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: BinaryConnection] = [:]
    private var dirty: [BinaryConnection] = []
    static let minVersion: UInt32 = 1
    static let maxVersion: UInt32 = 1

    init(node: NodeServer) { self.node = node }

    func start(host: String, port: Int) throws {
        listener = try TCPListener(loop: node.loop, host: host, port: port) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let conn): self.accept(conn)
            case .failure(let e): self.node.clientPorts.acceptFailed(e, port: "binary")
            }
        }
    }

    func stop() {
        flush()
        listener?.close()
        listener = nil
        for c in connections.values {
            c.flow.close()
            if !c.conn.isClosing { c.conn.close() }
        }
        connections = [:]
    }

    var openConnections: Int { connections.count }

    /// Sends every response finished this turn (called at the end of each loop turn).
    func flush() {
        for c in dirty where !c.outbox.isEmpty {
            if !c.conn.isClosing {
                // When the kernel has taken it, a connection paused for unsent answers may read again.
                c.conn.write(vectored: c.outbox) { [weak c] _ in c?.flow.wrote() }
            }
            c.outbox = []
            c.outboxBytes = 0
        }
        dirty = []
    }

    /// The answer to a connection over the cap: plaintext gets an UNAVAILABLE frame and is closed; a TLS port
    /// just closes (a handshake to say no would cost more than the connection).
    private func refuse(_ tcp: TCPConnection) {
        guard !node.clientTLS.isOn, let bytes: [UInt8] = try? failure(0, .unavailable, "too many client connections (the node's cap is \(node.clientPorts.connectionCap)); retry later").serializedBytes() else {
            tcp.close()
            return
        }
        tcp.write(frame(bytes)) { [tcp] _ in if !tcp.isClosing { tcp.close() } }
    }

    private func accept(_ tcp: TCPConnection) {
        guard node.clientPorts.admits() else { refuse(tcp); return }
        guard let conn = node.clientTLS.stream(for: tcp) else { return }
        let c = BinaryConnection(conn: conn, maxFrame: node.config.maxFrameBytes, ports: node.clientPorts)
        connections[ObjectIdentifier(conn)] = c
        c.flow.onTimeout = { [weak self, weak c] _ in
            guard let self, let c else { return }
            self.drop(c)
        }
        try? conn.setNoDelay(true)
        do {
            try conn.startReading { [weak self, weak c] event in
                guard let self, let c else { return }
                switch event {
                case .data(let bytes):
                    let events = c.decoder.feed(bytes)
                    c.flow.received(partialBytes: c.decoder.bufferedByteCount, midRequest: c.decoder.bufferedByteCount > 0 || c.decoder.isSkipping)
                    for ev in events {
                        switch ev {
                        case .frame(let payload):
                            if c.flow.startsNow() {
                                self.handle(payload, on: c)
                            } else {
                                c.flow.submit { [weak self, weak c] in
                                    guard let self, let c else { return }
                                    self.handle(payload, on: c)
                                }
                            }
                        case .tooLarge(let n):
                            let refusal = self.failure(0, .tooLarge, "frame of \(n) bytes exceeds the limit of \(self.node.config.maxFrameBytes)")
                            c.flow.submit { [weak self, weak c] in
                                guard let self, let c else { return }
                                self.answer(refusal, on: c)
                            }
                        }
                    }
                case .endOfFile, .error:
                    self.drop(c)
                }
            }
        } catch {
            drop(c)
        }
    }

    private func drop(_ c: BinaryConnection) {
        c.closed = true
        c.flow.close()
        if !c.conn.isClosing { c.conn.close() }
        connections[ObjectIdentifier(c.conn)] = nil
    }

    /// The answer to a started request: queued for the turn's write, and the request counted finished.
    private func answer(_ r: Sutra_V1_Response, on c: BinaryConnection) {
        send(r, on: c)
        c.flow.finished()
    }

    private func send(_ r: Sutra_V1_Response, on c: BinaryConnection) {
        guard !c.closed, let bytes: [UInt8] = try? r.serializedBytes() else { return }
        if c.outbox.isEmpty { dirty.append(c) }
        let f = frame(bytes)
        c.outboxBytes += f.count
        c.outbox.append(f)
    }

    private func failure(_ id: UInt64, _ code: Sutra_V1_ErrorCode, _ message: String) -> Sutra_V1_Response {
        var r = Sutra_V1_Response()
        r.id = id
        r.error.code = code
        r.error.message = message
        return r
    }

    /// Serves one started request's frame; it is `answer`ed exactly once (unless the connection goes first). A
    /// big frame (a bulk batch of vectors) is decoded on the thread pool, holding back the connection's later
    /// requests so they keep their order.
    private func handle(_ payload: [UInt8], on c: BinaryConnection) {
        guard payload.count >= node.clientPorts.limits.offLoopDecodeBytes else {
            serve(BinaryFrontEnd.decodeFrame(payload), on: c)
            return
        }
        c.flow.holdOrder()
        node.clientPorts.countOffLoopDecode()
        do {
            try node.loop.queueWork({ BinaryFrontEnd.decodeFrame(payload) }, completion: { [weak self, weak c] decoded in
                guard let self, let c else { return }
                self.serve(decoded, on: c)
                c.flow.releaseOrder()
            })
        } catch {
            c.flow.releaseOrder()
            answer(failure(0, .unavailable, "cannot decode the request: \(error)"), on: c)
        }
    }

    /// A frame decoded (pure; may run on the thread pool): the request, and its operation or why it has none.
    struct DecodedFrame: Sendable {
        var request: Sutra_V1_Request?
        var op: Result<ClientOp, RequestProblem>
    }

    static func decodeFrame(_ payload: [UInt8]) -> DecodedFrame {
        let req: Sutra_V1_Request
        do {
            req = try Sutra_V1_Request(serializedBytes: payload)
        } catch {
            return DecodedFrame(request: nil, op: .failure(RequestProblem("the frame is not a valid sutra.v1.Request: \(error)")))
        }
        if case .hello? = req.op { return DecodedFrame(request: req, op: .failure(RequestProblem("hello"))) }
        do {
            return DecodedFrame(request: req, op: .success(try decode(req)))
        } catch let p as RequestProblem {
            return DecodedFrame(request: req, op: .failure(p))
        } catch {
            return DecodedFrame(request: req, op: .failure(RequestProblem("\(error)")))
        }
    }

    private func serve(_ decoded: DecodedFrame, on c: BinaryConnection) {
        guard let req = decoded.request else {
            let message: String
            if case .failure(let p) = decoded.op { message = p.message } else { message = "the frame is not a valid sutra.v1.Request" }
            answer(failure(0, .invalidArgument, message), on: c)
            return
        }
        if case .hello(let h)? = req.op {
            guard h.minVersion <= BinaryFrontEnd.maxVersion, h.maxVersion >= BinaryFrontEnd.minVersion else {
                answer(failure(req.id, .unsupportedVersion, "this node speaks versions \(BinaryFrontEnd.minVersion)…\(BinaryFrontEnd.maxVersion); the client \(h.minVersion)…\(h.maxVersion)"), on: c)
                return
            }
            if let (code, message) = presentHelloToken(h.token, on: c) {
                answer(failure(req.id, code, message), on: c)
                return
            }
            var r = Sutra_V1_Response()
            r.id = req.id
            r.hello.minVersion = max(h.minVersion, BinaryFrontEnd.minVersion)
            r.hello.maxVersion = min(h.maxVersion, BinaryFrontEnd.maxVersion)
            answer(r, on: c)
            return
        }
        let op: ClientOp
        switch decoded.op {
        case .success(let o): op = o
        case .failure(let p):
            answer(failure(req.id, p.tooLarge ? .tooLarge : .invalidArgument, p.message), on: c)
            return
        }
        if let (code, message) = authorizationRefusal(op, on: c) {
            answer(failure(req.id, code, message), on: c)
            return
        }
        let session = ClientSession(clientID: req.clientID, sequence: req.sequence, ackedBelow: req.ackedBelow, mayForward: !req.noForward)
        let id = req.id
        node.execute(op, session: session) { [weak self, weak c] result in
            guard let self, let c else { return }
            self.answer(BinaryFrontEnd.encode(id, result), on: c)
        }
    }

    // MARK: protobuf ↔ operations

    static func id(_ d: Data, _ field: String) throws -> ConceptID {
        guard let id = ConceptID(bytes: Array(d)) else { throw RequestProblem("\(field) must be 16 bytes, not \(d.count)") }
        return id
    }

    static func concept(_ c: Sutra_V1_Concept) throws -> Concept {
        if c.embedding.count > ShardLimits.maxDimension {
            throw RequestProblem("embedding has \(c.embedding.count) dimensions; the limit is \(ShardLimits.maxDimension)", tooLarge: true)
        }
        return Concept(id: try id(c.id, "concept id"), content: Array(c.content), embedding: c.embedding.isEmpty ? nil : c.embedding,
                       strength: c.hasStrength ? c.strength : 1, confidence: c.hasConfidence ? c.confidence : 1)
    }

    static func type(_ t: Sutra_V1_AssociationType) throws -> AssociationType {
        guard let v = AssociationType(rawValue: UInt8(clamping: t.rawValue)), t.rawValue >= 0 else {
            throw RequestProblem("unknown association type \(t.rawValue)")
        }
        return v
    }

    static func decode(_ req: Sutra_V1_Request) throws -> ClientOp {
        let consistency: ReadConsistency = req.consistency == .stale ? .stale : .linearizable
        switch req.op {
        case .putConcept(let p)?:
            guard p.hasConcept else { throw RequestProblem("put_concept.concept is required") }
            switch p.condition {
            case nil: return .put(try concept(p.concept))
            case .expectAbsent(let absent)?: return absent ? .putIf(try concept(p.concept), .absent) : .put(try concept(p.concept))
            case .expectContent(let b)?: return .putIf(try concept(p.concept), .content(Array(b)))
            case .expectVersion(let v)?: return .putIf(try concept(p.concept), .version(v))
            }
        case .getConcept(let g)?: return .get(try id(g.id, "id"), consistency)
        case .deleteConcept(let d)?: return .delete(try id(d.id, "id"))
        case .associate(let a)?:
            let x = a.association
            return .associate(source: try id(x.source, "source"), target: try id(x.target, "target"), type: try type(x.type), confidence: x.confidence)
        case .patchConcept(let p)?:
            if p.embedding.count > ShardLimits.maxDimension {
                throw RequestProblem("embedding has \(p.embedding.count) dimensions; the limit is \(ShardLimits.maxDimension)", tooLarge: true)
            }
            if p.removeEmbedding && !p.embedding.isEmpty { throw RequestProblem("give an embedding or remove_embedding, not both") }
            let patch = ConceptPatch(content: p.hasContent ? Array(p.content) : nil,
                                     embedding: p.removeEmbedding ? [] : (p.embedding.isEmpty ? nil : p.embedding),
                                     strength: p.hasStrength ? p.strength : nil, confidence: p.hasConfidence ? p.confidence : nil)
            let condition: PutCondition?
            switch p.condition {
            case nil: condition = nil
            case .expectContent(let b)?: condition = .content(Array(b))
            case .expectVersion(let v)?: condition = .version(v)
            }
            return .patch(try id(p.id, "id"), patch, condition)
        case .deleteAssociation(let d)?:
            return .dissociate(source: try id(d.source, "source"), target: try id(d.target, "target"), type: try type(d.type))
        case .neighbors(let n)?:
            let dir: NeighborDirection
            switch n.direction {
            case .outgoing: dir = .outgoing
            case .incoming: dir = .incoming
            case .both: dir = .both
            case .UNRECOGNIZED(let v): throw RequestProblem("unknown direction \(v)")
            }
            return .neighbors(try id(n.id, "id"), dir, n.hasType ? try type(n.type) : nil, consistency)
        case .findPath(let p)?:
            return .path(from: try id(p.from, "from"), to: try id(p.to, "to"), maxDepth: Int(p.maxDepth), consistency)
        case .search(let s)?, .searchV2(let s)?:
            if s.vector.count > ShardLimits.maxDimension {
                throw RequestProblem("query has \(s.vector.count) dimensions; the limit is \(ShardLimits.maxDimension)", tooLarge: true)
            }
            var query = VectorQuery(k: Int(s.k), ef: Int(s.ef), exact: s.exact, text: s.text.isEmpty ? nil : s.text)
            if query.text != nil && !s.vector.isEmpty { throw RequestProblem("give vector or text, not both") }
            if s.hasFilter {
                let f = SearchFilter(minStrength: s.filter.hasMinStrength ? s.filter.minStrength : nil,
                                     minConfidence: s.filter.hasMinConfidence ? s.filter.minConfidence : nil,
                                     associationType: s.filter.hasAssociationType ? try type(s.filter.associationType) : nil)
                query.filter = f.isEmpty ? nil : f
            }
            return .search(vector: s.vector, query, consistency)
        case .batch(let b)?:
            if b.items.count > 1000 { throw RequestProblem("batch of \(b.items.count) items; the limit is 1000", tooLarge: true) }
            return .batch(try b.items.enumerated().map { i, item in
                switch item.item {
                case .putConcept(let c)?: return .put(try concept(c))
                case .deleteConcept(let d)?: return .delete(try id(d, "item \(i) id"))
                case .associate(let x)?:
                    return .associate(source: try id(x.source, "item \(i) source"), target: try id(x.target, "item \(i) target"),
                                      type: try type(x.type), confidence: x.confidence)
                case nil: throw RequestProblem("item \(i) is empty")
                }
            })
        case .flush?: return .flush(compactLog: false)
        case .clusterInfo?: return .cluster
        case .hello?, nil: throw RequestProblem("the request names no operation")
        }
    }

    static func encode(_ id: UInt64, _ result: Result<ClientReply, ClientError>) -> Sutra_V1_Response {
        var r = Sutra_V1_Response()
        r.id = id
        switch result {
        case .failure(let e):
            switch e.code {
            case .notLeader: r.error.code = .notLeader
            case .invalidArgument: r.error.code = .invalidArgument
            case .notFound: r.error.code = .notFound
            case .tooLarge: r.error.code = .tooLarge
            case .unavailable: r.error.code = .unavailable
            case .timeout: r.error.code = .timeout
            case .internal: r.error.code = .internal
            case .conflict: r.error.code = .conflict
            case .preconditionFailed: r.error.code = .preconditionFailed
            case .diskFull: r.error.code = .diskFull
            }
            r.error.message = e.message
            r.error.leaderNode = UInt32(clamping: e.leader)
            r.error.leaderAddress = e.leaderClientAddress
        case .success(let reply):
            switch reply {
            case .write(let v): r.write.version = v
            case .flushed(let n): r.write.version = UInt64(n)
            case .transferring, .fsyncDelay: r.write.version = 0
            case .concept(let c):
                var p = Sutra_V1_Concept()
                p.id = Data(c.id.bytes)
                p.content = Data(c.content)
                if let e = c.embedding { p.embedding = e }
                p.strength = c.strength
                p.confidence = c.confidence
                p.createdVersion = c.createdAt
                p.updatedVersion = c.updatedAt
                r.concept = p
            case .neighbors(let edges):
                var list = Sutra_V1_NeighborList()
                list.edges = edges.map { n in
                    var e = Sutra_V1_Edge()
                    e.other = Data(n.edge.other.bytes)
                    e.type = Sutra_V1_AssociationType(rawValue: Int(n.edge.type.rawValue)) ?? .semantic
                    e.confidence = n.edge.confidence
                    e.direction = n.direction == .outgoing ? .outgoing : .incoming
                    return e
                }
                r.neighbors = list
            case .path(let found, let ids, let visited):
                var p = Sutra_V1_PathResult()
                p.found = found
                p.ids = ids.map { Data($0.bytes) }
                p.visited = UInt32(clamping: visited)
                r.path = p
            case .search(let hits):
                var s = Sutra_V1_SearchResult()
                s.hits = hits.map { h in
                    var x = Sutra_V1_SearchHit()
                    x.id = Data(h.id.bytes)
                    x.distance = h.distance
                    return x
                }
                r.search = s
            case .cluster(let st):
                var c = Sutra_V1_ClusterState()
                c.clusterID = st.clusterID
                c.nodeID = UInt32(st.nodeID)
                c.numShards = UInt32(st.numShards)
                c.dimension = UInt32(st.dimension)
                c.nodes = st.nodes.map { n in
                    var x = Sutra_V1_NodeInfo()
                    x.id = UInt32(n.id); x.clientAddress = n.clientAddress; x.httpAddress = n.httpAddress; x.connected = n.connected
                    return x
                }
                c.shards = st.shards.map { s in
                    var x = Sutra_V1_ShardInfo()
                    x.shard = UInt32(s.shard); x.leader = UInt32(s.leader); x.term = s.term
                    x.commitIndex = s.commitIndex; x.appliedIndex = s.appliedIndex; x.concepts = UInt64(s.concepts)
                    x.replicas = s.replicas.map { rep in
                        var y = Sutra_V1_ReplicaInfo()
                        y.node = UInt32(rep.node); y.matchIndex = rep.match; y.lag = rep.lag
                        return y
                    }
                    return x
                }
                var t = Sutra_V1_TxnStats()
                t.pending = UInt64(st.transactions.pending); t.intents = UInt64(st.transactions.intents)
                t.committed = st.transactions.committed; t.aborted = st.transactions.aborted
                t.recovered = st.transactions.recovered; t.oldestPendingMs = st.transactions.oldestPendingMs
                c.transactions = t
                r.cluster = c
            }
        }
        return r
    }
}

/// One binary-protocol connection: its frame decoder and the responses waiting for the turn's write.
final class BinaryConnection {
    let conn: SecureStream
    var decoder: FrameDecoder
    var outbox: [[UInt8]] = []
    var outboxBytes = 0
    var closed = false
    /// Its share of the node's client limits (in-flight, unsent bytes, per-turn slices, timeouts).
    let flow: ClientFlow
    /// The client's address, for refusal logs.
    let peer: String
    /// The token this connection's Hello presented (see `BinaryAuth.swift`).
    var credential = BinaryCredential()

    init(conn: SecureStream, maxFrame: Int, ports: ClientPorts) {
        self.conn = conn
        peer = conn.peerHost ?? "unknown"
        decoder = FrameDecoder(maxFrameSize: maxFrame)
        flow = ClientFlow(ports: ports, stream: conn)
        flow.heldBytes = { [unowned self] in self.outboxBytes }
    }
}
