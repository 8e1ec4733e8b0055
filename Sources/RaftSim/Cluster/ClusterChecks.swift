import Dispatch
import Synchronization
import ChaosCheck
import ClusterMap
import NodeCore
import Raft
import Shard

/// The cluster simulation's invariants. During the run: a transaction's decision never changes, whoever applies
/// or resolves it. After healing and settling:
/// - every register and edge key is linearizable (ChaosCheck's checker), with the final reads taken after healing
///   appended — an acknowledged write missing from them is a lost write;
/// - every linearizable search returned every register whose embedding was acknowledged before it began and that
///   no delete could have removed by the time it ended;
/// - every hop of a found path is an association some client attempted;
/// - no client was told "committed" for a transaction decided abort;
/// - edges are atomic: on every replica an out-edge exists exactly when its in-edge does, with the same confidence;
/// - every replica of a shard holds the same state;
/// - every online backup taken holds no half transaction: across its shard images, an out-edge exists exactly
///   when its in-edge does, with the same confidence (every association spans two shards: one transaction);
/// - no backup fence is left raised once settled;
/// - the meta group's state machine is safe: every replica that applied the cluster map to a version holds the
///   same map at that version, and once settled every node holds the same map, naming every node's addresses.
struct ClusterChecks {
    /// The cluster map each version was first seen applied at, and the version each node last showed.
    private var mapAt: [UInt64: ClusterMap] = [:]
    private var mapVersionSeen: [NodeID: UInt64] = [:]

    /// Compares the map `node` applied with the map any other replica applied at the same version (called after
    /// every turn; cheap unless the version moved).
    mutating func observeMap(_ map: ClusterMap?, node: NodeID) -> String? {
        guard let map, mapVersionSeen[node] != map.version else { return nil }
        mapVersionSeen[node] = map.version
        if let first = mapAt[map.version] {
            if first != map { return "node \(node) applied cluster map version \(map.version) as \(map), another replica as \(first)" }
        } else {
            mapAt[map.version] = map
        }
        return nil
    }

    /// Once settled: one map everywhere (within 300 ticks: a leader moved by the rebalancer since is told to the
    /// map), every node's addresses announced in it, and every shard's leader hint naming its leader.
    func checkMaps(_ sim: ClusterSimulation) {
        func live() -> [(NodeID, ClusterMap?)] { sim.nodes.compactMap { n in n.core.map { (n.id, $0.clusterMap) } } }
        func agreed() -> Bool {
            let maps = live().map(\.1)
            guard let first = maps.first, let m = first, maps.allSatisfy({ $0 == m }) else { return false }
            return (0..<m.shardCount).allSatisfy { s in sim.leader(of: s).map { m.shards[s].leaderHint == $0.id } ?? false }
        }
        let end = sim.now + 300 * ClusterSimulation.unitsPerTick
        while !agreed(), sim.now < end, !sim.failed { sim.step(faults: false) }
        let all = live()
        if let (id, _) = all.first(where: { $0.1 == nil }) { sim.fail("settled, but node \(id) holds no cluster map (the meta group never created one)"); return }
        let maps = all.map { ($0.0, $0.1!) }
        guard let (_, first) = maps.first else { return }
        for s in 0..<first.shardCount {
            if let l = sim.leader(of: s), first.shards[s].leaderHint != l.id {
                sim.fail("settled, but the cluster map (version \(first.version)) names node \(first.shards[s].leaderHint) as shard \(s)'s leader, not node \(l.id)")
                return
            }
        }
        for (id, m) in maps where m != first {
            sim.fail("settled, but node \(id) holds cluster map version \(m.version) and node \(maps[0].0) version \(first.version)")
            return
        }
        // Moves settled: every shard's Raft membership (as its leader has it) is the map's.
        for s in 0..<first.shardCount {
            guard let l = sim.leader(of: s)?.core?.replicas[s].raft else { continue }
            let p = first.shards[s]
            if p.move != nil || l.confState.voters != p.voters || l.confState.learners != p.learners {
                sim.fail("settled, but shard \(s)'s members are voters \(l.confState.voters) learners \(l.confState.learners) while the map (version \(first.version)) says \(p.voters) \(p.learners)\(p.move.map { ", moving \($0)" } ?? "")")
                return
            }
        }
        if let r = sim.replacement {
            guard r.done, r.leaving.allSatisfy({ first.nodes[$0]?.state == .removed }), first.nodes[r.spare]?.state == .active else {
                sim.fail("settled, but the replacement of node \(r.victim) by node \(r.spare) is \(r.phase) (map: \(first.nodes[r.victim]?.state.description ?? "?"), \(first.nodes[r.spare]?.state.description ?? "?"))")
                return
            }
        }
        if let silent = first.nodes.values.first(where: { $0.addressesUnknown && $0.state != .removed }) {
            sim.fail("settled, but node \(silent.id) never announced its addresses in the cluster map (version \(first.version))")
        }
    }

