import Logging
import NodeCore
import Raft
import Shard

/// A deterministic simulation of a whole Sutra cluster running the production turn logic: every node is a real
/// `NodeCore` (shard replicas, group commit, forwards, read waiters, placement, the 2PC drivers) over a
/// memory store with the WAL's record semantics, driven by a seeded scheduler — the FoundationDB / TigerBeetle
/// way: the simulator runs the very code a node runs.
///
/// Faults: a network that drops, duplicates, delays and reorders frames, symmetric and one-way partitions,
/// crashes that lose what was not durable, restarts as new process incarnations, and slow disks (writes longer
/// than an election timeout). A client workload runs through `NodeCore.execute`, the entry point both front
/// ends use: put, get, compare-and-set, delete, cross-shard batches, associations, neighbours, search, path.
///
/// Checked (`ClusterChecks`): linearizability of every register and edge (concept reads of batch items and edge
/// reads included) with ChaosCheck's checker, final reads after healing (no acknowledged write lost), that a
/// linearizable search contains every acknowledged embedding, paths over attempted edges only, 2PC decisions
/// that never change, settling after healing, edge atomicity and replica convergence. Same seed, same run.
public final class ClusterSimulation {
    public static let unitsPerTick: UInt64 = 4
    static let tickMs: UInt64 = 20
    static let nanosPerUnit: UInt64 = tickMs * 1_000_000 / unitsPerTick
    static let dimension = 4

