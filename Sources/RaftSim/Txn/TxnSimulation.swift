import Dispatch
import Synchronization
import Raft
import Shard
import Txn2PC

/// Settings of one 2PC simulation run.
public struct TxnSimConfig: Sendable {
    public var seed: UInt64
    public var nodes = 3
    public var shards = 3
    /// Concepts created before the faults start (spread over the shards), plus ids that never exist.
    public var concepts = 12
    public var missing = 2
    public var clients = 4
    public var faultTicks = 200
    /// After healing: every intent must be gone and every record decided within this many ticks.
    public var settleTicks = 400
    public var timeouts: TxnTimeouts = {
        var t = TxnTimeouts()
        t.retryTicks = 3
        t.prepareTicks = 40
        t.intentTicks = 30
        t.forgetTicks = 2
        return t
    }()
    public var crashes = true
    public var partitions = true
    /// Known-bad switch for the checker's own test: reads ignore intents (may show half a transaction).
    public var readsIgnoreIntents = false

    public init(seed: UInt64) { self.seed = seed }
}

/// What a run did, for the test's "the faults really happened" assertions.
public struct TxnSimStats: Sendable, Equatable {
    public var committed = 0
    public var aborted = 0
    public var unknown = 0
    public var reads = 0
    public var crashes = 0
    public var partitions = 0
    public var recoveredOrAdopted: UInt64 = 0
    public var dropped = 0

    public mutating func add(_ o: TxnSimStats) {
        committed += o.committed; aborted += o.aborted; unknown += o.unknown; reads += o.reads
        crashes += o.crashes; partitions += o.partitions; recoveredOrAdopted += o.recoveredOrAdopted; dropped += o.dropped
    }
}

/// A deterministic simulation of cross-shard transactions over several Raft groups: the real shard state
/// machine and the real coordinator and recovery drivers on every node, a seeded network that drops,
/// duplicates, delays (reorders) and partitions, and crashes of any node at any step — the coordinator's and
/// the participants' leaders included. Clients run associations between random concepts (some missing, many
/// conflicting) and linearizable edge reads, and sometimes retry an unknown outcome with the same id.
///
/// Checked: decisions never change (every replica, every retry, every client answer agree); after healing,
/// within `settleTicks`, no intent and no pending record is left; then atomicity (an out-edge exists exactly
/// when its in-edge does, both from the same committed transaction, and every committed transaction's
/// association exists) and linearizable reads (no read shows an aborted transaction; no read misses a
/// transaction that was acknowledged, or seen by another read, before it began).
public final class TxnSimulation {
    public let config: TxnSimConfig
    let limits = ShardLimits(dimension: 0)
    var rng: SplitMix64
    var now: UInt64 = 0
    var nodes: [TxnSimNode] = []
    var queue = SimQueue<TxnSimMessage>()
    var blocked: Set<SimNetwork.Link> = []
    var dropRate = 0.0
    var duplicateRate = 0.0
    var maxDelay: UInt64 = 4
    var crashRate = 0.0
    var partitionRate = 0.0
    var healAt: UInt64?
    var failure: String?
    var stats = TxnSimStats()
    var checker = TxnChecker()
    var conceptIDs: [ConceptID] = []
    var missingIDs: [ConceptID] = []
    var clients: [SimClient] = []
    var load = true
    var notes: [String] = []

    public init(config: TxnSimConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        let voters = (1...UInt64(config.nodes)).map { $0 }
        for id in voters { nodes.append(TxnSimNode(id: id, shards: config.shards, voters: voters, sim: self)) }
        for n in nodes { n.start() }
        var k: UInt64 = 1
        while conceptIDs.count < config.concepts {
            conceptIDs.append(ConceptID(hi: config.seed &+ 1, lo: k))
            k += 1
        }
        for j in 0..<config.missing { missingIDs.append(ConceptID(hi: 0xDEAD, lo: UInt64(j))) }
        clients = (0..<config.clients).map { SimClient(id: UInt64($0) + 1) }
    }

