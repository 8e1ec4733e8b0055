import Raft
import Shard

/// Drives cross-shard transactions from the leader of their record shard: begin (record + own part, in the
/// record shard's log), prepare every other participant through its own log, decide in the record shard's
/// log, answer the client, resolve every participant, then forget the record.
///
/// It holds no state that matters for correctness: every step is a Raft entry, and a later leader of the
/// record shard adopts whatever records it finds (pending: prepares again and decides; decided: resolves
/// again). Its memory is only what is in flight. Guarantees: a client is answered `committed` only after the
/// commit decision is applied on the record shard, `aborted` only after the abort decision is (or the record
/// shard refused the begin), and `unknown` otherwise; the first decision written is the only one.
/// Not thread-safe: one per node, driven from the node's loop.
public final class TxnCoordinator {
    /// What a client is told.
    public enum Outcome: Sendable, Equatable {
        case committed(version: UInt64)
        case aborted(String)
        /// The coordinator lost track (leadership changed, the record shard was unreachable): retry with the
        /// same transaction id to learn the outcome.
        case unknown(ReplicaError)
    }

    enum Phase { case beginning, preparing, deciding, resolving }

    final class Active {
        let id: TxnID
        let recordShard: Int
        let parts: [TxnPart]
        var phase = Phase.beginning
        var startedAt: UInt64
        var deadline: UInt64 = 0
        var prepared: Set<Int> = []
        var inFlight: Set<Int> = []
        var retryAt: [Int: UInt64] = [:]
        var unresolved: Set<Int> = []
        var commit = false
        var waiters: [(Outcome) -> Void] = []
        /// The outcome once answered: a retry arriving while the transaction is still being resolved gets it
        /// at once (its waiters were answered already and will not be again).
        var outcome: Outcome?

        init(id: TxnID, recordShard: Int, parts: [TxnPart], now: UInt64) {
            self.id = id
            self.recordShard = recordShard
            self.parts = parts
            self.startedAt = now
        }

        var others: [TxnPart] { parts.filter { $0.shard != recordShard } }
    }

    /// Counters since start, for metrics.
    public struct Stats: Sendable, Equatable {
        public var committed: UInt64 = 0
        public var aborted: UInt64 = 0
        /// Records found pending or unresolved and finished by this node as a new leader of their shard.
        public var adopted: UInt64 = 0
        public var forgotten: UInt64 = 0
    }

    unowned let host: TxnHost
    public let timeouts: TxnTimeouts
    public private(set) var stats = Stats()
    private(set) var active: [TxnID: Active] = [:]
    /// Finished transactions whose records are to be forgotten, per record shard.
    private var toForget: [Int: [TxnID]] = [:]
    /// Resolves waiting for `flush()`.
    private var resolveQueue: [ResolveKey: [Active]] = [:]
    /// Forget proposals in flight: their ids are not adopted again meanwhile.
    private var forgetting: Set<TxnID> = []
    public private(set) var now: UInt64 = 0

    public init(host: TxnHost, timeouts: TxnTimeouts = TxnTimeouts()) {
        self.host = host
        self.timeouts = timeouts
    }

    /// Transactions this node is driving right now.
    public var inFlight: Int { active.count }

    /// Age in ticks of the oldest transaction this node is driving (0 if none).
    public var oldestTicks: UInt64 { active.values.map { now - $0.startedAt }.max() ?? 0 }

