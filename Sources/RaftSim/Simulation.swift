import Raft

/// Runs N Raft replicas in one thread against a seeded scheduler and network, injecting faults and client
/// traffic, and checks the safety invariants after every event and liveness after the faults heal.
///
/// Phases: (1) fault phase — drops, duplicates, delays, symmetric/asymmetric partitions and one-way link cuts, crashes with
/// restart from durable state only, slow disks (fsyncs, hence acknowledgements and votes, held back past the
/// lease margin or an election timeout), leadership transfers, snapshots with compaction, membership changes,
/// client writes and ReadIndex or lease reads; (2) heal — every link restored, every node restarted, then a leader
/// must appear and a new write must commit within `livenessBoundTicks`, and every later proposal at that leader
/// must commit (5 of them; the commit index may not stall for 50 ticks) with no change of leader — with pre-vote and
/// check-quorum on, as in production; (3) convergence — every member applies the
/// same entries. Same seed, same run: nothing here reads a clock or iterates a hash table
/// in an order that matters.
public final class Simulation {
    public static let unitsPerTick: UInt64 = 5

    let config: SimConfig
    var rng: SplitMix64
    var now: UInt64 = 0
    var nodes: [SimNode] = []
    var net = SimNetwork()
    var trace: Trace
    var stats = SimStats()
    var failure: SimFailure?
    var checker = Checker()
    var restarts: UInt64 = 0
    var partitionHealAt: UInt64?
    var nextWriteID: UInt64 = 1
    var nextReadID: UInt64 = 1
    var clientLoad = true
    /// Small messages and windows split batches, exercising partial replication (figure-8 histories).
    lazy var messageShape: (maxBytes: Int, inflight: Int) = {
        var r = SplitMix64(seed: config.seed ^ 0x5EED_5EED)
        return ([40, 100, 512, 4096][r.below(4)], [1, 2, 8, 64][r.below(4)])
    }()
    var faultRates = (crash: 0.0, partition: 0.0, transfer: 0.0, snapshot: 0.0, membership: 0.0, slowDisk: 0.0, stall: 0.0)

    public init(config: SimConfig) {
        self.config = config
        self.rng = SplitMix64(seed: config.seed)
        self.trace = Trace(capacity: 300, printLive: config.traceAll)
        let initial = ConfState(voters: (1...UInt64(config.voters)).map { $0 })
        for id in 1...UInt64(config.voters + 1) {
            let n = SimNode(id: id, confState: initial)
            nodes.append(n)
            start(n)
        }
    }

    /// Runs the whole scenario. Returns the run's figures, or the first invariant it broke.
    public func run() -> Result<SimStats, SimFailure> {
        chooseFaultMix()
        let U = Simulation.unitsPerTick
        while now < UInt64(config.faultTicks) * U, failure == nil { stepUnit(faults: true) }
        if let f = failure { return .failure(f) }
        healEverything()
        checkLiveness()
        if let f = failure { return .failure(f) }
        checkConvergence()
        if let f = failure { return .failure(f) }
        return .success(stats)
    }

    // MARK: setup

    func raftConfig(for id: NodeID, applied: LogIndex) -> RaftConfig {
        var c = RaftConfig(id: id, seed: config.seed &* 31 &+ id &* 1_000_003 &+ restarts)
        c.electionTick = config.electionTick
        c.heartbeatTick = config.heartbeatTick
        c.preVote = config.preVote
        c.checkQuorum = config.checkQuorum
        c.readOnlyOption = config.readOnly
        c.leaseClockDriftTicks = config.leaseClockDriftTicks
        c.applied = applied
        c.maxSizePerMsg = messageShape.maxBytes
        c.maxInflightMsgs = messageShape.inflight
        return c
    }

    func start(_ n: SimNode) {
        restarts += 1
        let snap = try! n.storage.snapshot()
        let (i, h) = snap.data.isEmpty ? (LogIndex(0), UInt64(0)) : SimNode.decodeState(snap.data)
        n.appliedIndex = i
        n.appliedHash = h
        n.appliedConf = snap.metadata.confState
        n.raft = RaftNode(config: raftConfig(for: n.id, applied: i), storage: n.storage)
        n.lastRole = .follower
        n.lastTerm = n.raft!.term
        n.checkedCommit = 0
        n.restartAt = nil
        afterStep(n)
    }

