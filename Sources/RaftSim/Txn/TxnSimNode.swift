import Raft
import Shard
import Txn2PC

/// One simulated Sutra node for the 2PC simulation: a replica of every shard (Raft core + real `ShardState`),
/// the real `TxnCoordinator` and `IntentRecovery`, and the forwarding of proposals to other nodes over the
/// simulated network. Its storages survive a crash; everything else is rebuilt from them on restart.
final class TxnSimNode: TxnHost {
    /// One shard replica: consensus core, state machine, and the callbacks waiting on it.
    final class Replica {
        let raft: RaftNode
        let state: ShardState
        var proposals: [LogIndex: (term: Term, done: (Result<ApplyResult, ReplicaError>) -> Void)] = [:]
        var readsInFlight: [UInt64: () -> Void] = [:]
        var readsConfirmed: [(index: LogIndex, done: () -> Void)] = []
        var applied: LogIndex = 0
        var wasLeader = false

        init(raft: RaftNode, limits: ShardLimits) {
            self.raft = raft
            self.state = ShardState(limits: limits)
        }
    }

    let id: NodeID
    let storages: [MemoryStorage]
    unowned let sim: TxnSimulation
    var replicas: [Replica] = []
    var coordinator: TxnCoordinator!
    var recovery: IntentRecovery!
    var alive = false
    var restartAt: UInt64?
    var incarnation: UInt64 = 0
    /// Forwarded proposals awaiting a reply: rpc id → (deadline tick, completion).
    var rpcs: [UInt64: (deadline: UInt64, done: (Result<UInt64, ReplicaError>) -> Void)] = [:]
    var nextRPC: UInt64 = 1
    var nextRead: UInt64 = 1
    var ticks: UInt64 = 0
    /// Linearizable reads waiting for intents on a concept to resolve.
    var intentWaiters: [(shard: Int, ids: Set<TxnID>, deadline: UInt64, done: (Bool) -> Void)] = []

    init(id: NodeID, shards: Int, voters: [NodeID], sim: TxnSimulation) {
        self.id = id
        self.sim = sim
        storages = (0..<shards).map { _ in MemoryStorage(confState: ConfState(voters: voters)) }
    }

    // MARK: life cycle

    func start() {
        incarnation += 1
        replicas = storages.enumerated().map { s, storage in
            var c = RaftConfig(id: id, seed: sim.config.seed &* 131 &+ id &* 7919 &+ UInt64(s) &* 104_729 &+ incarnation)
            c.electionTick = 10
            c.heartbeatTick = 1
            c.preVote = true
            c.checkQuorum = true
            c.applied = 0
            return Replica(raft: RaftNode(config: c, storage: storage), limits: sim.limits)
        }
        coordinator = TxnCoordinator(host: self, timeouts: sim.config.timeouts)
        recovery = IntentRecovery(host: self, timeouts: sim.config.timeouts)
        rpcs = [:]
        intentWaiters = []
        alive = true
        restartAt = nil
    }

    /// Loses everything but the storages (kill -9). Callbacks in flight are never called.
    func crash() {
        alive = false
        replicas = []
        coordinator = nil
        recovery = nil
        rpcs = [:]
        intentWaiters = []
    }

    // MARK: TxnHost

    var shardCount: Int { storages.count }
    func state(of shard: Int) -> ShardState { replicas[shard].state }
    func isLeader(of shard: Int) -> Bool { alive && replicas[shard].raft.role == .leader }

    func proposeLocal(shard: Int, _ request: ShardRequest, _ done: @escaping (Result<ApplyResult, ReplicaError>) -> Void) {
        let r = replicas[shard]
        guard r.raft.role == .leader else { done(.failure(.notLeader(leader: r.raft.leader))); return }
        do {
            let index = try r.raft.propose(request.encode())
            r.proposals[index] = (r.raft.term, done)
        } catch {
            done(.failure(.notLeader(leader: r.raft.leader)))
        }
    }

    func proposeAnywhere(shard: Int, _ request: ShardRequest, _ done: @escaping (Result<UInt64, ReplicaError>) -> Void) {
        if isLeader(of: shard) {
            proposeLocal(shard: shard, request) { result in done(TxnSimNode.plain(result)) }
            return
        }
        let leader = replicas[shard].raft.leader
        guard leader != noNode, leader != id else { done(.failure(.unavailable("no leader"))); return }
        let rpc = nextRPC
        nextRPC += 1
        rpcs[rpc] = (ticks + 20, done)
        sim.send(.propose(from: id, to: leader, rpc: rpc, shard: shard, request))
    }

    static func plain(_ r: Result<ApplyResult, ReplicaError>) -> Result<UInt64, ReplicaError> {
        switch r {
        case .failure(let e): return .failure(e)
        case .success(.applied(let v)): return .success(v)
        case .success(.rejected(let why)): return .failure(.rejected(why))
        case .success(.pending(let since)): return .success(since)
        }
    }

    // MARK: driving

    func tick() {
        ticks += 1
        for r in replicas { r.raft.tick() }
        for (k, rpc) in rpcs.sorted(by: { $0.key < $1.key }) where rpc.deadline <= ticks {
            rpcs[k] = nil
            rpc.done(.failure(.unavailable("forwarded proposal timed out")))
        }
        let expired = intentWaiters.filter { $0.deadline <= ticks }
        intentWaiters.removeAll { $0.deadline <= ticks }
        for w in expired { w.done(false) }
        coordinator.tick()
        recovery.tick()
    }