    /// Decisions seen applied (true: commit).
    private(set) var decisions: [TxnID: Bool] = [:]

    /// Per shard: every request applied (its encoding) and the answers applying it gave — what a leader can
    /// rightly reply to a forward of it.
    private var outcomes: [[[UInt8]: Set<UInt64>]] = []
    /// Forwarded reads in flight: the highest commit index any live node knew when each was sent.
    private var readsSent: [UInt64: LogIndex] = [:]
    private var nextForwardToken: UInt64 = 1

    /// A forward leaves a node: remembers what its answer must at least show.
    mutating func forwardSent(_ op: ForwardOp, highestCommit: LogIndex) -> UInt64 {
        defer { nextForwardToken += 1 }
        if case .readIndex = op { readsSent[nextForwardToken] = highestCommit }
        return nextForwardToken
    }

    /// A forward's answer reached the node that sent it: it must be the answer to *that* request — a write's
    /// version one that applying this very request gave, a read index no lower than what was committed when
    /// the read was sent. (A reply handed to the wrong forward breaks this even when it looks plausible.)
    mutating func forwardAnswered(_ op: ForwardOp, shard: Int, token: UInt64, result: ForwardResult, who: String) -> String? {
        let floor = readsSent.removeValue(forKey: token)
        if case .answer(let a) = result {
            // A shard read's answer must answer that very question (the reads' contents are checked by the
            // workload's linearizability checks, as any read's).
            guard case .read(let r) = op else { return "\(who): a forward on shard \(shard) that was not a read was answered with a read's answer" }
            switch (r.query, a) {
            case (.concept, .concept), (.neighbors, .neighbors), (.search, .search): return nil
            case (.outEdges(let ids), .outEdges(let lists)) where ids.count == lists.count: return nil
            case (.digest, .digest(let d)) where d.shard == shard: return nil
            default: return "\(who): a shard read on shard \(shard) (\(r.query)) was answered \(a)"
            }
        }
        guard case .ok(let value) = result else { return nil }
        switch op {
        case .propose(let req):
            let given = shard < outcomes.count ? outcomes[shard][req.encode()] : nil
            guard let given else {
                return "\(who): a forwarded write on shard \(shard) was answered ok(\(value)) but no replica ever applied it (\(brief(req.command)))"
            }
            guard given.contains(value) else {
                return "\(who): a forwarded write on shard \(shard) was answered ok(\(value)); applying it gave \(given.sorted()) (\(brief(req.command)))"
            }
        case .readIndex:
            if let floor, value < floor {
                return "\(who): a forwarded read of shard \(shard) was given index \(value), below the commit index \(floor) known when it was sent"
            }
        case .mapChange:
            break   // the meta group's replicas are compared by `checkClusterMaps`
        case .deleteConcept:
            break   // its cascade is a write or a transaction on the leader, checked as those are
        case .read:
            return "\(who): a shard read of shard \(shard) was answered with a number (ok(\(value))), not a read's answer"
        case .transaction(let t):
            // Committed: the record shard must have decided this very transaction (its session's id) to commit.
            guard t.clientID != 0 else { break }
            let id = TxnID(client: t.clientID, sequence: t.sequence)
            if decisions[id] != true {
                return "\(who): a forwarded transaction \(id) (record shard \(shard)) was answered ok(\(value)) but no commit decision of it was applied"
            }
        }
        return nil
    }

