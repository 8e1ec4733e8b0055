import ChaosCheck
import NodeCore
import Raft
import Shard

/// The simulation's clients: each runs one operation at a time through `NodeCore.execute` — the entry point
/// of both front ends — routed as the SDK routes (to the leader it believes in, following NOT_LEADER hints,
/// retrying an unknown outcome with the same session so a write applies once), and records it in the history.
///
/// Registers are concepts whose content is the value (every put carries an embedding, so search must find it);
/// a delete writes "absent"; a batch writes each of its items at once; an association writes its edge key (the
/// value is the edge's unique confidence). Outcomes follow Jepsen: `ok` took effect, `fail` certainly did not,
/// `info` unknown.
final class ClusterWorkload {
    unowned let sim: ClusterSimulation
    var load = true
    let registerIDs: [ConceptID]
    let anchorIDs: [ConceptID]
    /// Ordered pairs of anchors on different shards: the associations the workload makes.
    let pairs: [(ConceptID, ConceptID)]
    private(set) var clients: [Client] = []
    var operations: [HistoryOperation] = []
    /// Completed linearizable searches: when, and which concepts they returned.
    var searches: [(invoked: UInt64, completed: UInt64, ids: Set<ConceptID>)] = []
    /// Found paths, as hops, for the "only attempted edges" check.
    var paths: [[ConceptID]] = []
    /// Edges some association attempted (source, target).
    var attemptedEdges: Set<[ConceptID]> = []
    /// Transactions a client was told committed.
    var acknowledgedTxns: [TxnID] = []
    /// Duplicates in flight: the node and incarnation each was sent to (checked answered once settled).
    var duplicatesInFlight: [Int: (node: NodeID, incarnation: UInt64, txn: TxnID)] = [:]
    private var nextDuplicate = 0
    var finals: [String: String?] = [:]
    private var nextValue = 1
    /// The next association's unique confidence, as a count of `signatureUnit`s (confidences lie in [0, 1]; a
    /// Float holds every multiple of 2⁻²⁰ up to 1 exactly).
    private var nextSignature = 1
    static let signatureUnit: Float = 1.0 / 1_048_576

    /// An operation as the workload runs it: the request, what it writes or reads in the history, its attempts.
    struct Pending {
        var op: ClientOp
        var shard: Int
        var session: ClientSession
        var invokedAt: UInt64
        var attempts = 0
        var deadline: UInt64 = 0
        var token = 0
        var record: Record
        var target: NodeID = 0
        /// Backing off after a retryable answer: the next attempt goes out at this time.
        var retryAt: UInt64?
    }

    enum Record {
        case get(key: String)
        case write(f: OpFunction, key: String, value: String?, expected: String?)
        case batch([(key: String, value: String?)])
        case associate(key: String, value: String, txn: TxnID?)
        case neighbors(ConceptID)
        case search
        case path
        case final(key: String)
        /// Changes nothing the history tracks (an anchor put back).
        case untracked
    }

    final class Client {
        let id: UInt64
        let process: Int
        var nextSequence: UInt64 = 1
        var pending: Pending?
        var nextToken = 0
        var leaderHints: [Int: NodeID] = [:]
        /// An HTTP-style client bound to one node: every first attempt goes there, whoever leads, and that node
        /// forwards what it does not lead. The others route by themselves like the SDK (NOT_LEADER hints),
        /// except every third one, which lets any node it reaches forward.
        var home: NodeID?
        var routesItself: Bool { home == nil && id % 3 != 0 }
        init(id: UInt64, process: Int) { self.id = id; self.process = process }
    }

    init(sim: ClusterSimulation) {
        self.sim = sim
        let seed = sim.config.seed
        registerIDs = (0..<sim.config.registers).map { ConceptID(hi: 0x5E6_0000 | seed & 0xFFFF, lo: UInt64($0) &* 0x9E37_79B9_7F4A_7C15 &+ 7) }
        anchorIDs = (0..<sim.config.anchors).map { ConceptID(hi: 0xA4C_0000 | seed & 0xFFFF, lo: UInt64($0) &* 0xBF58_476D_1CE4_E5B9 &+ 3) }
        var ps: [(ConceptID, ConceptID)] = []
        for a in anchorIDs { for b in anchorIDs where a != b && a.shard(of: sim.config.shards) != b.shard(of: sim.config.shards) { ps.append((a, b)) } }
        pairs = ps
        clients = (0..<sim.config.clients).map { Client(id: 1000 + UInt64($0), process: $0) }
        // Half the clients are bound to a node (as curl users and HTTP clients are); the rest route like the SDK.
        for (i, c) in clients.enumerated() where i % 2 == 1 { c.home = NodeID(1 + i % sim.config.nodes) }
    }

