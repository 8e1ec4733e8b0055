import ClusterMap
import NodeCore
import Codec
import Foundation
import HTTP
import Raft
import Shard

/// A decoded JSON request body with typed, clearly-failing accessors.
struct JSONBody {
    let object: [String: Any]

    init(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { throw RequestProblem("the request body is empty; a JSON object is expected") }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw RequestProblem("the body is not valid JSON (\(bytes.count) bytes)")
        }
        guard let o = parsed as? [String: Any] else { throw RequestProblem("the body must be a JSON object") }
        object = o
    }

    init(object: [String: Any]) { self.object = object }

    static let conceptFields = ["id", "content", "content_base64", "embedding", "strength", "confidence"]
    static let conditionFields = ["if_absent", "if_content", "if_content_base64", "if_version"]
    static let associationFields = ["source", "target", "type", "confidence"]
    static let searchFields = ["vector", "text", "k", "ef", "exact", "filter"]
    static let searchFilterFields = ["min_strength", "min_confidence", "association_type"]
    static let nodeFields = ["id", "peer_address", "client_address", "http_address"]

    /// Refuses a field outside `known` (a misspelt one would otherwise be silently ignored), naming it and the
    /// closest known field when one is near.
    func onlyFields(_ known: [String], in what: String) throws {
        for key in object.keys.sorted() where !known.contains(key) {
            throw RequestProblem(FieldNames.unknown(key, kind: "field", in: what, known: known))
        }
    }

    /// JSON true/false (Foundation bridges them to NSNumber too, so `is Bool` cannot tell; on Linux they
    /// arrive as the `__NSCFBoolean` subclass, numbers as plain `NSNumber`).
    static func isBool(_ v: Any) -> Bool {
        type(of: v) == Bool.self || String(describing: type(of: v)) == "__NSCFBoolean"
    }

    static func id(_ text: String, _ field: String) throws -> ConceptID {
        guard let id = ConceptID(hex: text) else { throw RequestProblem("\(field) '\(text.prefix(64))' is not a concept id (32 hex digits)") }
        return id
    }

    func string(_ key: String) throws -> String? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw RequestProblem("\(key) must be a string") }
        return s
    }

    func number(_ key: String) throws -> Double? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, !JSONBody.isBool(v) else { throw RequestProblem("\(key) must be a number") }
        return n.doubleValue
    }

    func int(_ key: String) throws -> Int? {
        guard let d = try number(key) else { return nil }
        guard d == d.rounded(), abs(d) < 1e15 else { throw RequestProblem("\(key) must be an integer") }
        return Int(d)
    }

    func floats(_ key: String) throws -> [Float]? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard let arr = v as? [Any] else { throw RequestProblem("\(key) must be an array of numbers") }
        if arr.count > ShardLimits.maxDimension {
            throw RequestProblem("\(key) has \(arr.count) dimensions; the limit is \(ShardLimits.maxDimension)", tooLarge: true)
        }
        var out: [Float] = []
        out.reserveCapacity(arr.count)
        for x in arr {
            guard let n = x as? NSNumber, !JSONBody.isBool(x) else { throw RequestProblem("\(key) must be an array of numbers") }
            out.append(n.floatValue)
        }
        return out
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        guard JSONBody.isBool(v), let b = v as? Bool else { throw RequestProblem("\(key) must be true or false") }
        return b
    }

    /// A search's options: `k` (under `kField`), `ef`, `exact`, and `filter` {min_strength, min_confidence,
    /// association_type} — unknown filter fields refused like unknown body fields.
    func vectorQuery(kField: String = "k", textField: String = "text") throws -> VectorQuery {
        var q = VectorQuery(k: try int(kField) ?? int("k") ?? 10, ef: try int("ef") ?? 0, exact: try bool("exact") ?? false)
        q.text = try string(textField)
        if let t = q.text, t.isEmpty { throw RequestProblem("\(textField) is empty") }
        if q.text != nil, object["vector"] != nil, !(object["vector"] is NSNull) { throw RequestProblem("give vector or \(textField), not both") }
        if q.text == nil, object["vector"] == nil || object["vector"] is NSNull { throw RequestProblem("vector (or \(textField), with an embedding service) is required") }
        if let raw = object["filter"], !(raw is NSNull) {
            guard let o = raw as? [String: Any] else { throw RequestProblem("filter must be an object with min_strength, min_confidence or association_type") }
            let f = JSONBody(object: o)
            try f.onlyFields(JSONBody.searchFilterFields, in: "a search filter")
            let filter = SearchFilter(minStrength: try f.number("min_strength").map(Float.init),
                                      minConfidence: try f.number("min_confidence").map(Float.init),
                                      associationType: try f.string("association_type").map { try JSONBody.associationType($0) })
            q.filter = filter.isEmpty ? nil : filter
        }
        return q
    }

    /// The concept a body describes. Without an `id`: `idWhenAbsent` (derived from an idempotency key), else a
    /// random one.
    func concept(dimension: Int, idWhenAbsent: ConceptID? = nil) throws -> Concept {
        let id = try string("id").map { try JSONBody.id($0, "id") } ?? idWhenAbsent
            ?? ConceptID(hi: UInt64.random(in: 1...UInt64.max), lo: UInt64.random(in: 0...UInt64.max))
        let content = try contentField() ?? []
        let embedding = try floats("embedding")
        return Concept(id: id, content: content, embedding: (embedding?.isEmpty ?? true) ? nil : embedding,
                       strength: Float(try number("strength") ?? 1), confidence: Float(try number("confidence") ?? 1))
    }

    /// `content_base64` (bytes) or `content` (UTF-8 text); nil when neither is given.
    func contentField() throws -> [UInt8]? {
        if let b64 = try string("content_base64") {
            guard let d = Data(base64Encoded: b64) else { throw RequestProblem("content_base64 is not valid base64") }
            return Array(d)
        }
        return try string("content").map { Array($0.utf8) }
    }

    /// The fields a partial update gives (absent: kept). `"embedding": null` or `[]` removes the embedding.
    func conceptPatch() throws -> ConceptPatch {
        var p = ConceptPatch()
        p.content = try contentField()
        if object["embedding"] is NSNull { p.embedding = [] } else { p.embedding = try floats("embedding") }
        p.strength = try number("strength").map(Float.init)
        p.confidence = try number("confidence").map(Float.init)
        return p
    }

    /// A put's compare-and-set condition: `if_absent: true`, `if_content` (text) / `if_content_base64`, or
    /// `if_version` (the concept's `updated_version`). At most one; nil when none is given.
    func putCondition() throws -> PutCondition? {
        var found: [PutCondition] = []
        if let b = object["if_absent"] {
            guard JSONBody.isBool(b), let v = b as? Bool else { throw RequestProblem("if_absent must be true or false") }
            if v { found.append(.absent) }
        }
        if let b64 = try string("if_content_base64") {
            guard let d = Data(base64Encoded: b64) else { throw RequestProblem("if_content_base64 is not valid base64") }
            found.append(.content(Array(d)))
        }
        if let s = try string("if_content") { found.append(.content(Array(s.utf8))) }
        if let v = try number("if_version") {
            guard v >= 0, v == v.rounded(), v < 1e19 else { throw RequestProblem("if_version must be a whole number ≥ 0") }
            found.append(.version(UInt64(v)))
        }
        guard found.count <= 1 else { throw RequestProblem("give at most one of if_absent, if_content, if_content_base64, if_version") }
        return found.first
    }

    static func associationType(_ s: String) throws -> AssociationType {
        switch s.lowercased() {
        case "semantic": return .semantic
        case "causal": return .causal
        case "temporal": return .temporal
        case "hierarchical": return .hierarchical
        case "compositional": return .compositional
        default: throw RequestProblem("type '\(s)' is not one of semantic, causal, temporal, hierarchical, compositional")
        }
    }

    func association() throws -> (ConceptID, ConceptID, AssociationType, Float) {
        guard let s = try string("source"), let t = try string("target") else { throw RequestProblem("source and target are required") }
        let type = try string("type").map(JSONBody.associationType) ?? .semantic
        return (try JSONBody.id(s, "source"), try JSONBody.id(t, "target"), type, Float(try number("confidence") ?? 1))
    }

    func batchItems(dimension: Int, idempotency: IdempotencyKey? = nil) throws -> [BatchItem] {
        try onlyFields(["items"], in: "a batch")
        guard let arr = object["items"] as? [Any] else { throw RequestProblem("items must be an array") }
        if arr.count > 1000 { throw RequestProblem("batch of \(arr.count) items; the limit is 1000", tooLarge: true) }
        return try arr.enumerated().map { i, raw in
            guard let o = raw as? [String: Any] else { throw RequestProblem("item \(i) must be an object") }
            let item = JSONBody(object: o)
            do {
                switch try item.string("op") ?? "put" {
                case "put":
                    try item.onlyFields(["op"] + JSONBody.conceptFields, in: "a put item")
                    return .put(try item.concept(dimension: dimension, idWhenAbsent: idempotency?.conceptID(item: i)))
                case "delete":
                    try item.onlyFields(["op", "id"], in: "a delete item")
                    guard let id = try item.string("id") else { throw RequestProblem("id is required") }
                    return .delete(try JSONBody.id(id, "id"))
                case "associate":
                    try item.onlyFields(["op"] + JSONBody.associationFields, in: "an associate item")
                    let a = try item.association()
                    return .associate(source: a.0, target: a.1, type: a.2, confidence: a.3)
                case let op: throw RequestProblem("op '\(op)' is not put, delete or associate")
                }
            } catch let p as RequestProblem {
                throw RequestProblem("item \(i): \(p.message)", tooLarge: p.tooLarge)
            }
        }
    }
}

