import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Carries out a `FaultSchedule` against a `LabCluster` (and its `NetworkLab` for partitions): waits for each
/// step's start, injects it, holds it for its duration, heals it, optionally waits for the hit nodes to be ready
/// again, and records what happened with offsets on its clock. Whatever happens — a step that fails, `cancel()`
/// — `run` ends with `healAll()`: paused nodes resumed, nodes it stopped restarted, partitions and shaping
/// removed. Blocking; run it on its own thread or task beside the workload.
public final class FaultInjector: @unchecked Sendable {
    /// Pacing of recovery after each heal.
    public struct Options: Sendable {
        /// After a heal, wait up to this long for the hit nodes (all nodes after a partition) to answer /ready;
        /// 0: do not wait (the next step may then hit a node still recovering).
        public var recoveryTimeout: Double = 15
        /// SIGTERM grace for `transfer` and `restart-rolling` before SIGKILL.
        public var gracefulTimeout: Double = 10
        /// Pause between two restarts of a transfer storm, seconds.
        public var stormPause: Double = 0.3

        public init() {}
    }

    public let cluster: LabCluster
    public let lab: NetworkLab?
    /// What partitions cut through: the lab's namespaces, else the cluster's proxy.
    public let links: LinkCutter?
    public let options: Options
    private let clock: @Sendable () -> UInt64
    private let log: @Sendable (String) -> Void

    private let lock = NSLock()
    private var cancelled = false
    private var stored: [FaultRecord] = []
    private var stopped = Set<Int>()
    private var slowed = Set<Int>()
    /// Planned node id → the member standing in its place now (a node replaced or drained hands its place to
    /// the spare that took its replicas). Absent: the node itself.
    private var places: [Int: Int] = [:]
    /// Nodes that left the cluster for good: never restarted.
    private var retired = Set<Int>()
    private var origin: UInt64 = 0

    /// `clock` gives nanoseconds (default CLOCK_MONOTONIC: pass the history recorder's clock to line the two up);
    /// `log` receives one line per injection and heal (default: nothing).
    public init(cluster: LabCluster, lab: NetworkLab? = nil, options: Options = Options(),
                clock: @escaping @Sendable () -> UInt64 = { Monotonic.nanoseconds() },
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.cluster = cluster
        self.lab = lab ?? cluster.lab
        links = self.lab ?? cluster.proxy
        self.options = options
        self.clock = clock
        self.log = log
        origin = clock()
    }

    /// The records so far (complete once `run` returns).
    public var records: [FaultRecord] { lock.withLock { stored } }

    /// Makes `run` stop waiting: the current fault is healed at once, later steps are not started.
    public func cancel() { lock.withLock { cancelled = true } }

    private var isCancelled: Bool { lock.withLock { cancelled } }

    /// Runs every step at its planned offset, then heals everything; returns the records.
    @discardableResult
    public func run(_ schedule: FaultSchedule) -> [FaultRecord] {
        lock.withLock { origin = clock() }
        defer {
            let problems = healAll()
            if !problems.isEmpty { log("final heal problems: \(problems)") }
        }
        for step in schedule.steps {
            hold(until: origin + UInt64(step.startMs) * 1_000_000)
            if isCancelled { break }
            let r = execute(step)
            lock.withLock { stored.append(r) }
        }
        return records
    }

    /// Seconds since `run` began (or since the injector was made).
    public func offset(_ nanos: UInt64) -> Double { Double(Int64(bitPattern: nanos &- origin)) / 1e9 }

    /// Injects `step`, holds it for its duration (or until cancelled), heals it and returns the record.
    public func execute(_ step: FaultStep) -> FaultRecord {
        let now = clock()
        var rec = FaultRecord(step: step.index, kind: step.kind, nodes: [], detail: "", plannedStartMs: step.startMs,
                              plannedDurationMs: step.durationMs, start: offset(now), heal: nil, recovered: nil,
                              startNanos: now, healNanos: nil, problem: nil, skipped: false, healedByFinalHeal: false)
        let until = now + UInt64(step.durationMs) * 1_000_000
        do {
            switch step.kind {
            case .kill, .pause: try processFault(step, &rec, until: until)
            case .replaceDisk: try replaceDisk(step, &rec, until: until)
            case .partitionSymmetric, .partitionAsymmetric, .partitionLeader, .partitionRing: try partitionFault(step, &rec, until: until)
            case .transfer: try transferStorm(step, &rec, until: until)
            case .rollingRestart: try rollingRestart(step, &rec)
            case .slowDisk: try slowDisk(step, &rec, until: until)
            case .replaceNode, .drainNode, .addNode, .moveReplica: try replaceNode(step, &rec, until: until)
            }
        } catch {
            rec.problem = "\(error)"
            if rec.heal == nil {
                let problems = healAll()
                markHealed(&rec)
                rec.healedByFinalHeal = true
                if !problems.isEmpty { rec.problem! += "; heal: \(problems)" }
            }
        }
        log("fault \(rec)")
        return rec
    }

