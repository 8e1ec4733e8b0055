/// The leader's queue of linearizable reads waiting for a quorum to confirm its leadership.
///
/// Batched: every read registered before a heartbeat round shares it. Rounds are numbered; a heartbeat
/// carries the newest round number sent, a follower echoes it, and once a quorum of voters has echoed a
/// number ≥ r every read of round ≤ r is released. Tick heartbeats carry the last round too, so a lost
/// round is retried automatically.
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

    mutating func register(requestID: UInt64, index: LogIndex) {
        pending.append(PendingRead(requestID: requestID, index: index, round: nextRound))
        roundNeeded = true
    }

    /// Starts the round that the reads registered so far will wait for; returns its number.
    mutating func startRound() -> UInt64 {
        roundNeeded = false
        lastSentRound = nextRound
        nextRound += 1
        return lastSentRound
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

    /// Lease: a quorum heard from us recently enough that none of them will vote for anyone else yet,
    /// with `leaseClockDriftTicks` of margin for clocks that run at different speeds.
    func leaseIsValid() -> Bool {
        guard leadTransferee == noNode else { return false }
        var heard: [UInt64] = []
        for v in conf.voters { heard.append(v == id ? tickCount : (progress[v]?.lastHeardTick ?? 0)) }
        heard.sort(by: >)
        let quorumHeard = heard[quorum - 1]
        let leaseTicks = UInt64(config.electionTick - config.leaseClockDriftTicks)
        return quorumHeard > 0 && tickCount < quorumHeard + leaseTicks
    }

    func serveReadsAwaitingCommit() {
        guard !reads.awaitingCommit.isEmpty, log.termOrZero(log.committed) == term else { return }
        let waiting = reads.awaitingCommit
        reads.awaitingCommit = []
        for r in waiting { registerRead(r) }
    }

    func flushReads() {
        guard role == .leader, reads.roundNeeded else { return }
        let round = reads.startRound()
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
