import Raft
import Shard
import Txn2PC

/// One simulated client: a transaction or a read in flight at a time.
final class SimClient {
    let id: UInt64
    var nextSequence: UInt64 = 1
    var busy = false
    var deadline: UInt64 = 0
    var op: UInt64 = 0
    /// A transaction whose outcome was unknown, to retry with the same id.
    var retry: (id: TxnID, recordShard: Int, parts: [TxnPart])?

    init(id: UInt64) { self.id = id }
}

/// The association a transaction writes, and its signature (the edge's confidence, unique per transaction).
struct SimAssociation {
    var source: ConceptID
    var target: ConceptID
    var type: AssociationType
    var signature: Float
}

/// A completed linearizable read of one concept's edges.
struct SimRead {
    var concept: ConceptID
    var invokedAt: UInt64
    var completedAt: UInt64
    var edges: [Edge]
}

/// What the 2PC simulation records and checks.
struct TxnChecker {
    var decisions: [TxnID: Bool] = [:]
    var associations: [TxnID: SimAssociation] = [:]
    var bySignature: [Float: TxnID] = [:]
    var ackedAt: [TxnID: UInt64] = [:]
    var reads: [SimRead] = []
    var nextSignature: Float = 1

    /// Records a decision seen anywhere (a replica applying it, a client told it). Returns a violation if it
    /// differs from one seen before.
    mutating func decided(_ id: TxnID, committed: Bool, by who: String) -> String? {
        if let d = decisions[id], d != committed {
            return "decision of transaction \(id) changed: was \(d ? "commit" : "abort"), now \(committed ? "commit" : "abort") (\(who))"
        }
        decisions[id] = committed
        return nil
    }
}

extension TxnSimulation {
    // MARK: what replicas apply

    func observeApplied(_ req: ShardRequest, result: ApplyResult, shard: Int, node: NodeID) {
        let who = "node \(node) shard \(shard)"
        switch req.command {
        case .txnDecide(let id, _, _):
            switch result {
            case .applied: if let v = checker.decided(id, committed: true, by: who + " decide") { fail(v) }
            case .rejected: if let v = checker.decided(id, committed: false, by: who + " decide") { fail(v) }
            case .pending: fail("a decide answered pending")
            }
        case .txnBegin(let id, _, _):
            switch result {
            case .applied: if let v = checker.decided(id, committed: true, by: who + " begin (retry)") { fail(v) }
            case .rejected: if let v = checker.decided(id, committed: false, by: who + " begin") { fail(v) }
            case .pending: break
            }
        case .txnResolve(let ids, let commit):
            for id in ids {
                guard let d = checker.decisions[id] else { fail("\(who) resolved \(id) before any decision was applied"); return }
                if d != commit { fail("\(who) resolved \(id) as \(commit ? "commit" : "abort") but it was decided \(d ? "commit" : "abort")") }
            }
        default:
            break
        }
    }

    // MARK: clients

    func clientStep() {
        for c in clients {
            if c.busy {
                if now / TxnSimulation.unitsPerTick >= c.deadline {
                    c.busy = false
                    c.op += 1
                    stats.unknown += 1
                }
                continue
            }
            guard rng.chance(0.5) else { continue }
            if let r = c.retry, rng.chance(0.5) {
                c.retry = nil
                startTxn(c, id: r.id, recordShard: r.recordShard, parts: r.parts)
                continue
            }
            c.retry = nil
            if rng.chance(0.35) { startRead(c) } else { startAssociation(c) }
        }
    }

    private func pick() -> ConceptID {
        rng.chance(0.08) ? missingIDs[rng.below(missingIDs.count)] : conceptIDs[rng.below(conceptIDs.count)]
    }

    private func startAssociation(_ c: SimClient) {
        let source = pick()
        var target = pick()
        while target == source { target = pick() }
        let s1 = shard(of: source), s2 = shard(of: target)
        guard s1 != s2 else { return }
        let type: AssociationType = rng.chance(0.5) ? .semantic : .causal
        let sig = checker.nextSignature
        checker.nextSignature += 1
        let id = TxnID(client: c.id, sequence: c.nextSequence)
        c.nextSequence += 1
        checker.associations[id] = SimAssociation(source: source, target: target, type: type, signature: sig)
        checker.bySignature[sig] = id
        let parts = [TxnPart(shard: s1, commands: [.putEdge(.outgoing, owner: source, Edge(other: target, type: type, confidence: sig))]),
                     TxnPart(shard: s2, commands: [.putEdge(.incoming, owner: target, Edge(other: source, type: type, confidence: sig))])]
        startTxn(c, id: id, recordShard: s1, parts: parts)
    }

