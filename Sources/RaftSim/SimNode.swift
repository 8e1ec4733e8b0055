import Raft

/// One simulated replica: its durable storage (survives crashes), its consensus core (lost on crash),
/// the Ready being persisted, and a tiny state machine — the applied index and a hash chain over
/// every applied entry, which is what snapshots carry.
final class SimNode {
    let id: NodeID
    /// Durable storage: survives crashes; replaced by a blank one when the node is wiped.
    var storage: MemoryStorage
    /// The membership a blank storage starts from (the group's creation membership, as a wiped node's flags give).
    let initialConf: ConfState
    /// The node was wiped and has not yet caught up again (it may hold less than it acknowledged).
    var lostState = false
    var raft: RaftNode?
    var inFlight: (ready: Ready, doneAt: UInt64)?

    var appliedIndex: LogIndex = 0
    var appliedHash: UInt64 = 0
    /// The membership as of `appliedIndex`, computed here independently of the core: the installed snapshot's,
    /// then every applied conf-change entry in order. The core's `confState` must always match it.
    var appliedConf: ConfState
    /// Until this time every fsync of this node is slow (a slow-disk episode); survives crashes.
    var slowDiskUntil: UInt64 = 0
    /// This node never takes `takeImmediateMessages()`: every message leaves with its Ready, after the fsync.
    var sendsOnlyAfterPersisting = false

    /// Client writes proposed here: index → (term, write id). Acknowledged when applied with that term.
    var proposals: [LogIndex: (term: Term, write: UInt64)] = [:]
    /// Reads in progress here: request id → the newest acknowledged write index when the read began.
    var readsStarted: [UInt64: LogIndex] = [:]
    /// Request ids of the reads started in the current time unit (a ReadState for one of them in a Ready taken
    /// in the same unit cannot have waited for a heartbeat round trip: the lease answered it).
    var readsStartedNow: (at: UInt64, ids: Set<UInt64>) = (0, [])
    /// Reads confirmed by ReadIndex, waiting for the state machine to reach their index.
    var readsConfirmed: [ReadState] = []
    var lastRole: RaftRole = .follower
    var lastTerm: Term = 0
    /// Highest commit index already checked against the global record.
    var checkedCommit: LogIndex = 0
    var restartAt: UInt64?

    init(id: NodeID, confState: ConfState) {
        self.id = id
        storage = MemoryStorage(confState: confState)
        initialConf = confState
        appliedConf = confState
    }

    var alive: Bool { raft != nil }

    static func encodeState(index: LogIndex, hash: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        for v in [index, hash] { var x = v; for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: x)); x >>= 8 } }
        return out
    }

    static func decodeState(_ b: [UInt8]) -> (LogIndex, UInt64) {
        precondition(b.count == 16, "bad snapshot data")
        var i: UInt64 = 0, h: UInt64 = 0
        for k in stride(from: 7, through: 0, by: -1) { i = (i << 8) | UInt64(b[k]) }
        for k in stride(from: 15, through: 8, by: -1) { h = (h << 8) | UInt64(b[k]) }
        return (i, h)
    }

    static func chain(_ h: UInt64, _ e: Entry) -> UInt64 {
        var x = h ^ 0xCBF2_9CE4_8422_2325
        x = (x ^ e.index) &* 0x0000_0100_0000_01B3
        x = (x ^ e.term) &* 0x0000_0100_0000_01B3
        x = (x ^ UInt64(e.kind.rawValue)) &* 0x0000_0100_0000_01B3
        for b in e.data { x = (x ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return x
    }

    static func payloadHash(_ e: Entry) -> UInt64 {
        var x: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(e.kind.rawValue)
        for b in e.data { x = (x ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return x
    }
}
