import Shard

/// A Prometheus histogram with fixed buckets (seconds).
package struct Histogram {
    let bounds: [Double]
    package var counts: [UInt64]
    package var sum = 0.0
    package var count: UInt64 = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    package mutating func observe(_ v: Double) {
        sum += v
        count += 1
        if let i = bounds.firstIndex(where: { v <= $0 }) { counts[i] += 1 }
    }

    package func render(_ name: String, labels: String, into out: inout String) {
        var cumulative: UInt64 = 0
        let sep = labels.isEmpty ? "" : ","
        for (i, b) in bounds.enumerated() {
            cumulative += counts[i]
            out += "\(name)_bucket{\(labels)\(sep)le=\"\(b)\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(count)\n"
        out += "\(name)_sum{\(labels)} \(sum)\n\(name)_count{\(labels)} \(count)\n"
    }
}

/// The node's counters and histograms, rendered as Prometheus text on `GET /metrics`. Loop thread only.
package final class NodeMetrics {
    static let latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    package var requests: UInt64 = 0
    package var writes: [UInt64]
    package var writeLatency: [Histogram]
    package var fsyncLatency = Histogram(bounds: latencyBuckets)
    package var walBytes: UInt64 = 0
    package var walWrites: UInt64 = 0
    package var snapshots: UInt64 = 0
    package var flushes: UInt64 = 0
    package var crossShardAssociations: UInt64 = 0
    /// Client requests for a shard this node does not lead, forwarded to the leader's node and answered here.
    package var clientRequestsForwarded: UInt64 = 0
    /// Reads of shards this node holds no replica of, asked of a node that does (`ShardRead`); and such reads
    /// this node served for others.
    package var remoteReads: UInt64 = 0
    package var remoteReadsServed: UInt64 = 0
    /// Requests tried again because the shard's leadership was in flux (no leader known, a handoff under way, the
    /// node asked no longer leading) — each a 503 its client did not see.
    /// Raft membership changes this node proposed (as a group's leader) to follow the cluster map.
    package var membershipChanges: UInt64 = 0
    package var leaderWaitRetries: UInt64 = 0
    /// Snapshots streamed in chunks (wire version 7): started, delivered whole, abandoned (link down, no progress),
    /// received whole; chunk bytes sent and received.
    package var snapshotStreamsStarted: UInt64 = 0
    package var snapshotStreamsSent: UInt64 = 0
    package var snapshotStreamsFailed: UInt64 = 0
    package var snapshotStreamsReceived: UInt64 = 0
    package var snapshotBytesStreamedOut: UInt64 = 0
    package var snapshotBytesStreamedIn: UInt64 = 0
    /// Vector searches answered here, by the way they were answered (exact scan, graph, filtered graph).
    package var vectorSearches: [SearchMethod: UInt64] = [:]
    /// Online backups begun and taken through this node, cross-shard writes held back by a fence, and
    /// fences this node lifted as leader because their backup never did.
    package var backupsStarted: UInt64 = 0
    package var backupsTaken: UInt64 = 0
    package var heldForBackup: UInt64 = 0
    package var fencesExpired: UInt64 = 0
    /// Free bytes last measured on the data directory's file system; WAL write attempts that found no space;
    /// client writes refused for a full disk.
    package var diskFreeBytes: UInt64 = 0
    package var walWriteStalls: UInt64 = 0
    package var writesRefusedDiskFull: UInt64 = 0
    /// Leaderships handed away because this node's disk was slow.
    package var slowDiskTransfers: UInt64 = 0
    /// Leaderships peers tried to hand to this node while it was stopping (refused by `RaftNode.retiring`).
    package var transfersRefusedWhileStopping: UInt64 = 0
    package var txnLatency = Histogram(bounds: latencyBuckets)
    /// Messages from peers refused before (or by) a shard's Raft core, by reason (`PeerRejection.reason`).
    package var peerRejectedMessages: [String: UInt64] = [:]
    /// Messages to peers not sent because one alone exceeds the peer frame limit (a shard snapshot too big).
    package var peerOversizedMessages: UInt64 = 0

    package init(shards: Int) {
        writes = Array(repeating: 0, count: shards)
        writeLatency = Array(repeating: Histogram(bounds: NodeMetrics.latencyBuckets), count: shards)
    }

    func recordWrite(shard: Int, nanos: UInt64) {
        writes[shard] += 1
        writeLatency[shard].observe(Double(nanos) / 1e9)
    }

    func recordTxn(nanos: UInt64) {
        txnLatency.observe(Double(nanos) / 1e9)
    }

    /// One group-commit write (its bytes are counted by the driver, which encoded it).
    func recordWALWrite(nanos: UInt64, snapshots: Int) {
        fsyncLatency.observe(Double(nanos) / 1e9)
        walWrites += 1
        self.snapshots += UInt64(snapshots)
    }
}
