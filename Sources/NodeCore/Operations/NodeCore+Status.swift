import Raft
import Shard

extension NodeCore {
    /// This node's view of the cluster: every node, and every shard's leader, term, indexes and (where this
    /// node leads) each replica's lag.
    package func clusterStatus() -> ClusterStatus {
        // This node, then every other node the flags or the cluster map name (removed ones left out).
        var nodes = [NodeStatus(id: config.nodeID, clientAddress: config.clientAddress, httpAddress: config.httpAddress, connected: true)]
        for id in otherNodes {
            let a = io.clientAddresses(of: id)
            let inMap = meta.map?.nodes[id]
            nodes.append(NodeStatus(id: id, clientAddress: a?.client ?? inMap?.clientAddress ?? "", httpAddress: a?.http ?? inMap?.httpAddress ?? "",
                                    connected: io.isConnected(id), link: io.linkStatus(of: id)))
        }
        nodes.sort { $0.id < $1.id }
        let streams = snapshotSender.progress()
        let shards = replicas.map { r -> ShardStatus in
            var reps: [(node: NodeID, match: LogIndex, lag: UInt64)] = []
            if r.isLeader {
                for id in r.raft.confState.members.sorted() {
                    let match = id == config.nodeID ? r.raft.lastIndex : (r.raft.progressState(of: id)?.match ?? 0)
                    reps.append((id, match, r.raft.lastIndex - min(match, r.raft.lastIndex)))
                }
            }
            var status = ShardStatus(shard: r.shard, leader: knownLeader(of: r.shard), term: r.raft.term, role: "\(r.raft.role)",
                                     commitIndex: r.raft.commitIndex, appliedIndex: r.appliedIndex, lastIndex: r.raft.lastIndex,
                                     snapshotIndex: r.snapshotIndex, concepts: r.state.conceptCount, replicas: reps)
            status.associations = r.state.associationCount
            status.snapshotStreams = streams.filter { Int($0.shard) == r.shard }.map {
                SnapshotStreamStatus(node: $0.peer, bytesAcknowledged: $0.acknowledged, bytesTotal: $0.total,
                                     seconds: Double(ticks - $0.startedAt) * Double(config.tickMs) / 1000)
            }
            return status
        }
        var status = ClusterStatus(clusterID: config.clusterID, nodeID: config.nodeID, numShards: config.numShards,
                                   dimension: config.dimension, nodes: nodes, shards: shards, transactions: transactionStats())
        status.map = meta.map
        status.metaGroup = MetaGroupStatus(leader: meta.raft.leader, term: meta.raft.term, role: "\(meta.raft.role)",
                                           commitIndex: meta.raft.commitIndex, appliedIndex: meta.appliedIndex)
        status.vectors = vectors.count
        status.writes = metrics.writes.reduce(0, +)
        return status
    }

    package func transactionStats() -> TransactionStats {
        var pending = 0, intents = 0
        for r in replicas where r.isLeader {
            pending += r.state.txns.pendingRecords
            intents += r.state.txns.intents.count
        }
        let c = coordinator.stats
        let oldest = max(coordinator.oldestTicks, recovery.oldestTicks) * UInt64(config.tickMs)
        return TransactionStats(pending: pending, intents: intents, committed: c.committed, aborted: c.aborted,
                                recovered: c.adopted + recovery.recovered, oldestPendingMs: oldest)
    }

    /// `/ready`: this node can route a request of every shard — its replica knows the leader or, for a shard it
    /// holds no replica of yet (a joining node), the cluster map names one.
    package var isReady: Bool {
        !stopping && replicas.allSatisfy { knownLeader(of: $0.shard) != noNode }
    }
}