    func key(_ id: ConceptID) -> String { "r\(registerIDs.firstIndex(of: id)!)" }
    func edgeKey(_ a: ConceptID, _ b: ConceptID) -> String { "e\(anchorIDs.firstIndex(of: a)!)>\(anchorIDs.firstIndex(of: b)!)" }
    func shard(_ id: ConceptID) -> Int { id.shard(of: sim.config.shards) }

    var idle: Bool { clients.allSatisfy { $0.pending == nil } }

    /// A register concept holding `value`, with an embedding derived from it.
    func concept(_ id: ConceptID, _ value: String) -> Concept {
        var h: UInt64 = 1469598103934665603
        for b in value.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
        let e = (0..<ClusterSimulation.dimension).map { i in Float((h >> (UInt64(i) * 8)) & 0xFF) + 1 }
        return Concept(id: id, content: Array(value.utf8), embedding: e)
    }

    // MARK: setup

    /// Elects leaders and creates the anchors, without faults.
    func setup() {
        load = false
        let setupClient = Client(id: 999, process: 999)
        var remaining = anchorIDs
        for _ in 0..<4000 where !sim.failed {
            sim.step(faults: false)
            if setupClient.pending == nil, let a = remaining.first {
                remaining.removeFirst()
                let c = Concept(id: a, content: [1])
                start(setupClient, .put(c), shard: shard(a), record: .write(f: .put, key: "anchor", value: nil, expected: nil), write: true)
            }
            if remaining.isEmpty, setupClient.pending == nil { break }
            step(setupClient)
        }
        operations.removeAll { $0.key == "anchor" }
        if setupClient.pending != nil || !remaining.isEmpty { sim.fail("setup: the anchors were not created in 4000 steps") }
        load = true
    }

    // MARK: driving

    func tick() {
        for c in clients { step(c) }
    }

    private func step(_ c: Client) {
        if var p = c.pending {
            if let at = p.retryAt {
                if sim.now >= at { p.retryAt = nil; c.pending = p; attempt(c) }
                return
            }
            if sim.now >= p.deadline {
                // The node took too long (crashed, partitioned, a slow disk): the outcome is unknown; retry.
                p.attempts += 1
                c.pending = p
                retryOrGiveUp(c, reason: "timeout at node \(p.target)")
            }
            return
        }
        guard load else { return }
        issueNext(c)
    }

    private func value(_ c: Client) -> String {
        defer { nextValue += 1 }
        return "c\(c.id)-\(nextValue)"
    }

