/// The leader: proposals, replication with pipelining and fast back-off, commit, heartbeats, transfer.
extension RaftNode {
    /// Appends `data` as a new entry. Returns its index: the entry is the caller's if it commits at that
    /// index with the current `term`. Throws if this replica is not a leader able to accept it.
    @discardableResult
    public func propose(_ data: [UInt8]) throws(RaftError) -> LogIndex {
        try checkCanPropose()
        let index = log.lastIndex + 1
        log.append([Entry(term: term, index: index, data: data)][...])
        return index
    }

    /// Appends several entries at once (one batch, consecutive indexes). Returns the first index.
    @discardableResult
    public func propose(batch: [[UInt8]]) throws(RaftError) -> LogIndex {
        try checkCanPropose()
        let first = log.lastIndex + 1
        var ents: [Entry] = []
        ents.reserveCapacity(batch.count)
        var i = first
        for d in batch {
            ents.append(Entry(term: term, index: i, data: d))
            i += 1
        }
        log.append(ents[...])
        return first
    }

    func checkCanPropose() throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        // A leader removed from the membership only hands its leadership on (`handOffAfterRemoval`).
        guard leadTransferee == noNode, conf.isVoter(id) else { throw .transferInProgress }
    }

    /// A leader that is no longer a voter transfers its leadership to the remaining voter whose log matches
    /// its own furthest (ties: the lowest id), once no transfer is under way. The transfer brings the target's
    /// log up to this one before its election, so the remaining voters learn every entry — the removal's
    /// commit included — and the target's log is at least as up to date as any voter's.
    func handOffAfterRemoval() {
        guard role == .leader, !conf.isVoter(id), leadTransferee == noNode else { return }
        let targets = conf.voters.filter { $0 != id && progress[$0].map { !$0.abstaining } == true }
        guard let best = targets.max(by: { (progress[$0]!.match, $1) < (progress[$1]!.match, $0) }) else { return }
        try? transferLeadership(to: best)
    }

    /// Proposes a single membership change. It takes effect on every replica when the entry is applied.
    @discardableResult
    public func proposeConfChange(_ cc: ConfChange) throws(RaftError) -> LogIndex {
        try checkCanPropose()
        // One change at a time, and not before this leader's first entry (of its own term) is applied.
        guard pendingConfIndex <= log.applied else { throw .confChangePending }
        switch cc {
        case .addVoter(let n):
            if conf.isVoter(n) { throw .invalidConfChange("\(n) is already a voter") }
        case .addLearner(let n):
            if conf.isLearner(n) { throw .invalidConfChange("\(n) is already a learner") }
            if conf.isVoter(n) { throw .invalidConfChange("\(n) is a voter; demotion is not supported") }
        case .remove(let n):
            if !conf.contains(n) { throw .invalidConfChange("\(n) is not a member") }
            if conf.isVoter(n) && conf.voters.count == 1 { throw .invalidConfChange("cannot remove the last voter") }
        }
        let index = log.lastIndex + 1
        log.append([Entry(term: term, index: index, kind: .confChange, data: cc.encode())][...])
        pendingConfIndex = index
        return index
    }

    /// Hands leadership to `target` (graceful shutdown, upgrades, balancing). Proposals are refused until
    /// it completes or times out after one election timeout.
    public func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard target != id, conf.isVoter(target), let p = progress[target], !p.abstaining else { throw .invalidTransferTarget(target) }
        if leadTransferee == target { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]!.match == log.lastIndex {
            send(Message(type: .timeoutNow, to: target))
        }
        // Otherwise the flush sends it the missing entries; timeoutNow follows its acknowledgement.
    }

    /// The transport reports the outcome of sending a snapshot.
    public func reportSnapshot(to node: NodeID, failed: Bool) {
        guard role == .leader, var p = progress[node], p.state == .snapshot else { return }
        if failed { p.pendingSnapshot = 0 }
        p.becomeProbe()
        // Wait for the next heartbeat response before probing again.
        p.probeSent = true
        progress[node] = p
    }

    /// The transport could not reach `node`: stop optimistic pipelining to it.
    public func reportUnreachable(_ node: NodeID) {
        guard role == .leader, var p = progress[node] else { return }
        if p.state == .replicate { p.becomeProbe() }
        progress[node] = p
    }

    func stepLeader(_ m: Message) {
        guard var p = progress[m.from] else { return }
        p.recentActive = true
        switch m.type {
        case .appendResponse:
            let abstains = m.context == Message.abstainingContext || m.context == Message.lostEntriesContext
            // Rejoined: the match it already had counts toward commits from now on.
            let rejoined = p.abstaining && !abstains && !m.reject
            p.abstaining = abstains
            p.rejoinFloor = abstains ? p.rejoinFloor ?? log.lastIndex : nil
            if m.reject {
                var hint = m.rejectHint
                if m.logTerm > 0 { hint = log.findConflictByTerm(index: m.rejectHint, term: m.logTerm).0 }
                if m.context == Message.lostEntriesContext { p.followerLostEntries(holds: hint) }
                if p.maybeDecrTo(rejected: m.index, matchHint: hint), p.state == .replicate {
                    p.becomeProbe()
                }
                progress[m.from] = p
            } else {
                if p.maybeUpdate(m.index) {
                    switch p.state {
                    case .probe: p.becomeReplicate()
                    case .snapshot: if p.match >= p.pendingSnapshot { p.becomeProbe(); p.becomeReplicate() }
                    case .replicate: p.inflights.freeLE(m.index)
                    }
                    if p.mayRejoin { p.resendWanted = true }   // tell it, even with nothing new to send
                    progress[m.from] = p
                    _ = maybeCommit()
                    if m.from == leadTransferee && p.match == log.lastIndex {
                        send(Message(type: .timeoutNow, to: m.from))
                    }
                } else {
                    if p.state == .replicate { p.inflights.freeLE(m.index) }
                    progress[m.from] = p
                    if rejoined { _ = maybeCommit() }
                }
            }
        case .heartbeatResponse:
            p.probeSent = false
            // The follower is reachable again: if the window is full of appends that may have been lost,
            // free one slot so the next append goes out (it succeeds, or is rejected and we probe).
            if p.state == .replicate && p.inflights.isFull { p.inflights.freeFirst() }
            // A follower still behind gets an append now, even with nothing new: if it lost entries the
            // append is rejected and we probe back to where it is.
            if p.match < log.lastIndex || p.mayRejoin { p.resendWanted = true }
            // The answer to a round of ours (a follower never echoes one we did not send: ignore any other).
            let round = m.context <= reads.lastSentRound ? m.context : 0
            if round > p.readAck { p.readAck = round }
            if let sent = reads.sentTick(of: round) { p.leaseRoundSentTick = max(sent, p.leaseRoundSentTick ?? 0) }
            progress[m.from] = p
            if round > 0 { releaseConfirmedReads() }
        default:
            progress[m.from] = p
        }
    }

    /// Advances the commit index to the highest index a quorum of voters holds durably, if it is of our term.
    @discardableResult
    func maybeCommit() -> Bool {
        let voters = conf.voters
        guard !voters.isEmpty else { return false }
        var matches: [LogIndex] = []
        matches.reserveCapacity(voters.count)
        // An abstaining replica (it lost its state and is catching up) does not count: see RaftNode+LostState.
        for v in voters { matches.append(progress[v].map { $0.abstaining ? 0 : $0.match } ?? 0) }
        matches.sort(by: >)
        let quorumMatch = matches[quorum - 1]
        let committed = log.maybeCommit(quorumMatch, term: term)
        if committed { serveReadsAwaitingCommit() }
        return committed
    }

    /// Sends every follower what it lacks (entries, commit index), as few messages as the window allows, so many
    /// proposals of one loop turn travel in one message per follower. It runs on every `hasReady()`, `ready()` and
    /// `takeImmediateMessages()` — for every shard, several times a loop turn — so the usual case (each follower
    /// already sent everything and the current commit index) costs no allocation and no log lookup.
    func flushReplication() {
        guard role == .leader else { return }
        let last = log.lastIndex
        for n in conf.voters where n != id { flushReplication(to: n, lastIndex: last) }
        for n in conf.learners where n != id { flushReplication(to: n, lastIndex: last) }
    }

    private func flushReplication(to n: NodeID, lastIndex last: LogIndex) {
        guard let p = progress[n] else { return }
        let sendIfEmpty = p.sentCommit < log.committed || p.resendWanted
        // Exactly the case where maybeSendAppend finds no entries (next is past the last one, whose term the log
        // always knows) and, with nothing to say, sends nothing.
        if !sendIfEmpty && p.next == last + 1 { return }
        var more = maybeSendAppend(to: n, sendIfEmpty: sendIfEmpty)
        while more { more = maybeSendAppend(to: n, sendIfEmpty: false) }
    }

    /// Sends one append (or snapshot) to `to` if it needs one and is not paused. Returns whether it sent.
    func maybeSendAppend(to: NodeID, sendIfEmpty: Bool) -> Bool {
        guard var p = progress[to], !p.isPaused else { return false }
        let prevIndex = p.next - 1
        let prevTerm = try? log.term(prevIndex)
        var ents: [Entry] = []
        var compacted = prevTerm == nil
        if !compacted {
            do { ents = try log.entries(from: p.next, maxBytes: config.maxSizePerMsg) } catch { compacted = true }
        }
        // A follower with nothing of the log (a replica just added, a wiped one) gets the newest snapshot, not the
        // log from its first entry: the group's membership before the first entry is only in a snapshot (a
        // replica that joined later knows none), and a snapshot is the faster way anyway.
        if !compacted && prevIndex == 0 && p.match == 0, let snap = try? log.snapshot(), snap.metadata.index > 0 { compacted = true }
        if !compacted && ents.isEmpty && !sendIfEmpty { return false }
        if compacted {
            guard p.recentActive else { return false }
            guard let snap = try? log.snapshot(), !snap.isEmpty else { return false }
            p.becomeSnapshot(snap.metadata.index)
            progress[to] = p
            send(Message(type: .snapshot, to: to, snapshot: snap))
            return false
        }
        let commit = log.committed
        // An abstaining replica that holds everything to its floor, and this append's prefix reaches it: rejoin.
        let rejoin = p.mayRejoin && prevIndex >= p.rejoinFloor!
        // Only the commit index is new, and the follower is known to hold exactly up to prevIndex: no answer needed.
        let commitOnly = ents.isEmpty && p.state == .replicate && p.match == prevIndex && !p.abstaining
            && !p.resendWanted
        send(Message(type: .append, to: to, logTerm: prevTerm!, index: prevIndex, entries: ents, commit: commit,
                     context: rejoin ? Message.rejoinContext : commitOnly ? Message.commitOnlyContext : 0))
        p.sentEntries(last: prevIndex + LogIndex(ents.count), count: ents.count)
        p.sentCommit = commit
        p.resendWanted = false
        progress[to] = p
        return !ents.isEmpty && !p.isPaused
    }

    func broadcastHeartbeat(context: UInt64) {
        for n in conf.members where n != id {
            let p = progress[n]!
            send(Message(type: .heartbeat, to: n, commit: min(p.match, log.committed), context: context))
        }
    }
}