    /// Handles every Ready of every replica: persist, send, apply, answer. Returns whether anything happened.
    @discardableResult
    func process() -> Bool {
        var any = false
        if alive { coordinator.flush() }
        for (s, r) in replicas.enumerated() where alive && r.raft.hasReady() {
            any = true
            let rd = r.raft.ready()
            if !rd.entries.isEmpty { storages[s].append(rd.entries) }
            if let hs = rd.hardState { storages[s].setHardState(hs) }
            for m in rd.messages { sim.send(.raft(shard: s, m)) }
            for e in rd.committedEntries { apply(e, shard: s) }
            for rs in rd.readStates {
                if let done = r.readsInFlight.removeValue(forKey: rs.requestID) { r.readsConfirmed.append((rs.index, done)) }
            }
            for d in rd.droppedReads { r.readsInFlight[d] = nil }
            r.raft.advance()
            if let ss = rd.softState, ss.role != .leader, r.wasLeader {
                let ps = r.proposals
                r.proposals = [:]
                for (_, p) in ps.sorted(by: { $0.key < $1.key }) { p.done(.failure(.unavailable("leadership lost"))) }
                r.readsInFlight = [:]
                r.readsConfirmed = []
            }
            if let ss = rd.softState { r.wasLeader = ss.role == .leader }
            serveReads(r)
            wakeIntentWaiters(s)
            guard alive else { return true }
        }
        return any
    }

    private func apply(_ e: Entry, shard s: Int) {
        let r = replicas[s]
        guard e.index > r.applied else { return }
        r.applied = e.index
        guard e.kind == .normal, !e.data.isEmpty else { return }
        let req = try! ShardRequest.decode(e.data)
        let result = r.state.apply(req, at: e.index)
        sim.observeApplied(req, result: result, shard: s, node: id)
        guard let p = r.proposals.removeValue(forKey: e.index) else { return }
        if p.term == e.term { p.done(.success(result)) } else { p.done(.failure(.unavailable("superseded"))) }
    }

    private func serveReads(_ r: Replica) {
        while let first = r.readsConfirmed.first, first.index <= r.applied {
            r.readsConfirmed.removeFirst()
            first.done()
        }
    }

    private func wakeIntentWaiters(_ shard: Int) {
        let intents = replicas[shard].state.txns.intents
        var ready: [(Bool) -> Void] = []
        intentWaiters = intentWaiters.compactMap { w in
            guard w.shard == shard else { return w }
            var w = w
            w.ids = w.ids.filter { intents[$0] != nil }
            if w.ids.isEmpty { ready.append(w.done); return nil }
            return w
        }
        for d in ready { d(true) }
    }

    // MARK: client operations

    /// A linearizable read of a concept's edges (both directions) at this node, which must lead its shard:
    /// ReadIndex, then (unless the known-bad switch is on) wait for intents touching it to resolve.
    func readEdges(_ id: ConceptID, shard s: Int, _ done: @escaping ([Edge]?) -> Void) {
        guard isLeader(of: s) else { done(nil); return }
        let r = replicas[s]
        let rid = nextRead
        nextRead += 1
        do { try r.raft.readIndex(requestID: rid) } catch { done(nil); return }
        let incarnation = self.incarnation
        r.readsInFlight[rid] = { [weak self] in
            guard let self, self.alive, self.incarnation == incarnation else { done(nil); return }
            let answer = { (ok: Bool) in
                guard ok, self.alive, self.incarnation == incarnation else { done(nil); return }
                let st = self.replicas[s].state
                done(st.neighbors(of: id, direction: .outgoing) + st.neighbors(of: id, direction: .incoming))
            }
            let pending = r.state.txns.pending(touching: id)
            if pending.isEmpty || self.sim.config.readsIgnoreIntents { answer(true); return }
            self.intentWaiters.append((s, pending, self.ticks + 60, answer))
        }
    }

    // MARK: messages

    func receive(_ m: TxnSimMessage) {
        switch m {
        case .raft(let s, let msg):
            replicas[s].raft.step(msg)
        case .propose(let from, _, let rpc, let s, let req):
            guard isLeader(of: s) else {
                sim.send(.reply(from: id, to: from, rpc: rpc, .failure(.notLeader(leader: replicas[s].raft.leader))))
                return
            }
            proposeLocal(shard: s, req) { [weak self] result in
                guard let self else { return }
                self.sim.send(.reply(from: self.id, to: from, rpc: rpc, TxnSimNode.plain(result)))
            }
        case .reply(_, _, let rpc, let result):
            rpcs.removeValue(forKey: rpc)?.done(result)
        }
    }
}

/// What travels between simulated nodes.
enum TxnSimMessage {
    case raft(shard: Int, Message)
    case propose(from: NodeID, to: NodeID, rpc: UInt64, shard: Int, ShardRequest)
    case reply(from: NodeID, to: NodeID, rpc: UInt64, Result<UInt64, ReplicaError>)

    var from: NodeID {
        switch self {
        case .raft(_, let m): return m.from
        case .propose(let f, _, _, _, _), .reply(let f, _, _, _): return f
        }
    }

    var to: NodeID {
        switch self {
        case .raft(_, let m): return m.to
        case .propose(_, let t, _, _, _), .reply(_, let t, _, _): return t
        }
    }
}