    // MARK: the kinds

    private func processFault(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        let n = resolve(step.target)
        rec.nodes = [n]
        log("injecting #\(step.index) \(step.kind) on node \(n)")
        if step.kind == .kill {
            rec.detail = "kill -9 node \(n): \(try cluster.kill9(n).map { "\($0)" } ?? "was not running")"
            lock.withLock { _ = stopped.insert(n) }
            hold(until: until)
            try cluster.restart(n)
            lock.withLock { _ = stopped.remove(n) }
            rec.detail += "; restarted"
        } else {
            try cluster.pause(n)
            rec.detail = "SIGSTOP node \(n)"
            hold(until: until)
            try cluster.resume(n)
            rec.detail += "; SIGCONT"
        }
        markHealed(&rec)
        awaitRecovery([n], &rec)
    }

    /// kill -9, the data directory deleted, an empty start when the fault heals; recovered once caught up.
    private func replaceDisk(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        let n = resolve(step.target)
        rec.nodes = [n]
        log("injecting #\(step.index) replace-disk on node \(n)")
        rec.detail = "kill -9 node \(n): \(try cluster.kill9(n).map { "\($0)" } ?? "was not running")"
        lock.withLock { _ = stopped.insert(n) }
        try cluster.wipeData(n)
        try cluster.pointAtTheMembers(n)
        rec.detail += "; data directory deleted"
        hold(until: until)
        try cluster.restart(n)
        lock.withLock { _ = stopped.remove(n) }
        rec.detail += "; started empty"
        markHealed(&rec)
        awaitRecovery([n], &rec)
        // Asked once per round and the answer kept: asked again, a node that had caught up may look behind
        // (the leaders' commit indexes move on under load) and be reported as never having caught up.
        let deadline = clock() + UInt64(max(options.recoveryTimeout, 5) * 1e9)
        var caughtUp = false
        while !isCancelled, clock() < deadline {
            if cluster.caughtUp(n) { caughtUp = true; break }
            usleep(100_000)
        }
        if caughtUp {
            rec.detail += "; caught up"
        } else if isCancelled {
            rec.detail += "; the run ended before it caught up"
        } else {
            rec.detail += "; not caught up within \(Int(max(options.recoveryTimeout, 5))) s"
        }
    }