    func chooseFaultMix() {
        let drops = [0.0, 0.01, 0.05, 0.15]
        net.dropRate = drops[rng.below(drops.count)]
        net.duplicateRate = rng.chance(0.5) ? 0.02 : 0
        net.maxDelay = UInt64(1 + rng.below(12))
        faultRates.crash = config.crashes ? [0.0, 0.003, 0.01, 0.03][rng.below(4)] : 0
        faultRates.partition = config.partitions ? [0.0, 0.005, 0.015][rng.below(3)] : 0
        faultRates.transfer = config.transfers ? [0.0, 0.005, 0.02][rng.below(3)] : 0
        faultRates.snapshot = config.snapshots ? [0.0, 0.01, 0.05][rng.below(3)] : 0
        faultRates.membership = config.membershipChanges ? 0.02 : 0
        // Lease reads always run with slow disks: a slow acknowledgement must never stretch a lease.
        let slow = config.readOnly == .leaseBased ? [0.005, 0.02] : [0.0, 0.005, 0.02]
        faultRates.slowDisk = config.slowDisks ? slow[rng.below(slow.count)] : 0
        // Besides episodes, a single fsync now and then stalls (the rest of the node's writes are quick).
        let stalls = config.readOnly == .leaseBased ? [0.002, 0.01] : [0.0, 0.002, 0.01]
        faultRates.stall = config.slowDisks ? stalls[rng.below(stalls.count)] : 0
        if config.slowDisks && rng.chance(0.5) {
            for n in nodes where rng.chance(0.5) { n.sendsOnlyAfterPersisting = true }
        }
        trace.record(now, .note("voters=\(config.voters) drop=\(net.dropRate) dup=\(net.duplicateRate) maxDelay=\(net.maxDelay) crash=\(faultRates.crash) partition=\(faultRates.partition) transfer=\(faultRates.transfer) snapshot=\(faultRates.snapshot) membership=\(faultRates.membership) slowDisk=\(faultRates.slowDisk) stall=\(faultRates.stall) sendOnlyAfterFsync=\(nodes.filter(\.sendsOnlyAfterPersisting).map(\.id)) reads=\(config.readOnly)"))
    }

    // MARK: the scheduler

    func stepUnit(faults: Bool) {
        let U = Simulation.unitsPerTick
        if now % U == 0 {
            stats.ticks += 1
            for n in nodes where n.alive {
                n.raft!.tick()
                afterStep(n)
            }
            if faults { injectFaults() }
        }
        for n in nodes where !n.alive {
            if let at = n.restartAt, at <= now { trace.record(now, .restart(n.id)); start(n) }
        }
        if let at = partitionHealAt, at <= now { healLinks() }
        while failure == nil, let m = net.pop(dueBy: now) { deliver(m) }
        if clientLoad { clientOps() }
        for n in nodes where n.alive {
            if let f = n.inFlight, f.doneAt <= now { completePersist(n) }
            if n.inFlight == nil, n.raft!.hasReady() {
                let rd = n.raft!.ready()
                if n.readsStartedNow.at == now {
                    stats.leaseReads += rd.readStates.filter { n.readsStartedNow.ids.contains($0.requestID) }.count
                }
                let delay = persistDelay(n)
                n.inFlight = (rd, now + delay)
                if delay == 0 { completePersist(n) }
            }
        }
        now += 1
    }

    func deliver(_ m: Message) {
        let sender = node(m.from)
        guard let target = nodes.first(where: { $0.id == m.to }), target.alive else {
            trace.record(now, .drop(m, why: "down"))
            stats.messagesDropped += 1
            if m.type == .snapshot { sender?.raft?.reportSnapshot(to: m.to, failed: true) }
            return
        }
        if net.isBlocked(m.from, m.to) {
            trace.record(now, .drop(m, why: "partition"))
            stats.messagesDropped += 1
            if m.type == .snapshot { sender?.raft?.reportSnapshot(to: m.to, failed: true) }
            return
        }
        trace.record(now, .deliver(m))
        stats.messagesDelivered += 1
        target.raft!.step(m)
        afterStep(target)
        if m.type == .snapshot, let s = sender, s.alive {
            s.raft!.reportSnapshot(to: m.to, failed: false)
            afterStep(s)
        }
    }

