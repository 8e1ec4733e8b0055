
/// A stored concept. `createdAt` / `updatedAt` are the Raft log indexes of the writes (its versions).
public struct Concept: Sendable, Equatable {
    public var id: ConceptID
    public var content: [UInt8]
    /// Float32 embedding of the cluster's dimension, or nil.
    public var embedding: [Float]?
    public var strength: Float
    public var confidence: Float
    public var createdAt: UInt64
    public var updatedAt: UInt64

    public init(id: ConceptID, content: [UInt8], embedding: [Float]? = nil, strength: Float = 1, confidence: Float = 1,
                createdAt: UInt64 = 0, updatedAt: UInt64 = 0) {
        self.id = id
        self.content = content
        self.embedding = embedding
        self.strength = strength
        self.confidence = confidence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One end of an association as a shard stores it: out-edges live with the source, in-edges with the target.
public struct Edge: Sendable, Equatable, Hashable {
    /// The concept at the other end.
    public var other: ConceptID
    public var type: AssociationType
    public var confidence: Float

    public init(other: ConceptID, type: AssociationType, confidence: Float) {
        self.other = other
        self.type = type
        self.confidence = confidence
    }
}

/// The fields a partial update (`patchConcept`) changes; nil: kept as it is. `embedding` empty: removed.
public struct ConceptPatch: Sendable, Equatable {
    public var content: [UInt8]?
    public var embedding: [Float]?
    public var strength: Float?
    public var confidence: Float?

    public init(content: [UInt8]? = nil, embedding: [Float]? = nil, strength: Float? = nil, confidence: Float? = nil) {
        self.content = content
        self.embedding = embedding
        self.strength = strength
        self.confidence = confidence
    }

    public var isEmpty: Bool { content == nil && embedding == nil && strength == nil && confidence == nil }

    /// `current` with the patch's fields in place (its id and versions kept; the apply sets the versions).
    public func applied(to current: Concept) -> Concept {
        var c = current
        if let v = content { c.content = v }
        if let e = embedding { c.embedding = e.isEmpty ? nil : e }
        if let v = strength { c.strength = v }
        if let v = confidence { c.confidence = v }
        return c
    }
}

/// An edge record's identity within its owner's list: the other end and the type (`expectEdges`).
public struct EdgeRef: Sendable, Equatable, Hashable {
    public var other: ConceptID
    public var type: AssociationType

    public init(other: ConceptID, type: AssociationType) {
        self.other = other
        self.type = type
    }
}

/// Which side of an association an edge record is.
public enum EdgeDirection: UInt8, Sendable {
    /// Stored on the source's shard, pointing at the target.
    case outgoing = 0
    /// Stored on the target's shard, pointing back at the source.
    case incoming = 1
}

/// The limits every write is checked against (the node enforces them at the edge too).
public struct ShardLimits: Sendable, Equatable {
    public var maxContentBytes = 10 << 20
    /// The cluster's embedding dimension (every embedding must have exactly this many values); 0: none allowed.
    public var dimension: Int
    public var maxBatch = 1000

    public init(dimension: Int) { self.dimension = dimension }

    /// Upper bound on `dimension` for any cluster.
    public static let maxDimension = 2048
}