    /// A node replaced by a spare through the cluster's membership changes: killed for good first
    /// (`replace-node`), drained while it runs and stopped once removed (`drain-node`), or the cluster grown by
    /// the spare (`sutra rebalance`) and then the node drained (`add-node`). With an interruption,
    /// a node of the move is killed -9 in the middle of it and restarted 2 s later. Recovered once every replica
    /// left the node, the node is out of the map and the members answer `/ready`.
    private func replaceNode(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        let old = resolve(step.target)
        let live = step.kind != .replaceNode
        let grow = step.kind == .addNode || step.kind == .moveReplica
        rec.nodes = [old]
        guard let new = cluster.takeSpare() else {
            rec.skipped = true
            rec.problem = "skipped: no spare node left (a run prepares one per membership fault in its schedule)"
            markHealed(&rec)
            return
        }
        rec.nodes = [old, new]
        log("injecting #\(step.index) \(step.kind): node \(old) → spare node \(new)")
        var parts: [String] = []
        if !live {
            parts.append("kill -9 node \(old) for good: \(try cluster.kill9(old).map { "\($0)" } ?? "was not running")")
            lock.withLock { _ = stopped.insert(old) }
            hold(until: until)
        }
        let t0 = clock()
        try cluster.addNode(new, excluding: [old], timeout: max(options.recoveryTimeout, 30))
        parts.append("node \(new) added and started empty (--join)")
        if grow {
            try cluster.rebalance(activating: new, timeout: 30)
            parts.append("rebalance: node \(new) active")
        } else {
            try cluster.replaceNode(old, with: new, excluding: [old], timeout: 30)
            parts.append(live ? "node \(old) drained onto node \(new)" : "node \(old) replaced by node \(new)")
        }
        if step.kind != .moveReplica, let i = step.interruption, i > 0, !isCancelled {
            parts += try killMidMove(i == 2 ? old : new, after: 700_000_000)
        }
        if grow {
            // Replicas balanced onto the new node, then the target drained: the cluster is back to its size.
            try cluster.waitUntilSettled(holding: new, timeout: 60)
            parts.append(String(format: "balanced onto node %d %.1f s after it was added", new, Double(clock() - t0) / 1e9))
            if step.kind == .moveReplica { parts += try moveOneReplica(step) }
            try cluster.drainNode(old, excluding: [old], timeout: 30)
            parts.append("node \(old) drained")
        }
        try cluster.waitUntilVacated(old, timeout: 60)
        let moved = Double(clock() - t0) / 1e9
        try cluster.removeNode(old, timeout: 30)
        parts.append(String(format: "every replica moved and node %d removed %.1f s after the spare was added", old, moved))
        if live { parts.append("node \(old) stopped: \(try cluster.terminate(old, timeout: options.gracefulTimeout).map { "\($0)" } ?? "was not running")") }
        lock.withLock {
            stopped.remove(old)
            retired.insert(old)
            let place = places.first { $0.value == old }?.key ?? old
            places[place] = new
        }
        rec.detail = parts.joined(separator: "; ")
        markHealed(&rec)
        awaitRecovery(cluster.nodeIDs, &rec)
    }

    /// A node of a move killed -9 `after` nanoseconds into it and restarted 2 s later (the moves must go on from
    /// the cluster map); says what happened.
    private func killMidMove(_ victim: Int, after: UInt64) throws -> [String] {
        hold(until: clock() + after)
        let killed = "kill -9 node \(victim) mid-move: \(try cluster.kill9(victim).map { "\($0)" } ?? "was not running")"
        lock.withLock { _ = stopped.insert(victim) }
        hold(until: clock() + 2_000_000_000)
        try cluster.restart(victim)
        lock.withLock { _ = stopped.remove(victim) }
        return [killed, "node \(victim) restarted"]
    }

