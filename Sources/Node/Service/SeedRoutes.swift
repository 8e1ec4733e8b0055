import Foundation
import HTTP
import NodeCore
import Shard

/// The calls the services written against the seed documents' storage API make (`POST /learn`, `POST /query`,
/// `POST /search`, `GET /stats`, `POST /flush`, `GET /transaction-stats`; `GET /health` answers `healthy`), in
/// the request and answer shapes those documents show. Each maps onto the same client operation as its `/v1`
/// route — no second code path for the data: this file only reads the seed shapes and writes the seed answers.
enum SeedRoutes {
    /// Route names (as `HTTPFrontEnd.route` gives them) and the methods each answers.
    static let methods: [String: [String]] = [
        "learn": ["POST"], "query": ["POST"], "seed-search": ["POST"], "stats": ["GET", "HEAD"],
        "seed-flush": ["POST"], "transaction-stats": ["GET", "HEAD"],
    ]

    /// The route of a one-segment path, nil for any other.
    static func route(_ segment: String) -> String? {
        switch segment {
        case "learn", "query", "stats", "transaction-stats": return segment
        case "search": return "seed-search"
        case "flush": return "seed-flush"
        default: return nil
        }
    }

    static let learnFields = ["id", "content", "content_base64", "embedding", "strength", "confidence"]
    static let searchFields = ["query", "vector", "top_k", "k", "ef", "exact", "filter"]

    /// `POST /learn {"content", "strength"?, "confidence"?, "embedding"?, "id"?}`: a put (an id-less one takes
    /// its id from an `Idempotency-Key`, else a random one).
    static func learn(_ body: [UInt8], dimension: Int, key: IdempotencyKey?) throws -> ClientOp {
        let obj = try JSONBody(body)
        try obj.onlyFields(learnFields, in: "a learn request")
        return .put(try obj.concept(dimension: dimension, idWhenAbsent: key?.conceptID()))
    }

    /// `POST /query {"concept_id"}`: a get.
    static func query(_ body: [UInt8], consistency: ReadConsistency) throws -> ClientOp {
        let obj = try JSONBody(body)
        try obj.onlyFields(["concept_id"], in: "a query request")
        guard let id = try obj.string("concept_id") else { throw RequestProblem("concept_id is required") }
        return .get(try JSONBody.id(id, "concept_id"), consistency)
    }

    /// `POST /search {"query": "text" | "vector": […], "top_k"?: 10}`. A text query is embedded through the
    /// embedding service (`--embedding-service`); without one it is refused naming what to do (503).
    static func search(_ body: [UInt8], consistency: ReadConsistency) throws -> ClientOp {
        let obj = try JSONBody(body)
        try obj.onlyFields(searchFields, in: "a search request")
        let q = try obj.vectorQuery(kField: "top_k", textField: "query")
        return .search(vector: try obj.floats("vector") ?? [], q, consistency)
    }

    /// The answer in the seed documents' shape, for a reply of the operation the route mapped to.
    static func answer(route: String, op: ClientOp, _ result: Result<ClientReply, ClientError>, uptimeSeconds: Double) -> HTTPResponse? {
        switch (route, result) {
        case ("learn", .success(.write(let v))):
            guard case .put(let c) = op else { return nil }
            return .json(body: JSONReply.serialize(["sequence": v, "version": v, "id": c.id.description, "concept_id": c.id.description]))
        case ("query", .success(.concept(let c))):
            var o = JSONReply.concept(c)
            o["found"] = true
            o["concept_id"] = c.id.description
            return .json(body: JSONReply.serialize(o))
        case ("query", .failure(let e)) where e.code == .notFound:
            guard case .get(let id, _) = op else { return nil }
            return .json(body: JSONReply.serialize(["found": false, "concept_id": id.description]))
        case ("stats", .success(.cluster(let s))):
            return .json(body: JSONReply.serialize([
                "concepts": s.shards.reduce(0) { $0 + $1.concepts },
                "edges": s.shards.reduce(0) { $0 + $1.associations },
                "vectors": s.vectors,
                "written": s.writes,
                "uptime_seconds": Int(uptimeSeconds),
                "node": s.nodeID,
                "shards": s.numShards,
                "dimension": s.dimension,
            ] as [String: Any]))
        case ("transaction-stats", .success(.cluster(let s))):
            let t = s.transactions
            return .json(body: JSONReply.serialize([
                "active_count": t.pending + t.intents, "pending": t.pending, "intents": t.intents,
                "committed": t.committed, "aborted": t.aborted, "recovered": t.recovered, "oldest_pending_ms": t.oldestPendingMs,
            ] as [String: Any]))
        case ("seed-flush", .success(.flushed(let n))):
            return .json(body: JSONReply.serialize(["flushed": true, "snapshots": n] as [String: Any]))
        default:
            return nil   // the /v1 answer (search results, errors)
        }
    }
}