    func node(_ id: NodeID) -> SimNode? { nodes.first { $0.id == id } }

    func send(_ msgs: [Message]) {
        for m in msgs {
            if rng.chance(net.dropRate) {
                trace.record(now, .drop(m, why: "lost"))
                stats.messagesDropped += 1
                if m.type == .snapshot { node(m.from)?.raft?.reportSnapshot(to: m.to, failed: true) }
                continue
            }
            let at = now + 1 + UInt64(rng.below(Int(net.maxDelay)))
            trace.record(now, .send(m, deliverAt: at))
            net.push(m, at: at)
            if m.type != .snapshot && rng.chance(net.duplicateRate) {
                net.push(m, at: now + 1 + UInt64(rng.below(Int(net.maxDelay) * 2)))
            }
        }
    }

    /// How long persisting a Ready takes on `n`, in time units: 0–2 normally; during a slow-disk episode, or for
    /// a single stalled fsync, longer than the lease margin, and one time in four longer than an election timeout
    /// (the node's votes and acknowledgements wait that long; its heartbeat answers and the leader's appends do
    /// not, unless it sends only after persisting).
    func persistDelay(_ n: SimNode) -> UInt64 {
        let U = Simulation.unitsPerTick
        guard now < n.slowDiskUntil || rng.chance(faultRates.stall) else { return UInt64(rng.below(3)) }
        stats.slowPersists += 1
        let margin = config.leaseClockDriftTicks, et = config.electionTick
        let ticks = rng.chance(0.25) ? et + 1 + rng.below(2 * et) : margin + 1 + rng.below(et - margin)
        return UInt64(ticks) * U + UInt64(rng.below(Int(U)))
    }

    /// The Ready's fsync finished: make it durable, send its messages, apply, serve reads, advance.
    func completePersist(_ n: SimNode) {
        guard let (rd, _) = n.inFlight, let raft = n.raft else { return }
        n.inFlight = nil
        persist(rd, on: n)
        send(rd.messages)
        for e in rd.committedEntries {
            guard e.index == n.appliedIndex + 1 else {
                fail("node \(n.id) asked to apply entry \(e.index) after \(n.appliedIndex)")
                return
            }
            apply(e, on: n)
        }
        for r in rd.readStates { n.readsConfirmed.append(r) }
        for d in rd.droppedReads { n.readsStarted[d] = nil }
        raft.advance()
        afterStep(n)
        serveReads(n)
    }

    /// Makes a Ready's snapshot, entries and hard state durable (used by a completed fsync, and by a crash
    /// whose unsynced write happened to reach the disk whole).
    func persist(_ rd: Ready, on n: SimNode) {
        if let snap = rd.snapshot {
            n.storage.applySnapshot(snap)
            let (i, h) = SimNode.decodeState(snap.data)
            checker.checkApplied(index: i, hash: h, node: n.id, sim: self)
            n.appliedIndex = i
            n.appliedHash = h
            n.appliedConf = snap.metadata.confState
            for k in Array(n.proposals.keys) where k <= i { n.proposals[k] = nil }
            stats.snapshotsInstalled += 1
            trace.record(now, .install(n.id, index: i))
        }
        if !rd.entries.isEmpty {
            n.storage.append(rd.entries)
            checker.checkLogMatching(rd.entries, node: n, sim: self)
        }
        if let hs = rd.hardState { n.storage.setHardState(hs) }
    }

    func apply(_ e: Entry, on n: SimNode) {
        n.appliedHash = SimNode.chain(n.appliedHash, e)
        n.appliedIndex = e.index
        if e.kind == .confChange {
            guard let cc = ConfChange.decode(e.data) else {
                fail("node \(n.id) applied an undecodable membership change at \(e.index)")
                return
            }
            n.appliedConf = cc.applied(to: n.appliedConf)
        }
        checker.checkApplied(index: e.index, hash: n.appliedHash, node: n.id, sim: self)
        checker.recordCommitted(index: e.index, term: e.term, node: n.id, sim: self)
        if let p = n.proposals.removeValue(forKey: e.index), p.term == e.term {
            checker.acknowledge(index: e.index, term: e.term)
            stats.writesAcked += 1
            trace.record(now, .ack(n.id, index: e.index))
        }
    }

