import Foundation

/// One node's answer to `GET /v1/cluster` (see `JSONReply.cluster` in Sources/Node/Service/JSONCoding.swift):
/// what that node believes about every node and every shard.
public struct ClusterView: Sendable, Equatable {
    /// What the answering node knows of one node of the cluster.
    public struct Node: Sendable, Equatable {
        public var id: Int
        public var httpAddress: String
        public var clientAddress: String
        /// Whether the answering node's peer connection to it is up (always true for itself).
        public var connected: Bool
    }

    /// The answering node's replica of one shard.
    public struct Shard: Sendable, Equatable {
        public var shard: Int
        /// The leader this replica knows (0: none).
        public var leader: Int
        public var term: UInt64
        /// This replica's role: `leader`, `follower`, `candidate` or `preCandidate`.
        public var role: String
        public var commitIndex: UInt64
        public var appliedIndex: UInt64
        public var lastIndex: UInt64
    }

    /// The node that answered.
    public var nodeID: Int
    public var clusterID: String
    public var nodes: [Node]
    public var shards: [Shard]

    /// Parses the JSON body; nil if it is not a cluster status.
    public init?(json body: [UInt8]) {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let node = ClusterView.int(o["node_id"]), let shards = o["shards"] as? [[String: Any]] else { return nil }
        nodeID = node
        clusterID = o["cluster_id"] as? String ?? ""
        nodes = ((o["nodes"] as? [[String: Any]]) ?? []).compactMap { n in
            guard let id = ClusterView.int(n["id"]) else { return nil }
            return Node(id: id, httpAddress: n["http_address"] as? String ?? "", clientAddress: n["client_address"] as? String ?? "",
                        connected: (n["connected"] as? Bool) ?? false)
        }
        self.shards = shards.compactMap { s in
            guard let shard = ClusterView.int(s["shard"]) else { return nil }
            return Shard(shard: shard, leader: ClusterView.int(s["leader"]) ?? 0, term: ClusterView.uint(s["term"]),
                         role: s["role"] as? String ?? "", commitIndex: ClusterView.uint(s["commit_index"]),
                         appliedIndex: ClusterView.uint(s["applied_index"]), lastIndex: ClusterView.uint(s["last_index"]))
        }
    }

    /// The shards whose replica on the answering node is the leader.
    public var ledShards: [Int] { shards.filter { $0.role == "leader" }.map(\.shard) }

    /// Peers the answering node is connected to (itself excluded).
    public var connectedPeers: [Int] { nodes.filter { $0.connected && $0.id != nodeID }.map(\.id) }

    private static func int(_ v: Any?) -> Int? { (v as? NSNumber)?.intValue }
    private static func uint(_ v: Any?) -> UInt64 { (v as? NSNumber)?.uint64Value ?? 0 }
}
