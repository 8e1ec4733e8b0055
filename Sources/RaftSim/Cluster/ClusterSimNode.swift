import Logging
import NodeCore
import Raft
import Shard
import WAL

/// One simulated Sutra node: the production `NodeCore` over a `MemoryLogStore`, with this type as its `NodeIO`
/// (peer frames go into the simulation's network, durable writes to a simulated disk with a seeded delay).
///
/// A crash drops the process — the core, its waiters and callbacks, the write in flight — and keeps only what
/// the store completed; a restart builds a new `NodeCore` over the same store as a new incarnation.
final class ClusterSimNode: NodeIO, ForwardProbe {
    let id: NodeID
    private(set) var store = MemoryLogStore()
    /// The node's data was wiped and not every replica has caught up again (it may hold less than it acknowledged).
    var lostState = false
    unowned let sim: ClusterSimulation
    private(set) var core: NodeCore?
    private(set) var incarnation: UInt64 = 0
    /// The write in flight: when the simulated disk finishes it.
    private var write: (prepared: PreparedMemoryWrite, dueAt: UInt64, startedAt: UInt64)?
    /// Work done "off the loop" (`runOffLoop`): its completions, due in this process, in order.
    private var offLoop: [(dueAt: UInt64, done: () -> Void)] = []
    /// Units one write takes now (slow disks take longer than an election timeout).
    var diskDelay: UInt64 = 1
    var slowUntil: UInt64?
    /// Until `until`: with `writesFail` the disk is full — a due write finds no space, the core is told
    /// (`writeStalled`) and retries it (`retryWrite`); with `readsLow` the measured free space is below the floor
    /// (0). Full but not read low is a disk that filled between two measurements, or a node without a floor.
    var diskFull: (until: UInt64, writesFail: Bool, readsLow: Bool)?
    var restartAt: UInt64?
    /// A crash loop: this process dies again at this time.
    var crashAgainAt: UInt64?
    /// Peers this process last saw connected (a change to down is reported to the core, as the transport does).
    private var connected: Set<NodeID> = []

    var alive: Bool { core != nil }

    /// A spare machine: not started until the simulation makes it replace a node (`--join`, groups without members).
    var spare: Bool
    /// Killed for good (its machine is gone): never restarted, no longer counted once replaced.
    var retired = false
    /// Started with `--join`: its data directory starts without members.
    var joiner: Bool

    init(id: NodeID, sim: ClusterSimulation, spare: Bool = false) {
        self.id = id
        self.sim = sim
        self.spare = spare
        self.joiner = spare
        writeInitialMembership()
    }

    /// What a new data directory holds before the first start: every shard's creation membership (nothing for a
    /// node that joins: it learns its groups' members from their snapshots).
    private func writeInitialMembership() {
        guard !joiner else { return }
        var initial = WriteBatch()
        // The shards this node holds a replica of (as `NodeServer.openLogs` writes them: nothing for the others
        // when the replication factor is below the node count), and the meta group's (group = the shard count).
        let config = sim.nodeConfig(id)
        for s in 0..<sim.config.shards {
            let members = NodeCore.initialMembership(config, shard: s)
            if members.contains(id) { initial.setInitialMembership(group: UInt64(s), members) }
        }
        initial.setInitialMembership(group: UInt64(sim.config.shards), NodeCore.metaMembership(config))
        store.complete(store.prepare(initial))
    }

    /// Starts a new process (a new incarnation) over the durable store.
    func start(incarnation: UInt64) {
        precondition(core == nil, "node \(id) is already running")
        precondition(incarnation != self.incarnation && incarnation != 0, "every process has a new incarnation")
        self.incarnation = incarnation
        let logs = (0...sim.config.shards).map { store.group(UInt64($0)) }
        do {
            core = try NodeCore(config: sim.nodeConfig(id), logs: logs, vectors: ConceptVectors(dimension: ClusterSimulation.dimension),
                                io: self, incarnation: incarnation, logger: sim.logger(node: id))
        } catch {
            sim.fail("node \(id) could not restart from its durable state: \(error)")
            return
        }
        for r in core!.replicas {
            r.applyObserver = { [unowned self] shard, request, result in self.sim.observeApplied(request, result, shard: shard, node: self.id) }
        }
        core!.forwardProbe = self
        connected = []
        restartAt = nil
        let recovered = core!.replicas.map { r in
            "\(r.shard): term \(r.raft.term)\(r.raft.isAbstaining ? " abstaining" : "") last \(r.raft.lastIndex) committed \(r.raft.commitIndex)"
        }
        sim.note("node \(id) recovered " + recovered.joined(separator: "; "))
    }

    /// kill -9: everything not completed on the store is gone; no callback of the process ever runs again.
    func crash() {
        if let core { sim.countProcess(core) }
        core = nil
        write = nil
        offLoop = []
        store.crash()
    }

