import Codec
import Raft
import Shard

/// A read of shards this node holds no replica of (a replication factor below the node count), asked of a node
/// that holds them (forward op 5, wire version 9). The serving node answers from its own replicas after the
/// same barrier a read served there takes: a linearizable read sees every write acknowledged before it began.
package struct ShardRead: Equatable {
    package enum Query: Equatable {
        /// The concept, if present (a get).
        case concept(ConceptID)
        /// The concept's edges in `direction` (every type when nil), and whether it exists (neighbours).
        case neighbors(ConceptID, NeighborDirection, AssociationType?)
        /// The out-edges of each id, in order (one level of a path search).
        case outEdges([ConceptID])
        /// The k nearest concepts among the shards `shards` (all held by the serving node), filtered.
        case search(vector: [Float], VectorQuery, shards: [Int])
        /// The shard's content digest (wire 10), hashed at the serving node after the read's barrier and with no
        /// intent left open (a `GET /v1/digest` through a node that does not hold the shard).
        case digest
    }
    package var query: Query
    package var consistency: ReadConsistency

    package init(_ query: Query, _ consistency: ReadConsistency) {
        self.query = query
        self.consistency = consistency
    }

    /// Ids one `outEdges` read may name (a path search splits a bigger level).
    package static let maxIDs = 4096
    /// Shards one search may name.
    package static let maxShards = 64

    /// Why the serving node cannot take this read (nil when it can): shards of this cluster, bounds kept.
    package func problem(shardCount: Int, dimension: Int) -> String? {
        switch query {
        case .concept, .neighbors, .digest: return nil
        case .outEdges(let ids):
            return ids.isEmpty || ids.count > ShardRead.maxIDs ? "an out-edge read of \(ids.count) ids (1…\(ShardRead.maxIDs))" : nil
        case .search(let v, let q, let shards):
            if v.count != dimension { return "a search of \(v.count) dimensions; this cluster's dimension is \(dimension)" }
            if v.contains(where: { !$0.isFinite }) { return "a search vector with a non-finite value" }
            if !(1...1000).contains(q.k) || !(0...10_000).contains(q.ef) { return "a search with k \(q.k), ef \(q.ef)" }
            if shards.isEmpty || Set(shards).count != shards.count || shards.contains(where: { $0 < 0 || $0 >= shardCount }) {
                return "a search of shards \(shards) (this cluster has \(shardCount))"
            }
            return nil
        }
    }
}

/// A served `ShardRead`'s answer (forward reply status 4).
package enum ShardReadAnswer: Equatable {
    case concept(Concept?)
    case neighbors(exists: Bool, [NeighborEdge])
    case outEdges([[Edge]])
    case search([SearchHit])
    case digest(ShardDigest)
}

