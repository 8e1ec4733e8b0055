import ClientProto
import Foundation

// Conversions between the SDK's public types and the generated protocol messages (never shown to users).

extension AssociationType {
    var proto: Sutra_V1_AssociationType {
        switch self {
        case .semantic: return .semantic
        case .causal: return .causal
        case .temporal: return .temporal
        case .hierarchical: return .hierarchical
        case .compositional: return .compositional
        }
    }

    init(proto: Sutra_V1_AssociationType) throws(SutraError) {
        switch proto {
        case .semantic: self = .semantic
        case .causal: self = .causal
        case .temporal: self = .temporal
        case .hierarchical: self = .hierarchical
        case .compositional: self = .compositional
        case .UNRECOGNIZED(let v): throw .invalidResponse("unknown association type \(v)")
        }
    }
}

extension Direction {
    var proto: Sutra_V1_Direction {
        switch self {
        case .outgoing: return .outgoing
        case .incoming: return .incoming
        case .both: return .both
        }
    }

    init(proto: Sutra_V1_Direction) throws(SutraError) {
        switch proto {
        case .outgoing: self = .outgoing
        case .incoming: self = .incoming
        case .both: self = .both
        case .UNRECOGNIZED(let v): throw .invalidResponse("unknown direction \(v)")
        }
    }
}

extension Consistency {
    var proto: Sutra_V1_Consistency { self == .linearizable ? .linearizable : .stale }
}

func conceptID(_ data: Data, _ what: String) throws(SutraError) -> ConceptID {
    guard let id = ConceptID(bytes: Array(data)) else {
        throw .invalidResponse("\(what) is \(data.count) bytes, not 16")
    }
    return id
}

extension NewConcept {
    var proto: Sutra_V1_Concept {
        var c = Sutra_V1_Concept()
        c.id = Data(id.bytes)
        c.content = Data(content)
        if let embedding { c.embedding = embedding }
        if let strength { c.strength = strength }
        if let confidence { c.confidence = confidence }
        return c
    }
}

extension Concept {
    init(proto c: Sutra_V1_Concept) throws(SutraError) {
        self.init(id: try conceptID(c.id, "concept id"), content: Array(c.content),
                  embedding: c.embedding.isEmpty ? nil : c.embedding,
                  strength: c.hasStrength ? c.strength : 1, confidence: c.hasConfidence ? c.confidence : 1,
                  createdVersion: c.createdVersion, updatedVersion: c.updatedVersion)
    }
}

extension Association {
    var proto: Sutra_V1_Association {
        var a = Sutra_V1_Association()
        a.source = Data(source.bytes)
        a.target = Data(target.bytes)
        a.type = type.proto
        a.confidence = confidence
        return a
    }
}

extension BatchItem {
    var proto: Sutra_V1_BatchItem {
        var item = Sutra_V1_BatchItem()
        switch self {
        case .put(let c): item.putConcept = c.proto
        case .delete(let id): item.deleteConcept = Data(id.bytes)
        case .associate(let a): item.associate = a.proto
        }
        return item
    }
}

extension Neighbor {
    init(proto e: Sutra_V1_Edge) throws(SutraError) {
        self.init(other: try conceptID(e.other, "edge end"), type: try AssociationType(proto: e.type),
                  confidence: e.confidence, direction: try Direction(proto: e.direction))
    }
}

extension ClusterInfo {
    init(proto s: Sutra_V1_ClusterState) {
        self.init(
            clusterID: s.clusterID, answeringNode: s.nodeID, numShards: Int(s.numShards), dimension: Int(s.dimension),
            nodes: s.nodes.map {
                NodeInfo(id: $0.id, clientAddress: $0.clientAddress, httpAddress: $0.httpAddress, connected: $0.connected)
            },
            shards: s.shards.map { sh in
                ShardInfo(shard: Int(sh.shard), leader: sh.leader == 0 ? nil : sh.leader, term: sh.term,
                          commitIndex: sh.commitIndex, appliedIndex: sh.appliedIndex, concepts: sh.concepts,
                          replicas: sh.replicas.map { ReplicaInfo(node: $0.node, matchIndex: $0.matchIndex, lag: $0.lag) })
            })
    }
}

extension SutraError {
    /// The typed error for a node's `Error` message.
    init(proto e: Sutra_V1_Error) {
        switch e.code {
        case .notLeader: self = .notLeader(leader: e.leaderNode, address: e.leaderAddress, message: e.message)
        case .invalidArgument: self = .invalidArgument(e.message)
        case .notFound: self = .notFound(e.message)
        case .tooLarge: self = .tooLarge(e.message)
        case .unavailable: self = .unavailable(e.message)
        case .timeout: self = .nodeTimeout(e.message)
        case .internal: self = .internalError(e.message)
        case .unsupportedVersion: self = .unsupportedVersion(e.message)
        case .conflict: self = .conflict(e.message)
        case .preconditionFailed: self = .preconditionFailed(e.message)
        case .unauthenticated: self = .unauthenticated(e.message)
        case .permissionDenied: self = .permissionDenied(e.message)
        case .diskFull: self = .diskFull(e.message)
        case .ok: self = .internalError("error with code OK: \(e.message)")
        case .UNRECOGNIZED(let v): self = .internalError("unknown error code \(v): \(e.message)")
        }
    }
}