    func serveReads(_ n: SimNode) {
        var waiting: [ReadState] = []
        for r in n.readsConfirmed {
            if n.appliedIndex >= r.index {
                if let required = n.readsStarted.removeValue(forKey: r.requestID) {
                    trace.record(now, .read(n.id, id: r.requestID, served: n.appliedIndex, required: required))
                    stats.readsServed += 1
                    if n.appliedIndex < required {
                        fail("stale read #\(r.requestID) on node \(n.id): served state at \(n.appliedIndex) but a write at \(required) was acknowledged before the read began")
                    }
                }
            } else {
                waiting.append(r)
            }
        }
        n.readsConfirmed = waiting
    }

    /// Role/term bookkeeping and the per-event invariants.
    func afterStep(_ n: SimNode) {
        guard let r = n.raft else { return }
        // Messages that need no fsync leave at once, even while this node's Ready is being persisted: the
        // checker then proves that classification safe (Message.canSendBeforePersisting). Taking them early is
        // optional: a node that does not sends them with its next Ready, after its fsync — so on a slow disk
        // its heartbeat answers are late too (the core must stay safe for either kind of application).
        if !n.sendsOnlyAfterPersisting { send(r.takeImmediateMessages()) }
        if r.role != n.lastRole || r.term != n.lastTerm {
            trace.record(now, .role(n.id, r.role, term: r.term, leader: r.leader))
            if r.term < n.lastTerm { fail("node \(n.id) term went back from \(n.lastTerm) to \(r.term)") }
            if r.role == .leader && (n.lastRole != .leader || r.term != n.lastTerm) {
                stats.elections += 1
                checker.newLeader(n, term: r.term, sim: self)
            }
            n.lastRole = r.role
            n.lastTerm = r.term
        }
        checkMembership(n)
        // A wiped node holds its share again once it stopped abstaining with a committed log of its own.
        if n.lostState && r.hasCaughtUp {
            n.lostState = false
            trace.record(now, .note("node \(n.id) caught up after its wipe (commit \(r.commitIndex), term \(r.term))"))
        }
        if r.commitIndex > n.checkedCommit {
            var i = max(n.checkedCommit + 1, r.firstIndex)
            while i <= r.commitIndex {
                if let t = r.term(at: i) { checker.recordCommitted(index: i, term: t, node: n.id, sim: self) }
                i += 1
            }
            n.checkedCommit = r.commitIndex
        }
    }

    /// Membership consistency: the core's voters and learners are exactly those of the snapshot and log it has
    /// applied — the installed snapshot's membership plus every conf change applied after it, in order
    /// (`SimNode.appliedConf`). A snapshot the core has accepted but not yet handed over for installing already
    /// sets its membership, so while one is pending that snapshot's membership is the expected one.
    func checkMembership(_ n: SimNode) {
        guard let r = n.raft else { return }
        let expected = r.pendingSnapshot?.confState ?? n.appliedConf
        if r.confState != expected {
            let basis = r.pendingSnapshot.map { "its pending snapshot at \($0.index)" } ?? "what it applied up to \(n.appliedIndex)"
            fail("membership consistency: node \(n.id) has voters \(r.confState.voters) learners \(r.confState.learners), but \(basis) gives voters \(expected.voters) learners \(expected.learners)")
        }
    }

    func fail(_ reason: String) {
        guard failure == nil else { return }
        failure = SimFailure(seed: config.seed, time: now, reason: reason, trace: trace.lines())
    }

    // MARK: client traffic

    /// One line per live node: role, term, vote, log, commit, membership (for failure messages).
    func nodeSummary() -> String {
        nodes.compactMap { n in
            n.raft.map { r in
                "\(n.id): \(r.role) term \(r.term) vote \(r.isAbstaining ? "abstaining" : String(r.vote)) last (\(r.lastIndex),\(r.lastTerm)) commit \(r.commitIndex) voters \(r.confState.voters) learners \(r.confState.learners)"
            }
        }.joined(separator: "; ")
    }

