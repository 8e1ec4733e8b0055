import ClusterMap
import Raft
import Shard

/// How fresh a read must be.
public enum ReadConsistency: Sendable {
    /// Served after a ReadIndex round on the shard's leader: sees every write acknowledged before the read.
    case linearizable
    /// Served from this node's replica as applied so far (may lag the leader).
    case stale
}

/// Which edges of a concept a neighbours query returns.
public enum NeighborDirection: Sendable {
    case outgoing, incoming, both
}

/// One item of a batch write.
public enum BatchItem: Sendable {
    case put(Concept)
    case delete(ConceptID)
    case associate(source: ConceptID, target: ConceptID, type: AssociationType, confidence: Float)
}

/// A client request, whichever protocol (binary or HTTP/JSON) carried it. Both front ends decode into this
/// and `NodeServer.execute` serves it, so the two protocols cannot drift apart.
public enum ClientOp: Sendable {
    case put(Concept)
    /// Compare-and-set: put only if the concept's current state meets the condition.
    case putIf(Concept, PutCondition)
    /// Partial update: only the patch's fields change, if the condition (content or version) holds.
    case patch(ConceptID, ConceptPatch, PutCondition?)
    case get(ConceptID, ReadConsistency)
    case delete(ConceptID)
    case associate(source: ConceptID, target: ConceptID, type: AssociationType, confidence: Float)
    /// Removes one association — both edge records, in one transaction when its ends live on different shards.
    case dissociate(source: ConceptID, target: ConceptID, type: AssociationType)
    case neighbors(ConceptID, NeighborDirection, AssociationType?, ReadConsistency)
    case path(from: ConceptID, to: ConceptID, maxDepth: Int, ReadConsistency)
    /// k nearest concepts to `vector` (cosine), exactly or through the HNSW graph, optionally filtered.
    case search(vector: [Float], VectorQuery, ReadConsistency)
    case batch([BatchItem])
    /// Snapshots every shard that applied something since its last one and compacts the log behind them. With
    /// `compactLog` the log keeps nothing the snapshots cover (no margin for lagging followers): before a
    /// downgrade to a release that cannot read entries this one wrote (backup fences), so no such entry is left.
    case flush(compactLog: Bool)
    case cluster
    /// Operator / chaos tool: this node, which must lead `shard`, hands the leadership to `to` (nil: the most
    /// caught-up connected peer).
    case transferLeader(shard: Int, to: NodeID?)
    /// Chaos tool, only with `--enable-fault-injection`: every WAL write sleeps `ms` before its fdatasync
    /// (0: a healthy disk again).
    case fsyncDelay(ms: Int)
    /// Operator: a change of the cluster's membership (the cluster map), proposed to the meta group wherever its
    /// leader is; answered with this node's cluster view once it applied the change.
    case membership(MembershipRequest)

    /// Whether a retry may apply it again without the client sequence (reads, flush, cluster).
    var isWrite: Bool {
        switch self {
        case .put, .putIf, .patch, .delete, .associate, .dissociate, .batch: return true
        default: return false
        }
    }
}

/// Identity that makes a retried write apply once (see `ShardRequest`), and how the client routes.
public struct ClientSession: Sendable {
    public var clientID: UInt64
    public var sequence: UInt64
    public var ackedBelow: UInt64
    /// True (the default, and always over HTTP): a request for a shard this node does not lead is forwarded to
    /// the leader over the peer link and answered here. False: the client routes by itself (the SDK) and wants
    /// NOT_LEADER with the leader's address instead.
    public var mayForward: Bool
    public init(clientID: UInt64 = 0, sequence: UInt64 = 0, ackedBelow: UInt64 = 0, mayForward: Bool = true) {
        self.clientID = clientID
        self.sequence = sequence
        self.ackedBelow = ackedBelow
        self.mayForward = mayForward
    }
}

/// A neighbour as answered to clients.
public struct NeighborEdge: Sendable {
    public var edge: Edge
    public var direction: EdgeDirection
}

/// One node's view of a shard, for `GET /v1/cluster` and `sutra status`.
public struct ShardStatus: Sendable {
    public var shard: Int
    public var leader: NodeID
    public var term: Term
    public var role: String
    public var commitIndex: LogIndex
    public var appliedIndex: LogIndex
    public var lastIndex: LogIndex
    public var snapshotIndex: LogIndex
    public var concepts: Int
    /// Associations whose source lives on this shard, in this node's replica.
    public var associations: Int = 0
    /// Filled when this node leads the shard: each follower's match index and lag behind the leader's log.
    public var replicas: [(node: NodeID, match: LogIndex, lag: UInt64)]
    /// Snapshots this node (as leader) is streaming to followers of this shard, with their progress.
    public var snapshotStreams: [SnapshotStreamStatus] = []
}

/// A snapshot on its way to a follower: bytes it acknowledged of the image, and for how long it has been sent.
public struct SnapshotStreamStatus: Sendable {
    public var node: NodeID
    public var bytesAcknowledged: UInt64
    public var bytesTotal: UInt64
    public var seconds: Double
}

