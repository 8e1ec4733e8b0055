/// The cluster map: which nodes belong to the cluster and in what state, and where every shard's replicas live.
///
/// It is the replicated state of the cluster's meta group (one small Raft group on the voting nodes): every
/// change is one `ClusterMapChange` entry in that group's log, applied in log order by `applying(_:)`, so every
/// node that applied the same entries holds the same map. `version` counts the changes applied; a request routed
/// with an older version may be redirected, never misapplied.
///
/// Invariants (checked by `checkInvariants()`, kept by every change `applying` accepts):
/// - the shard count and the replication factor never change; `replication` ≤ the number of active nodes at
///   creation;
/// - every replica and learner of a shard names a node of the map that is not `removed`;
/// - a shard has at least one voting replica, at most one move in flight, and a learner only as that move's target;
/// - a `removed` node holds no replica.
///
/// Pure value, no I/O; the node's meta-group replica owns one and the SDK keeps the last one it was told.
public struct ClusterMap: Sendable, Equatable {
    /// A node's place in the cluster's life cycle.
    public enum NodeState: UInt8, Sendable, Equatable, CaseIterable, CustomStringConvertible {
        /// Announced (`sutra node add`), may receive learners, holds no voting replica yet.
        case joining = 1
        /// A full member: may hold voting replicas and lead.
        case active = 2
        /// Being emptied (`sutra node drain`): gets no new replica; its replicas are moved away.
        case draining = 3
        /// Gone for good (`sutra node remove`, or replaced): holds nothing and is never used again.
        case removed = 4

        public var description: String {
            switch self {
            case .joining: "joining"
            case .active: "active"
            case .draining: "draining"
            case .removed: "removed"
            }
        }
    }

    /// One node: its identity, where it listens, and its state.
    public struct Node: Sendable, Equatable {
        public var id: UInt64
        /// `host:port` of its peer, binary-client and HTTP ports (names allowed).
        public var peerAddress: String
        public var clientAddress: String
        public var httpAddress: String
        public var state: NodeState

        public init(id: UInt64, peerAddress: String, clientAddress: String, httpAddress: String, state: NodeState = .active) {
            self.id = id
            self.peerAddress = peerAddress
            self.clientAddress = clientAddress
            self.httpAddress = httpAddress
            self.state = state
        }

        /// Whether the node has not announced where it listens yet (every address empty).
        public var addressesUnknown: Bool { peerAddress.isEmpty && clientAddress.isEmpty && httpAddress.isEmpty }
    }

    /// A replica move in flight for one shard: `to` joins as a learner, catches up, is promoted, then `from` (if
    /// any) leaves. `from == nil` re-creates a missing replica (a replaced node's) without removing one.
    public struct Move: Sendable, Equatable, CustomStringConvertible {
        public enum Phase: UInt8, Sendable, Equatable {
            /// `to` is a learner receiving the shard (snapshot, then log).
            case catchingUp = 1
            /// `to` votes; `from` is still a replica, to be removed (after leadership left it).
            case promoted = 2
        }
        public var from: UInt64?
        public var to: UInt64
        public var phase: Phase

        public init(from: UInt64?, to: UInt64, phase: Phase = .catchingUp) {
            self.from = from
            self.to = to
            self.phase = phase
        }

        public var description: String { "\(from.map { "node \($0)" } ?? "nothing") → node \(to) (\(phase == .catchingUp ? "catching up" : "promoted"))" }
    }

    /// Where one shard lives.
    public struct ShardPlacement: Sendable, Equatable {
        /// The voting replicas, ascending.
        public var voters: [UInt64]
        /// Replicas receiving the log without a vote (a move's target), ascending.
        public var learners: [UInt64]
        /// The move in flight, if any (one per shard at a time).
        public var move: Move?
        /// The node the map last saw leading the shard (a routing hint, never authority: Raft decides).
        public var leaderHint: UInt64

        public init(voters: [UInt64], learners: [UInt64] = [], move: Move? = nil, leaderHint: UInt64 = 0) {
            self.voters = voters.sorted()
            self.learners = learners.sorted()
            self.move = move
            self.leaderHint = leaderHint
        }

