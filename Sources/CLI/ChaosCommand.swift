import ArgumentParser
import ChaosLab
import ChaosRunner
import Foundation

/// `sutra chaos`: start a three-node cluster, drive a concurrent workload through the SDK while a seeded
/// schedule of faults breaks it, record every operation, and judge the history the way Jepsen does. Exits 0
/// only when every checker passes.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Break a fresh three-node cluster on purpose and prove nothing was lost (linearizability, lost writes, whole associations, recovery).",
        discussion: """
        Faults: \(FaultKind.allCases.map { $0.rawValue }.joined(separator: ", ")); `partition` = every partition kind, `all` = everything.
        Partitions cut node-to-node links: with root, in network namespaces the runner creates and removes; without, through a
        fault-injecting TCP proxy between the nodes on loopback (--network picks one; auto prefers namespaces).
        slow-disk makes one node's WAL writes sleep before each fdatasync (its nodes run with --enable-fault-injection).
        replace-disk kills a node, deletes its data directory and starts it empty when the fault heals: it rejoins and
        catches up (streamed snapshots, then the log) before the next fault.
        replace-node kills a node for good, adds a spare node (started empty with --join), replaces the dead node by it and
        removes it once every replica moved; drain-node does the same with the old node alive, then stops it; add-node grows
        the cluster by the spare (sutra rebalance: balance moves onto it), then drains and stops the old node; move-replica
        does as add-node and, between, moves one shard's replica by hand (sutra move-replica) off its leader to the node
        that lacks it. Each may kill -9 a node of the move halfway (the moves must go on). One spare node is prepared per
        such fault.
        The workload: 8 processes of get/put/compare-and-set on the registers, cross-shard associations (10%), and
        cross-shard batches (--batch-share, default 15%: 2–3 puts and deletes of registers on at least two shards in one
        batch, each acknowledged one read back at once by its process at a participant shard — read-your-writes).
        The same --seed gives the same fault schedule and workload.
        """)
    @Option(help: "Seconds of workload under faults.") var duration = 60.0
    @Option(help: "Comma-separated faults (see below).") var faults = "kill"
    @Option(help: "Seed of the fault schedule and the workload.") var seed: UInt64 = 1
    @Option(help: "Write the history here (JSON lines).") var history: String?
    @Option(help: "Write the machine-readable report here (JSON).") var report: String?
    @Option(help: "Concurrent client processes.") var processes = 8
    @Option(help: "Registers (keys) of the workload.") var keys = 8
    @Option(help: "Shards of the cluster.") var shards = 4
    @Option(help: "Path of the sutra-node binary (default: next to this one).") var nodeBinary: String?
    @Option(help: "Keep the cluster's files here (default: a temporary directory, removed when the run passes).") var directory: String?
    @Option(parsing: .upToNextOption, help: "Extra flags for every node.") var nodeFlags: [String] = []
    @Option(help: "What cuts links for partitions: auto, namespaces, proxy or none.") var network = "auto"
    @Option(help: "Share of operations that are cross-shard batches of register puts and deletes (0…0.5).") var batchShare = 0.15

    func run() async throws {
        let kinds: [FaultKind]
        do { kinds = try FaultKind.parse(faults) } catch { throw ValidationError("\(error)") }
        var o = ChaosOptions(nodeBinary: nodeBinary ?? ChaosCommand.siblingBinary("sutra-node"))
        o.duration = duration
        o.faults = kinds
        o.seed = seed
        o.historyPath = history
        o.reportPath = report
        o.processes = processes
        o.keys = keys
        o.shards = shards
        o.directory = directory
        o.nodeFlags = nodeFlags
        o.batchShare = batchShare
        guard let mode = NetworkMode(rawValue: network) else {
            throw ValidationError("--network is '\(network)'; allowed: \(NetworkMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        o.network = mode
        guard duration >= 5, processes >= 1, keys >= 1, (1...64).contains(shards), (0...0.5).contains(batchShare) else {
            throw ValidationError("--duration ≥ 5, --processes ≥ 1, --keys ≥ 1, --shards 1…64, --batch-share 0…0.5")
        }
        let r = try await ChaosRun.run(o)
        print(r.summary(), terminator: "")
        if let history { print("history: \(history)") }
        if let report { print("report: \(report)") }
        if !r.valid { throw ExitCode(1) }
    }

    static func siblingBinary(_ name: String) -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
    }
}