    /// Starts (or joins, for a retry of the same id) a transaction whose record lives on `recordShard`, which
    /// this node must lead. `ackedBelow` is the client's session acknowledgement, as for any write.
    public func start(_ id: TxnID, recordShard: Int, parts: [TxnPart], ackedBelow: UInt64, _ done: @escaping (Outcome) -> Void) {
        precondition(parts.contains { $0.shard == recordShard }, "the record shard must be a participant")
        if let a = active[id] {
            if a.parts != parts && a.recordShard == recordShard {
                // Not a retry: the client reused a sequence for other writes while the first is still here.
                done(.aborted("sequence \(id.sequence) of client \(id.client) was already used by another transaction (other writes): a new write needs a new sequence"))
                return
            }
            if let o = a.outcome { done(o) } else { a.waiters.append(done) }
            return
        }
        let a = Active(id: id, recordShard: recordShard, parts: parts, now: now)
        a.waiters.append(done)
        active[id] = a
        let req = ShardRequest(clientID: id.client, sequence: id.sequence, ackedBelow: ackedBelow,
                               command: .txnBegin(id, recordShard: recordShard, parts: parts))
        host.proposeLocal(shard: recordShard, req) { [weak self] result in
            guard let self, self.active[id] === a else { return }
            switch result {
            case .success(.pending): self.prepare(a)
            case .success(.applied(let v)):
                // A retry of a transaction that already committed (and was forgotten).
                self.answer(a, .committed(version: v))
                self.active[id] = nil
            case .success(.rejected(let why)) where why.hasPrefix(Rejection.forgotten) || why.hasPrefix(Rejection.staleRetry):
                // Decided long ago and forgotten, or a retry the client had already acknowledged: the outcome is
                // not known here any more; never call it an abort.
                self.answer(a, .unknown(.rejected(why)))
                self.active[id] = nil
            case .success(.rejected(let why)):
                self.stats.aborted += 1
                self.answer(a, .aborted(why))
                self.active[id] = nil
            case .failure(let e):
                self.answer(a, .unknown(e))
                self.active[id] = nil
            }
        }
    }

    /// Advances the clock one tick: retries, prepare deadlines, forgetting, adopting records a previous
    /// leader left behind, and letting go of transactions whose record shard this node no longer leads.
    public func tick() {
        now += 1
        for a in active.values.sorted(by: { $0.id < $1.id }) {
            if !host.isLeader(of: a.recordShard) {
                answer(a, .unknown(.notLeader(leader: noNode)))
                active[a.id] = nil
                continue
            }
            switch a.phase {
            case .preparing:
                if now >= a.deadline {
                    let missing = a.others.map(\.shard).filter { !a.prepared.contains($0) }
                    decide(a, commit: false, reason: "shard(s) \(missing) did not prepare in time")
                    continue
                }
                for (s, at) in a.retryAt where at <= now { a.retryAt[s] = nil; sendPrepare(a, s) }
            case .resolving:
                for (s, at) in a.retryAt where at <= now { a.retryAt[s] = nil; sendResolve(a, s) }
            case .beginning, .deciding:
                break
            }
        }
        if now % UInt64(max(1, timeouts.forgetTicks)) == 0 {
            flushForgets()
            adoptOrphans()
        }
        flush()
    }

    // MARK: steps

    private func prepare(_ a: Active) {
        a.phase = .preparing
        a.deadline = now + UInt64(timeouts.prepareTicks)
        if a.others.isEmpty { decide(a, commit: true, reason: ""); return }
        for p in a.others where !a.prepared.contains(p.shard) { sendPrepare(a, p.shard) }
    }

    private func sendPrepare(_ a: Active, _ shard: Int) {
        guard let part = a.parts.first(where: { $0.shard == shard }), !a.inFlight.contains(shard) else { return }
        a.inFlight.insert(shard)
        let req = ShardRequest(clientID: 0, sequence: 0, command: .txnPrepare(a.id, recordShard: a.recordShard, commands: part.commands))
        host.proposeAnywhere(shard: shard, req) { [weak self] result in
            guard let self, self.active[a.id] === a, a.phase == .preparing else { return }
            a.inFlight.remove(shard)
            switch result {
            case .success:
                a.prepared.insert(shard)
                if a.prepared.count == a.others.count { self.decide(a, commit: true, reason: "") }
            case .failure(.rejected(let why)):
                self.decide(a, commit: false, reason: "shard \(shard): \(why)")
            case .failure:
                a.retryAt[shard] = self.now + UInt64(self.timeouts.retryTicks)
            }
        }
    }

    private func decide(_ a: Active, commit: Bool, reason: String) {
        a.phase = .deciding
        a.retryAt = [:]
        let req = ShardRequest(clientID: 0, sequence: 0, command: .txnDecide(a.id, commit: commit, reason: reason))
        host.proposeLocal(shard: a.recordShard, req) { [weak self] result in
            guard let self, self.active[a.id] === a else { return }
            switch result {
            case .success(.applied(let v)):
                a.commit = true
                self.stats.committed += 1
                self.answer(a, .committed(version: v))
                self.resolve(a)
            case .success(.rejected(let why)):
                a.commit = false
                self.stats.aborted += 1
                self.answer(a, .aborted(why))
                self.resolve(a)
            case .success(.pending):
                preconditionFailure("a decision never answers pending")
            case .failure(let e):
                // Unknown: the next leader of the record shard adopts the record and finishes it.
                self.answer(a, .unknown(e))
                self.active[a.id] = nil
            }
        }
    }

