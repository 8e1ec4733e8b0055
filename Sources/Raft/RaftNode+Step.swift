/// Ticks, message handling and elections.
extension RaftNode {
    /// Advances logical time by one tick: followers count toward an election, leaders toward heartbeats
    /// and the check-quorum round.
    public func tick() {
        tickCount &+= 1
        if role == .leader { tickLeader() } else { tickElection() }
    }

    func tickElection() {
        electionElapsed += 1
        if promotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            startElection(transfer: false)
        }
    }

    func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTick {
            electionElapsed = 0
            if config.checkQuorum {
                if !quorumRecentlyActive() {
                    becomeFollower(term: term, leader: noNode)
                    return
                }
                for n in conf.members where n != id { progress[n]!.recentActive = false }
            }
            if leadTransferee != noNode { leadTransferee = noNode }   // the transfer timed out
        }
        if !conf.isVoter(id) { handOffAfterRemoval() }
        // Rounds sent an election timeout ago or earlier can support no lease any more.
        if tickCount > UInt64(config.electionTick) { reads.forgetRounds(sentBefore: tickCount - UInt64(config.electionTick)) }
        if heartbeatElapsed >= config.heartbeatTick {
            heartbeatElapsed = 0
            broadcastHeartbeat(context: reads.startRound(at: tickCount))
        }
    }

    func quorumRecentlyActive() -> Bool {
        var active = 0
        for n in conf.voters where n == id || progress[n]?.recentActive == true { active += 1 }
        return active >= quorum
    }

    /// Starts an election now (as if the election timeout fired). Used by tests and operators.
    public func campaign() {
        startElection(transfer: false)
    }

    func startElection(transfer: Bool) {
        guard role != .leader, promotable else { return }
        // A term at the bound (only a forged message could have raised it so far) never grows further.
        guard term < RaftBounds.maxTerm else { return }
        // Do not campaign while committed membership changes are not yet applied: we may not be a voter.
        if log.committed > log.applied && hasUnappliedConfChange() { return }
        if config.preVote && !transfer { runElection(pre: true, transfer: false) } else { runElection(pre: false, transfer: transfer) }
    }

    func hasUnappliedConfChange() -> Bool {
        let ents = log.nextCommittedEntries(maxBytes: .max)
        return ents.contains { $0.kind == .confChange }
    }

    func runElection(pre: Bool, transfer: Bool) {
        let voteTerm: Term
        let type: MessageType
        if pre {
            becomePreCandidate()
            voteTerm = term + 1
            type = .preVote
        } else {
            becomeCandidate()
            voteTerm = term
            type = .vote
        }
        if recordVote(from: id, granted: true) == .won {
            if pre { runElection(pre: false, transfer: false) } else { becomeLeader() }
            return
        }
        let lastIndex = log.lastIndex, lastTerm = log.lastTerm
        for n in conf.voters where n != id {
            send(Message(type: type, to: n, term: voteTerm, logTerm: lastTerm, index: lastIndex,
                         context: transfer ? Message.transferContext : 0))
        }
    }

    enum ElectionResult { case pending, won, lost }

    func recordVote(from n: NodeID, granted: Bool) -> ElectionResult {
        if votes[n] == nil { votes[n] = granted }
        var yes = 0, no = 0
        for v in conf.voters {
            switch votes[v] {
            case true?: yes += 1
            case false?: no += 1
            case nil: break
            }
        }
        if yes >= quorum { return .won }
        if no > conf.voters.count - quorum { return .lost }
        return .pending
    }

    /// Feeds one message from a peer into the core. A message that fails `validate` (or speaks of indexes
    /// past this leader's log) is refused before it touches any state: the reason is returned and counted in
    /// `rejectedMessages`. Nil when the message was stepped (or ignored as not addressed to us).
    @discardableResult
    public func step(_ m: Message) -> MessageRejection? {
        guard m.to == id || m.to == noNode else { return nil }
        if let why = RaftNode.validate(m) ?? validateAgainstState(m) {
            rejectedMessages[why, default: 0] += 1
            return why
        }
        stepValidated(m)
        return nil
    }

    private func stepValidated(_ m: Message) {
        guard noticeLostState(m) else { return }
        if m.term > term {
            if m.type == .vote || m.type == .preVote {
                let forced = m.context == Message.transferContext
                let inLease = config.checkQuorum && leader != noNode && electionElapsed < config.electionTick
                // Within the minimum election timeout of hearing from a leader, ignore vote requests
                // entirely: a partitioned or removed node cannot disrupt a healthy group.
                if !forced && inLease { return }
            }
            switch m.type {
            case .preVote:
                break   // never change our term for a pre-vote
            case .preVoteResponse where !m.reject:
                break   // granted pre-votes carry the future term; we move to it only if we win
            default:
                if m.type == .append || m.type == .heartbeat || m.type == .snapshot {
                    becomeFollower(term: m.term, leader: m.from)
                } else {
                    becomeFollower(term: m.term, leader: noNode)
                }
            }
        } else if m.term < term {
            if (config.checkQuorum || config.preVote) && (m.type == .heartbeat || m.type == .append) {
                // A leader of an older term: tell it our term. This also frees a node that raised its term
                // while partitioned — the stale leader steps down and a fresh election includes it.
                send(Message(type: .appendResponse, to: m.from))
            } else if m.type == .preVote {
                send(Message(type: .preVoteResponse, to: m.from, term: term, reject: true))
            }
            return
        }

        switch m.type {
        case .vote, .preVote:
            handleVoteRequest(m)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .candidate, .preCandidate: stepCandidate(m)
            case .follower: stepFollower(m)
            }
        }
    }

    func handleVoteRequest(_ m: Message) {
        let canVote = !isAbstaining && (vote == m.from
            || (vote == noNode && leader == noNode)
            || (m.type == .preVote && m.term > term))
        if canVote && log.isUpToDate(lastIndex: m.index, lastTerm: m.logTerm) {
            send(Message(type: m.type.voteResponse, to: m.from, term: m.term))
            if m.type == .vote {
                electionElapsed = 0
                vote = m.from
                endBlankStart()
            }
        } else if term > 0 {
            send(Message(type: m.type.voteResponse, to: m.from, term: term, reject: true))
        }
        // At term 0 (a blank replica that abstains, refusing a pre-vote) there is no term to answer with: silence
        // is the refusal, and the candidate's election times out.
    }

    func stepCandidate(_ m: Message) {
        let myResponse: MessageType = role == .preCandidate ? .preVoteResponse : .voteResponse
        switch m.type {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case myResponse:
            switch recordVote(from: m.from, granted: !m.reject) {
            case .won:
                if role == .preCandidate {
                    if retiring { becomeFollower(term: term, leader: noNode) } else { runElection(pre: false, transfer: false) }
                } else {
                    becomeLeader()
                }
            case .lost:
                becomeFollower(term: term, leader: noNode)
            case .pending:
                break
            }
        default:
            break
        }
    }

    func stepFollower(_ m: Message) {
        switch m.type {
        case .append:
            electionElapsed = 0
            leader = m.from
            handleAppend(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshot(m)
        case .timeoutNow:
            // Leadership transfer: campaign at once, skipping pre-vote, and force past leader leases.
            startElection(transfer: true)
        default:
            break
        }
    }

    // MARK: follower side of replication

    func handleAppend(_ m: Message) {
        var m = m
        // A replica that knows no member at all (a node that joined the cluster, its groups created empty) cannot
        // learn its group's membership from entries: it is in the snapshot the log starts after. It takes no entry
        // until a snapshot gave it one; rejecting at its empty log makes the leader send that snapshot.
        if conf.isEmpty && log.lastIndex == 0 && m.index == 0 && !m.entries.isEmpty {
            send(Message(type: .appendResponse, to: m.from, index: m.index, reject: true, rejectHint: 0))
            return
        }
        if m.index < log.committed {
            // The prefix up to our commit index is already here (committed entries are identical on every
            // log). Keep only what lies beyond it, so a new entry in the same message is not lost.
            let committed = log.committed
            guard let k = m.entries.firstIndex(where: { $0.index == committed }) else {
                send(Message(type: .appendResponse, to: m.from, index: committed))
                return
            }
            m.logTerm = m.entries[k].term
            m.index = committed
            m.entries = Array(m.entries[(k + 1)...])
        }
        if let lastNew = log.maybeAppend(index: m.index, logTerm: m.logTerm, committed: m.commit, entries: m.entries) {
            // Matched at m.index: this log holds the leader's log up to there. With the rejoin mark, that reaches
            // past every entry ever committed (see rejoinContext): stop abstaining, the leader as this term's vote.
            if m.context == Message.rejoinContext && isAbstaining { vote = m.from }
            // The leader already knows we hold exactly this much: a commit-only append needs no answer.
            if m.context == Message.commitOnlyContext && m.entries.isEmpty && !isAbstaining && log.lastIndex == m.index { return }
            send(Message(type: .appendResponse, to: m.from, index: lastNew))
        } else {
            let (hintIndex, hintTerm) = log.findConflictByTerm(index: min(m.index, log.lastIndex), term: m.logTerm)
            send(Message(type: .appendResponse, to: m.from, logTerm: hintTerm, index: m.index,
                         reject: true, rejectHint: hintIndex))
        }
    }

    func handleHeartbeat(_ m: Message) {
        // A heartbeat's commit is at most our match point on the leader: past our log, the leader believes we
        // hold entries we do not (we lost our state). Say where our log ends, so it probes back down.
        if m.commit > log.lastIndex {
            send(Message(type: .appendResponse, to: m.from, logTerm: log.lastTerm, index: m.commit,
                         reject: true, rejectHint: log.lastIndex, context: Message.lostEntriesContext))
        }
        if isAbstaining {
            // Our log may hold a stale leader's entries the leader's match point does not know of: only an
            // append (checked against the leader's log) moves our commit. And we confirm no read round.
            send(Message(type: .heartbeatResponse, to: m.from, context: 0))
            return
        }
        log.commitTo(min(m.commit, log.lastIndex))
        send(Message(type: .heartbeatResponse, to: m.from, context: m.context))
    }

    func handleSnapshot(_ m: Message) {
        guard let snap = m.snapshot else { return }
        if restore(snap) {
            send(Message(type: .appendResponse, to: m.from, index: log.lastIndex))
        } else {
            send(Message(type: .appendResponse, to: m.from, index: log.committed))
        }
    }

    /// Installs a snapshot from the leader. Returns false if it is stale or our log already covers it.
    func restore(_ s: Snapshot) -> Bool {
        let meta = s.metadata
        if meta.index <= log.committed { return false }
        if log.matchTerm(meta.index, meta.term) {
            // Our log already has the snapshot's last entry: just fast-forward the commit.
            log.commitTo(meta.index)
            return false
        }
        log.restore(s)
        conf = meta.confState
        confIndex = meta.index
        resetProgress()
        return true
    }
}
