/// The leader's heartbeat rounds, and its queue of linearizable reads waiting for a quorum to confirm its leadership.
///
/// Batched: every read registered before a heartbeat round shares it. Rounds are numbered; every heartbeat
/// broadcast (a tick's or one a read asked for) starts a new round and carries its number, a follower echoes it,
/// and once a quorum of voters has echoed a number ≥ r every read of round ≤ r is released. A lost round is
/// thus retried by the next tick's. The tick each recent round was sent at is remembered: a lease runs from the
/// send time of the round a quorum acknowledged, never from when the answers arrived.
struct ReadIndexQueue {
    struct PendingRead {
        var requestID: UInt64
        var index: LogIndex
        var round: UInt64
    }

    private(set) var nextRound: UInt64 = 1
    private(set) var lastSentRound: UInt64 = 0
    var pending: [PendingRead] = []
    /// Reads that arrived before this leader committed an entry of its term (its commit index is not yet
    /// known to be the group's); they are registered as soon as it has.
    var awaitingCommit: [UInt64] = []
    var roundNeeded = false
    /// `sentTicks[k]` is the tick round `firstKeptRound + k` was sent at; rounds before are forgotten.
    private(set) var firstKeptRound: UInt64 = 1
    private(set) var sentTicks: [UInt64] = []

    mutating func register(requestID: UInt64, index: LogIndex) {
        pending.append(PendingRead(requestID: requestID, index: index, round: nextRound))
        roundNeeded = true
    }

    /// Starts a heartbeat round, sent at `tick`: the reads registered so far wait for it. Returns its number.
    mutating func startRound(at tick: UInt64) -> UInt64 {
        roundNeeded = false
        lastSentRound = nextRound
        nextRound += 1
        if sentTicks.isEmpty { firstKeptRound = lastSentRound }
        assert(sentTicks.last.map { $0 <= tick } ?? true, "rounds are sent in tick order")
        sentTicks.append(tick)
        assert(firstKeptRound + UInt64(sentTicks.count) - 1 == lastSentRound)
        return lastSentRound
    }

    /// The tick `round` was sent at, if this leader sent it and still remembers it.
    func sentTick(of round: UInt64) -> UInt64? {
        guard round >= firstKeptRound, round <= lastSentRound else { return nil }
        let k = Int(round - firstKeptRound)
        return k < sentTicks.count ? sentTicks[k] : nil
    }

    /// Forgets the send ticks of rounds sent before `tick` (answers to them can no longer support a lease).
    mutating func forgetRounds(sentBefore tick: UInt64) {
        var k = 0
        while k < sentTicks.count && sentTicks[k] < tick { k += 1 }
        if k == 0 { return }
        sentTicks.removeFirst(k)
        firstKeptRound += UInt64(k)
    }

    /// Releases reads of rounds ≤ `confirmed`, in order.
    mutating func release(upTo confirmed: UInt64) -> [ReadState] {
        var out: [ReadState] = []
        var k = 0
        while k < pending.count && pending[k].round <= confirmed {
            out.append(ReadState(index: pending[k].index, requestID: pending[k].requestID))
            k += 1
        }
        if k > 0 { pending.removeFirst(k) }
        return out
    }

    /// Leadership is lost: every waiting read must be retried elsewhere. Returns their ids.
    mutating func abortAll() -> [UInt64] {
        let ids = awaitingCommit + pending.map(\.requestID)
        pending = []
        awaitingCommit = []
        roundNeeded = false
        sentTicks = []
        firstKeptRound = nextRound
        return ids
    }
}

extension RaftNode {
    /// Requests a linearizable read. When a `ReadState` with this `requestID` appears in a `Ready`, the read
    /// may be served from the state machine as soon as it has applied `ReadState.index`. If leadership is
    /// lost first, the id appears in `Ready.droppedReads` instead.
    public func readIndex(requestID: UInt64) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        if log.termOrZero(log.committed) != term {
            reads.awaitingCommit.append(requestID)
            return
        }
        registerRead(requestID)
    }

    func registerRead(_ requestID: UInt64) {
        if conf.voters == [id] {
            readStates.append(ReadState(index: log.committed, requestID: requestID))
        } else if config.readOnlyOption == .leaseBased && leaseIsValid() {
            readStates.append(ReadState(index: log.committed, requestID: requestID))
        } else {
            reads.register(requestID: requestID, index: log.committed)
        }
    }

    /// Lease: a quorum received a heartbeat round of ours recently enough that none of them will vote for anyone
    /// else yet, with `leaseClockDriftTicks` of margin for clocks that run at different speeds.
    ///
    /// A follower starts its election timeout when it *receives* a heartbeat, which is no earlier than the
    /// leader sent it; it promises nothing about when its answer arrives (a slow fsync or link may hold it
    /// back for longer than the margin). So the lease runs from the send tick of the newest round each voter
    /// acknowledged, and lasts `electionTick - leaseClockDriftTicks` ticks from the quorum's oldest such tick.
    func leaseIsValid() -> Bool {
        guard leadTransferee == noNode else { return false }
        var sent: [UInt64] = []
        for v in conf.voters {
            if v == id { sent.append(tickCount) } else if let t = progress[v]?.leaseRoundSentTick { sent.append(t) }
        }
        guard sent.count >= quorum else { return false }
        sent.sort(by: >)
        let leaseTicks = UInt64(config.electionTick - config.leaseClockDriftTicks)
        return tickCount < sent[quorum - 1] + leaseTicks
    }

    func serveReadsAwaitingCommit() {
        guard !reads.awaitingCommit.isEmpty, log.termOrZero(log.committed) == term else { return }
        let waiting = reads.awaitingCommit
        reads.awaitingCommit = []
        for r in waiting { registerRead(r) }
    }

    func flushReads() {
        guard role == .leader, reads.roundNeeded else { return }
        let round = reads.startRound(at: tickCount)
        progress[id]?.readAck = round
        broadcastHeartbeat(context: round)
        releaseConfirmedReads()
    }

    func releaseConfirmedReads() {
        guard !reads.pending.isEmpty else { return }
        var acks: [UInt64] = []
        for v in conf.voters { acks.append(v == id ? reads.lastSentRound : (progress[v]?.readAck ?? 0)) }
        acks.sort(by: >)
        readStates.append(contentsOf: reads.release(upTo: acks[quorum - 1]))
    }
}