/// An `Idempotency-Key` header: the ids of the concepts an id-less create makes are derived from it (and from the
/// credential that sent it), so a retry with the same key names the same concepts instead of new ones.
struct IdempotencyKey: Sendable {
    /// Keys are opaque text of 1…255 visible ASCII characters (a UUID, a request hash…).
    static let maxLength = 255
    let seed: [UInt8]

    /// The request's `Idempotency-Key`, scoped by its `Authorization`; nil without one, throws for a malformed one.
    init?(_ req: HTTPRequest) throws {
        try self.init(header: req.headers["idempotency-key"], authorization: req.headers["authorization"])
    }

    /// Nil without the header; throws for a malformed one.
    init?(header: String?, authorization: String?) throws {
        guard let key = header else { return nil }
        guard (1...IdempotencyKey.maxLength).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw RequestProblem("Idempotency-Key must be 1…\(IdempotencyKey.maxLength) visible ASCII characters")
        }
        // Scoped by the credential: two clients' equal keys name different concepts.
        seed = Array("sutra idempotency v1\u{0}".utf8) + Array((authorization ?? "").utf8) + [0] + Array(key.utf8)
    }

    /// The id of the concept the create (or the batch's item `item`) makes: 16 bytes of a SHA-256.
    func conceptID(item: Int? = nil) -> ConceptID {
        var input = seed
        if let item { input += Array("\u{0}item \(item)".utf8) }
        let h = ShardDigest.sha256(input)
        return ConceptID(bytes: Array(h[0..<16]))!
    }
}