    func shard(of id: ConceptID) -> Int { id.shard(of: config.shards) }

    /// Runs setup, faults, healing and the checks. Returns the figures or the first violation.
    public func run() -> Result<TxnSimStats, SimFailure> {
        setup()
        if let f = failure { return .failure(SimFailure(seed: config.seed, time: now, reason: "2PC setup: " + f, trace: Array(notes.suffix(40)))) }
        dropRate = [0.0, 0.02, 0.1][rng.below(3)]
        duplicateRate = rng.chance(0.5) ? 0.05 : 0
        maxDelay = UInt64(1 + rng.below(6))
        crashRate = config.crashes ? [0.0, 0.008, 0.02][rng.below(3)] : 0
        partitionRate = config.partitions ? [0.0, 0.008, 0.02][rng.below(3)] : 0
        note("drop=\(dropRate) dup=\(duplicateRate) delay=\(maxDelay) crash=\(crashRate) partition=\(partitionRate)")
        let end = now + UInt64(config.faultTicks) * TxnSimulation.unitsPerTick
        while now < end, failure == nil { step(faults: true) }
        if failure == nil { heal() }
        if failure == nil { settle() }
        if failure == nil { checkFinalState() }
        if let f = failure { return .failure(SimFailure(seed: config.seed, time: now, reason: "2PC: " + f, trace: Array(notes.suffix(40)))) }
        for n in nodes where n.alive {
            stats.recoveredOrAdopted += n.coordinator.stats.adopted + n.recovery.recovered
        }
        return .success(stats)
    }

    func note(_ s: String) { notes.append("t=\(now) " + s); if notes.count > 400 { notes.removeFirst(100) } }

    func fail(_ why: String) { if failure == nil { failure = why } }

    // MARK: phases

    /// Elects leaders and creates the concepts, without faults.
    func setup() {
        load = false
        var created = false
        for _ in 0..<3000 {
            step(faults: false)
            if !created, (0..<config.shards).allSatisfy({ s in nodes.contains { $0.isLeader(of: s) } }) {
                created = true
                for c in conceptIDs {
                    let s = shard(of: c)
                    let leader = nodes.first { $0.isLeader(of: s) }!
                    let req = ShardRequest(clientID: 0, sequence: 0, command: .putConcept(Concept(id: c, content: [1])))
                    leader.proposeLocal(shard: s, req) { _ in }
                }
            }
            if created, nodes.allSatisfy({ n in conceptIDs.allSatisfy { n.state(of: shard(of: $0)).concept($0) != nil } }) {
                load = true
                return
            }
        }
        fail("the cluster did not elect leaders and create the concepts in 3000 steps")
    }

    func heal() {
        load = false
        blocked = []
        healAt = nil
        dropRate = 0
        duplicateRate = 0
        for n in nodes where !n.alive { n.start(); note("restart \(n.id) (heal)") }
    }

    /// Runs until every replica applied its shard's commit index and no intent or pending record is left.
    func settle() {
        for _ in 0..<(UInt64(config.settleTicks) * TxnSimulation.unitsPerTick) {
            step(faults: false)
            if failure != nil { return }
            if quiescent() { return }
        }
        var left: [String] = []
        for n in nodes {
            for s in 0..<config.shards {
                let t = n.state(of: s).txns
                if !t.intents.isEmpty { left.append("node \(n.id) shard \(s): intents \(t.intents.keys.sorted())") }
                if t.pendingRecords > 0 { left.append("node \(n.id) shard \(s): \(t.pendingRecords) pending records") }
            }
        }
        fail("not settled \(config.settleTicks) ticks after healing: " + left.prefix(6).joined(separator: "; "))
    }

