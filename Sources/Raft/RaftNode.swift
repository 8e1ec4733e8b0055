/// A replica's role in its group.
public enum RaftRole: Sendable, Equatable {
    case follower, preCandidate, candidate, leader
}

/// Why a request to the core was refused. Nothing was changed when one of these is thrown.
public enum RaftError: Error, Sendable, Equatable {
    /// This replica is not the leader; `leader` is the one it knows (`noNode` if none).
    case notLeader(leader: NodeID)
    /// A leadership transfer is under way; retry shortly (at the new leader).
    case transferInProgress
    /// A membership change is still pending, or the leader has not yet committed an entry of its term.
    case confChangePending
    /// The change makes no sense for the current membership (e.g. promoting a non-member).
    case invalidConfChange(String)
    /// The target of a leadership transfer is not a voter (or is this replica).
    case invalidTransferTarget(NodeID)
}

/// A linearizable read that is now safe to serve once the state machine has applied `index`.
public struct ReadState: Sendable, Equatable {
    public var index: LogIndex
    public var requestID: UInt64
    public init(index: LogIndex, requestID: UInt64) {
        self.index = index
        self.requestID = requestID
    }
}

/// Volatile state the application may want to show or react to (leader changes).
public struct SoftState: Sendable, Equatable {
    public var leader: NodeID
    public var role: RaftRole
}

/// One replica's consensus core: a pure, deterministic state machine in the etcd/raft "Ready" style.
///
/// Inputs are method calls — `tick()`, `step(_:)`, `propose(_:)`, `readIndex(requestID:)`,
/// `transferLeadership(to:)`, `proposeConfChange(_:)` — and the only output is `ready()`: entries and hard
/// state to persist, messages to send once they are durable, committed entries to apply, read states,
/// a snapshot to install. No clock, sockets or files: time is ticks, randomness comes from `config.seed`.
///
/// Guarantees (with an application that follows the `Ready` contract): at most one leader per term;
/// a leader only counts replicas of entries of its own term when committing; votes and appends are only
/// acknowledged after they are durable; ReadIndex reads are linearizable; pre-vote keeps a partitioned
/// replica from disrupting a healthy leader; check-quorum makes a leader that cannot hear a majority step down;
/// membership changes one node at a time, never before the leader has committed an entry of its own term.
///
/// Not thread-safe: confine each instance to one thread (the node's event loop).
public final class RaftNode {
    public let id: NodeID
    let config: RaftConfig

    public internal(set) var term: Term = 0
    public internal(set) var vote: NodeID = noNode
    public internal(set) var leader: NodeID = noNode
    public internal(set) var role: RaftRole = .follower

    var log: RaftLog
    var conf: ConfState
    /// The log index `conf` is the membership as of: the snapshot's index, or the last conf change applied.
    var confIndex: LogIndex
    var progress: [NodeID: Progress] = [:]
    var votes: [NodeID: Bool] = [:]

    /// Messages that must wait for the next Ready's persistence.
    var messages: [Message] = []
    /// Messages that may leave at once (see `Message.canSendBeforePersisting`).
    var immediateMessages: [Message] = []
    var readStates: [ReadState] = []
    var droppedReads: [UInt64] = []

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Monotonic count of ticks since this instance started (lease reads).
    var tickCount: UInt64 = 0

    public internal(set) var leadTransferee: NodeID = noNode
    /// Index of the last membership change proposed; a new one waits until it is applied.
    var pendingConfIndex: LogIndex = 0

    var reads = ReadIndexQueue()
    /// The storage held no state when this instance started, and since then it has neither acted nor heard of a
    /// history (RaftNode+LostState.swift).
    var startedBlank = false
    /// Messages `step` refused, by reason (see `MessageGuard.swift`).
    public internal(set) var rejectedMessages: [MessageRejection: UInt64] = [:]
    var rng: SplitMix64

    // Ready book-keeping (see RaftNode+Ready.swift).
    var prevHardState: HardState
    var prevSoftState: SoftState
    var readyInFlight: PendingReady?

    /// Starts a replica from what `storage` holds (a fresh group: an empty log and the initial membership).
    public init(config: RaftConfig, storage: RaftStorage) {
        if let problem = config.validationError() { preconditionFailure("invalid Raft config: \(problem)") }
        self.id = config.id
        self.config = config
        let (hs, cs) = storage.initialState()
        self.log = RaftLog(storage: storage, applied: config.applied)
        self.conf = cs
        // `initialState()` returns the snapshot's membership: it is the membership as of the snapshot's index.
        self.confIndex = (try? storage.snapshot().metadata.index) ?? (storage.firstIndex() - 1)
        self.rng = SplitMix64(seed: config.seed ^ (config.id &* 0x9E37_79B9_7F4A_7C15))
        self.prevHardState = hs
        self.prevSoftState = SoftState(leader: noNode, role: .follower)
        if !hs.isEmpty {
            precondition(hs.commit >= log.committed && hs.commit <= log.lastIndex,
                         "hard state commit \(hs.commit) outside [\(log.committed), \(log.lastIndex)]")
            log.commitTo(hs.commit)
            term = hs.term
            vote = hs.vote
        }
        if config.applied > 0 { log.appliedTo(min(config.applied, log.committed)) }
        startedBlank = hasNoHistory
        resetProgress()
        becomeFollower(term: term, leader: noNode)
    }