    /// A backup's images, one per shard in order, must pair every out-edge with its in-edge.
    func checkBackup(_ images: [ShardContentImage], edges checked: inout Int) -> String? {
        guard images.map(\.shard) == Array(0..<images.count) else { return "images of shards \(images.map(\.shard)), not one per shard" }
        if let open = images.first(where: { $0.openRecords + $0.openIntents > 0 }) {
            return "the image of shard \(open.shard) holds \(open.openRecords) records and \(open.openIntents) intents"
        }
        struct Side: Hashable { var source: ConceptID; var target: ConceptID; var type: AssociationType; var confidence: Float }
        var outs = Set<Side>(), ins = Set<Side>()
        for image in images {
            for (owner, edges) in image.edges(.outgoing) { for e in edges { outs.insert(Side(source: owner, target: e.other, type: e.type, confidence: e.confidence)) } }
            for (owner, edges) in image.edges(.incoming) { for e in edges { ins.insert(Side(source: e.other, target: owner, type: e.type, confidence: e.confidence)) } }
        }
        checked += outs.count + ins.count
        let at = images.map { "shard \($0.shard) at \($0.appliedIndex)" }.joined(separator: ", ")
        if let half = outs.subtracting(ins).first {
            return "half a transaction in the backup (\(at)): out-edge \(half.source)→\(half.target) (confidence \(half.confidence)) without its in-edge"
        }
        if let half = ins.subtracting(outs).first {
            return "half a transaction in the backup (\(at)): in-edge \(half.source)→\(half.target) (confidence \(half.confidence)) without its out-edge"
        }
        return nil
    }

    private func brief(_ c: ShardCommand) -> String {
        let d = String(describing: c)
        return d.count <= 120 ? d : String(d.prefix(120)) + "…"
    }

    mutating func observeApplied(_ req: ShardRequest, _ result: ApplyResult, shard: Int, who: String) -> String? {
        let answer: UInt64?
        switch result {
        case .applied(let v): answer = v
        case .pending(let since): answer = since
        case .rejected: answer = nil
        }
        if let answer {
            while outcomes.count <= shard { outcomes.append([:]) }
            outcomes[shard][req.encode(), default: []].insert(answer)
        }
        if case .rejected(let why) = result, why.hasPrefix(Rejection.forgotten) {
            // No claim about the decision, only that it was made (and every participant resolved) before.
            switch req.command {
            case .txnDecide(let id, _, _), .txnBegin(let id, _, _):
                return decisions[id] == nil ? "\(who): \(id) answered forgotten but was never decided" : nil
            default:
                return "\(who): a \(brief(req.command)) answered forgotten"
            }
        }
        switch req.command {
        case .txnDecide(let id, _, _):
            switch result {
            case .applied: return decided(id, true, who + " decide")
            case .rejected: return decided(id, false, who + " decide")
            case .pending: return "\(who): a decide of \(id) answered pending"
            }
        case .txnBegin(_, _, _) where { if case .rejected(let why) = result { return why.contains(Rejection.backupFence) || why.hasPrefix(Rejection.staleRetry) || why.contains("already used by another transaction") }; return false }():
            // Refused by a backup fence (nothing applied or remembered: it begins again later), as a retry the
            // client had already acknowledged, or as another request reusing the id: no decision about this id.
            return nil
        case .txnBegin(let id, _, _):
            switch result {
            case .applied: return decided(id, true, who + " begin (retry of a committed one)")
            case .rejected(let why): return decided(id, false, who + " begin: " + why)
            case .pending: return nil
            }
        case .txnResolve(let ids, let commit):
            for id in ids {
                guard let d = decisions[id] else { return "\(who) resolved \(id) before any decision was applied" }
                if d != commit { return "\(who) resolved \(id) as \(commit ? "commit" : "abort") but it was decided \(d ? "commit" : "abort")" }
            }
            return nil
        default:
            return nil
        }
    }

    private mutating func decided(_ id: TxnID, _ commit: Bool, _ who: String) -> String? {
        if let d = decisions[id], d != commit {
            return "decision of transaction \(id) changed: was \(d ? "commit" : "abort"), now \(commit ? "commit" : "abort") (\(who))"
        }
        decisions[id] = commit
        return nil
    }

    func checkAll(_ sim: ClusterSimulation) {
        let w = sim.workload!
        sim.stats.txnsCommitted = decisions.values.filter { $0 }.count
        sim.stats.txnsAborted = decisions.values.filter { !$0 }.count
        for id in w.acknowledgedTxns where decisions[id] == false {
            sim.fail("transaction \(id) was acknowledged to its client but decided abort")
            return
        }
        checkSearches(w, sim)
        guard !sim.failed else { return }
        checkPaths(w, sim)
        guard !sim.failed else { return }
        checkReplicas(sim, w)
        guard !sim.failed else { return }
        checkMaps(sim)
        guard !sim.failed else { return }
        let result = Linearizability.checkWithFinalReads(w.operations, finals: w.finals, timeLimit: .seconds(20))
        switch result.verdict {
        case .ok: break
        case .unknown: sim.fail("the linearizability search did not decide within its time limit")
        case .violation:
            let why = result.failures.first.map { "\($0.key): \($0.reason)" } ?? "no counterexample"
            var lines = ["not linearizable: \(why)"]
            if let f = result.failures.first {
                for op in w.operations where op.key == f.key { lines.append("  " + op.line()) }
            }
            sim.fail(lines.suffix(40).joined(separator: "\n"))
        }
    }