    func quiescent() -> Bool {
        for s in 0..<config.shards {
            guard let leader = nodes.first(where: { $0.isLeader(of: s) }) else { return false }
            for n in nodes where n.replicas[s].applied < leader.replicas[s].raft.commitIndex { return false }
            for n in nodes {
                let t = n.state(of: s).txns
                if !t.intents.isEmpty || t.pendingRecords > 0 { return false }
            }
        }
        return true
    }

    // MARK: the scheduler

    static let unitsPerTick: UInt64 = 4

    func step(faults: Bool) {
        if now % TxnSimulation.unitsPerTick == 0 {
            for n in nodes where n.alive { n.tick() }
            if faults { injectFaults() }
            for n in nodes where !n.alive {
                if let at = n.restartAt, at <= now { n.start(); note("restart \(n.id)") }
            }
            if let at = healAt, at <= now { blocked = []; healAt = nil; note("partition healed") }
            if load { clientStep() }
        }
        while failure == nil, let m = queue.pop(dueBy: now) { deliver(m) }
        var rounds = 0
        while rounds < 50, nodes.contains(where: { $0.alive && $0.process() }) { rounds += 1 }
        now += 1
    }

    func send(_ m: TxnSimMessage) {
        if rng.chance(dropRate) { stats.dropped += 1; return }
        queue.push(m, at: now + 1 + UInt64(rng.below(Int(maxDelay))))
        if rng.chance(duplicateRate) { queue.push(m, at: now + 1 + UInt64(rng.below(Int(maxDelay) * 3))) }
    }

    func deliver(_ m: TxnSimMessage) {
        guard let target = nodes.first(where: { $0.id == m.to }), target.alive else { return }
        if blocked.contains(SimNetwork.Link(from: m.from, to: m.to)) { stats.dropped += 1; return }
        target.receive(m)
    }

    func injectFaults() {
        if rng.chance(crashRate) {
            let alive = nodes.filter(\.alive)
            if alive.count == nodes.count {
                let victim = alive[rng.below(alive.count)]
                victim.crash()
                victim.restartAt = now + UInt64(20 + rng.below(150)) * TxnSimulation.unitsPerTick
                stats.crashes += 1
                note("crash \(victim.id)")
            }
        }
        if healAt == nil, rng.chance(partitionRate) {
            let ids = nodes.map(\.id)
            let isolated = ids[rng.below(ids.count)]
            let oneWay = rng.chance(0.3)
            for other in ids where other != isolated {
                blocked.insert(SimNetwork.Link(from: isolated, to: other))
                if !oneWay { blocked.insert(SimNetwork.Link(from: other, to: isolated)) }
            }
            healAt = now + UInt64(30 + rng.below(150)) * TxnSimulation.unitsPerTick
            stats.partitions += 1
            note("partition \(isolated) \(oneWay ? "outbound only" : "both ways")")
        }
    }
}

/// Runs many 2PC seeds over a few threads and collects the figures and failures.
public enum TxnSeedRunner {
    public struct Outcome: Sendable {
        public var seedsRun = 0
        public var stats = TxnSimStats()
        public var failures: [SimFailure] = []
    }

    public static func run(seeds: Range<UInt64>, parallelism: Int = 2,
                           configure: @Sendable (UInt64) -> TxnSimConfig = { TxnSimConfig(seed: $0) }) -> Outcome {
        let state = Mutex(Outcome())
        let next = Atomic<Int>(0)
        let total = seeds.count
        DispatchQueue.concurrentPerform(iterations: max(1, min(parallelism, total))) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                if k >= total { break }
                let result = TxnSimulation(config: configure(seeds.lowerBound + UInt64(k))).run()
                state.withLock { o in
                    o.seedsRun += 1
                    switch result {
                    case .success(let s): o.stats.add(s)
                    case .failure(let f): o.failures.append(f)
                    }
                }
            }
        }
        var out = state.withLock { $0 }
        out.failures.sort { $0.seed < $1.seed }
        return out
    }
}