    /// kill -9 and the data directory lost: the next start is over a blank store (the same id, new data).
    func wipe() {
        crash()
        store = MemoryLogStore()
        writeInitialMembership()
        lostState = true
    }

    /// A wiped node holds its share again once every replica stopped abstaining with a committed log of its own
    /// — on its disk, not only in memory (a follower's commit index may cover entries it has not yet made
    /// durable; a crash then finds it blank again, and the fault budget must still count it as down).
    func noticeCaughtUp() {
        guard lostState, let core else { return }
        // The groups it is a member of: every shard's unless the replication factor is below the node count, and
        // the meta group (= the shard count).
        let held = core.replicas.filter { $0.raft.confState.contains(id) }
        let durable = (held.map(\.shard) + [sim.config.shards]).allSatisfy { s in
            let g = store.group(UInt64(s))
            return g.hardState.term > 0 && g.hardState.vote != RaftNode.abstainVote && g.lastIndex() > 0
        }
        if durable, held.allSatisfy(\.raft.hasCaughtUp), core.meta.raft.hasCaughtUp {
            lostState = false
            sim.note("node \(id) caught up after its wipe")
        }
    }

    /// Completes the write in flight if the disk has finished it.
    func completeWriteIfDue() {
        guard var w = write, w.dueAt <= sim.now, let core else { return }
        if diskFull?.writesFail == true {
            w.dueAt = .max   // until the core asks again
            write = w
            sim.stats.stalledWrites += 1
            core.writeStalled(now: sim.nanos, error: "simulated: no space left on device")
            return
        }
        write = nil
        store.complete(w.prepared)
        sim.stats.durableWrites += 1
        core.writeCompleted(now: sim.nanos, tookNanos: (sim.now - w.startedAt) * ClusterSimulation.nanosPerUnit)
    }

    /// Tells the core about links that went down since the last call.
    func noticeLinks() {
        guard let core else { return }
        for p in sim.nodes.map(\.id) where p != id {
            let up = sim.linkUp(id, p)
            if up { connected.insert(p) } else if connected.remove(p) != nil { core.linkDown(p) }
        }
    }

    // MARK: NodeIO

    func send(_ frame: PeerFrame, to peer: NodeID) -> Bool { sim.send(frame, from: id, to: peer) }
    func flushPeers() {}
    func isConnected(_ peer: NodeID) -> Bool { sim.linkUp(id, peer) }
    func wireVersion(of peer: NodeID) -> UInt32 { sim.linkUp(id, peer) ? PeerFrame.maxVersion : 0 }
    func clientAddresses(of peer: NodeID) -> (client: String, http: String)? { ("sim-\(peer):7100", "sim-\(peer):7200") }

    func startWrite(_ batch: WriteBatch) {
        precondition(write == nil, "node \(id): a second write while one is in flight")
        write = (store.prepare(batch), sim.now + diskDelay, sim.now)
    }

    func retryWrite() {
        guard let w = write, w.dueAt == .max else { preconditionFailure("node \(id): retryWrite without a stalled write") }
        write!.dueAt = sim.now + diskDelay
    }

    /// What the driver measures about once a second: the space left on the data directory's file system.
    func reportDiskSpace() {
        core?.diskSpace(freeBytes: diskFull?.readsLow == true ? 0 : 1 << 40)
    }

    // MARK: ForwardProbe

    func willSend(_ op: ForwardOp, shard: Int, to leader: NodeID) -> UInt64 { sim.forwardSent(op, shard: shard) }
    func answered(_ op: ForwardOp, shard: Int, token: UInt64, result: ForwardResult) {
        sim.forwardAnswered(op, shard: shard, token: token, result: result, node: id)
    }

    /// The work runs at once (it touches nothing of the core); its completion comes back as many units later as
    /// a write takes now, so the core goes on with other frames meanwhile, as on the thread pool.
    func runOffLoop<T: Sendable>(_ work: @escaping @Sendable () -> T, then done: @escaping (T) -> Void) {
        let result = work()
        offLoop.append((sim.now + diskDelay, { done(result) }))
    }

    /// Completes the off-loop work that is due (after the process's frames of this unit).
    func completeOffLoopIfDue() {
        while core != nil, let first = offLoop.first, first.dueAt <= sim.now {
            offLoop.removeFirst()
            first.done()
        }
    }

    func saveVectorIndex() {}

    /// The simulated network reaches every node by id: nothing to link.
    func peersChanged(_ peers: [NodeID: String]) {}

    /// The end of a graceful stop: the process exits. The loop first finishes the WAL write in flight (libuv
    /// completes a queued work request before `uv_run` returns), then nothing of the process runs again.
    func shutdownFinished() {
        guard let core else { return }
        sim.gracefulStopEnded(id, stillLeading: core.replicas.filter(\.isLeader).map(\.shard))
        if let w = write {
            store.complete(w.prepared)
            sim.stats.durableWrites += 1
        }
        write = nil
        offLoop = []
        sim.countProcess(core)
        self.core = nil
    }
}
