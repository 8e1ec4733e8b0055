import SutraModel

/// A concept's 16-byte identifier (the storage layer's type). A concept lives on shard
/// `id.shard(of: numShards)`; the SDK routes every keyed request by it.
public typealias ConceptID = SutraModel.ConceptID

extension ConceptID {
    /// A random identifier (128 bits from the system generator), for new concepts.
    public static func random() -> ConceptID {
        var g = SystemRandomNumberGenerator()
        return ConceptID(hi: g.next(), lo: g.next())
    }
}

/// How fresh a read must be.
public enum Consistency: Sendable, Hashable {
    /// Served by the shard's leader after a ReadIndex round: sees every write acknowledged before the read began.
    case linearizable
    /// Served by whichever node receives it, from its applied state: may miss recent writes, never sees
    /// uncommitted ones. Cheaper, and answered even while the shard has no leader.
    case stale
}

/// The kinds of association Sutra knows (`SutraModel.AssociationType`, shared with the server).
public typealias AssociationType = SutraModel.AssociationType

/// Which associations of a concept to list.
public enum Direction: Sendable, Hashable {
    /// Associations whose source is the concept.
    case outgoing
    /// Associations whose target is the concept.
    case incoming
    /// Both.
    case both
}

/// A concept to write. `put` replaces any concept with the same id (its `createdVersion` is kept).
public struct NewConcept: Sendable, Hashable {
    public var id: ConceptID
    /// Opaque content, at most 10 MiB.
    public var content: [UInt8]
    /// nil: no embedding; otherwise exactly the cluster's dimension (`ClusterInfo.dimension`) finite values.
    public var embedding: [Float]?
    /// nil: the node's default, 1.0.
    public var strength: Float?
    /// nil: the node's default, 1.0.
    public var confidence: Float?

    public init(id: ConceptID, content: [UInt8], embedding: [Float]? = nil, strength: Float? = nil,
                confidence: Float? = nil) {
        self.id = id
        self.content = content
        self.embedding = embedding
        self.strength = strength
        self.confidence = confidence
    }

    /// A concept whose content is `text` in UTF-8.
    public init(id: ConceptID, text: String, embedding: [Float]? = nil, strength: Float? = nil,
                confidence: Float? = nil) {
        self.init(id: id, content: Array(text.utf8), embedding: embedding, strength: strength, confidence: confidence)
    }
}

/// A stored concept as read back. Versions are the shard's Raft log indexes of the writes: they only grow.
public struct Concept: Sendable, Hashable {
    public var id: ConceptID
    public var content: [UInt8]
    /// nil when the concept has no embedding.
    public var embedding: [Float]?
    public var strength: Float
    public var confidence: Float
    /// Version of the write that first created the concept.
    public var createdVersion: UInt64
    /// Version of the latest write to the concept.
    public var updatedVersion: UInt64

    public init(id: ConceptID, content: [UInt8], embedding: [Float]?, strength: Float, confidence: Float,
                createdVersion: UInt64, updatedVersion: UInt64) {
        self.id = id
        self.content = content
        self.embedding = embedding
        self.strength = strength
        self.confidence = confidence
        self.createdVersion = createdVersion
        self.updatedVersion = updatedVersion
    }

    /// The content decoded as UTF-8 (invalid bytes replaced).
    public var text: String { String(decoding: content, as: UTF8.self) }
}

/// A typed, weighted association from `source` to `target`.
public struct Association: Sendable, Hashable {
    public var source: ConceptID
    public var target: ConceptID
    public var type: AssociationType
    public var confidence: Float

    public init(source: ConceptID, target: ConceptID, type: AssociationType, confidence: Float = 1) {
        self.source = source
        self.target = target
        self.type = type
        self.confidence = confidence
    }
}

/// One association of a concept, seen from that concept.
public struct Neighbor: Sendable, Hashable {
    /// The concept at the other end.
    public var other: ConceptID
    public var type: AssociationType
    public var confidence: Float
    /// `.outgoing`: `other` is the target; `.incoming`: `other` is the source. Never `.both`.
    public var direction: Direction

    public init(other: ConceptID, type: AssociationType, confidence: Float, direction: Direction) {
        self.other = other
        self.type = type
        self.confidence = confidence
        self.direction = direction
    }
}

