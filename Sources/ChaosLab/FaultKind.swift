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
    /// A slow disk on one node: every WAL write sleeps the step's `delayMs` before its fdatasync (the node's
    /// test-only `POST /v1/admin/fault/fsync-delay`; nodes must run with `--enable-fault-injection`).
    case slowDisk = "slow-disk"
    /// A disk replaced: kill -9 a node, delete its data directory, and start it empty (same id, same flags) when
    /// the fault heals; it rejoins, abstaining from votes, and catches up from the others (streamed snapshots,
    /// then the log). Recovery waits until it has applied what every shard's leader committed.
    case replaceDisk = "replace-disk"
    /// A machine lost for good: kill -9 a node, and when the fault's time is up bring a spare into the cluster
    /// (added to the map, started empty with `--join`), replace the dead node by it — every replica moves
    /// through Raft: learner, snapshot and log, voter, the dead one removed — and remove the dead node from the
    /// map. Recovered once the moves are done; the spare takes the node's place in later faults.
    case replaceNode = "replace-node"
    /// A live node drained and retired: a spare is brought in, the node's replicas and leaderships move to it
    /// while both run, the node is removed from the map and stopped gracefully. The spare takes its place.
    case drainNode = "drain-node"
    /// The cluster grown by a spare and shrunk back: the spare is added, started empty with `--join` and
    /// `sutra rebalance` moves replicas onto it (balance moves, while both run); then the target node is
    /// drained, removed and stopped gracefully. The spare takes its place.
    case addNode = "add-node"
    /// Replicas moved by hand (`sutra move-replica`): a spare is added and balanced onto as for `add-node`, then
    /// the target shard's replica on its leader moves to the node that lacks the shard (leadership handed off,
    /// the source removed) while writes go on — with an interruption, the source or target killed -9 mid-move
    /// and restarted — then the target node is drained and removed. The spare takes its place.
    case moveReplica = "move-replica"

    /// Whether it cuts links between nodes (through network namespaces or the fault-injecting proxy); a cluster
    /// with neither records such steps as skipped.
    public var cutsLinks: Bool { rawValue.hasPrefix("partition") }

    /// Whether the nodes must run with `--enable-fault-injection` (the slow-disk hook).
    public var needsFaultInjection: Bool { self == .slowDisk }

    /// Whether it changes the cluster's membership (and uses up a spare node).
    public var changesMembership: Bool { self == .replaceNode || self == .drainNode || self == .addNode || self == .moveReplica }

    /// The four partition kinds (what `partition` means in a fault list).
    public static let partitions: [FaultKind] = [.partitionSymmetric, .partitionAsymmetric, .partitionLeader, .partitionRing]

    /// Parses a comma-separated list (`kill,pause,partition,transfer,restart-rolling,slow-disk,replace-disk,replace-node,drain-node,add-node,move-replica`); `partition`
    /// expands to the four partition kinds and `all` to every kind. Unknown names throw `LabError.invalid`
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