    private func checkSearches(_ w: ClusterWorkload, _ sim: ClusterSimulation) {
        for s in w.searches {
            for (i, id) in w.registerIDs.enumerated() {
                let key = "r\(i)"
                let ops = w.operations.filter { $0.key == key }
                let embedded = ops.contains { $0.f != .get && $0.value != nil && $0.outcome == .ok && $0.completionTime! < Int64(s.invoked) }
                let mayBeDeleted = ops.contains { $0.f == .put && $0.value == nil && $0.outcome != .fail && $0.invokeTime <= Int64(s.completed) }
                if embedded && !mayBeDeleted && !s.ids.contains(id) {
                    sim.fail("a linearizable search (ticks \(s.invoked / ClusterSimulation.unitsPerTick)…\(s.completed / ClusterSimulation.unitsPerTick)) missed \(key) (\(id)), whose embedding was acknowledged before it began and never deleted")
                    return
                }
            }
        }
    }

    private func checkPaths(_ w: ClusterWorkload, _ sim: ClusterSimulation) {
        for p in w.paths {
            for (a, b) in zip(p, p.dropFirst()) where !w.attemptedEdges.contains([a, b]) {
                sim.fail("a path used the edge \(a) → \(b), which no client ever created")
                return
            }
        }
    }

    private func checkReplicas(_ sim: ClusterSimulation, _ w: ClusterWorkload) {
        let cores = sim.members.compactMap(\.core)
        guard cores.count == sim.members.count else { sim.fail("a node is down after healing"); return }
        // Followers learn the last commit index with the next heartbeat: let every replica apply as far as its leader.
        // Each shard's replicas: the nodes voting in it (every node, unless the replication factor is below the
        // node count or a move left a node without it).
        let holders = (0..<sim.config.shards).map { s in cores.filter { $0.holds(s) } }
        for (s, h) in holders.enumerated() where h.isEmpty { sim.fail("no node holds shard \(s) after healing"); return }
        for _ in 0..<(200 * ClusterSimulation.unitsPerTick) where !sim.failed {
            let caughtUp = (0..<sim.config.shards).allSatisfy { s in Set(holders[s].map { $0.replicas[s].appliedIndex }).count == 1 }
            if caughtUp { break }
            sim.step(faults: false)
        }
        for s in 0..<sim.config.shards {
            let images = holders[s].map { $0.replicas[s].state.snapshotData() }
            if images.contains(where: { $0 != images[0] }) {
                let applied = holders[s].map { "\($0.config.nodeID)@\($0.replicas[s].appliedIndex)" }
                sim.fail("replicas of shard \(s) hold different states after settling (\(applied))")
                return
            }
        }
        // The replicas of a shard agree (above): each association checked once, its ends read where they live.
        for (a, b) in w.pairs {
            let source = holders[w.shard(a)][0], target = holders[w.shard(b)][0]
            let out = source.replicas[w.shard(a)].state.neighbors(of: a, direction: .outgoing).first { $0.other == b }
            let inc = target.replicas[w.shard(b)].state.neighbors(of: b, direction: .incoming).first { $0.other == a }
            if (out == nil) != (inc == nil) || out?.confidence != inc?.confidence {
                sim.fail("nodes \(source.config.nodeID), \(target.config.nodeID): association \(a) → \(b) is half there (out \(String(describing: out?.confidence)), in \(String(describing: inc?.confidence)))")
                return
            }
        }
    }
}

/// Runs many cluster-simulation seeds over a few threads and collects the figures and failures.
public enum ClusterSeedRunner {
    public struct Outcome: Sendable {
        public var seedsRun = 0
        public var stats = ClusterSimStats()
        public var failures: [ClusterSimFailure] = []
    }

    public static func run(seeds: Range<UInt64>, parallelism: Int = 2,
                           configure: @Sendable (UInt64) -> ClusterSimConfig = { ClusterSimConfig.standard(seed: $0) }) -> Outcome {
        let state = Mutex(Outcome())
        let next = Atomic<Int>(0)
        let total = seeds.count
        DispatchQueue.concurrentPerform(iterations: max(1, min(parallelism, total))) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                if k >= total { break }
                let result = ClusterSimulation(config: configure(seeds.lowerBound + UInt64(k))).run()
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