    let config: ClusterSimConfig
    var rng: SplitMix64
    var now: UInt64 = 0
    var nodes: [ClusterSimNode] = []
    var stats = ClusterSimStats()
    /// The log of node `id`'s core: its lines join the trace when every trace line is printed (`--trace`),
    /// stamped with the simulated tick; silent otherwise.
    func logger(node id: NodeID) -> Logger {
        guard config.traceAll else { return Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }) }
        return Logger(label: "node \(id)", factory: { [unowned self] label in SimTraceLogHandler(label: label) { self.tick } })
    }
    private var queue = SimQueue<(from: NodeID, to: NodeID, frame: PeerFrame)>()
    private var blocked: Set<SimNetwork.Link> = []
    private var partitionHealAt: UInt64?
    private var dropRate = 0.0
    private var duplicateRate = 0.0
    private var maxDelay = 4
    private var crashRate = 0.0
    private var partitionRate = 0.0
    private var slowDiskRate = 0.0
    private var replyRaceRate = 0.0
    private var gracefulStopRate = 0.0
    private var backupRate = 0.0
    /// The backup being taken: through which node, and that process's incarnation (a crash abandons it).
    private var backupTaker: (node: NodeID, incarnation: UInt64)?
    static let backupFenceTicks: UInt32 = 150
    /// The graceful stop in progress: which node, the fault count when it began (other faults make the checks
    /// moot), whether everything else was healthy then, how many shards it led at the last step, and the shards
    /// whose election it was already running (it may still win those).
    /// Every disk full at once (no other fault begins meanwhile): linearizable reads must still be served, as
    /// they need no WAL write. Probe gets issued and served during the window.
    private var allDisksFull: (end: UInt64, start: UInt64, issued: Int, served: Int)?
    /// The replacement of a node killed for good by the spare (`config.replaceNode`).
    var replacement: SimReplacement?
    /// The cluster grown by one node (`config.growNode`).
    var growth: SimGrowth?
    /// Replicas moved by hand (`config.moveReplicas`).
    var mover: SimMoves?
    private var allDisksFullRate = 0.0
    private var gracefulStop: (node: NodeID, faultsAtStart: Int, healthyAtStart: Bool, led: Int, campaigning: Set<Int>)?
    private var failure: String?
    private var trace: [String] = []
    var workload: ClusterWorkload!
    var checks = ClusterChecks()

    var nanos: UInt64 { now * ClusterSimulation.nanosPerUnit }
    var tick: UInt64 { now / ClusterSimulation.unitsPerTick }

    public init(config: ClusterSimConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed ^ 0xC1A5_7E55)
        for id in 1...NodeID(config.nodes) { nodes.append(ClusterSimNode(id: id, sim: self)) }
        if config.replaceNode {
            nodes.append(ClusterSimNode(id: NodeID(config.nodes + 1), sim: self, spare: true))
            let victim = NodeID(1 + rng.below(config.nodes))
            let at = UInt64(config.faultTicks) * UInt64(20 + rng.below(40)) / 100
            let live = rng.chance(0.5)
            // A third of the replacements lose their new machine mid-move: a second spare replaces it.
            let backup: NodeID? = rng.chance(1.0 / 3) ? NodeID(config.nodes + 2) : nil
            if let backup { nodes.append(ClusterSimNode(id: backup, sim: self, spare: true)) }
            replacement = SimReplacement(victim: victim, spare: NodeID(config.nodes + 1), at: at, live: live, backup: backup)
        } else if config.growNode {
            nodes.append(ClusterSimNode(id: NodeID(config.nodes + 1), sim: self, spare: true))
            growth = SimGrowth(newNode: NodeID(config.nodes + 1), at: UInt64(config.faultTicks) * UInt64(10 + rng.below(50)) / 100)
        }
        if config.moveReplicas {
            mover = SimMoves(moves: 1 + rng.below(3), at: UInt64(config.faultTicks) * UInt64(10 + rng.below(40)) / 100)
        }
        for n in members { n.start(incarnation: newIncarnation()) }
        workload = ClusterWorkload(sim: self)
    }

    /// The nodes of the cluster now: neither a spare not yet started nor a node killed for good.
    var members: [ClusterSimNode] { nodes.filter { !$0.spare && !$0.retired } }

    func nodeConfig(_ id: NodeID) -> NodeConfig {
        var c = NodeConfig()
        c.nodeID = id
        c.clusterID = "sim"
        c.numShards = config.shards
        c.replication = config.replication
        c.dimension = ClusterSimulation.dimension
        for n in 1...NodeID(config.nodes) { c.peers[n] = PeerEndpoint(host: "sim-\(n)", port: 7300) }
        if nodes.first(where: { $0.id == id })?.joiner == true {
            c.join = true
            c.peers[id] = PeerEndpoint(host: "sim-\(id)", port: 7300)
        }
        c.tickMs = Int(ClusterSimulation.tickMs)
        c.electionTicks = 10
        c.snapshotEntries = 60
        c.compactMargin = 15
        c.txnIntentTimeoutMs = 600
        c.txnPrepareTimeoutMs = 800
        c.unsafeLocalReads = config.unsafeLocalReads
        // Half the seeds run with slow-disk detection off (`--slow-disk-ms 0`): a slow leader then keeps leading,
        // and its writes (and the replies to writes forwarded to it) take as long as its disk.
        c.slowDiskMs = config.seed % 2 == 1 ? 0 : 50
        // Snapshots (a few KiB here) are streamed in many small chunks on two seeds of three, through the lossy,
        // reordering network and the crashes; on the third they travel in one frame, as to an older peer.
        c.snapshotChunkBytes = [96, 512, 1 << 20][Int(config.seed / 2 % 3)]
        return c
    }

    func newIncarnation() -> UInt64 {
        stats.incarnations += 1
        return rng.next() | 1
    }

    func node(_ id: NodeID) -> ClusterSimNode { nodes[Int(id) - 1] }

    func note(_ s: String) {
        let line = "t=\(tick) " + s
        if config.traceAll { print(line) }
        trace.append(line)
        if trace.count > 600 { trace.removeFirst(200) }
    }

    func fail(_ why: String) {
        if failure == nil { failure = why; note("FAIL " + why) }
    }

    var failed: Bool { failure != nil }

    // MARK: the run

    /// Setup, faults under load, heal, settle, final reads, checks. Returns the figures or the first violation.
    public func run() -> Result<ClusterSimStats, ClusterSimFailure> {
        // A core and its driver refer to each other (`NodeCore.io`): end every process when the run ends, or each
        // seed's cores stay in memory (about 10 MB a seed; 1,000 seeds in one process took 10 GB).
        defer { for n in nodes where n.alive { n.crash() } }
        chooseFaultMix()
        phase("setup") { workload.setup() }
        phase("faults") {
            let end = now + UInt64(config.faultTicks) * ClusterSimulation.unitsPerTick
            while now < end, !failed { step(faults: true) }
        }
        phase("heal") { heal() }
        phase("settle") { settle() }
        phase("final reads") { workload.finalReads() }
        phase("digests") { checkDigestsThroughEveryNode() }
        phase("duplicates") { workload.checkDuplicatesAnswered() }
        phase("checks") { checks.checkAll(self) }
        if let f = failure {
            return .failure(ClusterSimFailure(seed: config.seed, tick: tick, reason: f, trace: Array(trace.suffix(60)),
                                              faultTicks: config.faultTicks))
        }
        stats.seeds = 1
        for n in nodes { if let core = n.core { countProcess(core) } }
        return .success(stats)
    }

    /// Adds a process's own counters to the run's (when it crashes or stops, and for the last processes).
    func countProcess(_ core: NodeCore) {
        stats.unmatchedForwardReplies += core.unmatchedForwardReplies
        stats.fencesExpired += Int(core.metrics.fencesExpired)
        stats.leaderWaitRetries += core.metrics.leaderWaitRetries
        stats.snapshotStreamsReceived += core.metrics.snapshotStreamsReceived
        stats.snapshotStreamsFailed += core.metrics.snapshotStreamsFailed
    }

    private func phase(_ name: String, _ body: () -> Void) {
        guard !failed else { return }
        note("phase \(name)")
        body()
    }

    private func chooseFaultMix() {
        dropRate = [0.0, 0.02, 0.08][rng.below(3)]
        duplicateRate = rng.chance(0.5) ? 0.03 : 0
        maxDelay = 1 + rng.below(6)
        crashRate = config.crashes ? [0.0, 0.006, 0.015][rng.below(3)] : 0
        partitionRate = config.partitions ? [0.0, 0.006, 0.015][rng.below(3)] : 0
        slowDiskRate = config.slowDisks ? [0.0, 0.005, 0.012][rng.below(3)] : 0
        replyRaceRate = config.crashes && config.slowDisks ? [0.0, 0.012][rng.below(2)] : 0
        allDisksFullRate = config.slowDisks ? [0.0, 0.008][rng.below(2)] : 0
        gracefulStopRate = config.gracefulStops ? [0.0, 0.004, 0.01][rng.below(3)] : 0
        backupRate = config.backups ? [0.0, 0.004, 0.012][rng.below(3)] : 0
        note("backups=\(backupRate)")
        note("nodes=\(config.nodes) shards=\(config.shards) drop=\(dropRate) dup=\(duplicateRate) delay=\(maxDelay) crash=\(crashRate) partition=\(partitionRate) slowDisk=\(slowDiskRate) replyRace=\(replyRaceRate) gracefulStop=\(gracefulStopRate)")
    }

    /// Every link restored, every node up, disks healthy, the network reliable.
    private func heal() {
        closeFullDiskWindow()
        blocked = []
        partitionHealAt = nil
        dropRate = 0
        duplicateRate = 0
        for n in members {
            n.crashAgainAt = nil
            n.diskDelay = 1
            n.slowUntil = nil
            n.diskFull = nil
            n.reportDiskSpace()
            if !n.alive { n.start(incarnation: newIncarnation()); note("restart \(n.id) (heal)") }
        }
    }

    /// Runs (with client load off) until every shard has a leader that every replica has caught up with and no
    /// transaction is left in flight anywhere; fails after `settleTicks`.
    private func settle() {
        workload.load = false
        let end = now + UInt64(config.settleTicks) * ClusterSimulation.unitsPerTick
        while now < end, !failed {
            step(faults: false)
            if workload.idle && quiescent() { return }
        }
        guard !failed else { return }
        var left: [String] = []
        if let r = replacement, !r.done { left.append("the replacement of node \(r.victim) by node \(r.spare) is \(r.phase)") }
        if let g = growth, !g.done { left.append("the growth onto node \(g.newNode) is \(g.phase)") }
        if let m = mover, m.phase == .moving, let c = m.current { left.append("the move of shard \(c.shard) from node \(c.from) to node \(c.to) is under way") }
        for n in members {
            guard let core = n.core else { continue }
            for r in core.replicas {
                let t = r.state.txns
                if !t.intents.isEmpty { left.append("node \(n.id) shard \(r.shard): intents \(t.intents.keys.sorted())") }
                if t.pendingRecords > 0 { left.append("node \(n.id) shard \(r.shard): \(t.pendingRecords) pending records") }
                if !r.state.backupFences.isEmpty { left.append("node \(n.id) shard \(r.shard): backup fences \(r.state.backupFences.keys.sorted()) still raised") }
            }
        }
        for s in 0..<config.shards where leader(of: s) == nil {
            left.append("shard \(s) has no leader")
            // Each replica's Raft view, so a stuck election reads off the trace.
            for n in members {
                guard let r = n.core?.replicas[s].raft else { note("  shard \(s) node \(n.id): down"); continue }
                note("  shard \(s) node \(n.id): \(r.role) term \(r.term) vote \(r.isAbstaining ? "abstaining" : String(r.vote)) "
                     + "last \(r.lastIndex) (term \(r.term(at: r.lastIndex) ?? 0)) committed \(r.commitIndex) leader \(r.leader) members \(r.confState)")
            }
        }
        if !nodes.contains(where: { $0.core?.meta.isLeader == true }) {
            left.append("the meta group has no leader")
            for n in nodes {
                guard let r = n.core?.meta.raft else { continue }
                note("  meta node \(n.id): \(r.role) term \(r.term) vote \(r.isAbstaining ? "abstaining" : String(r.vote)) last \(r.lastIndex) committed \(r.commitIndex) leader \(r.leader)")
            }
        } else {
            for n in nodes { if let c = n.core { left.append("meta node \(n.id): applied \(c.meta.appliedIndex) map v\(c.clusterMap.map { "\($0.version)" } ?? " none") leader \(c.meta.raft.leader)") } }
        }
        left.insert(notQuiescent() ?? "quiescent", at: 0)
        fail("not settled \(config.settleTicks) ticks after healing: " + left.prefix(6).joined(separator: "; "))
    }

    func leader(of shard: Int) -> ClusterSimNode? {
        nodes.filter { $0.core?.replicas[shard].isLeader == true }.max { $0.core!.replicas[shard].raft.term < $1.core!.replicas[shard].raft.term }
    }

    func quiescent() -> Bool { notQuiescent() == nil }

    /// Why the cluster has not settled yet (nil: it has): the first condition that fails.
    func notQuiescent() -> String? {
        if let r = replacement, !r.done { return "the replacement of node \(r.victim) is \(r.phase)" }
        if let g = growth, !g.done { return "the growth onto node \(g.newNode) is \(g.phase)" }
        if let m = mover, m.phase == .moving, let c = m.current { return "the move of shard \(c.shard) to node \(c.to) is under way" }
        if let m = mover, m.asked != nil { return "a move-replica request is unanswered" }
        for s in 0..<config.shards {
            guard let l = leader(of: s)?.core?.replicas[s] else { return "shard \(s) has no leader" }
            for n in members {
                guard let core = n.core else { return "node \(n.id) is down" }
                // A node holds only its shards' replicas (a replication factor below the node count).
                guard l.raft.confState.contains(n.id) else { continue }
                let r = core.replicas[s]
                if r.appliedIndex < l.raft.commitIndex || r.raft.leader != l.raft.id {
                    return "shard \(s) on node \(n.id): applied \(r.appliedIndex) of \(l.raft.commitIndex), leader \(r.raft.leader) (not \(l.raft.id))"
                }
                if !r.state.txns.intents.isEmpty || r.state.txns.pendingRecords > 0 { return "shard \(s) on node \(n.id) holds transactions" }
                if !r.state.backupFences.isEmpty { return "shard \(s) on node \(n.id) holds backup fences" }
            }
            if l.raft.commitIndex < l.raft.lastIndex { return "shard \(s): its leader has uncommitted entries" }
        }
        // The meta group too: a leader every replica caught up with, every node's addresses in the map.
        guard let m = nodes.compactMap({ $0.core?.meta }).filter(\.isLeader).max(by: { $0.raft.term < $1.raft.term }) else { return "the meta group has no leader" }
        for n in members {
            guard let r = n.core?.meta, r.appliedIndex >= m.raft.commitIndex, r.raft.leader == m.raft.id else { return "meta group on node \(n.id) is behind" }
        }
        guard let map = m.map else { return "no cluster map" }
        if !map.moving.isEmpty { return "shards \(map.moving) are moving" }
        // Balance moves the meta leader would still begin (after a replacement or a growth).
        let live = Set(members.filter(\.alive).map(\.id))
        if let next = map.planMoves(limit: 1, usable: { live.contains($0) }).first { return "the planner still has a move to begin: \(next)" }
        if m.raft.commitIndex < m.raft.lastIndex { return "the meta leader has uncommitted entries" }
        if map.nodes.values.contains(where: { $0.addressesUnknown && $0.state != .removed }) { return "a node's addresses are unknown" }
        if !members.allSatisfy({ $0.core?.hasIndexWork == false }) { return "vector indexing is under way" }
        return nil
    }

    // MARK: the scheduler

    /// One time unit: ticks (every `unitsPerTick`), faults, restarts, client steps; due frames; due disk writes;
    /// then every live node's end of turn.
    func step(faults: Bool) {
        stats.steps += 1
        if now % ClusterSimulation.unitsPerTick == 0 {
            for n in nodes {
                if n.diskFull.map({ $0.until <= now }) == true { n.diskFull = nil; note("disk of \(n.id) has space again") }
                n.reportDiskSpace()
                n.core?.tick(now: nanos)
            }
            if faults { injectFaults() }
            driveReplacement()
            driveGrowth()
            driveMoves(asking: faults)
            for n in nodes where !n.alive {
                if let at = n.restartAt, at <= now { n.start(incarnation: newIncarnation()); note("restart \(n.id) incarnation \(String(n.incarnation, radix: 16))") }
            }
            for n in nodes where n.slowUntil.map({ $0 <= now }) == true { n.slowUntil = nil; n.diskDelay = 1; note("disk of \(n.id) healthy") }
            if let at = partitionHealAt, at <= now { blocked = []; partitionHealAt = nil; note("partition healed") }
            workload.tick()
        }
        while !failed, let m = queue.pop(dueBy: now) { deliver(m) }
        for n in nodes { n.completeWriteIfDue(); n.completeOffLoopIfDue() }
        for n in nodes {
            n.noticeLinks()
            n.noticeCaughtUp()
            guard let core = n.core else { continue }
            core.indexVectors(until: .now + .seconds(3600))
            core.endOfTurn(now: nanos)
            if let why = checks.observeMap(core.clusterMap, node: n.id) { fail(why) }
        }
        checkGracefulStop()
        now += 1
    }

    // MARK: online backups

    /// Asks a random live node for a backup; a successful one's images are checked to hold no half transaction.
    private func beginBackup() {
        if let t = backupTaker, node(t.node).alive, node(t.node).incarnation == t.incarnation { return }
        let alive = nodes.filter { $0.core != nil }
        guard !alive.isEmpty else { return }
        let n = alive[rng.below(alive.count)]
        let id = rng.next() | 1, incarnation = n.incarnation
        backupTaker = (n.id, incarnation)
        stats.backupsBegun += 1
        note("backup \(String(id, radix: 16)) through node \(n.id)")
        n.core!.captureBackup(id: id, fenceTicks: ClusterSimulation.backupFenceTicks, waitTicks: 120) { [unowned self, unowned n] result in
            guard n.incarnation == incarnation else { return }
            self.backupTaker = nil
            switch result {
            case .success(let images):
                self.stats.backupsTaken += 1
                self.note("backup \(String(id, radix: 16)) taken at indexes \(images.map(\.appliedIndex))")
                if let why = self.checks.checkBackup(images, edges: &self.stats.backupEdgesChecked) {
                    self.fail("backup \(String(id, radix: 16)) through node \(n.id): \(why)")
                }
            case .failure(let e):
                self.stats.backupsFailed += 1
                self.note("backup \(String(id, radix: 16)) not taken: \(e.message)")
            }
        }
    }

    // MARK: graceful stops

    private var faultCount: Int { stats.crashes + stats.partitions + stats.slowDisks + stats.fullDisks }

    /// How many nodes may be down at once: a minority of every shard's replicas — of the replication factor, not
    /// the node count (with three replicas of each shard on five nodes, two nodes down may be two of one shard's
    /// three: two wiped disks there lost that shard's quorum for good).
    var minorityBudget: Int { (min(config.nodes, config.replication) - 1) / 2 }

    /// Nodes that count as down for the fault budget: not running, catching up after a wipe, stopping, or in a
    /// crash loop (up now, down again soon).
    private var nodesDown: Int {
        // A node killed for good counts as down until its replacement took every replica it held.
        members.filter { !$0.alive || $0.lostState || $0.core?.stopping == true || $0.crashAgainAt != nil }.count
            + (replacement?.deadNodes ?? 0)
    }

    /// SIGTERM to a live node (at most a minority down or stopping at once).
    private func beginGracefulStop() {
        guard gracefulStop == nil else { return }
        let down = nodesDown
        guard down < minorityBudget else { return }
        let alive = members.filter(\.alive)
        let leaders = alive.filter { $0.core!.replicas.contains(where: \.isLeader) }
        let n = !leaders.isEmpty && rng.chance(0.8) ? leaders[rng.below(leaders.count)] : alive[rng.below(alive.count)]
        let healthy = down == 0 && partitionHealAt == nil && members.allSatisfy { $0.slowUntil == nil && $0.diskFull == nil && $0.crashAgainAt == nil }
        let led = n.core!.replicas.filter(\.isLeader).count
        // An election already past its pre-vote may still be won; every other gain is a leadership taken back.
        let campaigning = Set(n.core!.replicas.filter { $0.raft.role == .candidate }.map(\.shard))
        gracefulStop = (n.id, faultCount, healthy, led, campaigning)
        stats.gracefulStops += 1
        note("SIGTERM \(n.id) (leads \(led) shard(s))")
        n.core!.beginShutdown()
    }

    /// While a node stops under healthy conditions, it hands leaderships away and never takes one back.
    private func checkGracefulStop() {
        guard let g = gracefulStop else { return }
        guard let core = node(g.node).core else { gracefulStop = nil; return }   // it crashed while stopping
        let led = core.replicas.filter { $0.isLeader && !g.campaigning.contains($0.shard) }.count
        if led > g.led, g.healthyAtStart, faultCount == g.faultsAtStart {
            let shards = core.replicas.filter(\.isLeader).map(\.shard)
            fail("node \(g.node) took a leadership back while stopping gracefully: it leads shard(s) \(shards)")
        }
        gracefulStop!.led = led
    }

    /// The stopping node exits (`NodeIO.shutdownFinished`); it restarts later as a new incarnation.
    func gracefulStopEnded(_ id: NodeID, stillLeading: [Int]) {
        guard let g = gracefulStop, g.node == id else { return }
        gracefulStop = nil
        if g.healthyAtStart, faultCount == g.faultsAtStart {
            stats.gracefulStopsChecked += 1
            if !stillLeading.isEmpty {
                fail("node \(id) ended its graceful stop still leading shard(s) \(stillLeading) although every peer was up")
            }
        }
        node(id).restartAt = now + UInt64(2 + rng.below(60)) * ClusterSimulation.unitsPerTick
        note("node \(id) stopped\(stillLeading.isEmpty ? "" : " still leading \(stillLeading)")")
    }

    // MARK: the network

    func linkUp(_ a: NodeID, _ b: NodeID) -> Bool {
        node(a).alive && node(b).alive && !blocked.contains(SimNetwork.Link(from: a, to: b)) && !blocked.contains(SimNetwork.Link(from: b, to: a))
    }

    /// A frame from `from` to `to`: false (nothing sent) when the link is down, as the transport answers.
    /// Per node, the node it last forwarded a request to, and when (for the targeted crashes below).
    private var lastForward: [NodeID: (to: NodeID, at: UInt64)] = [:]

    func send(_ frame: PeerFrame, from: NodeID, to: NodeID) -> Bool {
        guard linkUp(from, to) else { return false }
        if case .forward = frame { lastForward[from] = (to, now) }
        if rng.chance(dropRate) { stats.messagesDropped += 1; return true }
        queue.push((from, to, frame), at: now + 1 + UInt64(rng.below(maxDelay)))
        if rng.chance(duplicateRate) { queue.push((from, to, frame), at: now + 1 + UInt64(rng.below(maxDelay * 3))) }
        return true
    }

    private func deliver(_ m: (from: NodeID, to: NodeID, frame: PeerFrame)) {
        guard let core = node(m.to).core, !blocked.contains(SimNetwork.Link(from: m.from, to: m.to)) else {
            stats.messagesDropped += 1
            return
        }
        stats.messagesDelivered += 1
        core.receive(m.frame, from: m.from, now: nanos)
    }

    // MARK: faults

    /// While every disk is full, every 5 ticks: a linearizable get of a random id at its shard's leader (the
    /// workload's clients are mostly stuck behind stalled writes). Served means answered: found or not found.
    private func probeReadWhileDisksFull() {
        guard allDisksFull != nil, now % (5 * ClusterSimulation.unitsPerTick) == 0 else { return }
        let id = ConceptID(hi: rng.next(), lo: rng.next())
        guard let l = leader(of: id.shard(of: config.shards)), let core = l.core else { return }
        allDisksFull!.issued += 1
        let window = allDisksFull!.start
        core.execute(.get(id, .linearizable), session: ClientSession()) { [weak self] result in
            guard let self, self.allDisksFull?.start == window else { return }
            switch result {
            case .success: self.allDisksFull!.served += 1
            case .failure(let e) where e.code == .notFound: self.allDisksFull!.served += 1
            case .failure: break
            }
        }
    }

    /// Fills every disk at once, when the cluster is whole and every shard has a leader; at the window's end,
    /// fails the seed if gets were issued throughout it and none was served. Returns whether a window is open
    /// (no other fault begins during one).
    private func fillEveryDisk() -> Bool {
        if let w = allDisksFull {
            guard now >= w.end else { probeReadWhileDisksFull(); return true }
            closeFullDiskWindow()
            return false
        }
        // Not while a node is being replaced: the new node serves no read of a shard that has not moved to it yet.
        guard rng.chance(allDisksFullRate), partitionHealAt == nil, gracefulStop == nil, replacement.map({ $0.phase == .waiting || $0.done }) ?? true,
              members.allSatisfy({ $0.alive && !$0.lostState && $0.slowUntil == nil && $0.diskFull == nil && $0.crashAgainAt == nil && $0.core?.stopping != true }),
              (0..<config.shards).allSatisfy({ leader(of: $0) != nil }) else { return false }
        let end = now + UInt64(60 + rng.below(60)) * ClusterSimulation.unitsPerTick
        // Mostly as a node without a floor sees it: the space still reads fine, so writes run into the full disk.
        let readsLow = rng.chance(0.25)
        for n in members { n.diskFull = (end, true, readsLow) }
        stats.fullDisks += members.count
        allDisksFull = (end, now, 0, 0)
        note("every disk full until \(end)")
        return true
    }

    /// The every-disk-full window ends (at its time, or cut short by the heal): checks it.
    private func closeFullDiskWindow() {
        guard let w = allDisksFull else { return }
        allDisksFull = nil
        stats.allDisksFullWindows += 1
        note("every disk has space again (\(w.issued) gets issued, \(w.served) served while full)")
        if w.issued >= 3 && w.served == 0 && now - w.start >= 30 * ClusterSimulation.unitsPerTick {
            fail("no linearizable read served in \((now - w.start) / ClusterSimulation.unitsPerTick) ticks while every disk was full (\(w.issued) gets issued): reads must not wait for a stalled WAL write")
        }
    }

    private func injectFaults() {
        if fillEveryDisk() { return }
        // A reply race (the shape of a real bug): a leader's disk turns very slow while another node, which forwards
        // to it, crash-loops with short lives — each new process reuses the forward ids of the last one while the
        // slow leader is still answering the old ones.
        // Only with every node a full member: the crash loop takes one node down again and again, the fault budget.
        if rng.chance(replyRaceRate), members.allSatisfy(\.alive), members.allSatisfy({ $0.slowUntil == nil }),
           members.allSatisfy({ !$0.lostState && $0.core?.stopping != true && $0.crashAgainAt == nil }) {
            let leaders = members.filter { $0.core!.replicas.contains(where: \.isLeader) }
            let homes = Set(workload.clients.compactMap(\.home))
            if let l = leaders.first, let a = members.first(where: { $0.id != l.id && homes.contains($0.id) }) ?? members.first(where: { $0.id != l.id }) {
                l.diskDelay = UInt64(100 + rng.below(300))
                l.slowUntil = now + UInt64(60 + rng.below(60)) * ClusterSimulation.unitsPerTick
                a.crashAgainAt = now + UInt64(2 + rng.below(6)) * ClusterSimulation.unitsPerTick
                stats.slowDisks += 1
                note("reply race: disk of leader \(l.id) slow (\(l.diskDelay) units a write), node \(a.id) crash-loops")
            }
        }
        // A crash loop: a process that came up quickly after a crash dies again soon, before its forwards
        // (ids counted from the start of the process) are answered.
        for n in members where n.alive && n.crashAgainAt.map({ $0 <= now }) == true {
            n.crashAgainAt = nil
            n.crash()
            n.restartAt = now + UInt64(1 + rng.below(3)) * ClusterSimulation.unitsPerTick
            if rng.chance(0.8) { n.crashAgainAt = n.restartAt! + UInt64(3 + rng.below(8)) * ClusterSimulation.unitsPerTick }
            stats.crashes += 1
            note("crash \(n.id) again (crash loop)")
        }
        if rng.chance(crashRate) {
            let alive = members.filter(\.alive)
            // At most a minority down at once (a node still catching up after a wipe counts as down): the cluster
            // must stay able to make progress.
            if nodesDown < minorityBudget {
                // Half the time, a node waiting on a forward to a slow disk: its reply will reach the next process.
                let waiting = alive.filter { n in
                    guard let f = lastForward[n.id], now - f.at < 4 * ClusterSimulation.unitsPerTick else { return false }
                    return node(f.to).slowUntil != nil
                }
                let victim = !waiting.isEmpty && rng.chance(0.5) ? waiting[rng.below(waiting.count)] : alive[rng.below(alive.count)]
                // No wipe while a replacement (or a rebalance) is under way: the cluster may be removing an unreachable node from
                // its shards as the dead machine it looks like, and a wiped disk then is a second replica lost for
                // good — two of three, beyond what any quorum survives (seeds 118, 865: the partitioned source
                // removed from {1, 2, 3}, then a node of the two left wiped before the removal committed). The
                // operator's procedure says as much: keep the other nodes up until the moves finish.
                let removing = replacement.map { !$0.done } == true || growth.map { !$0.done } == true || mover.map { !$0.done } == true
                if config.wipes, !removing, rng.chance(0.15) {
                    victim.wipe()
                    stats.wipes += 1
                    note("WIPE \(victim.id): its data directory is lost")
                } else {
                    victim.crash()
                }
                // Often a quick restart (a supervisor restarting a crash-looping process): a new incarnation comes
                // up while the old one's forwards are still being answered, reusing their ids.
                let quick = rng.chance(0.5)
                victim.restartAt = now + UInt64(quick ? 1 + rng.below(6) : 10 + rng.below(120)) * ClusterSimulation.unitsPerTick
                if quick, rng.chance(0.5) { victim.crashAgainAt = victim.restartAt! + UInt64(3 + rng.below(20)) * ClusterSimulation.unitsPerTick }
                stats.crashes += 1
                note("crash \(victim.id)")
            }
        }
        // Half the stops are timed just before the other nodes' leader rebalancing (every 50 ticks of a process):
        // the node taking over a stopping node's shard must not hand it straight back.
        let rebalanceSoon = members.contains { $0.core.map { $0.ticks % 50 >= 47 } == true }
        if rng.chance(rebalanceSoon ? gracefulStopRate * 8 : gracefulStopRate / 2) { beginGracefulStop() }
        if rng.chance(backupRate) { beginBackup() }
        if partitionHealAt == nil, rng.chance(partitionRate) {
            let ids = members.map(\.id)
            let isolated = ids[rng.below(ids.count)]
            let oneWay = rng.chance(0.3)
            for other in ids where other != isolated {
                blocked.insert(SimNetwork.Link(from: isolated, to: other))
                if !oneWay { blocked.insert(SimNetwork.Link(from: other, to: isolated)) }
            }
            partitionHealAt = now + UInt64(20 + rng.below(120)) * ClusterSimulation.unitsPerTick
            stats.partitions += 1
            note("partition \(isolated) \(oneWay ? "outbound only" : "both ways")")
        }
        if rng.chance(slowDiskRate) {
            // Mostly a leader's disk: that is where a slow write delays acknowledgements and forward replies.
            let leaders = members.filter { $0.core?.replicas.contains(where: \.isLeader) == true }
            let n = !leaders.isEmpty && rng.chance(0.7) ? leaders[rng.below(leaders.count)] : nodes[rng.below(members.count)]
            if n.diskFull == nil, rng.chance(0.3) {
                // A full disk (writes stall and are retried), or one below the free-space floor only.
                let writesFail = rng.chance(0.6), readsLow = !writesFail || rng.chance(0.5)
                n.diskFull = (now + UInt64(30 + rng.below(200)) * ClusterSimulation.unitsPerTick, writesFail, readsLow)
                stats.fullDisks += 1
                note("disk of \(n.id) \(writesFail ? "full" : "below the free-space floor")\(writesFail && !readsLow ? " (not yet measured)" : "")")
            } else if n.slowUntil == nil {
                // Beyond the election timeout (10 ticks) half of the time.
                n.diskDelay = UInt64([8, 20, 60, 120, 400][rng.below(5)])
                n.slowUntil = now + UInt64(30 + rng.below(150)) * ClusterSimulation.unitsPerTick
                stats.slowDisks += 1
                note("slow disk on \(n.id): \(n.diskDelay) units a write")
            }
        }
    }

    // MARK: what replicas apply

    func observeApplied(_ request: ShardRequest, _ result: ApplyResult, shard: Int, node: NodeID) {
        if let v = checks.observeApplied(request, result, shard: shard, who: "node \(node) shard \(shard)") { fail(v) }
    }

    func forwardSent(_ op: ForwardOp, shard: Int) -> UInt64 {
        let highest = nodes.compactMap { n in n.core.map { shard < $0.replicas.count ? $0.replicas[shard].raft.hardState.commit : $0.meta.raft.hardState.commit } }.max() ?? 0
        return checks.forwardSent(op, highestCommit: highest)
    }

    func forwardAnswered(_ op: ForwardOp, shard: Int, token: UInt64, result: ForwardResult, node: NodeID) {
        if case .ok = result { stats.forwardAnswersChecked += 1 }
        if case .answer = result { stats.shardReadsAnswered += 1 }
        if let v = checks.forwardAnswered(op, shard: shard, token: token, result: result, who: "node \(node)") { fail(v) }
    }
}