    private func resolve(_ a: Active) {
        a.phase = .resolving
        a.inFlight = []
        a.unresolved = Set(a.others.map(\.shard))
        if a.unresolved.isEmpty { finished(a); return }
        for s in a.unresolved.sorted() { sendResolve(a, s) }
    }

    /// Queues a resolve; `flush()` sends the queued ones, one entry per (participant, decision).
    private func sendResolve(_ a: Active, _ shard: Int) {
        guard !a.inFlight.contains(shard) else { return }
        a.inFlight.insert(shard)
        resolveQueue[ResolveKey(shard: shard, commit: a.commit), default: []].append(a)
    }

    private struct ResolveKey: Hashable, Comparable {
        var shard: Int
        var commit: Bool
        static func < (x: ResolveKey, y: ResolveKey) -> Bool { (x.shard, x.commit ? 1 : 0) < (y.shard, y.commit ? 1 : 0) }
    }

    /// Sends the resolves queued since the last call: every transaction resolved the same way at one
    /// participant goes in one Raft entry there. The node calls it at the end of each loop turn.
    public func flush() {
        guard !resolveQueue.isEmpty else { return }
        let queued = resolveQueue
        resolveQueue = [:]
        for (key, group) in queued.sorted(by: { $0.key < $1.key }) {
            let req = ShardRequest(clientID: 0, sequence: 0, command: .txnResolve(group.map(\.id), commit: key.commit))
            host.proposeAnywhere(shard: key.shard, req) { [weak self] result in
                guard let self else { return }
                for a in group where self.active[a.id] === a {
                    a.inFlight.remove(key.shard)
                    switch result {
                    case .success:
                        a.unresolved.remove(key.shard)
                        if a.unresolved.isEmpty { self.finished(a) }
                    case .failure:
                        a.retryAt[key.shard] = self.now + UInt64(self.timeouts.retryTicks)
                    }
                }
            }
        }
    }

    private func finished(_ a: Active) {
        // Nobody who asked is left without an answer.
        if !a.waiters.isEmpty { answer(a, a.outcome ?? .unknown(.unavailable("the transaction was finished by another path; retry"))) }
        active[a.id] = nil
        toForget[a.recordShard, default: []].append(a.id)
        forgetting.insert(a.id)
    }

    private func answer(_ a: Active, _ o: Outcome) {
        a.outcome = o
        let ws = a.waiters
        a.waiters = []
        for w in ws { w(o) }
    }

    // MARK: forgetting and adopting

    private func flushForgets() {
        for (shard, ids) in toForget.sorted(by: { $0.key < $1.key }) {
            toForget[shard] = nil
            guard host.isLeader(of: shard) else { ids.forEach { forgetting.remove($0) }; continue }
            let req = ShardRequest(clientID: 0, sequence: 0, command: .txnForget(ids))
            host.proposeLocal(shard: shard, req) { [weak self] result in
                guard let self else { return }
                ids.forEach { self.forgetting.remove($0) }
                if case .success = result { self.stats.forgotten += UInt64(ids.count) }
            }
        }
    }

    /// Finishes the records of led shards that nobody here is driving (a previous leader's work).
    private func adoptOrphans() {
        for shard in 0..<host.shardCount where host.isLeader(of: shard) {
            let records = host.state(of: shard).txns.records
            for id in records.keys.sorted() where active[id] == nil && !forgetting.contains(id) {
                let r = records[id]!
                let a = Active(id: id, recordShard: shard, parts: r.parts, now: now)
                active[id] = a
                stats.adopted += 1
                switch r.status {
                case .pending:
                    prepare(a)
                case .committed, .aborted:
                    a.commit = r.status == .committed
                    // Decided already: a client's retry of it that arrives while it is resolved here is told the
                    // decision (it waited forever before: a cluster simulation seed found it).
                    a.outcome = a.commit ? .committed(version: r.decidedAt) : .aborted(r.reason)
                    resolve(a)
                }
            }
        }
    }
}
