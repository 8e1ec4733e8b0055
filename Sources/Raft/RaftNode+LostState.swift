/// A replica that lost its durable state — its data directory was wiped and the node restarted with the same id —
/// and how it rejoins its group without breaking the promises that state backed.
///
/// Before the loss the replica may have voted in some term and acknowledged entries that a leader then counted
/// toward a commit. Starting again with an empty log and `term 0`, it remembers neither. Were it to vote (again) or
/// have its acknowledgements counted, two leaders could win one term, or a candidate missing committed entries could
/// be elected with its vote, and acknowledged writes would be lost. So a replica with no state of its own that sees
/// evidence the group already has history **abstains** until it is a genuine copy again:
///
/// - it grants no vote or pre-vote and never campaigns (it is not promotable), and leadership is never transferred
///   to it;
/// - its append acknowledgements carry `Message.abstainingContext`, and the leader leaves it out of the commit
///   quorum; its heartbeat responses confirm no ReadIndex round and support no lease;
/// - a heartbeat does not move its commit index (only an append, whose entries are checked against the leader's
///   log, does), so it never applies entries of a stale leader it happened to hear first;
/// - it stops abstaining when the leader says so. The leader notes its own last index when it first hears the
///   replica abstain (`Progress.rejoinFloor`): every entry ever committed lies at or below it, since a leader's log
///   holds them all. Once the replica's match reaches that floor, the leader marks its appends to it
///   (`Message.rejoinContext`); an accepted marked append proves this log holds the leader's log through an index
///   at or past the floor, so the replica again holds everything it could have acknowledged. It records the
///   leader as its vote for that term (it may have voted in it before), so it never grants that term to anyone
///   else. (Its own commit index is no proof: catching up in several appends, it may hold a committed entry of
///   the leader's term long before it holds the later ones it had acknowledged — a simulation found that.)
///
/// The abstention is durable: it is the hard state's vote (`abstainVote`), so a restart in the middle of catching
/// up abstains again. A replica of a brand-new group (every member at term 0 with an empty log) sees no such
/// evidence and votes normally. Until it has either heard of a history or taken part in the group's first
/// election, a blank replica lets no answer of a higher term raise its term (a restart then finds it blank again).
///
/// On the leader's side a follower whose rejection says its log ends before what it acknowledged has lost entries:
/// its match point is lowered to what it still holds (`Progress.followerLostEntries`), so it is caught up again — with
/// the log, or a snapshot — instead of being probed above its log forever.
extension RaftNode {
    /// The hard state's vote while this replica abstains (never a real replica id: ids are below 2⁶⁴−1).
    public static let abstainVote: NodeID = .max

    /// True while this replica abstains after losing its state (see the type's documentation).
    public var isAbstaining: Bool { vote == RaftNode.abstainVote }

    /// This replica holds a committed log of its own and does not abstain: a full member again after a wipe
    /// (the simulations' test of "caught up").
    public var hasCaughtUp: Bool { !isAbstaining && term > 0 && log.committed > 0 }

    /// This replica's storage held no state at all: never a term, a vote or an entry.
    var hasNoHistory: Bool {
        term == 0 && vote == noNode && log.lastIndex == 0 && log.committed == 0
    }

    /// Whether `m` shows that its group had a history this replica does not hold: a leader's message of a real
    /// term, or a candidate whose log has entries. A group's first election (candidates with empty logs) shows
    /// none. Answers are no evidence either way (they may answer this replica's own campaign, or its previous
    /// life's): see `noticeLostState`.
    func showsHistory(_ m: Message) -> Bool {
        guard m.term > 0 else { return false }
        switch m.type {
        case .append, .heartbeat, .snapshot, .timeoutNow:
            return true
        case .vote, .preVote:
            return m.index > 0 || m.logTerm > 0
        case .appendResponse, .heartbeatResponse, .voteResponse, .preVoteResponse:
            return false
        }
    }

    /// Called for every validated message before it is stepped, while this replica started blank and has neither
    /// acted nor heard of a history (`startedBlank`). Returns false when the message must be ignored.
    ///
    /// Hearing of a history starts the abstention. An answer of a higher term (perhaps addressed to this
    /// replica's previous life) is ignored rather than letting its term in: a blank replica's term moves only with
    /// a request it hears, a campaign of its own, or the abstention — so a restart before it has voted or heard
    /// of a history finds it blank again.
    func noticeLostState(_ m: Message) -> Bool {
        guard startedBlank else { return true }
        if showsHistory(m) {
            startedBlank = false
            vote = RaftNode.abstainVote
            return true
        }
        switch m.type {
        case .appendResponse, .heartbeatResponse, .voteResponse:
            return m.term <= term
        case .preVoteResponse:
            return !m.reject || m.term <= term   // a grant carries the term the campaign would take
        default:
            return true
        }
    }

    /// This replica, started blank, took part in a group's first election (granted a vote to a candidate with an
    /// empty log, or won with such votes): from now on it is an ordinary member. Its own campaign does not end
    /// the blank start — a wiped replica campaigning with an empty log must still abstain once it hears of a
    /// history.
    func endBlankStart() { startedBlank = false }

}