/// The answer of `findPath`: a shortest path (fewest hops, at most `maxDepth`) if one exists.
public struct PathResult: Sendable, Hashable {
    /// The concepts from the start to the goal, both included; nil when no path of at most `maxDepth` hops exists.
    public var path: [ConceptID]?
    /// How many concepts the search visited.
    public var visited: Int

    public init(path: [ConceptID]?, visited: Int) {
        self.path = path
        self.visited = visited
    }
}

/// Which concepts a vector search may answer (`SutraModel.SearchFilter`, shared with the server).
public typealias SearchFilter = SutraModel.SearchFilter

/// One result of a vector search: a concept and its distance to the query (smaller is closer).
public struct SearchHit: Sendable, Hashable {
    public var id: ConceptID
    public var distance: Float

    public init(id: ConceptID, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// One write of a `batch`. A batch applies all or none, across shards too (a two-phase-commit transaction).
public enum BatchItem: Sendable, Hashable {
    case put(NewConcept)
    case delete(ConceptID)
    case associate(Association)

    /// The concept whose shard the item belongs to (an association lives with its source).
    var routingKey: ConceptID {
        switch self {
        case .put(let c): return c.id
        case .delete(let id): return id
        case .associate(let a): return a.source
        }
    }
}

/// The cluster as one node sees it: membership, shard leaders and sizes.
public struct ClusterInfo: Sendable, Hashable {
    /// One member node.
    public struct NodeInfo: Sendable, Hashable {
        public var id: UInt32
        /// Where clients connect (`host:port`).
        public var clientAddress: String
        /// The HTTP/JSON address (`host:port`).
        public var httpAddress: String
        /// Whether the answering node is connected to it.
        public var connected: Bool

        public init(id: UInt32, clientAddress: String, httpAddress: String, connected: Bool) {
            self.id = id
            self.clientAddress = clientAddress
            self.httpAddress = httpAddress
            self.connected = connected
        }
    }

    /// A follower's replication progress, known to the shard's leader.
    public struct ReplicaInfo: Sendable, Hashable {
        public var node: UInt32
        public var matchIndex: UInt64
        /// The leader's last index minus `matchIndex`.
        public var lag: UInt64

        public init(node: UInt32, matchIndex: UInt64, lag: UInt64) {
            self.node = node
            self.matchIndex = matchIndex
            self.lag = lag
        }
    }

    /// One shard's Raft state as the answering node knows it.
    public struct ShardInfo: Sendable, Hashable {
        public var shard: Int
        /// The leader's node id; nil when none is known.
        public var leader: UInt32?
        public var term: UInt64
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public var concepts: UInt64
        /// Filled only when the answering node leads the shard.
        public var replicas: [ReplicaInfo]

        public init(shard: Int, leader: UInt32?, term: UInt64, commitIndex: UInt64, appliedIndex: UInt64,
                    concepts: UInt64, replicas: [ReplicaInfo]) {
            self.shard = shard
            self.leader = leader
            self.term = term
            self.commitIndex = commitIndex
            self.appliedIndex = appliedIndex
            self.concepts = concepts
            self.replicas = replicas
        }
    }

    public var clusterID: String
    /// The node that answered.
    public var answeringNode: UInt32
    public var numShards: Int
    /// The embedding dimension every concept's embedding must have.
    public var dimension: Int
    public var nodes: [NodeInfo]
    public var shards: [ShardInfo]

    public init(clusterID: String, answeringNode: UInt32, numShards: Int, dimension: Int, nodes: [NodeInfo],
                shards: [ShardInfo]) {
        self.clusterID = clusterID
        self.answeringNode = answeringNode
        self.numShards = numShards
        self.dimension = dimension
        self.nodes = nodes
        self.shards = shards
    }
}

/// What a conditional put (`SutraClient.put(_:if:)`) requires of the concept's current state.
public enum PutCondition: Sendable, Hashable {
    /// The concept does not exist.
    case absent
    /// The concept exists with exactly this content.
    case content([UInt8])
    /// The concept exists at this version (`Concept.updatedVersion`).
    case version(UInt64)
}