/// The message for an unknown field or query parameter, with the nearest known name as a suggestion.
enum FieldNames {
    static func unknown(_ name: String, kind: String, in what: String, known: [String]) -> String {
        let shown = String(name.prefix(64))
        var message = "unknown \(kind) '\(shown)' in \(what)"
        if let near = nearest(to: name, among: known) { message += " (did you mean '\(near)'?)" }
        return message + "; known: \(known.joined(separator: ", "))"
    }

    /// The known name within edit distance 2 of `name` (case-insensitive), or whose words it rearranges; nil if
    /// none is that close.
    static func nearest(to name: String, among known: [String]) -> String? {
        let n = Array(name.lowercased().prefix(64))
        var best: (String, Int)?
        for k in known {
            let d = distance(n, Array(k.lowercased()))
            if d <= 2, d < (best?.1 ?? Int.max) { best = (k, d) }
        }
        return best?.0
    }

    /// Levenshtein distance (both sides short: field names).
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
}

/// JSON renderings of replies.
enum JSONReply {
    /// `GET /v1/digest`: each shard replica's digest here and the cluster digest of them all.
    static func digests(_ ds: [ShardDigest], node: NodeID) -> [UInt8] {
        serialize([
            "node": node,
            "shards": ds.map { ["shard": $0.shard, "applied_index": $0.appliedIndex, "concepts": $0.concepts, "edges": $0.edges, "digest": $0.hex] as [String: Any] },
            "digest": lowerHex(ShardDigest.cluster(ds)),
        ] as [String: Any])
    }

