@testable import Raft
import XCTest

/// A deterministic in-memory group for rule tests: each replica persists its Ready to a MemoryStorage, then its
/// messages are delivered (unless a link is cut or `filter` drops them) until the group is quiet.
final class TestCluster {
    private(set) var ids: [NodeID]
    var storages: [NodeID: MemoryStorage] = [:]
    var nodes: [NodeID: RaftNode] = [:]
    var applied: [NodeID: [Entry]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var droppedReads: [NodeID: [UInt64]] = [:]
    /// Directed links that drop everything: [from, to].
    var cut: Set<[NodeID]> = []
    /// Return false to drop a message.
    var filter: (Message) -> Bool = { _ in true }
    /// Every message delivered, in order.
    var delivered: [Message] = []
    var configure: (inout RaftConfig) -> Void

    init(_ ids: [NodeID], learners: [NodeID] = [], seed: UInt64 = 1, configure: @escaping (inout RaftConfig) -> Void = { _ in }) {
        self.ids = ids + learners
        self.configure = configure
        for id in ids + learners {
            let s = MemoryStorage(confState: ConfState(voters: ids, learners: learners))
            storages[id] = s
            var c = RaftConfig(id: id, seed: seed)
            configure(&c)
            nodes[id] = RaftNode(config: c, storage: s)
            applied[id] = []
        }
    }

    subscript(_ id: NodeID) -> RaftNode { nodes[id]! }

    /// Starts another replica whose storage holds `confState` (e.g. the old membership, before it is added).
    func addReplica(_ id: NodeID, confState: ConfState) {
        let s = MemoryStorage(confState: confState)
        storages[id] = s
        var c = RaftConfig(id: id, seed: id)
        configure(&c)
        nodes[id] = RaftNode(config: c, storage: s)
        applied[id] = []
        ids.append(id)
    }

    /// Processes one Ready of `id`: persist, collect messages, record applied entries, advance.
    @discardableResult
    func process(_ id: NodeID) -> [Message] {
        let n = nodes[id]!, s = storages[id]!
        guard n.hasReady() else { return [] }
        let rd = n.ready()
        if let snap = rd.snapshot { s.applySnapshot(snap) }
        s.append(rd.entries)
        if let hs = rd.hardState { s.setHardState(hs) }
        applied[id]! += rd.committedEntries
        readStates[id, default: []] += rd.readStates
        droppedReads[id, default: []] += rd.droppedReads
        n.advance()
        return rd.messages
    }

    /// Runs until no replica has work and no message is in flight.
    func settle(maxRounds: Int = 10_000) {
        var queue: [Message] = []
        for _ in 0..<maxRounds {
            for id in ids { queue += process(id) }
            if queue.isEmpty { return }
            let batch = queue
            queue = []
            for m in batch where !cut.contains([m.from, m.to]) && filter(m) {
                delivered.append(m)
                nodes[m.to]?.step(m)
            }
        }
        XCTFail("cluster did not settle")
    }

    func tick(_ id: NodeID, _ n: Int = 1) {
        for _ in 0..<n { nodes[id]!.tick() }
    }

    /// Ticks every replica `n` times, settling after each tick.
    func tickAll(_ n: Int) {
        for _ in 0..<n {
            for id in ids { nodes[id]!.tick() }
            settle()
        }
    }

    func elect(_ id: NodeID) {
        nodes[id]!.campaign()
        settle()
    }

    func isolate(_ id: NodeID) {
        for o in ids where o != id { cut.insert([id, o]); cut.insert([o, id]) }
    }

    func heal() { cut = [] }

    var leaders: [NodeID] { ids.filter { nodes[$0]!.role == .leader } }

    /// Data of applied non-empty entries.
    func appliedData(_ id: NodeID) -> [[UInt8]] { applied[id]!.filter { !$0.data.isEmpty && $0.kind == .normal }.map(\.data) }

    /// Replaces replica `id` with a fresh RaftNode over the same storage (a restart from durable state).
    func restart(_ id: NodeID, seed: UInt64 = 99) {
        var c = RaftConfig(id: id, seed: seed)
        configure(&c)
        c.applied = storages[id]!.firstIndex() - 1
        nodes[id] = RaftNode(config: c, storage: storages[id]!)
    }
}

/// A config of the classic Raft paper: no pre-vote, no check-quorum.
func classic(_ c: inout RaftConfig) {
    c.preVote = false
    c.checkQuorum = false
}

/// A single replica driven by hand-made messages.
struct Solo {
    let node: RaftNode
    let storage: MemoryStorage

    init(id: NodeID = 1, voters: [NodeID] = [1, 2, 3], log: [Entry] = [], hardState: HardState = HardState(),
         configure: (inout RaftConfig) -> Void = classic) {
        storage = MemoryStorage(confState: ConfState(voters: voters))
        storage.append(log)
        storage.setHardState(hardState)
        var c = RaftConfig(id: id, seed: 3)
        configure(&c)
        node = RaftNode(config: c, storage: storage)
    }

    /// Persists and advances the pending Ready; returns it.
    @discardableResult
    func drain() -> Ready {
        guard node.hasReady() else { return Ready() }
        let rd = node.ready()
        if let snap = rd.snapshot { storage.applySnapshot(snap) }
        storage.append(rd.entries)
        if let hs = rd.hardState { storage.setHardState(hs) }
        node.advance()
        return rd
    }

    func messages() -> [Message] { drain().messages }
}

/// Entries with the given terms at indexes 1, 2, ...
func log(_ terms: [Term]) -> [Entry] {
    terms.enumerated().map { Entry(term: $0.element, index: LogIndex($0.offset + 1), data: [UInt8($0.offset & 0xFF)]) }
}