    private func issueNext(_ c: Client) {
        let roll = sim.rng.below(100)
        let reg = registerIDs[sim.rng.below(registerIDs.count)]
        switch roll {
        case 0..<20:
            start(c, .get(reg, .linearizable), shard: shard(reg), record: .get(key: key(reg)), write: false)
        case 20..<22:
            // A partial update of the content alone (the embedding stays), half of them conditional on the value
            // last seen: a put of the value, or a compare-and-set, for the history; "not found" when absent.
            let v = value(c)
            let patch = ConceptPatch(content: Array(v.utf8))
            if let expected = lastValue(key(reg)), sim.rng.chance(0.5) {
                start(c, .patch(reg, patch, .content(Array(expected.utf8))), shard: shard(reg),
                      record: .write(f: .cas, key: key(reg), value: v, expected: expected), write: true)
            } else {
                start(c, .patch(reg, patch, nil), shard: shard(reg), record: .write(f: .put, key: key(reg), value: v, expected: nil), write: true)
            }
        case 22..<36:
            let v = value(c)
            start(c, .put(concept(reg, v)), shard: shard(reg), record: .write(f: .put, key: key(reg), value: v, expected: nil), write: true)
        case 36..<44:
            // Compare-and-set against the value last seen for the key (or absent).
            let expected = lastValue(key(reg))
            let v = value(c)
            let cond: PutCondition = expected.map { .content(Array($0.utf8)) } ?? .absent
            start(c, .putIf(concept(reg, v), cond), shard: shard(reg), record: .write(f: .cas, key: key(reg), value: v, expected: expected), write: true)
        case 44..<47:
            start(c, .delete(reg), shard: shard(reg), record: .write(f: .put, key: key(reg), value: nil, expected: nil), write: true)
        case 47:
            // A cascading delete of an anchor: it and every association touching it go at once — every edge key
            // it is an end of reads absent afterwards (a dangling twin on another shard would read present).
            let a = anchorIDs[sim.rng.below(anchorIDs.count)]
            let keys = pairs.filter { $0.0 == a || $0.1 == a }.map { (key: edgeKey($0.0, $0.1), value: String?.none) }
            start(c, .delete(a), shard: shard(a), record: .batch(keys), write: true)
        case 48:
            // Anchors come back after a delete (no edges), so associations can go on.
            let a = anchorIDs[sim.rng.below(anchorIDs.count)]
            start(c, .putIf(Concept(id: a, content: [1]), .absent), shard: shard(a), record: .untracked, write: true)
        case 49..<62:
            // A cross-shard batch: puts (and sometimes a delete) of registers on at least two shards.
            var items: [BatchItem] = []
            var rec: [(key: String, value: String?)] = []
            // Mostly across shards (one transaction); sometimes on one shard (one entry, forwarded to its
            // leader by whichever node the client reached).
            var used: [ConceptID] = []
            let n = 2 + sim.rng.below(2)
            let oneShard = sim.rng.chance(0.3) ? shard(reg) : nil
            for _ in 0..<16 where used.count < n {
                let id = registerIDs[sim.rng.below(registerIDs.count)]
                if !used.contains(id), oneShard == nil || shard(id) == oneShard { used.append(id) }
            }
            guard used.count >= 2, oneShard != nil || Set(used.map(shard)).count >= 2 else { return }
            for id in used {
                if sim.rng.chance(0.15) {
                    items.append(.delete(id)); rec.append((key(id), nil))
                } else {
                    let v = value(c)
                    items.append(.put(concept(id, v))); rec.append((key(id), v))
                }
            }
            let s = shard(used[0])
            start(c, .batch(items), shard: s, record: .batch(rec), write: true)
        case 69..<72:
            // Removing one association: both edge records at once, or neither.
            guard !pairs.isEmpty else { return }
            let (a, b) = pairs[sim.rng.below(pairs.count)]
            start(c, .dissociate(source: a, target: b, type: .semantic), shard: shard(a),
                  record: .write(f: .put, key: edgeKey(a, b), value: nil, expected: nil), write: true)
        case 62..<69:
            guard !pairs.isEmpty else { return }
            let (a, b) = pairs[sim.rng.below(pairs.count)]
            let sig = nextSignature
            precondition(sig < 1 << 20, "out of association signatures")
            nextSignature += 1
            attemptedEdges.insert([a, b])
            start(c, .associate(source: a, target: b, type: .semantic, confidence: Float(sig) * Self.signatureUnit), shard: shard(a),
                  record: .associate(key: edgeKey(a, b), value: String(sig), txn: nil), write: true)
        case 72..<84:
            let a = anchorIDs[sim.rng.below(anchorIDs.count)]
            start(c, .neighbors(a, .both, nil, .linearizable), shard: shard(a), record: .neighbors(a), write: false)
        case 84..<94:
            let q = concept(reg, value(c)).embedding!
            start(c, .search(vector: q, VectorQuery(k: 1000), .linearizable), shard: -1, record: .search, write: false)
        default:
            let a = anchorIDs[sim.rng.below(anchorIDs.count)], b = anchorIDs[sim.rng.below(anchorIDs.count)]
            guard a != b else { return }
            start(c, .path(from: a, to: b, maxDepth: 4, .linearizable), shard: -1, record: .path, write: false)
        }
    }

    /// The value this workload last saw written or read for a key (for a plausible compare-and-set).
    private func lastValue(_ key: String) -> String? {
        for op in operations.reversed() where op.key == key && op.outcome == .ok {
            return op.value
        }
        return nil
    }

    private func start(_ c: Client, _ op: ClientOp, shard: Int, record: Record, write: Bool) {
        var session = ClientSession()
        if write {
            session = ClientSession(clientID: c.id, sequence: c.nextSequence, ackedBelow: c.nextSequence)
            c.nextSequence += 1
        }
        session.mayForward = !c.routesItself
        var rec = record
        if case .associate(let k, let v, _) = record {
            // Every pair spans two shards: one transaction, whose id is the client's session.
            rec = .associate(key: k, value: v, txn: TxnID(client: c.id, sequence: session.sequence))
        }
        c.pending = Pending(op: op, shard: shard, session: session, invokedAt: sim.now, record: rec)
        attempt(c)
    }