public struct NodeStatus: Sendable {
    public var id: NodeID
    public var clientAddress: String
    public var httpAddress: String
    public var connected: Bool
    /// "connected", "connecting", "unreachable", or "refused: <why>" (see `NodeIO.linkStatus`).
    public var link: String = "connected"
}

public struct ClusterStatus: Sendable {
    public var clusterID: String
    public var nodeID: NodeID
    public var numShards: Int
    public var dimension: Int
    public var nodes: [NodeStatus]
    public var shards: [ShardStatus]
    public var transactions: TransactionStats
    /// Embeddings in this node's vector index (every local replica's).
    public var vectors: Int = 0
    /// Client writes this node proposed or forwarded since it started.
    public var writes: UInt64 = 0
    /// How this node's peer links are protected (filled in by the node process).
    public var peerSecurity: PeerSecurityStatus?
    /// The cluster map as this node applied it, and its view of the meta group that replicates it.
    public var map: ClusterMap?
    public var metaGroup: MetaGroupStatus?
}

/// This node's replica of the meta group (the Raft group whose state is the cluster map).
public struct MetaGroupStatus: Sendable {
    public var leader: NodeID
    public var term: UInt64
    public var role: String
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
}

/// Peer-link protection as `/v1/cluster` shows it: the mode ("required", "permissive", "off" for
/// --insecure-peers) and which established links are mutual TLS and which plaintext.
public struct PeerSecurityStatus: Sendable {
    public var mode: String
    public var tlsPeers: [NodeID]
    public var plaintextPeers: [NodeID]

    public init(mode: String, tlsPeers: [NodeID], plaintextPeers: [NodeID]) {
        self.mode = mode
        self.tlsPeers = tlsPeers
        self.plaintextPeers = plaintextPeers
    }
}

/// Cross-shard transactions as one node sees them.
public struct TransactionStats: Sendable {
    /// Records awaiting a decision on shards this node leads.
    public var pending: Int
    /// Intents held on shards this node leads.
    public var intents: Int
    public var committed: UInt64
    public var aborted: UInt64
    /// Finished by recovery: adopted from a previous leader, or intents resolved after their timeout.
    public var recovered: UInt64
    /// Age of the oldest transaction or intent in flight here.
    public var oldestPendingMs: UInt64
}

/// A successful answer.
/// An operator's membership request (`sutra node add | drain | remove | replace`, `/v1/admin/nodes/...`).
public enum MembershipRequest: Sendable, Equatable {
    /// A new node (`joining`): it receives replicas once an operator names it as a replacement.
    case addNode(id: UInt64, peerAddress: String, clientAddress: String, httpAddress: String)
    /// No new replica goes to the node; its replicas move to an active node that lacks them, if any.
    case drain(UInt64)
    /// The node leaves for good; refused while it holds a replica (drain it first).
    case remove(UInt64)
    /// `node`'s replicas are re-created on `with` (added first, `joining` or `active`): `with` becomes active and
    /// `node` draining, and every shard moves from `node` to `with`, one Raft membership change at a time.
    case replace(UInt64, with: UInt64)
    /// Every joining node that announced where it listens becomes active; then replicas move from the most to
    /// the least loaded active nodes until no two differ by more than one (`ClusterMap.planMoves`).
    case rebalance
    /// Shard `shard`'s replica on `from` moves to `to` (an active node that holds none of it, linked to the node
    /// asked): one Raft membership change of the shard — `to` a learner, caught up, promoted, leadership moved off
    /// `from` if it leads, `from` removed. Refused while the shard has another move in flight.
    case moveReplica(shard: Int, from: UInt64, to: UInt64)
}

public enum ClientReply: Sendable {
    case write(version: UInt64)
    case concept(Concept)
    case neighbors([NeighborEdge])
    case path(found: Bool, ids: [ConceptID], visited: Int)
    case search([(id: ConceptID, distance: Float)])
    case flushed(shards: Int)
    case cluster(ClusterStatus)
    case transferring(shard: Int, to: NodeID)
    case fsyncDelay(ms: Int)
}

/// Why a request failed, in terms both protocols map to their own codes (HTTP status, protobuf ErrorCode).
public struct ClientError: Error, Sendable {
    public enum Code: Sendable {
        case notLeader, invalidArgument, notFound, tooLarge, unavailable, timeout, `internal`
        /// A pending transaction holds what the write touches; nothing was applied. Retry shortly.
        case conflict
        /// A conditional put's condition did not hold; nothing changed.
        case preconditionFailed
        /// This node's disk is full or below its free-space floor: the write was refused (nothing was applied
        /// by this attempt). Reads are served; writes resume once space returns (or leadership moves away).
        case diskFull
    }
    public var code: Code
    public var message: String
    public var leader: NodeID = noNode
    public var leaderClientAddress = ""
    public var leaderHTTPAddress = ""

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether the same request may succeed if retried (possibly at another node).
    public var isRetryable: Bool { code == .notLeader || code == .unavailable || code == .timeout || code == .conflict || code == .diskFull }
}

public typealias ClientCompletion = (Result<ClientReply, ClientError>) -> Void
