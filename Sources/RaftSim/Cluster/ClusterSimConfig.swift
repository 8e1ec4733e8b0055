import Raft

/// Settings of one cluster-simulation run: real `NodeCore`s on simulated nodes (see `ClusterSimulation`).
public struct ClusterSimConfig: Sendable {
    public var seed: UInt64
    public var nodes = 3
    public var shards = 3
    /// Voting replicas per shard (`--replication`); below `nodes`, each node holds only its shards and reads the
    /// others through the nodes that hold them.
    public var replication = 3
    /// Register concepts the workload puts, gets, compares-and-sets, deletes and batches.
    public var registers = 8
    /// Concepts created at setup and never deleted, between which associations are made and paths searched.
    public var anchors = 4
    public var clients = 4
    public var faultTicks = 250
    /// After healing, every transaction must be settled and every replica caught up within this many ticks.
    public var settleTicks = 600
    public var crashes = true
    /// Some crashes also lose the node's whole data directory: it restarts blank with the same id and must rejoin
    /// from its peers. At most one node is without its state at a time (and it counts as down for the crash budget).
    public var wipes = true
    public var partitions = true
    /// Graceful stops (SIGTERM): the node hands its leaderships away, tells its peers it drains, then exits and
    /// is restarted later. Checked: under otherwise healthy conditions it never takes a leadership back while
    /// stopping and ends leading nothing.
    public var gracefulStops = true
    public var slowDisks = true
    /// Online backups (`NodeCore.captureBackup`) taken through a random node under the faults: every one that
    /// succeeds is checked to hold no half transaction (each out-edge with its in-edge, same confidence), and
    /// the fences they raise must all be lifted (by the backup, or by a leader after their life) once settled.
    public var backups = true
    /// Known-bad switch (production's `--unsafe-local-reads`): the checkers must catch the stale reads.
    public var unsafeLocalReads = false
    /// Print every trace line as it happens (replaying one seed).
    public var traceAll = false
    /// During the faults, one node is killed for good and replaced by a spare machine the way an operator does it
    /// (`sutra node add`, start it with `--join`, `sutra node replace`, `sutra node remove`): every shard's replica
    /// moves to it through Raft membership changes, under the other faults. Checked on top of everything else:
    /// the moves finish, and every shard's Raft membership is the map's once settled.
    public var replaceNode = false
    /// During the faults, the cluster grows by one machine (`sutra node add`, started with `--join`, `sutra
    /// rebalance`): replicas move onto it until the nodes' loads differ by one at most, and the nodes that gave
    /// one up read and write it through its holders. Checked: the rebalance finishes, every invariant holds.
    public var growNode = false
    /// During the faults, replicas move by hand (`sutra move-replica`), where some node lacks a shard (a
    /// replication factor below the node count). Checked: every move taken ends, every invariant holds.
    public var moveReplicas = false

    public init(seed: UInt64) { self.seed = seed }

    /// The normal mix: a quarter of the seeds run five nodes — half of them with every shard on every node, half
    /// with three replicas per shard — the rest three; three or four shards.
    public static func standard(seed: UInt64) -> ClusterSimConfig {
        var c = ClusterSimConfig(seed: seed)
        c.nodes = seed % 4 == 3 ? 5 : 3
        c.replication = seed % 8 == 7 ? 3 : c.nodes
        c.shards = seed % 2 == 0 ? 3 : 4
        c.replaceNode = seed % 3 == 1
        c.growNode = seed % 3 == 2
        c.moveReplicas = c.replication < c.nodes
        return c
    }
}