    /// Sends the pending operation to the node it should go to now.
    private func attempt(_ c: Client) {
        guard var p = c.pending else { return }
        let alive = sim.nodes.filter(\.alive)
        guard !alive.isEmpty else { p.deadline = sim.now + 4 * ClusterSimulation.unitsPerTick; c.pending = p; return }
        var target = alive[sim.rng.below(alive.count)]
        if p.shard >= 0, let hint = c.leaderHints[p.shard], sim.node(hint).alive { target = sim.node(hint) }
        if p.attempts == 0, let home = c.home, sim.node(home).alive { target = sim.node(home) }
        c.nextToken += 1
        p.token = c.nextToken
        p.target = target.id
        p.deadline = sim.now + 120 * ClusterSimulation.unitsPerTick
        c.pending = p
        let token = p.token, incarnation = target.incarnation
        target.core!.execute(p.op, session: p.session) { [unowned self, unowned target] result in
            // A process that died never answers; a late answer to an abandoned attempt is ignored.
            guard target.incarnation == incarnation, c.pending?.token == token else { return }
            self.answered(c, result)
        }
    }

    private func answered(_ c: Client, _ result: Result<ClientReply, ClientError>) {
        guard var p = c.pending else { return }
        switch result {
        case .success(let reply):
            complete(c, p, .ok, reply)
        case .failure(let e):
            switch e.code {
            case .notFound where isGet(p):
                complete(c, p, .ok, nil)
            case .notLeader, .unavailable, .timeout, .diskFull:
                if e.code == .diskFull { sim.stats.writesRefusedDiskFull += 1 }
                if e.leader != noNode, p.shard >= 0 { c.leaderHints[p.shard] = e.leader }
                p.attempts += 1
                c.pending = p
                retryOrGiveUp(c, reason: e.message)
            case .internal:
                // The node cannot tell what became of the request: its outcome is unknown.
                complete(c, p, .info, nil)
            default:
                // Refused (not found, condition not met, conflict, invalid): certainly not applied.
                complete(c, p, .fail, nil)
            }
        }
    }

    private func isGet(_ p: Pending) -> Bool {
        if case .get = p.record { return true }
        if case .final = p.record { return true }
        return false
    }

    private func retryOrGiveUp(_ c: Client, reason: String) {
        guard let p = c.pending else { return }
        sim.note("client \(c.id) attempt \(p.attempts) of \(p.record) at node \(p.target): \(reason)")
        if p.attempts < 8 {
            // Back off as the SDK does (a leader is being elected, a node restarts), then try again.
            var q = p
            q.retryAt = sim.now + UInt64(1 + min(p.attempts, 4)) * 2 * ClusterSimulation.unitsPerTick
            c.pending = q
            return
        }
        let isWrite: Bool
        switch p.record {
        case .write, .batch, .associate: isWrite = true
        default: isWrite = false
        }
        complete(c, p, isWrite ? .info : .fail, nil)
    }

    private func complete(_ c: Client, _ p: Pending, _ outcome: Outcome, _ reply: ClientReply?) {
        c.pending = nil
        switch outcome {
        case .ok: sim.stats.opsOK += 1
        case .fail: sim.stats.opsFailed += 1
        case .info: sim.stats.opsUnknown += 1
        }
        let inv = Int64(p.invokedAt), comp = Int64(sim.now)
        func add(_ process: Int, _ f: OpFunction, _ key: String, _ value: String?, _ expected: String?, _ o: Outcome) {
            operations.append(HistoryOperation(index: operations.count, process: process, f: f, key: key, value: value,
                                               expected: expected, invokeTime: inv, completionTime: comp, outcome: o))
        }
        switch p.record {
        case .get(let key), .final(let key):
            guard outcome == .ok else { return }
            var v: String?
            if case .concept(let concept)? = reply { v = String(decoding: concept.content, as: UTF8.self) }
            sim.stats.readsChecked += 1
            if case .final = p.record { finals.updateValue(v, forKey: key) } else { add(c.process, .get, key, v, nil, .ok) }
        case .write(let f, let key, let value, let expected):
            add(c.process, f, key, value, expected, outcome)
            if outcome == .ok, p.session.clientID != 0, case .write(let version)? = reply, sim.rng.below(8) == 0 {
                sendDuplicate(p, txn: TxnID(client: p.session.clientID, sequence: p.session.sequence), version: version)
            }
        case .batch(let items):
            if outcome == .ok { sim.stats.batchesOK += 1 }
            // Batches and cascading deletes (an anchor with its edges on other shards) sent again at once.
            var cascade = false
            if case .delete = p.op { cascade = true }
            if outcome == .ok, p.session.clientID != 0, case .write(let version)? = reply, sim.rng.below(cascade ? 2 : 8) == 0 {
                sendDuplicate(p, txn: TxnID(client: p.session.clientID, sequence: p.session.sequence), version: version)
            }
            for (i, item) in items.enumerated() { add(c.process * 100 + i + 1, .put, item.key, item.value, nil, outcome) }
        case .associate(let key, let value, let txn):
            add(c.process, .put, key, value, nil, outcome)
            if outcome == .ok, let txn {
                acknowledgedTxns.append(txn)
                if case .write(let version)? = reply, sim.rng.below(4) == 0 { sendDuplicate(p, txn: txn, version: version) }
            }
        case .neighbors(let anchor):
            guard outcome == .ok, case .neighbors(let edges)? = reply else { return }
            sim.stats.readsChecked += 1
            // One read of every edge key this anchor is an end of: the out-edges here, the in-edges here.
            for (a, b) in pairs where a == anchor || b == anchor {
                let dir: EdgeDirection = a == anchor ? .outgoing : .incoming
                let other = a == anchor ? b : a
                let e = edges.first { $0.direction == dir && $0.edge.other == other && $0.edge.type == .semantic }
                add(c.process * 100 + 50, .get, edgeKey(a, b), e.map { String(Int($0.edge.confidence / Self.signatureUnit)) }, nil, .ok)
            }
        case .search:
            guard outcome == .ok, case .search(let hits)? = reply else { return }
            sim.stats.searchesChecked += 1
            searches.append((p.invokedAt, sim.now, Set(hits.map(\.id))))
        case .path:
            guard outcome == .ok, case .path(let found, let ids, _)? = reply, found else { return }
            paths.append(ids)
        case .untracked:
            break
        }
    }

