/// The kinds of message Raft replicas exchange.
public enum MessageType: UInt8, Sendable, Equatable, CaseIterable {
    /// Leader → follower: entries after (index, logTerm), and the leader's commit index.
    case append = 1
    /// Follower → leader: accepted up to `index`, or rejected with a hint (`rejectHint`, `logTerm`).
    case appendResponse = 2
    /// Candidate → voter: a vote request at `term` for a log ending at (index, logTerm).
    case vote = 3
    case voteResponse = 4
    /// Pre-candidate → voter: "would you vote for me at `term`?" — changes nobody's term.
    case preVote = 5
    case preVoteResponse = 6
    /// Leader → follower: liveness, commit index, and the ReadIndex round in `context`.
    case heartbeat = 7
    case heartbeatResponse = 8
    /// Leader → follower: a whole snapshot, for a follower whose next entry was compacted away.
    case snapshot = 9
    /// Leader → transfer target: campaign now, ignoring the election timeout and leader leases.
    case timeoutNow = 10

    /// The response type for a vote request type.
    var voteResponse: MessageType { self == .preVote ? .preVoteResponse : .voteResponse }
}

/// One message between replicas of a group. A plain value: the node serializes it, the simulation passes it.
public struct Message: Sendable, Equatable {
    public var type: MessageType
    public var to: NodeID
    public var from: NodeID
    public var term: Term
    /// append: term of the entry at `index`; vote: last log term; rejected appendResponse: term at `rejectHint`.
    public var logTerm: Term
    /// append: index preceding `entries`; vote: last log index; appendResponse: accepted up to / rejected index.
    public var index: LogIndex
    public var entries: [Entry]
    public var commit: LogIndex
    public var snapshot: Snapshot?
    public var reject: Bool
    public var rejectHint: LogIndex
    /// heartbeat(+response): the leader's heartbeat round, echoed by the follower (ReadIndex confirmation, and
    /// the lease, which runs from the round's send time); vote/preVote: 1 when forced by a leadership transfer.
    public var context: UInt64

    public init(type: MessageType, to: NodeID = noNode, from: NodeID = noNode, term: Term = 0, logTerm: Term = 0,
                index: LogIndex = 0, entries: [Entry] = [], commit: LogIndex = 0, snapshot: Snapshot? = nil,
                reject: Bool = false, rejectHint: LogIndex = 0, context: UInt64 = 0) {
        self.type = type
        self.to = to
        self.from = from
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.snapshot = snapshot
        self.reject = reject
        self.rejectHint = rejectHint
        self.context = context
    }

    /// Whether this message may be sent before the sender's pending entries and hard state are durable.
    ///
    /// True for messages that acknowledge nothing durable: heartbeats and their responses, a leader's appends
    /// (the thesis §10.2.1 lets a leader replicate in parallel with its own fsync; it counts itself only once
    /// durable), snapshots, `timeoutNow`, pre-votes (they change no state), and rejections. False for vote
    /// requests and grants (they rest on a persisted term and vote) and accepting append responses (they claim
    /// the entries are on disk). Sending these early keeps heartbeats from queueing behind a slow fsync.
    public var canSendBeforePersisting: Bool {
        switch type {
        case .heartbeat, .heartbeatResponse, .append, .snapshot, .timeoutNow, .preVote, .preVoteResponse:
            return true
        case .appendResponse:
            return reject
        case .vote, .voteResponse:
            return false
        }
    }

    /// Context value marking a vote request caused by leadership transfer.
    public static let transferContext: UInt64 = 1
    /// Context value of an append response from a replica that abstains after losing its state: the leader
    /// replicates to it but does not count it toward commits (RaftNode+LostState.swift).
    public static let abstainingContext: UInt64 = 2
    /// Context value of a rejection sent because a heartbeat's commit lies past the follower's log: the follower
    /// lost entries it had acknowledged (RaftNode+LostState.swift). Such a follower also abstains.
    public static let lostEntriesContext: UInt64 = 3
    /// Context value of an append to a replica that abstains after losing its state, once the leader knows it
    /// holds the leader's log up to the leader's last index as of the replica's first abstaining answer (and so
    /// every entry ever committed): accepted, it ends the abstention (RaftNode+LostState.swift).
    public static let rejoinContext: UInt64 = 4
    /// Context value of an append that carries no entries, only a new commit index, to a follower whose match
    /// point the leader already knows is exactly this append's `index`: its acceptance would tell the leader
    /// nothing, so a follower that accepts it and does not abstain sends no answer (a rejection is always
    /// answered). It saves one message per follower per commit; a lost one only delays the commit to the next
    /// append or heartbeat. A replica that does not know the value answers it as any append (harmless).
    public static let commitOnlyContext: UInt64 = 5
}