    func leaderNodes() -> [SimNode] { nodes.filter { $0.alive && $0.raft!.role == .leader } }

    func pickTarget() -> SimNode? {
        let alive = nodes.filter(\.alive)
        guard !alive.isEmpty else { return nil }
        let leaders = leaderNodes()
        if !leaders.isEmpty && rng.chance(0.85) { return leaders[rng.below(leaders.count)] }
        return alive[rng.below(alive.count)]
    }

    func clientOps() {
        // Clients apply backpressure: no new writes while the target has a deep uncommitted backlog.
        if rng.chance(0.25), let n = pickTarget(), n.raft!.lastIndex - n.raft!.commitIndex < 64 {
            let id = nextWriteID
            nextWriteID += 1
            var data: [UInt8] = []
            var x = id
            for _ in 0..<8 { data.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
            if let index = try? n.raft!.propose(data) {
                n.proposals[index] = (n.raft!.term, id)
                trace.record(now, .propose(n.id, index: index, term: n.raft!.term))
                afterStep(n)
            }
        }
        if rng.chance(0.15), let n = pickTarget() {
            let id = nextReadID
            nextReadID += 1
            if config.unsafeLocalReads {
                // Known-bad: serve from local state whenever this node believes it leads.
                if n.raft!.role == .leader {
                    trace.record(now, .read(n.id, id: id, served: n.appliedIndex, required: checker.maxAcked))
                    stats.readsServed += 1
                    if n.appliedIndex < checker.maxAcked {
                        fail("stale read #\(id) on node \(n.id): served state at \(n.appliedIndex) but a write at \(checker.maxAcked) was acknowledged before the read began")
                    }
                }
            } else if (try? n.raft!.readIndex(requestID: id)) != nil {
                n.readsStarted[id] = checker.maxAcked
                if n.readsStartedNow.at != now { n.readsStartedNow = (now, []) }
                n.readsStartedNow.ids.insert(id)
                afterStep(n)
            }
        }
    }

    // MARK: faults

    func injectFaults() {
        let alive = nodes.filter(\.alive)
        if rng.chance(faultRates.crash), !alive.isEmpty {
            // Leaders are the interesting victims (figure-8 style histories need several in a row).
            let leaders = leaderNodes()
            crash(!leaders.isEmpty && rng.chance(0.5) ? leaders[0] : alive[rng.below(alive.count)])
        }
        if partitionHealAt == nil, rng.chance(faultRates.partition) { partition() }
        if rng.chance(faultRates.transfer), let l = leaderNodes().first {
            let others = l.raft!.confState.voters.filter { $0 != l.id }
            if !others.isEmpty {
                let to = others[rng.below(others.count)]
                if (try? l.raft!.transferLeadership(to: to)) != nil {
                    stats.transfers += 1
                    trace.record(now, .transfer(from: l.id, to: to))
                }
            }
        }
        for n in nodes where n.alive && n.inFlight == nil && rng.chance(faultRates.snapshot) { snapshot(n) }
        if rng.chance(faultRates.slowDisk), !alive.isEmpty {
            let leaders = leaderNodes()
            let n = !leaders.isEmpty && rng.chance(0.3) ? leaders[0] : alive[rng.below(alive.count)]
            n.slowDiskUntil = max(n.slowDiskUntil, now + UInt64(20 + rng.below(80)) * Simulation.unitsPerTick)
            trace.record(now, .note("SLOW DISK on node \(n.id) until t=\(n.slowDiskUntil / Simulation.unitsPerTick)"))
        }
        if rng.chance(faultRates.membership), let l = leaderNodes().first { changeMembership(l) }
    }

    func crash(_ n: SimNode) {
        var kept = false
        if config.wipes, rng.chance(0.2), !nodes.contains(where: \.lostState), mayWipe(n) {
            // The data directory is lost: the node comes back blank, with the same id.
            n.storage = MemoryStorage(confState: n.initialConf)
            n.lostState = true
            stats.wipes += 1
            trace.record(now, .note("WIPE node \(n.id): its storage is lost"))
        } else if let (rd, _) = n.inFlight, rng.chance(0.5) {
            // The write reached the disk whole but fsync never returned: durable, yet nothing was sent.
            persist(rd, on: n)
            kept = true
        }
        n.raft = nil
        n.inFlight = nil
        n.proposals = [:]
        n.readsStarted = [:]
        n.readsStartedNow = (0, [])
        n.readsConfirmed = []
        n.restartAt = now + UInt64(2 + rng.below(rng.chance(0.5) ? 10 : 60)) * Simulation.unitsPerTick
        stats.crashes += 1
        trace.record(now, .crash(n.id, keptInFlight: kept))
    }

    /// The precondition for wiping a node (the operator's, docs/OPERATIONS.md: the rest of the cluster up):
    /// every other voter has a log of its own and is not itself catching up (abstaining), and those lacking a
    /// committed entry are fewer than a majority. Otherwise they could elect one of themselves without any copy of it — a loss no protocol can prevent. What
    /// remains is the case the wiped node's abstention must handle: an entry committed with its acknowledgement,
    /// now held by fewer than a majority, and a vote it may have given before.
    func mayWipe(_ n: SimNode) -> Bool {
        let voters = leaderNodes().first?.raft!.confState.voters ?? n.appliedConf.voters
        let others = nodes.filter { $0.id != n.id && voters.contains($0.id) }
        func snapshotIndex(_ o: SimNode) -> LogIndex { (try? o.storage.snapshot())?.metadata.index ?? 0 }
        func abstains(_ o: SimNode) -> Bool { o.raft?.isAbstaining ?? (o.storage.initialState().0.vote == RaftNode.abstainVote) }
        guard others.allSatisfy({ !$0.lostState && !abstains($0) && ($0.storage.lastIndex() > 0 || snapshotIndex($0) > 0) }) else { return false }
        let c = checker.highestCommitted
        guard c > 0, let t = checker.committedTerm(c) else { return true }
        let holders = others.filter { o in snapshotIndex(o) >= c || (o.storage.lastIndex() >= c && (try? o.storage.term(c)) == t) }
        return others.count - holders.count < voters.count / 2 + 1
    }

    func partition() {
        let ids = nodes.map(\.id)
        var cut: [(NodeID, NodeID)] = []
        var desc = ""
        switch rng.below(5) {
        case 0:
            let x = ids[rng.below(ids.count)]
            for y in ids where y != x { cut.append((x, y)); cut.append((y, x)) }
            desc = "isolate \(x)"
        case 1:
            let x = ids[rng.below(ids.count)]
            if rng.chance(0.5) {
                for y in ids where y != x { cut.append((y, x)) }
                desc = "asymmetric: \(x) can send but not receive"
            } else {
                for y in ids where y != x { cut.append((x, y)) }
                desc = "asymmetric: \(x) can receive but not send"
            }
        case 2:
            var shuffled = ids
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.below(i + 1)) }
            let k = 1 + rng.below(ids.count / 2)
            let a = Array(shuffled[..<k]), b = Array(shuffled[k...])
            for x in a { for y in b { cut.append((x, y)); cut.append((y, x)) } }
            desc = "split \(a.sorted()) | \(b.sorted())"
        case 3:
            // Random one-way cuts: e.g. a leader that still hears a follower it can no longer reach.
            for x in ids { for y in ids where y != x && rng.chance(0.35) { cut.append((x, y)) } }
            desc = "one-way cuts " + cut.map { "\($0.0)→\($0.1)" }.joined(separator: " ")
        default:
            // Bridge: two sides that only talk through one node.
            var shuffled = ids
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.below(i + 1)) }
            let bridge = shuffled[0]
            let rest = Array(shuffled.dropFirst())
            let half = rest.count / 2
            let a = Array(rest[..<half]), b = Array(rest[half...])
            for x in a { for y in b { cut.append((x, y)); cut.append((y, x)) } }
            desc = "bridge via \(bridge): \(a.sorted()) | \(b.sorted())"
        }
        for (f, t) in cut { net.blocked.insert(.init(from: f, to: t)) }
        partitionHealAt = now + UInt64(10 + rng.below(80)) * Simulation.unitsPerTick
        stats.partitions += 1
        trace.record(now, .partition(desc))
    }

    func healLinks() {
        net.blocked = []
        partitionHealAt = nil
        trace.record(now, .heal)
    }

    func snapshot(_ n: SimNode) {
        let i = n.appliedIndex
        let snapIndex = (try? n.storage.snapshot())?.metadata.index ?? 0
        guard i > snapIndex + 3, i <= n.storage.lastIndex() else { return }
        do {
            // The membership as of the applied index (the core's may already be a pending snapshot's).
            try n.storage.createSnapshot(index: i, confState: n.appliedConf, data: SimNode.encodeState(index: i, hash: n.appliedHash))
            try n.storage.compact(upTo: i - LogIndex(rng.below(3)))
            stats.snapshotsTaken += 1
            trace.record(now, .snapshot(n.id, index: i))
        } catch {
            fail("snapshot at \(i) on node \(n.id) failed: \(error)")
        }
    }

    func changeMembership(_ l: SimNode) {
        let r = l.raft!
        let cs = r.confState
        let all = nodes.map(\.id)
        let cc: ConfChange
        if let spare = all.first(where: { !cs.contains($0) }) {
            cc = .addLearner(spare)
        } else if let learner = cs.learners.first {
            guard let p = r.progressState(of: learner), p.match + 5 >= r.lastIndex else { return }
            cc = .addVoter(learner)
        } else if cs.voters.count > config.voters {
            cc = .remove(cs.voters[rng.below(cs.voters.count)])
        } else {
            return
        }
        if (try? r.proposeConfChange(cc)) != nil {
            stats.confChanges += 1
            trace.record(now, .confChange(l.id, "\(cc)"))
        }
    }

    // MARK: heal, liveness, convergence

    func healEverything() {
        healLinks()
        net.dropRate = 0
        net.duplicateRate = 0
        faultRates.stall = 0
        for n in nodes {
            // The disks are healed: an fsync still running finishes now (its messages leave, it applies).
            n.slowDiskUntil = 0
            if let f = n.inFlight, f.doneAt > now { n.inFlight = (f.ready, now + UInt64(rng.below(3))) }
        }
        for n in nodes where !n.alive {
            trace.record(now, .restart(n.id))
            start(n)
        }
        trace.record(now, .note("faults healed; checking liveness"))
    }

    /// A leader recognized by a quorum of its voters.
    /// A leader recognized by a quorum of its voters — and one of them: a leader removed from the membership
    /// only hands its leadership on (it takes no proposals), so it is not stable.
    func stableLeader() -> SimNode? {
        for l in leaderNodes() {
            let voters = l.raft!.confState.voters
            guard voters.contains(l.id) else { continue }
            let followers = voters.filter { v in v == l.id || node(v)?.raft?.leader == l.id }
            if followers.count >= voters.count / 2 + 1 { return l }
        }
        return nil
    }

    func checkLiveness() {
        let U = Simulation.unitsPerTick
        let healedAt = now
        let deadline = healedAt + UInt64(config.livenessBoundTicks) * U
        var probe: (node: SimNode, index: LogIndex, term: Term)?
        while now < deadline, failure == nil {
            stepUnit(faults: false)
            if let p = probe {
                if let t = checker.committedTerm(p.index), t == p.term, p.node.appliedIndex >= p.index {
                    stats.recoveryTicks = Int((now - healedAt) / U)
                    trace.record(now, .note("liveness write at \(p.index) committed \(stats.recoveryTicks) ticks after heal"))
                    // Classic Raft (no pre-vote/check-quorum) lets a rejoining node with a higher term depose a
                    // healthy leader, losing its uncommitted proposals; that is allowed there, so the strict
                    // "no leader change, every proposal commits" check is for the production configuration.
                    if config.preVote && config.checkQuorum { checkLaterProposalsCommit(leader: p.node) }
                    return
                }
                if !p.node.alive || p.node.raft!.role != .leader || p.node.raft!.term != p.term { probe = nil }
            }
            if probe == nil, let l = stableLeader(), let idx = try? l.raft!.propose([0xFF]) {
                probe = (l, idx, l.raft!.term)
            }
        }
        if failure == nil {
            fail("liveness: no write committed within \(config.livenessBoundTicks) ticks after faults healed (leaders: \(leaderNodes().map { "\($0.id)@\($0.raft!.term)" })); nodes: \(nodeSummary())")
        }
    }

    /// With the network healthy, every further proposal at the stable leader commits, and the leader stays.
    func checkLaterProposalsCommit(leader first: SimNode, count: Int = 5, stallTicks: UInt64 = 50) {
        clientLoad = false
        let U = Simulation.unitsPerTick
        // Let the group settle first: restarted nodes know no leader and may elect a new one, and a membership
        // change left from the fault phase may remove the leader (it then steps down) — both legitimate. Settled
        // = a leader recognized by a quorum that has committed and applied its whole log (its own first entry
        // included, so no membership change is pending). From there on, nothing may change.
        let settleDeadline = now + UInt64(config.livenessBoundTicks) * U
        var settled: SimNode?
        while failure == nil, now < settleDeadline {
            if let cur = stableLeader(), let r = cur.raft, r.commitIndex == r.lastIndex, cur.appliedIndex == r.lastIndex {
                settled = cur
                break
            }
            stepUnit(faults: false)
        }
        if failure != nil { return }
        guard let l = settled else {
            fail("liveness: no stable leader committed and applied its whole log within \(config.livenessBoundTicks) ticks after the first post-heal write (from leader \(first.id))")
            return
        }
        let term = l.raft!.term
        for k in 0..<count {
            guard let idx = try? l.raft!.propose([0xFE, UInt8(k)]) else {
                fail("liveness: stable leader \(l.id) refused proposal \(k) after faults healed")
                return
            }
            l.proposals[idx] = (term, UInt64.max - UInt64(k))
            afterStep(l)
            // Replication may be slow (one small message per round trip), so the bound is on progress: the
            // leader's commit index may not stall for `stallTicks`, and the whole wait is capped.
            let hardDeadline = now + 2000 * U
            var lastCommit = l.raft?.commitIndex ?? 0
            var lastProgress = now
            while failure == nil, now < hardDeadline, now < lastProgress + stallTicks * U,
                  checker.committedTerm(idx) != term || l.appliedIndex < idx {
                stepUnit(faults: false)
                if let c = l.raft?.commitIndex, c > lastCommit { lastCommit = c; lastProgress = now }
            }
            if failure != nil { return }
            guard checker.committedTerm(idx) == term, l.appliedIndex >= idx else {
                fail("liveness: proposal \(k) at (\(idx), \(term)) did not commit after faults healed (commit index stalled at \(lastCommit) for \(stallTicks) ticks)")
                return
            }
            guard l.alive, l.raft!.role == .leader, l.raft!.term == term else {
                fail("liveness: leadership changed after faults healed (node \(l.id) term \(term) → \(l.raft.map { "\($0.role) term \($0.term)" } ?? "down"))")
                return
            }
        }
        clientLoad = true
    }

    func checkConvergence() {
        clientLoad = false
        let U = Simulation.unitsPerTick
        // Catching up may be slow (one small message per round trip), so the bound is on progress:
        // some member must apply something new at least every `stallTicks`.
        let hardDeadline = now + 2000 * U
        let stallTicks: UInt64 = 100
        var lastProgress = now
        var lastApplied = nodes.map(\.appliedIndex)
        while now < hardDeadline, now < lastProgress + stallTicks * U, failure == nil {
            stepUnit(faults: false)
            let applied = nodes.map(\.appliedIndex)
            if applied != lastApplied { lastApplied = applied; lastProgress = now }
            guard let l = stableLeader() else { continue }
            let members = l.raft!.confState.members.compactMap { node($0) }
            let target = l.raft!.commitIndex
            if members.allSatisfy({ $0.appliedIndex == target }) && l.appliedIndex == target {
                checker.checkAcknowledgedWritesPresent(in: l, sim: self)
                return
            }
        }
        if failure == nil {
            let states = nodes.map { "\($0.id): applied=\($0.appliedIndex) commit=\($0.raft?.commitIndex ?? 0) role=\($0.raft.map { "\($0.role)" } ?? "down")" }
            fail("convergence: members stopped converging (no progress for \(stallTicks) ticks, or 2000 ticks in all): \(states)")
        }
    }
}