    // MARK: duplicates

    /// Sends an acknowledged write (cross-shard ones, and single-shard writes and cascading deletes) again with its
    /// session, to the node that answered it (a client's retry that raced the answer, or a duplicated request): it
    /// must be answered, with the first outcome or an unknown or retryable error — never another version, never a
    /// refusal saying it was not applied (but "stale retry": the client's next write may have acknowledged it).
    private func sendDuplicate(_ p: Pending, txn: TxnID, version: UInt64) {
        let target = sim.node(p.target)
        guard target.alive, let core = target.core else { return }
        nextDuplicate += 1
        let n = nextDuplicate, incarnation = target.incarnation
        duplicatesInFlight[n] = (target.id, incarnation, txn)
        sim.stats.duplicatesSent += 1
        sim.note("client \(txn.client) sends \(p.record) (\(txn)) again to node \(target.id)")
        core.execute(p.op, session: p.session) { [unowned self, unowned target] result in
            guard target.incarnation == incarnation, self.duplicatesInFlight.removeValue(forKey: n) != nil else { return }
            switch result {
            case .success(.write(let v)) where v == version:
                self.sim.stats.duplicatesMatched += 1
            case .success(let other):
                self.sim.fail("write \(txn) (client:sequence) sent again was answered \(other); its first answer was version \(version)")
            case .failure(let e):
                switch e.code {
                // Not `.internal` ("its outcome can no longer be told"): sent right after its answer, before the
                // client acknowledged it, the write's outcome is still remembered by its shard.
                case .notLeader, .unavailable, .timeout, .diskFull: break
                case _ where e.message.contains(Rejection.staleRetry): break
                default: self.sim.fail("write \(txn) (client:sequence), applied at version \(version), sent again was refused as not applied: \(e.code) \(e.message)")
                }
            }
        }
    }

    /// After settling: every duplicate sent to a process still running is answered — waiting, without faults,
    /// long enough for any forward it made to time out (`NodeCore.forwardTimeoutTicks`) and more.
    func checkDuplicatesAnswered() {
        let until = sim.tick + 250
        while !duplicatesInFlight.isEmpty, sim.tick < until, !sim.failed { sim.step(faults: false) }
        for (_, d) in duplicatesInFlight.sorted(by: { $0.key < $1.key }) where !sim.failed {
            let node = sim.node(d.node)
            if node.alive, node.incarnation == d.incarnation {
                sim.fail("transaction \(d.txn) sent again to node \(d.node) was never answered (the node still runs; it waits on \(node.core?.waitingSummary ?? "?"))")
            }
        }
    }

    // MARK: final reads

    /// After settling: a linearizable read of every register, through the same entry point.
    func finalReads() {
        let reader = Client(id: 998, process: 998)
        for id in registerIDs where !sim.failed {
            start(reader, .get(id, .linearizable), shard: shard(id), record: .final(key: key(id)), write: false)
            var steps = 0
            while reader.pending != nil, steps < 4000, !sim.failed {
                sim.step(faults: false)
                step(reader)
                steps += 1
            }
            if reader.pending != nil || finals.index(forKey: key(id)) == nil {
                sim.fail("final read of \(key(id)) (\(id)) got no answer after healing")
            }
        }
    }
}
