import Raft

/// The knobs of one simulated run. Everything random is drawn from `seed`, so a run replays exactly.
public struct SimConfig: Sendable {
    public var seed: UInt64
    /// Initial voters (3 or 5). One extra node id is started as a spare for membership changes.
    public var voters: Int
    /// Ticks of the fault phase (faults, client load); then faults heal and liveness is checked.
    public var faultTicks: Int = 300
    /// After healing, a leader must exist and a new write must commit within this many ticks.
    public var livenessBoundTicks: Int = 200
    public var electionTick: Int = 10
    public var heartbeatTick: Int = 1
    public var preVote = true
    public var checkQuorum = true
    public var readOnly: ReadOnlyOption = .safe
    /// The lease margin of lease reads (RaftConfig.leaseClockDriftTicks); slow fsyncs are longer than this.
    public var leaseClockDriftTicks = 2
    public var membershipChanges = true
    public var snapshots = true
    public var transfers = true
    public var crashes = true
    /// Some crashes also wipe the node's storage (a lost data directory): it restarts blank with the same id
    /// and must rejoin without breaking any invariant. At most one node is without its state at a time.
    public var wipes = true
    public var partitions = true
    /// Slow-disk episodes: a node's fsyncs (hence its acknowledgements and votes) take longer than the lease
    /// margin, and some longer than an election timeout.
    public var slowDisks = true
    /// Known-bad mode for testing the checker: nodes that think they lead serve reads from local state.
    public var unsafeLocalReads = false
    /// Keep and print every event as it happens (for replaying one seed).
    public var traceAll = false

    public init(seed: UInt64, voters: Int) {
        self.seed = seed
        self.voters = voters
    }

    /// The standard mix: seed decides 3 or 5 voters and which features are exercised.
    public static func standard(seed: UInt64) -> SimConfig {
        var rng = SplitMix64(seed: seed ^ 0xC0FF_EE00_D15E_A5E5)
        var c = SimConfig(seed: seed, voters: rng.chance(0.5) ? 3 : 5)
        c.membershipChanges = rng.chance(0.5)
        c.readOnly = rng.chance(0.2) ? .leaseBased : .safe
        return c
    }
}

/// A broken invariant (or a liveness failure): what, when, and the events that led to it.
public struct SimFailure: Error, CustomStringConvertible, Sendable {
    public var seed: UInt64
    public var time: UInt64
    public var reason: String
    public var trace: [String]

    public var description: String {
        var s = "SIMULATION FAILURE seed=\(seed) at t=\(time) (tick \(time / Simulation.unitsPerTick)): \(reason)\n"
        s += "replay: swift run -c release sutra-sim --seed \(seed) --trace\n"
        s += "last \(trace.count) events:\n"
        for line in trace { s += "  " + line + "\n" }
        return s
    }
}

/// Figures from one run, summed over a seed range by the runner.
public struct SimStats: Sendable {
    public var ticks = 0
    public var messagesDelivered = 0
    public var messagesDropped = 0
    public var elections = 0
    public var writesAcked = 0
    public var readsServed = 0
    public var crashes = 0
    /// Crashes that also wiped the node's storage.
    public var wipes = 0
    public var partitions = 0
    public var snapshotsTaken = 0
    public var snapshotsInstalled = 0
    public var transfers = 0
    public var confChanges = 0
    /// Ready persists that took longer than the lease margin (slow-disk episodes).
    public var slowPersists = 0
    /// Reads answered by a leader lease (no heartbeat round).
    public var leaseReads = 0
    /// Ticks from healing to a committed write.
    public var recoveryTicks = 0

    public init() {}

    public mutating func add(_ o: SimStats) {
        ticks += o.ticks; messagesDelivered += o.messagesDelivered; messagesDropped += o.messagesDropped
        elections += o.elections; writesAcked += o.writesAcked; readsServed += o.readsServed
        crashes += o.crashes; wipes += o.wipes; partitions += o.partitions; snapshotsTaken += o.snapshotsTaken
        snapshotsInstalled += o.snapshotsInstalled; transfers += o.transfers; confChanges += o.confChanges
        slowPersists += o.slowPersists; leaseReads += o.leaseReads
        recoveryTicks = max(recoveryTicks, o.recoveryTicks)
    }
}