    static func serialize(_ o: Any) -> [UInt8] {
        (try? Array(JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))) ?? Array("{}".utf8)
    }

    static func typeName(_ t: AssociationType) -> String { "\(t)" }

    static func concept(_ c: Concept) -> [String: Any] {
        var o: [String: Any] = ["id": c.id.description, "strength": Double(c.strength), "confidence": Double(c.confidence),
                                "created_version": c.createdAt, "updated_version": c.updatedAt]
        if let s = String(validating: c.content, as: UTF8.self) { o["content"] = s } else { o["content_base64"] = Data(c.content).base64EncodedString() }
        if let e = c.embedding { o["embedding"] = e.map { Double($0) } }
        return o
    }

    /// A concept as JSON, written directly (keys in sorted order, as `serialize` writes them): the hot path of
    /// every read, and of pipelined reads of embedded concepts, so it must cost tens of microseconds, not ms.
    static func writeConcept(_ c: Concept, into w: inout JSONWriter) {
        w.beginObject()
        w.key("confidence"); w.float(c.confidence)
        if let s = String(validating: c.content, as: UTF8.self) {
            w.key("content"); w.string(s)
        } else {
            w.key("content_base64"); w.string(Data(c.content).base64EncodedString())
        }
        w.key("created_version"); w.uint(c.createdAt)
        if let e = c.embedding { w.key("embedding"); w.floats(e) }
        w.key("id"); w.string(c.id.description)
        w.key("strength"); w.float(c.strength)
        w.key("updated_version"); w.uint(c.updatedAt)
        w.endObject()
    }

    /// A write's answer names what it wrote: a put its concept's id (made up by the node when the request had
    /// none), a batch every item (`items`, in request order), so a created id is never lost.
    static func encode(_ r: ClientReply, for op: ClientOp) -> [UInt8] {
        guard case .write(let v) = r else { return encode(r) }
        var w = JSONWriter()
        w.beginObject()
        switch op {
        case .put(let c), .putIf(let c, _):
            w.key("id"); w.string(c.id.description)
        case .delete(let id), .patch(let id, _, _):
            w.key("id"); w.string(id.description)
        case .associate(let source, let target, _, _), .dissociate(let source, let target, _):
            w.key("source"); w.string(source.description)
            w.key("target"); w.string(target.description)
        case .batch(let items):
            w.key("items"); w.beginArray()
            for item in items {
                w.beginObject()
                switch item {
                case .put(let c): w.key("id"); w.string(c.id.description); w.key("op"); w.string("put")
                case .delete(let id): w.key("id"); w.string(id.description); w.key("op"); w.string("delete")
                case .associate(let s, let t, _, _):
                    w.key("op"); w.string("associate"); w.key("source"); w.string(s.description); w.key("target"); w.string(t.description)
                }
                w.endObject()
            }
            w.endArray()
        default:
            break
        }
        w.key("version"); w.uint(v)
        w.endObject()
        return w.bytes
    }

    static func encode(_ r: ClientReply) -> [UInt8] {
        var w = JSONWriter()
        switch r {
        case .write(let v):
            w.beginObject(); w.key("version"); w.uint(v); w.endObject()
        case .concept(let c):
            w = JSONWriter(reserving: 160 + c.content.count * 2 + (c.embedding?.count ?? 0) * 12)
            writeConcept(c, into: &w)
        case .neighbors(let edges):
            w = JSONWriter(reserving: 32 + edges.count * 96)
            w.beginObject(); w.key("neighbors"); w.beginArray()
            for n in edges {
                w.beginObject()
                w.key("confidence"); w.float(n.edge.confidence)
                w.key("direction"); w.string(n.direction == .outgoing ? "out" : "in")
                w.key("id"); w.string(n.edge.other.description)
                w.key("type"); w.string(typeName(n.edge.type))
                w.endObject()
            }
            w.endArray(); w.endObject()
        case .path(let found, let ids, let visited):
            w.beginObject()
            w.key("found"); w.bool(found)
            w.key("path"); w.beginArray(); for id in ids { w.string(id.description) }; w.endArray()
            w.key("visited"); w.int(visited)
            w.endObject()
        case .search(let hits):
            w = JSONWriter(reserving: 32 + hits.count * 64)
            w.beginObject(); w.key("results"); w.beginArray()
            for h in hits {
                w.beginObject(); w.key("distance"); w.float(h.distance); w.key("id"); w.string(h.id.description); w.endObject()
            }
            w.endArray(); w.endObject()
        case .flushed(let n): return serialize(["snapshots": n])
        case .cluster(let s): return serialize(cluster(s))
        case .transferring(let shard, let to): return serialize(["shard": shard, "to": to])
        case .fsyncDelay(let ms): return serialize(["fsync_delay_ms": ms])
        }
        return w.bytes
    }

    static func cluster(_ s: ClusterStatus) -> [String: Any] {
        var out = clusterFields(s)
        if let p = s.peerSecurity {
            out["peer_security"] = ["mode": p.mode, "tls_peers": p.tlsPeers, "plaintext_peers": p.plaintextPeers] as [String: Any]
        }
        if let m = s.map { out["map"] = map(m, meta: s.metaGroup) }
        return out
    }

    /// The cluster map (`/v1/cluster` `map`): its version, nodes, every shard's placement, the meta group.
    static func map(_ m: ClusterMap, meta: MetaGroupStatus?) -> [String: Any] {
        var out: [String: Any] = [
            "version": m.version, "replication": m.replication,
            "nodes": m.nodes.keys.sorted().map { id -> [String: Any] in
                let n = m.nodes[id]!
                return ["id": n.id, "state": "\(n.state)", "peer_address": n.peerAddress,
                        "client_address": n.clientAddress, "http_address": n.httpAddress]
            },
            "shards": m.shards.enumerated().map { (s, p) -> [String: Any] in
                var o: [String: Any] = ["shard": s, "voters": p.voters, "learners": p.learners, "leader_hint": p.leaderHint]
                if let mv = p.move {
                    var move: [String: Any] = ["to": mv.to, "phase": mv.phase == .catchingUp ? "catching_up" : "promoted"]
                    if let f = mv.from { move["from"] = f }
                    o["move"] = move
                }
                return o
            },
        ]
        if let g = meta {
            out["meta_group"] = ["leader": g.leader, "term": g.term, "role": g.role, "commit_index": g.commitIndex,
                                 "applied_index": g.appliedIndex] as [String: Any]
        }
        return out
    }

    private static func clusterFields(_ s: ClusterStatus) -> [String: Any] {
        [
            "cluster_id": s.clusterID, "node_id": s.nodeID, "num_shards": s.numShards, "dimension": s.dimension,
            "nodes": s.nodes.map { ["id": $0.id, "client_address": $0.clientAddress, "http_address": $0.httpAddress, "connected": $0.connected, "link": $0.link] as [String: Any] },
            "shards": s.shards.map { sh -> [String: Any] in
                [
                    "shard": sh.shard, "leader": sh.leader, "term": sh.term, "role": sh.role, "commit_index": sh.commitIndex,
                    "applied_index": sh.appliedIndex, "last_index": sh.lastIndex, "snapshot_index": sh.snapshotIndex,
                    "concepts": sh.concepts,
                    "replicas": sh.replicas.map { ["node": $0.node, "match_index": $0.match, "lag": $0.lag] as [String: Any] },
                    "snapshot_streams": sh.snapshotStreams.map { st -> [String: Any] in
                        let rate = st.seconds > 0 ? Double(st.bytesAcknowledged) / st.seconds : 0
                        return ["node": st.node, "bytes_acknowledged": st.bytesAcknowledged, "bytes_total": st.bytesTotal,
                                "seconds": st.seconds, "bytes_per_second": rate]
                    },
                ]
            },
            "transactions": [
                "pending": s.transactions.pending, "intents": s.transactions.intents, "committed": s.transactions.committed,
                "aborted": s.transactions.aborted, "recovered": s.transactions.recovered,
                "oldest_pending_ms": s.transactions.oldestPendingMs,
            ] as [String: Any],
        ]
    }
}
