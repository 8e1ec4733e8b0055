import ChaosLab
import Foundation

/// What one chaos run does: how long, which faults (the same seed gives the same schedule), how many client
/// processes over how many keys, and where the history and the report go.
public struct ChaosOptions: Sendable {
    /// Seconds of workload under faults (the schedule's length).
    public var duration: Double = 60
    public var faults: [FaultKind] = [.kill]
    public var seed: UInt64 = 1
    /// Concurrent client processes (each one operation at a time, Jepsen-style).
    public var processes = 8
    /// Keys of the register workload (each a concept whose content is the value).
    public var keys = 8
    public var shards = 4
    /// The `sutra-node` binary to run.
    public var nodeBinary: String
    /// Extra flags for every node (e.g. the known-bad `--unsafe-local-reads`).
    public var nodeFlags: [String] = []
    /// JSON-lines history file (nil: keep it in memory only).
    public var historyPath: String?
    /// Machine-readable report (nil: none).
    public var reportPath: String?
    /// Where the cluster's data and logs go (nil: a temporary directory, removed when the run passes).
    public var directory: String?
    /// Share of operations that are cross-shard associations.
    public var associationShare = 0.1
    /// Share of operations that are cross-shard batches (`BatchPlan`: 2–3 puts and deletes of registers on at
    /// least two shards in one SDK `batch`), each acknowledged one followed at once by the same process's read
    /// of an item on a shard other than the coordinator's (read-your-writes). The rest of the operations after
    /// associations and batches: get 45%, put 30%, cas 25%.
    public var batchShare = 0.15
    /// After healing, every shard must have a leader and take a write within this many seconds.
    public var recoveryBound: Double = 30
    /// Budget of the linearizability search.
    public var checkTimeLimit: Duration = .seconds(120)
    /// Where the nodes run and how partitions cut their links.
    public var network: NetworkMode = .auto
    /// Print a progress line every second.
    public var progress = true

    public init(nodeBinary: String) { self.nodeBinary = nodeBinary }
}

/// Where a chaos run's nodes run and what cuts their links for partitions.
public enum NetworkMode: String, Sendable, CaseIterable {
    /// Network namespaces when this machine can create them (root), else the proxy.
    case auto
    /// Network namespaces with veth links (root); refused where unavailable.
    case namespaces
    /// Loopback, every node↔node connection through the fault-injecting `LinkProxy` (no root needed).
    case proxy
    /// Loopback, direct links: partitions are recorded as skipped.
    case none
}
