import Foundation

/// A kind of fault the injector can cause. The raw values are the names `sutra chaos --faults` takes.
public enum FaultKind: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// kill -9 a node; restart it on the same data when the fault heals.
    case kill
    /// SIGSTOP a node; SIGCONT when the fault heals.
    case pause
    /// Split the nodes into a random minority and the rest, both directions cut.
    case partitionSymmetric = "partition-symmetric"
    /// Cut one direction only between a node and every other node (its packets out, or theirs in).
    case partitionAsymmetric = "partition-asymmetric"
    /// Isolate the current leader of a shard from every other node.
    case partitionLeader = "partition-leader"
    /// Majority ring: every node sees a majority, no two the same one (with three nodes: a bridge, A–B–C
    /// without A–C).
    case partitionRing = "partition-ring"
    /// Leadership churn: a storm of leadership transfers requested from the shards' leaders
    /// (`POST /v1/admin/transfer-leader`); the placement rebalancer moves some back meanwhile.
    case transfer
    /// Restart every node, one at a time (SIGTERM, start, wait for /ready and a leader for every shard).
    case rollingRestart = "restart-rolling"

    /// Whether it needs a `NetworkLab` (namespaces); without one such steps are recorded as skipped.
    public var needsNetworkLab: Bool { rawValue.hasPrefix("partition") }

    /// The four partition kinds (what `partition` means in a fault list).
    public static let partitions: [FaultKind] = [.partitionSymmetric, .partitionAsymmetric, .partitionLeader, .partitionRing]

    /// Names recognised but not supported, with the reason.
    public static let unsupported: [String: String] = [
        "slow-disk": "not implemented: sutra-node has no fsync-delay hook and this kernel offers no dm-delay or FUSE; "
            + "the only route found (a cgroup-v1 blkio throttle on the node's writes) would change the host's cgroups",
    ]

    /// Parses a comma-separated list (`kill,pause,partition,transfer,restart-rolling`); `partition` expands to the
    /// four partition kinds and `all` to every kind. Unknown or unsupported names throw `LabError.invalid`
    /// naming what is accepted. Duplicates are dropped, order kept.
    public static func parse(_ list: String) throws -> [FaultKind] {
        var out: [FaultKind] = []
        for raw in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !raw.isEmpty {
            let kinds: [FaultKind]
            switch raw {
            case "partition": kinds = partitions
            case "all": kinds = allCases
            default:
                if let k = FaultKind(rawValue: raw) {
                    kinds = [k]
                } else if let why = unsupported[raw] {
                    throw LabError.invalid("fault '\(raw)' is not supported: \(why)")
                } else {
                    throw LabError.invalid("unknown fault '\(raw)'; known: partition, all, \(allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            for k in kinds where !out.contains(k) { out.append(k) }
        }
        return out
    }

    public var description: String { rawValue }
}