/// What a run did, summed over seeds: the evidence that the faults and the reads really happened.
public struct ClusterSimStats: Sendable, Equatable {
    public var seeds = 0
    public var steps: UInt64 = 0
    public var messagesDelivered: UInt64 = 0
    public var messagesDropped: UInt64 = 0
    public var crashes = 0
    /// Crashes that also wiped the node's data.
    public var wipes = 0
    /// Processes started after a crash (each a new incarnation).
    public var incarnations = 0
    public var partitions = 0
    public var slowDisks = 0
    /// Disks that filled up (writes stall and are retried) or fell below the free-space floor (writes refused);
    /// WAL write attempts that found no space; client write attempts refused for a full disk.
    public var fullDisks = 0
    /// Windows in which every disk was full at once (checked: linearizable reads were still served).
    public var allDisksFullWindows = 0
    public var stalledWrites = 0
    public var writesRefusedDiskFull = 0
    /// Graceful stops begun, and those that ran under healthy conditions (checked to end leading nothing).
    public var gracefulStops = 0
    public var gracefulStopsChecked = 0
    public var durableWrites: UInt64 = 0
    public var opsOK = 0
    public var opsFailed = 0
    public var opsUnknown = 0
    public var readsChecked = 0
    public var searchesChecked = 0
    public var batchesOK = 0
    public var txnsCommitted = 0
    public var txnsAborted = 0
    /// Forward replies that matched no request of the process they reached (dropped, as they must be).
    public var unmatchedForwardReplies: UInt64 = 0
    /// Forward answers checked to be the answer to the very request they were handed to.
    public var forwardAnswersChecked = 0
    /// Reads of shards the asking node holds no replica of, answered by a node that holds them (a replication
    /// factor below the node count; a joining node), each checked to answer the question asked.
    public var shardReadsAnswered = 0
    /// Acknowledged writes (cross-shard ones, batches, cascading deletes, single-shard writes) sent again with
    /// their session right after their answer (a retry racing its answer), and those answered with the first
    /// outcome.
    public var duplicatesSent = 0
    public var duplicatesMatched = 0
    /// Online backups begun, taken (and checked consistent), and refused or abandoned.
    public var backupsBegun = 0
    public var backupsTaken = 0
    public var backupsFailed = 0
    /// Edges (both sides) checked in backup images.
    public var backupEdgesChecked = 0
    /// Fences lifted by a leader after their life (their backup was abandoned), over every process.
    public var fencesExpired = 0
    /// Requests tried again while their shard's leadership was in flux, instead of failing (every process).
    public var leaderWaitRetries: UInt64 = 0
    /// Snapshots streamed in chunks: received whole, and streams abandoned (every process).
    public var snapshotStreamsReceived: UInt64 = 0
    public var snapshotStreamsFailed: UInt64 = 0
    /// Nodes killed for good and replaced by a spare through membership changes, to the end (`replaceNode`).
    public var replacements = 0
    /// Clusters grown by a node and rebalanced onto it, of those begun.
    public var growths = 0
    public var growthsBegun = 0
    /// Replicas moved by hand (`moveReplicas`): asked, taken by the map, and finished in place (the rest rolled
    /// back by a crash or a failover).
    /// Content digests asked through a node once settled, each the shard leaders' data (`contentDigests`).
    public var digestsChecked = 0
    public var manualMovesAsked = 0
    public var manualMovesTaken = 0
    public var manualMovesFinished = 0
    public var replacementsBegun = 0
    /// Of those, replacements whose new machine died mid-move and was replaced in turn by a second spare.
    public var replacementsOfDeadReplacements = 0

    public init() {}

    public mutating func add(_ o: ClusterSimStats) {
        seeds += o.seeds; steps += o.steps; messagesDelivered += o.messagesDelivered; messagesDropped += o.messagesDropped
        crashes += o.crashes; wipes += o.wipes; incarnations += o.incarnations; partitions += o.partitions; slowDisks += o.slowDisks
        gracefulStops += o.gracefulStops; gracefulStopsChecked += o.gracefulStopsChecked
        durableWrites += o.durableWrites; opsOK += o.opsOK; opsFailed += o.opsFailed; opsUnknown += o.opsUnknown
        readsChecked += o.readsChecked; searchesChecked += o.searchesChecked; batchesOK += o.batchesOK
        txnsCommitted += o.txnsCommitted; txnsAborted += o.txnsAborted; unmatchedForwardReplies += o.unmatchedForwardReplies
        forwardAnswersChecked += o.forwardAnswersChecked
        shardReadsAnswered += o.shardReadsAnswered
        duplicatesSent += o.duplicatesSent; duplicatesMatched += o.duplicatesMatched
        backupsBegun += o.backupsBegun; backupsTaken += o.backupsTaken; backupsFailed += o.backupsFailed
        backupEdgesChecked += o.backupEdgesChecked; fencesExpired += o.fencesExpired; leaderWaitRetries += o.leaderWaitRetries
        snapshotStreamsReceived += o.snapshotStreamsReceived; snapshotStreamsFailed += o.snapshotStreamsFailed
        replacements += o.replacements; replacementsBegun += o.replacementsBegun
        growths += o.growths; growthsBegun += o.growthsBegun
        digestsChecked += o.digestsChecked
        manualMovesAsked += o.manualMovesAsked; manualMovesTaken += o.manualMovesTaken; manualMovesFinished += o.manualMovesFinished
        replacementsOfDeadReplacements += o.replacementsOfDeadReplacements
        fullDisks += o.fullDisks; allDisksFullWindows += o.allDisksFullWindows; stalledWrites += o.stalledWrites; writesRefusedDiskFull += o.writesRefusedDiskFull
    }
}

/// A violated invariant: the seed, where, why, the last events, and how to replay it.
public struct ClusterSimFailure: Error, CustomStringConvertible, Sendable {
    public var seed: UInt64
    public var tick: UInt64
    public var reason: String
    public var trace: [String]
    /// The run's fault-phase length (part of the replay command).
    public var faultTicks: Int = 250

    public var description: String {
        var s = "CLUSTER SIMULATION FAILURE seed=\(seed) at tick \(tick): \(reason)\n"
        s += "replay: swift run -c release sutra-sim --cluster --seed \(seed) --fault-ticks \(faultTicks) --trace\n"
        s += "last \(trace.count) events:\n"
        for line in trace { s += "  " + line + "\n" }
        return s
    }
}