    private func startTxn(_ c: SimClient, id: TxnID, recordShard: Int, parts: [TxnPart]) {
        guard let node = nodes.first(where: { $0.isLeader(of: recordShard) }) else {
            c.retry = (id, recordShard, parts)
            return
        }
        c.busy = true
        c.op += 1
        let op = c.op
        c.deadline = now / TxnSimulation.unitsPerTick + 150
        node.coordinator.start(id, recordShard: recordShard, parts: parts, ackedBelow: 0) { [weak self] outcome in
            guard let self else { return }
            let current = c.op == op && c.busy
            switch outcome {
            case .committed:
                if let v = self.checker.decided(id, committed: true, by: "client \(c.id)") { self.fail(v) }
                if self.checker.ackedAt[id] == nil { self.checker.ackedAt[id] = self.now }
                if current { self.stats.committed += 1 }
            case .aborted:
                if let v = self.checker.decided(id, committed: false, by: "client \(c.id)") { self.fail(v) }
                if current { self.stats.aborted += 1 }
            case .unknown:
                if current { self.stats.unknown += 1; c.retry = (id, recordShard, parts) }
            }
            if current { c.busy = false }
        }
    }

    private func startRead(_ c: SimClient) {
        let concept = conceptIDs[rng.below(conceptIDs.count)]
        let s = shard(of: concept)
        guard let node = nodes.first(where: { $0.isLeader(of: s) }) else { return }
        c.busy = true
        c.op += 1
        let op = c.op
        c.deadline = now / TxnSimulation.unitsPerTick + 150
        let invoked = now
        node.readEdges(concept, shard: s) { [weak self] edges in
            guard let self else { return }
            if let edges {
                self.checker.reads.append(SimRead(concept: concept, invokedAt: invoked, completedAt: self.now, edges: edges))
                self.stats.reads += 1
            }
            if c.op == op { c.busy = false }
        }
    }

    // MARK: final checks

    func checkFinalState() {
        // Every replica holds the same edges as its shard's leader.
        let all = conceptIDs + missingIDs
        for s in 0..<config.shards {
            guard let leader = nodes.first(where: { $0.isLeader(of: s) }) else { fail("shard \(s) has no leader after settling"); return }
            for n in nodes where n !== leader {
                for id in all where shard(of: id) == s {
                    for d in [EdgeDirection.outgoing, .incoming]
                    where n.state(of: s).neighbors(of: id, direction: d) != leader.state(of: s).neighbors(of: id, direction: d) {
                        fail("node \(n.id) and leader \(leader.id) of shard \(s) disagree on the \(d) edges of \(id)")
                        return
                    }
                }
            }
        }
        func state(_ id: ConceptID) -> ShardState { nodes.first { $0.isLeader(of: shard(of: id)) }!.state(of: shard(of: id)) }
        // Atomicity: every out-edge has its in-edge twin from the same committed transaction, and back.
        for a in all {
            for e in state(a).neighbors(of: a, direction: .outgoing) {
                guard let t = checker.bySignature[e.confidence], checker.decisions[t] == true else {
                    fail("out-edge \(a)→\(e.other) carries signature \(e.confidence) of a transaction not committed"); return
                }
                let twin = state(e.other).neighbors(of: e.other, direction: .incoming).first { $0.other == a && $0.type == e.type }
                if twin?.confidence != e.confidence {
                    fail("atomicity: out-edge \(a)→\(e.other) of \(t) but in-edge \(twin.map { "from \(checker.bySignature[$0.confidence].map { "\($0)" } ?? "?")" } ?? "missing")")
                    return
                }
            }
            for e in state(a).neighbors(of: a, direction: .incoming) {
                let twin = state(e.other).neighbors(of: e.other, direction: .outgoing).first { $0.other == a && $0.type == e.type }
                if twin?.confidence != e.confidence { fail("atomicity: in-edge \(a)←\(e.other) without its out-edge"); return }
            }
        }
        // Every committed transaction's association exists (possibly rewritten by a later one).
        for (t, committed) in checker.decisions where committed {
            guard let a = checker.associations[t] else { continue }
            if !state(a.source).neighbors(of: a.source, direction: .outgoing).contains(where: { $0.other == a.target && $0.type == a.type }) {
                fail("committed transaction \(t) (\(a.source)→\(a.target)) left no edge"); return
            }
        }
        checkReads()
    }

    /// No read shows an uncommitted transaction; none misses one that was visible (acknowledged, or seen by
    /// a completed read) before it began.
    func checkReads() {
        var visibleAt: [TxnID: UInt64] = checker.ackedAt
        for r in checker.reads {
            for e in r.edges {
                guard let t = checker.bySignature[e.confidence], checker.decisions[t] == true else {
                    fail("read of \(r.concept) at \(r.completedAt) saw an edge of a transaction that did not commit (signature \(e.confidence))")
                    return
                }
                visibleAt[t] = min(visibleAt[t] ?? .max, r.completedAt)
            }
        }
        var touching: [ConceptID: [TxnID]] = [:]
        for (t, a) in checker.associations where checker.decisions[t] == true {
            touching[a.source, default: []].append(t)
            touching[a.target, default: []].append(t)
        }
        for r in checker.reads {
            for t in touching[r.concept] ?? [] {
                guard let v = visibleAt[t], v < r.invokedAt, let a = checker.associations[t] else { continue }
                let seen = a.source == r.concept
                    ? r.edges.contains { $0.other == a.target && $0.type == a.type }
                    : r.edges.contains { $0.other == a.source && $0.type == a.type }
                if !seen {
                    fail("read of \(r.concept) invoked at \(r.invokedAt) misses transaction \(t) (\(a.source)→\(a.target)), visible since \(v): half a transaction, or a stale read")
                    return
                }
            }
        }
    }
}