    /// `move-replica`'s move: the target shard's replica on its leader (else its first voter) moves by hand to the
    /// active node that lacks the shard; with an interruption, the source (1) or the target (2) is killed -9
    /// 300 ms into the move and restarted 2 s later. Waits until the move ended; says how.
    private func moveOneReplica(_ step: FaultStep) throws -> [String] {
        let shard: Int
        if case .leaderOf(let s, _) = step.target { shard = s } else { shard = 0 }
        // Chosen from a fresh map each try: a balance move the planner began meanwhile may have given the chosen
        // target the shard (refused: "already holds"), or taken the source's replica away.
        let deadline = clock() + 30_000_000_000
        var chosen: (from: Int, to: Int, leader: Int?)?
        var last = "no member answered with the map"
        while chosen == nil, clock() < deadline, !isCancelled {
            if let via = cluster.answeringMember(), let map = cluster.clusterMap(via: via),
               let shards = map["shards"] as? [[String: Any]], shard < shards.count, shards[shard]["move"] == nil {
                let voters = shards[shard]["voters"] as? [Int] ?? []
                let active = (map["nodes"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "active" }.compactMap { $0["id"] as? Int }
                if let to = active.filter({ !voters.contains($0) }).sorted().first, let first = voters.first {
                    let leader = cluster.leaders()[shard].flatMap { voters.contains($0) ? $0 : nil }
                    do {
                        try cluster.moveReplica(shard: shard, from: leader ?? first, to: to, timeout: max(1, Double(deadline - clock()) / 1e9))
                        chosen = (leader ?? first, to, leader)
                        break
                    } catch LabError.invalid(let why) {
                        last = why
                    }
                } else {
                    last = "every active node holds shard \(shard)"
                }
            }
            hold(until: min(deadline, clock() + 300_000_000))
        }
        guard let (from, to, leader) = chosen else { return ["move-replica: no move of shard \(shard) taken in 30 s (\(last))"] }
        let t0 = clock()
        var parts = ["shard \(shard)'s replica moved by hand from node \(from) (\(leader == from ? "its leader" : "a follower")) to node \(to)"]
        if let i = step.interruption, i > 0, !isCancelled {
            parts += try killMidMove(i == 1 ? from : to, after: 300_000_000)
        }
        let finished = try cluster.waitUntilMoved(shard: shard, from: from, to: to, timeout: 60)
        parts.append(String(format: finished ? "the move finished %.1f s after it was taken" : "the move was rolled back (%.1f s)", Double(clock() - t0) / 1e9))
        try cluster.waitUntilSettled(holding: to, timeout: 60)
        return parts
    }

    private func partitionFault(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        guard let net = links else {
            rec.skipped = true
            rec.problem = "skipped: partitions need network namespaces (root) or a cluster whose links run through the proxy"
            markHealed(&rec)
            return
        }
        let (partition, hit) = self.partition(for: step)
        rec.nodes = hit
        let cut = partition.blockedLinks(among: net.nodes).sorted()
        log("injecting #\(step.index) \(step.kind): \(partition)")
        try net.apply(partition)
        rec.detail = "\(partition); cut \(cut.map(\.description).joined(separator: " "))"
        hold(until: until)
        let problems = net.heal()
        if !problems.isEmpty { rec.problem = "heal: \(problems)" }
        markHealed(&rec)
        awaitRecovery(cluster.nodeIDs, &rec)
    }

    /// A storm of leadership transfers: again and again, the leader of a shard (the step's target shard, then
    /// each other shard in turn) is asked over HTTP (`POST /v1/admin/transfer-leader`) to hand the shard to
    /// another node, with `stormPause` between requests — no process is stopped.
    private func transferStorm(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        var done: [String] = []
        var refused = 0
        var shard: Int
        if case .leaderOf(let s, _) = step.target { shard = s } else { shard = 0 }
        repeat {
            let leaders = cluster.leaders()
            if let leader = leaders[shard] {
                if !rec.nodes.contains(leader) { rec.nodes.append(leader) }
                let targets = cluster.nodeIDs.filter { $0 != leader }
                let to = targets[(done.count + refused) % targets.count]
                let r = cluster.http(leader, "POST", "/v1/admin/transfer-leader?shard=\(shard)&to=\(to)", timeout: 2)
                if r.status == 200 { done.append("shard \(shard): \(leader)→\(to)") } else { refused += 1 }
            }
            shard = (shard + 1) % max(1, cluster.options.shards)
            hold(until: min(until, clock() + UInt64(options.stormPause * 1e9)))
        } while clock() < until && !isCancelled
        log("transfer storm #\(step.index): \(done.count) transfers requested, \(refused) refused (leader moved meanwhile)")
        rec.detail = "\(done.count) leadership transfers (\(refused) refused): " + done.prefix(20).joined(separator: ", ") + (done.count > 20 ? ", …" : "")
        if done.isEmpty { rec.problem = "no transfer was accepted" }
        markHealed(&rec)
        awaitRecovery(cluster.nodeIDs, &rec)
    }

    /// A slow disk: the node's every WAL write sleeps `delayMs` before its fdatasync until the fault heals.
    private func slowDisk(_ step: FaultStep, _ rec: inout FaultRecord, until: UInt64) throws {
        let n = resolve(step.target)
        let ms = step.delayMs ?? 200
        rec.nodes = [n]
        log("injecting #\(step.index) slow-disk on node \(n): fsync +\(ms) ms")
        lock.withLock { _ = slowed.insert(n) }
        try cluster.setFsyncDelay(n, ms: ms)
        rec.detail = "node \(n): every WAL write sleeps \(ms) ms before its fdatasync"
        hold(until: until)
        try cluster.setFsyncDelay(n, ms: 0)
        lock.withLock { _ = slowed.remove(n) }
        rec.detail += "; disk healthy again"
        markHealed(&rec)
        awaitRecovery([n], &rec)
    }

    private func rollingRestart(_ step: FaultStep, _ rec: inout FaultRecord) throws {
        let order = step.order.map(place)
        rec.nodes = order
        var parts: [String] = []
        for n in order {
            if isCancelled { break }
            log("injecting #\(step.index) restart-rolling: node \(n)")
            lock.withLock { _ = stopped.insert(n) }
            let how = try cluster.terminate(n, timeout: options.gracefulTimeout)
            try cluster.restart(n)
            lock.withLock { _ = stopped.remove(n) }
            try cluster.waitReady([n], timeout: max(options.recoveryTimeout, 5))
            parts.append("node \(n) (\(how.map { "\($0)" } ?? "was not running"))")
        }
        rec.detail = "rolling restart: " + parts.joined(separator: ", ")
        markHealed(&rec)
        awaitRecovery(cluster.nodeIDs, &rec)
    }

    // MARK: helpers

    /// The member standing in planned node `n`'s place now (itself unless it was replaced).
    public func place(_ n: Int) -> Int { lock.withLock { places[n] ?? n } }

    /// The node a target names now.
    public func resolve(_ target: FaultTarget) -> Int {
        switch target {
        case .node(let n): return place(n)
        case .nodes(let ns): return place(ns.first ?? 1)
        case .leaderOf(let shard, let fallback): return cluster.leaderOf(shard: shard) ?? place(fallback)
        case .allNodes: return cluster.nodeIDs.first ?? 1
        }
    }

    /// The partition a step asks for (leaders resolved now) and the nodes it targets.
    public func partition(for step: FaultStep) -> (Partition, [Int]) {
        let all = cluster.nodeIDs
        switch step.kind {
        case .partitionSymmetric:
            let minority: [Int]
            if case .nodes(let ns) = step.target { minority = ns.map(place) } else { minority = [resolve(step.target)] }
            return (.split(minority, all.filter { !minority.contains($0) }), minority)
        case .partitionAsymmetric:
            let t = resolve(step.target)
            let others = all.filter { $0 != t }
            return step.direction == .inbound ? (.oneWay(from: others, to: [t]), [t]) : (.oneWay(from: [t], to: others), [t])
        case .partitionRing:
            let order = step.order.map(place)
            return (.majorityRing(order), order)
        default:
            let t = resolve(step.target)
            return (.isolate(t), [t])
        }
    }

    private func markHealed(_ rec: inout FaultRecord) {
        let n = clock()
        rec.healNanos = n
        rec.heal = offset(n)
    }

    private func awaitRecovery(_ nodes: [Int], _ rec: inout FaultRecord) {
        guard options.recoveryTimeout > 0, !isCancelled else { return }
        do {
            try cluster.waitReady(nodes, timeout: options.recoveryTimeout)
            rec.recovered = offset(clock())
        } catch {
            rec.problem = (rec.problem.map { $0 + "; " } ?? "") + "recovery: \(error)"
        }
    }

    /// Sleeps until the clock reads `deadline` or `cancel()` is called.
    private func hold(until deadline: UInt64) {
        while !isCancelled {
            let now = clock()
            if now >= deadline { return }
            usleep(useconds_t(min(20_000, (deadline - now) / 1000 + 1)))
        }
    }

    /// Undoes every fault: resumes paused nodes, starts the nodes this injector stopped, gives slowed disks their
    /// speed back, removes partitions and link shaping. Returns the problems met.
    @discardableResult
    public func healAll() -> [String] {
        var problems: [String] = []
        for p in cluster.processes where p.state == .paused {
            do { try p.resume() } catch { problems.append("resume node \(p.id): \(error)") }
        }
        let down = lock.withLock { stopped.subtracting(retired) }
        for n in down.sorted() {
            do {
                if try cluster.node(n).state == .stopped { try cluster.restart(n) }
                lock.withLock { _ = stopped.remove(n) }
            } catch { problems.append("restart node \(n): \(error)") }
        }
        for n in lock.withLock({ slowed }).sorted() {
            do {
                // A node that restarted meanwhile has a healthy disk already (the delay is not persisted).
                if try cluster.node(n).state == .running { try cluster.setFsyncDelay(n, ms: 0) }
                lock.withLock { _ = slowed.remove(n) }
            } catch { problems.append("heal the disk of node \(n): \(error)") }
        }
        if let links { problems += links.heal() }
        lab?.unshapeAll()
        return problems
    }
}