/// One answer of a vector search: the concept and its cosine distance to the query.
package struct SearchHit: Equatable {
    package var id: ConceptID
    package var distance: Float
    package init(id: ConceptID, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

extension NeighborEdge: Equatable {
    public static func == (a: NeighborEdge, b: NeighborEdge) -> Bool { a.edge == b.edge && a.direction == b.direction }
}

// MARK: encoding (inside forward and forward-reply frames)

extension ShardRead {
    func encode(_ w: inout ByteWriter) {
        w.u8(consistency == .linearizable ? 0 : 1)
        switch query {
        case .concept(let id):
            w.u8(1); w.conceptID(id)
        case .neighbors(let id, let direction, let type):
            w.u8(2); w.conceptID(id)
            w.u8(direction == .outgoing ? 0 : direction == .incoming ? 1 : 2)
            if let type { w.u8(1); w.u8(type.rawValue) } else { w.u8(0) }
        case .outEdges(let ids):
            w.u8(3)
            w.u32(UInt32(ids.count))
            for id in ids { w.conceptID(id) }
        case .search(let v, let q, let shards):
            w.u8(4)
            w.u32(UInt32(v.count)); w.f32s(v)
            w.u32(UInt32(q.k)); w.u32(UInt32(q.ef)); w.u8(q.exact ? 1 : 0)
            let f = q.filter ?? SearchFilter()
            w.u8((f.minStrength == nil ? 0 : 1) | (f.minConfidence == nil ? 0 : 2) | (f.associationType == nil ? 0 : 4))
            if let m = f.minStrength { w.f32(m) }
            if let m = f.minConfidence { w.f32(m) }
            if let t = f.associationType { w.u8(t.rawValue) }
            w.u32(UInt32(shards.count))
            for s in shards { w.u32(UInt32(s)) }
        case .digest:
            w.u8(5)
        }
    }

    static func decode(_ r: inout ByteReader) throws -> ShardRead {
        let c = try r.u8()
        guard c <= 1 else { throw PeerWireError(description: "unknown read consistency \(c)") }
        let consistency: ReadConsistency = c == 0 ? .linearizable : .stale
        func type(_ raw: UInt8) throws -> AssociationType {
            guard let t = AssociationType(rawValue: raw) else { throw PeerWireError(description: "unknown association type \(raw)") }
            return t
        }
        switch try r.u8() {
        case 1:
            return ShardRead(.concept(try r.conceptID()), consistency)
        case 2:
            let id = try r.conceptID()
            let d = try r.u8()
            guard d <= 2 else { throw PeerWireError(description: "unknown neighbour direction \(d)") }
            let direction: NeighborDirection = d == 0 ? .outgoing : d == 1 ? .incoming : .both
            let t: AssociationType? = try r.u8() == 0 ? nil : try type(try r.u8())
            return ShardRead(.neighbors(id, direction, t), consistency)
        case 3:
            let n = Int(try r.u32())
            guard n <= ShardRead.maxIDs, n <= r.remaining / 16 else { throw PeerWireError(description: "an out-edge read of \(n) ids") }
            var ids: [ConceptID] = []
            ids.reserveCapacity(n)
            for _ in 0..<n { ids.append(try r.conceptID()) }
            return ShardRead(.outEdges(ids), consistency)
        case 4:
            let dims = Int(try r.u32())
            guard dims <= ShardLimits.maxDimension, dims <= r.remaining / 4 else { throw PeerWireError(description: "a search of \(dims) dimensions") }
            let v = try r.f32s(dims)
            let k = Int(try r.u32()), ef = Int(try r.u32())
            let exact = try r.u8()
            guard exact <= 1 else { throw PeerWireError(description: "a search flag \(exact)") }
            let flags = try r.u8()
            guard flags <= 7 else { throw PeerWireError(description: "search filter flags \(flags)") }
            var f = SearchFilter()
            if flags & 1 != 0 { f.minStrength = try r.f32() }
            if flags & 2 != 0 { f.minConfidence = try r.f32() }
            if flags & 4 != 0 { f.associationType = try type(try r.u8()) }
            let n = Int(try r.u32())
            guard n <= ShardRead.maxShards, n <= r.remaining / 4 else { throw PeerWireError(description: "a search of \(n) shards") }
            var shards: [Int] = []
            for _ in 0..<n { shards.append(Int(try r.u32())) }
            let q = VectorQuery(k: k, ef: ef, exact: exact == 1, filter: flags == 0 ? nil : f)
            return ShardRead(.search(vector: v, q, shards: shards), consistency)
        case 5:
            return ShardRead(.digest, consistency)
        case let k:
            throw PeerWireError(description: "unknown shard read \(k)")
        }
    }
}

extension ShardReadAnswer {
    /// Concepts and edges travel as the log's own command encoding (`ShardRequest`), whose decoder checks them.
    private static func commands(_ cs: [ShardCommand], _ w: inout ByteWriter) {
        let b = ShardRequest(clientID: 0, sequence: 0, command: .batch(cs)).encode()
        w.u32(UInt32(b.count)); w.raw(b)
    }

    private static func commands(_ r: inout ByteReader) throws -> [ShardCommand] {
        let b = try r.bytes(Int(try r.u32()))
        let req: ShardRequest
        do { req = try ShardRequest.decode(b) } catch { throw PeerWireError(description: "a shard read's answer: \(error)") }
        guard case .batch(let cs) = req.command else { throw PeerWireError(description: "a shard read's answer is not a list") }
        return cs
    }

    func encode(_ w: inout ByteWriter) {
        switch self {
        case .concept(let c):
            w.u8(1)
            ShardReadAnswer.commands(c.map { [.putConcept($0)] } ?? [], &w)
        case .neighbors(let exists, let edges):
            w.u8(2); w.u8(exists ? 1 : 0)
            // The owner's place carries nothing here; the direction is each edge's.
            ShardReadAnswer.commands(edges.map { .putEdge($0.direction, owner: ConceptID(hi: 0, lo: 0), $0.edge) }, &w)
        case .outEdges(let lists):
            w.u8(3)
            w.u32(UInt32(lists.count))
            for l in lists { ShardReadAnswer.commands(l.map { .putEdge(.outgoing, owner: ConceptID(hi: 0, lo: 0), $0) }, &w) }
        case .search(let hits):
            w.u8(4)
            w.u32(UInt32(hits.count))
            for h in hits { w.conceptID(h.id); w.f32(h.distance) }
        case .digest(let d):
            w.u8(5)
            w.u32(UInt32(d.shard)); w.u64(d.appliedIndex); w.u64(UInt64(d.concepts)); w.u64(UInt64(d.edges))
            w.raw(d.digest)
        }
    }

    static func decode(_ r: inout ByteReader) throws -> ShardReadAnswer {
        func edges(_ cs: [ShardCommand]) throws -> [NeighborEdge] {
            try cs.map { c in
                guard case .putEdge(let d, _, let e) = c else { throw PeerWireError(description: "a shard read's answer holds a command that is not an edge") }
                return NeighborEdge(edge: e, direction: d)
            }
        }
        switch try r.u8() {
        case 1:
            let cs = try commands(&r)
            switch cs.first {
            case nil: return .concept(nil)
            case .putConcept(let c)? where cs.count == 1: return .concept(c)
            default: throw PeerWireError(description: "a concept read's answer is not one concept")
            }
        case 2:
            let e = try r.u8()
            guard e <= 1 else { throw PeerWireError(description: "a neighbours answer flag \(e)") }
            return .neighbors(exists: e == 1, try edges(try commands(&r)))
        case 3:
            let n = Int(try r.u32())
            guard n <= ShardRead.maxIDs, n <= r.remaining / 4 else { throw PeerWireError(description: "an out-edge answer of \(n) lists") }
            var lists: [[Edge]] = []
            for _ in 0..<n {
                let l = try edges(try commands(&r))
                guard l.allSatisfy({ $0.direction == .outgoing }) else { throw PeerWireError(description: "an out-edge answer holds an in-edge") }
                lists.append(l.map(\.edge))
            }
            return .outEdges(lists)
        case 4:
            let n = Int(try r.u32())
            guard n <= 1000, n <= r.remaining / 20 else { throw PeerWireError(description: "a search answer of \(n) hits") }
            var hits: [SearchHit] = []
            for _ in 0..<n {
                let id = try r.conceptID()
                let d = try r.f32()
                guard d.isFinite else { throw PeerWireError(description: "a search answer with a non-finite distance") }
                hits.append(SearchHit(id: id, distance: d))
            }
            return .search(hits)
        case 5:
            let shard = try r.u32(), applied = try r.u64(), concepts = try r.u64(), edges = try r.u64()
            guard shard < UInt32(ShardRead.maxShards), concepts <= 1 << 40, edges <= 1 << 42 else {
                throw PeerWireError(description: "a digest answer for shard \(shard) of \(concepts) concepts and \(edges) edges")
            }
            return .digest(ShardDigest(shard: Int(shard), appliedIndex: applied, concepts: Int(concepts), edges: Int(edges), digest: try r.bytes(32)))
        case let k:
            throw PeerWireError(description: "unknown shard read answer \(k)")
        }
    }
}