    // MARK: public read-only views

    public var commitIndex: LogIndex { log.committed }
    public var appliedIndex: LogIndex { log.applied }
    public var lastIndex: LogIndex { log.lastIndex }
    public var lastTerm: Term { log.lastTerm }
    public var firstIndex: LogIndex { log.firstIndex }
    public var confState: ConfState { conf }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public var softState: SoftState { SoftState(leader: leader, role: role) }
    /// The snapshot this replica has accepted (its membership is already `confState`) but the application has
    /// not yet installed — persisted in a Ready and advanced past. Nil when none is pending.
    public var pendingSnapshot: SnapshotMetadata? { log.unstable.snapshot?.metadata }
    /// The term of the entry at `index`, if this replica still has it.
    public func term(at index: LogIndex) -> Term? { try? log.term(index) }
    /// Every entry this replica holds (stable and unstable) from `lo` on — for tests and the simulation.
    public func entries(from lo: LogIndex) -> [Entry] {
        (try? log.slice(max(lo, log.firstIndex), log.lastIndex + 1, maxBytes: .max)) ?? []
    }
    /// The leader's replication state of a member (nil on followers or for non-members).
    public func progressState(of node: NodeID) -> (match: LogIndex, next: LogIndex, state: ProgressState)? {
        guard role == .leader, let p = progress[node] else { return nil }
        return (p.match, p.next, p.state)
    }

    /// As leader: whether `node` abstains after losing its state (its acknowledgements count for nothing until it
    /// has caught up and rejoined: see RaftNode+LostState.swift). False for an unknown node or a non-leader.
    public func peerAbstains(_ node: NodeID) -> Bool { role == .leader && progress[node]?.abstaining == true }

    /// The replica's process is shutting down gracefully: it starts no election (an election timeout, a
    /// won pre-vote or a transferred leadership all leave it a follower), so the leaderships it hands away are
    /// not taken back. An election already past its pre-vote may still win; the node then hands that one on
    /// too. It still votes and replicates as before. Not persisted: a restarted process campaigns again.
    public var retiring = false

    /// Whether this replica may campaign: it is a voter, has no snapshot waiting to be installed, does not
    /// abstain after losing its state (RaftNode+LostState.swift) and is not retiring.
    var promotable: Bool { conf.isVoter(id) && log.unstable.snapshot == nil && !isAbstaining && !retiring }

    var quorum: Int { conf.voters.count / 2 + 1 }

    // MARK: sending

    func send(_ m: Message) {
        var m = m
        m.from = id
        switch m.type {
        case .vote, .preVote, .voteResponse, .preVoteResponse:
            precondition(m.term != 0, "vote messages carry an explicit term")
        default:
            m.term = term
        }
        // An abstaining replica's acknowledgements say so: the leader does not count them toward commits.
        if m.type == .appendResponse && isAbstaining && m.context == 0 { m.context = Message.abstainingContext }
        if m.canSendBeforePersisting { immediateMessages.append(m) } else { messages.append(m) }
    }

    // MARK: role changes

    func reset(term newTerm: Term) {
        if term != newTerm {
            term = newTerm
            // Abstention outlives terms: it ends only when this replica has caught up.
            if !isAbstaining { vote = noNode }
        }
        leader = noNode
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedElectionTimeout = config.electionTick + rng.below(config.electionTick)
        leadTransferee = noNode
        votes = [:]
        resetProgress()
        pendingConfIndex = 0
        for r in reads.abortAll() { droppedReads.append(r) }
    }

    func resetProgress() {
        var fresh: [NodeID: Progress] = [:]
        for n in conf.members {
            var p = Progress(next: log.lastIndex + 1, maxInflight: config.maxInflightMsgs, isLearner: conf.isLearner(n))
            if n == id { p.match = log.persistedLastIndex }
            fresh[n] = p
        }
        progress = fresh
    }

    func becomeFollower(term newTerm: Term, leader newLeader: NodeID) {
        reset(term: newTerm)
        leader = newLeader
        role = .follower
    }

    func becomePreCandidate() {
        precondition(role != .leader, "leader cannot become pre-candidate")
        // Neither term nor vote changes: a pre-vote must not disturb anyone.
        votes = [:]
        leader = noNode
        role = .preCandidate
    }

    func becomeCandidate() {
        precondition(role != .leader, "leader cannot become candidate")
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    func becomeLeader() {
        precondition(role == .candidate, "only a candidate can become leader")
        reset(term: term)
        leader = id
        role = .leader
        endBlankStart()
        for n in conf.members where n != id { progress[n]!.recentActive = true }
        progress[id]!.becomeReplicate()
        progress[id]!.recentActive = true
        // Commit an empty entry of this term first: it commits every earlier entry (figure 8) and,
        // until it is applied, no membership change may start (the one-at-a-time pitfall).
        let index = log.lastIndex + 1
        log.append([Entry(term: term, index: index)][...])
        pendingConfIndex = index
    }
}