        /// Every node holding a copy (voters and learners).
        public var replicas: [UInt64] { (voters + learners).sorted() }
        public func holds(_ node: UInt64) -> Bool { voters.contains(node) || learners.contains(node) }
    }

    public let clusterID: String
    public let shardCount: Int
    /// Voting replicas per shard once every move has settled.
    public let replication: Int
    /// Changes applied so far (0: the map as created).
    public internal(set) var version: UInt64
    /// Nodes by id, removed ones included (their ids are never reused).
    public internal(set) var nodes: [UInt64: Node]
    /// Placement of shard `s` at index `s`.
    public internal(set) var shards: [ShardPlacement]

    /// The bounds a map (and so a decoded one) must respect.
    public static let maxShards = 64
    public static let maxNodes = 256
    public static let maxReplication = 7
    public static let maxAddressBytes = 255
    public static let maxClusterIDBytes = 64

    init(clusterID: String, shardCount: Int, replication: Int, version: UInt64, nodes: [UInt64: Node], shards: [ShardPlacement]) {
        self.clusterID = clusterID
        self.shardCount = shardCount
        self.replication = replication
        self.version = version
        self.nodes = nodes
        self.shards = shards
    }

    // MARK: queries

    /// Ids of nodes in `state`, ascending.
    public func nodeIDs(_ state: NodeState) -> [UInt64] { nodes.values.filter { $0.state == state }.map(\.id).sorted() }

    /// Shards that have a replica (voter or learner) on `node`, ascending.
    public func shards(on node: UInt64) -> [Int] { (0..<shardCount).filter { shards[$0].holds(node) } }

    /// Voting replicas per node over every node that may hold them (active and draining ones; 0 for none).
    public func voterLoad() -> [UInt64: Int] {
        var load: [UInt64: Int] = [:]
        for n in nodes.values where n.state == .active || n.state == .draining || n.state == .joining { load[n.id] = 0 }
        for s in shards { for v in s.voters { load[v, default: 0] += 1 } }
        return load
    }

    /// Shards with a move in flight, ascending.
    public var moving: [Int] { (0..<shardCount).filter { shards[$0].move != nil } }

    /// Why the map breaks an invariant of the type, or nil. Every map `applying` returns passes; a decoded map is
    /// refused unless it does.
    public func checkInvariants() -> String? {
        guard (1...ClusterMap.maxShards).contains(shardCount), shards.count == shardCount else {
            return "\(shards.count) shard placements for \(shardCount) shards"
        }
        guard (1...ClusterMap.maxReplication).contains(replication) else { return "replication factor \(replication)" }
        guard nodes.count <= ClusterMap.maxNodes else { return "\(nodes.count) nodes" }
        for (id, n) in nodes where id != n.id || id == 0 { return "node entry \(id) names node \(n.id)" }
        for (s, p) in shards.enumerated() {
            guard !p.voters.isEmpty else { return "shard \(s) has no voting replica" }
            guard p.voters == p.voters.sorted(), p.learners == p.learners.sorted(),
                  Set(p.voters).count == p.voters.count, Set(p.learners).count == p.learners.count,
                  Set(p.voters).isDisjoint(with: p.learners) else {
                return "shard \(s) lists a replica twice or out of order"
            }
            for r in p.replicas {
                guard let n = nodes[r] else { return "shard \(s) has a replica on unknown node \(r)" }
                if n.state == .removed { return "shard \(s) has a replica on removed node \(r)" }
            }
            if let m = p.move {
                switch m.phase {
                case .catchingUp:
                    guard p.learners == [m.to] else { return "shard \(s): move \(m) but learners \(p.learners)" }
                case .promoted:
                    guard p.learners.isEmpty, p.voters.contains(m.to) else { return "shard \(s): move \(m) but voters \(p.voters)" }
                }
                if let f = m.from, !p.voters.contains(f) { return "shard \(s): move \(m) from a node that is not a voter" }
            } else if !p.learners.isEmpty {
                return "shard \(s) has learners \(p.learners) without a move"
            }
        }
        return nil
    }
}
