@testable import Raft
import XCTest

/// Scenarios of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm")
/// not covered by ElectionTests and ReplicationTests: each test checks the sentences of one section, driving
/// single replicas with hand-made messages (the classic algorithm: no pre-vote, no check-quorum).
final class PaperTests: XCTestCase {
    // MARK: helpers

    /// A leader of `voters` (node 1), elected with the votes of a bare majority; its Readys drained.
    private func leader(voters: [NodeID] = [1, 2, 3], log: [Entry] = [], hardState: HardState = HardState()) -> Solo {
        let s = Solo(voters: voters, log: log, hardState: hardState)
        s.node.campaign()
        s.drain()
        for v in voters.filter({ $0 != 1 }).prefix(voters.count / 2) {
            s.node.step(Message(type: .voteResponse, to: 1, from: v, term: s.node.term))
        }
        XCTAssertEqual(s.node.role, .leader)
        return s
    }

    /// The follower's acceptance of an append: it now holds everything up to the append's last entry.
    private func accept(_ m: Message) -> Message {
        precondition(m.type == .append)
        return Message(type: .appendResponse, to: m.from, from: m.to, term: m.term, index: m.index + LogIndex(m.entries.count))
    }

    /// Drains the leader's Ready (persisting its entries) and answers every append with an acceptance.
    private func replicateToAll(_ s: Solo) {
        for m in s.messages() where m.type == .append { s.node.step(accept(m)) }
    }

    private func nodes(_ ids: [NodeID]) -> [RaftNode] {
        ids.map { id in
            var c = RaftConfig(id: id, seed: 11)
            classic(&c)
            return RaftNode(config: c, storage: MemoryStorage(confState: ConfState(voters: ids)))
        }
    }

    private func terms(_ entries: [Entry]) -> [Term] { entries.map(\.term) }

    // MARK: §5.2 leader election

    /// §5.2: randomized timeouts make it rare that several followers time out in the same tick (split votes).
    func testFollowersElectionTimeoutsRarelyConflict() {
        XCTAssertLessThanOrEqual(conflictRate(candidates: false), 0.3)
    }

    /// §5.2: likewise for candidates whose elections failed: they rarely start the next one in the same tick.
    func testCandidatesElectionTimeoutsRarelyConflict() {
        XCTAssertLessThanOrEqual(conflictRate(candidates: true), 0.3)
    }

    /// Fraction of 1,000 rounds in which more than one of 5 replicas timed out in the first tick any did.
    private func conflictRate(candidates: Bool) -> Double {
        let rs = nodes([1, 2, 3, 4, 5])
        var conflicts = 0
        for _ in 0..<1000 {
            var startTerm: [Term] = []
            for r in rs {
                if candidates { r.becomeCandidate() } else { r.becomeFollower(term: r.term + 1, leader: noNode) }
                startTerm.append(r.term)
            }
            var timedOut = 0
            while timedOut == 0 {
                for (k, r) in rs.enumerated() {
                    r.tick()
                    // A follower that times out becomes a candidate; a candidate that does starts a new term.
                    if candidates ? r.term > startTerm[k] : r.role == .candidate { timedOut += 1 }
                }
            }
            if timedOut > 1 { conflicts += 1 }
        }
        return Double(conflicts) / 1000
    }

    /// §5.2: a candidate's election timeout is randomized too: every value in [electionTick, 2·electionTick) occurs,
    /// and no other.
    func testCandidateElectionTimeoutIsRandomized() {
        let r = nodes([1, 2, 3])[0]
        let et = r.config.electionTick
        var seen = Set<Int>()
        for _ in 0..<(50 * et) {
            r.becomeCandidate()
            let term = r.term
            var ticks = 0
            while r.term == term {
                r.tick()
                ticks += 1
            }
            XCTAssertEqual(r.role, .candidate, "a timed-out candidate starts a new election")
            seen.insert(ticks)
        }
        XCTAssertEqual(seen, Set(et..<(2 * et)))
    }

    // MARK: §5.4.1 election restriction

    /// §5.4.1: a vote request carries the candidate's new term and the index and term of its last log entry, and
    /// goes to every other voter.
    func testVoteRequestCarriesTheCandidatesLastIndexAndTerm() {
        for (entries, wantTerm) in [(log([1]), Term(2)), (log([1, 2]), Term(3))] {
            // A follower of a running group (not a blank replica, which would abstain: RaftNode+LostState).
            let s = Solo(hardState: HardState(term: wantTerm - 1))
            s.node.step(Message(type: .append, to: 1, from: 2, term: wantTerm - 1, logTerm: 0, index: 0, entries: entries))
            s.drain()
            for _ in 1..<(2 * s.node.config.electionTick) { s.node.tick() }
            let votes = s.messages().filter { $0.type == .vote }.sorted { $0.to < $1.to }
            XCTAssertEqual(votes.map(\.to), [2, 3])
            for m in votes {
                XCTAssertEqual(m.term, wantTerm)
                XCTAssertEqual(m.index, entries.last!.index)
                XCTAssertEqual(m.logTerm, entries.last!.term)
            }
        }
    }

    /// §5.2 (and figure 2, "persistent state"): votedFor survives a restart — a replica that voted, restarted from its
    /// storage, refuses every other candidate of that term and may repeat its vote for the same one.
    func testVoteReloadedFromHardStateAfterARestart() {
        // Loaded directly: (persisted vote, candidate, rejected?).
        let cases: [(vote: NodeID, candidate: NodeID, reject: Bool)] = [
            (noNode, 2, false), (noNode, 3, false), (2, 2, false), (3, 3, false), (2, 3, true), (3, 2, true),
        ]
        for tc in cases {
            let s = Solo(hardState: HardState(term: 1, vote: tc.vote))
            s.node.step(Message(type: .vote, to: 1, from: tc.candidate, term: 1, logTerm: 0, index: 0))
            let out = s.messages()
            XCTAssertEqual(out.map(\.type), [.voteResponse], "\(tc)")
            XCTAssertEqual(out.first?.to, tc.candidate, "\(tc)")
            XCTAssertEqual(out.first?.reject, tc.reject, "\(tc)")
        }
        // The whole way: vote, persist the Ready, restart from the storage, be asked again.
        let storage = MemoryStorage(confState: ConfState(voters: [1, 2, 3]))
        var c = RaftConfig(id: 1, seed: 3)
        classic(&c)
        var n = RaftNode(config: c, storage: storage)
        n.step(Message(type: .vote, to: 1, from: 2, term: 1, logTerm: 0, index: 0))
        let rd = n.ready()
        if let hs = rd.hardState { storage.setHardState(hs) }
        n.advance()
        XCTAssertEqual(rd.messages.map(\.reject), [false])
        n = RaftNode(config: c, storage: storage)
        XCTAssertEqual(n.term, 1)
        XCTAssertEqual(n.vote, 2)
        n.step(Message(type: .vote, to: 1, from: 3, term: 1, logTerm: 0, index: 0))
        n.step(Message(type: .vote, to: 1, from: 2, term: 1, logTerm: 0, index: 0))
        let answers = n.ready().messages.filter { $0.type == .voteResponse }
        XCTAssertEqual(answers.map(\.to), [3, 2])
        XCTAssertEqual(answers.map(\.reject), [true, false], "no second vote in term 1 after the restart")
        XCTAssertEqual(n.vote, 2)
    }

    // MARK: §5.3 log replication

    /// §5.3: a new leader's first appends go to every follower, carry the index and term of the entry preceding the
    /// new ones (its log before the election), its own term's empty entry, and its commit index; the entry is also
    /// handed out to be persisted. A proposal after that travels the same way.
    func testLeadersFirstAppendsAfterElection() {
        let s = leader(log: log([1, 1]), hardState: HardState(term: 1, commit: 1))
        XCTAssertEqual(s.node.term, 2)
        let rd = s.drain()
        XCTAssertEqual(rd.entries, [Entry(term: 2, index: 3)], "the empty entry of term 2 is persisted")
        let appends = rd.messages.filter { $0.type == .append }.sorted { $0.to < $1.to }
        XCTAssertEqual(appends.map(\.to), [2, 3])
        for m in appends {
            XCTAssertEqual(m.term, 2)
            XCTAssertEqual(m.index, 2)
            XCTAssertEqual(m.logTerm, 1)
            XCTAssertEqual(m.entries, [Entry(term: 2, index: 3)])
            XCTAssertEqual(m.commit, 1)
        }
        for m in appends { s.node.step(accept(m)) }
        XCTAssertEqual(s.node.commitIndex, 3)
        s.drain()
        let data = Array("some data".utf8)
        try! s.node.propose(data)
        let next = s.drain()
        XCTAssertEqual(next.entries, [Entry(term: 2, index: 4, data: data)])
        XCTAssertEqual(s.node.commitIndex, 3, "not committed before a majority has it")
        let more = next.messages.filter { $0.type == .append }.sorted { $0.to < $1.to }
        XCTAssertEqual(more.map(\.to), [2, 3])
        for m in more {
            XCTAssertEqual(m.index, 3)
            XCTAssertEqual(m.logTerm, 2)
            XCTAssertEqual(m.entries, [Entry(term: 2, index: 4, data: data)])
            XCTAssertEqual(m.commit, 3)
        }
    }

    /// §5.3: the leader includes the highest index it knows committed in later appends, "so that the other servers
    /// eventually find out"; followers learn it from later appends and heartbeats and apply the entries.
    func testCommitIsCarriedByLaterAppends() {
        let s = leader()
        replicateToAll(s)
        s.drain()
        let li = s.node.lastIndex
        try! s.node.propose(Array("x".utf8))
        replicateToAll(s)
        XCTAssertEqual(s.node.commitIndex, li + 1)
        let rd = s.drain()
        XCTAssertEqual(rd.committedEntries.map(\.index), [li + 1])
        let later = rd.messages.filter { $0.type == .append }.sorted { $0.to < $1.to }
        XCTAssertEqual(later.map(\.to), [2, 3], "each follower is told the new commit index")
        XCTAssertTrue(later.allSatisfy { $0.commit == li + 1 && $0.entries.isEmpty })
        // A follower: the entries arrive uncommitted; a later empty append commits them, a heartbeat likewise.
        let f = Solo(id: 2)
        // It voted in the group's first election (a blank replica hearing of a history would abstain instead).
        f.node.step(Message(type: .vote, to: 2, from: 1, term: 1, logTerm: 0, index: 0))
        f.drain()
        f.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 0, index: 0,
                            entries: [Entry(term: 1, index: 1), Entry(term: 1, index: 2), Entry(term: 1, index: 3)], commit: 0))
        XCTAssertTrue(f.drain().committedEntries.isEmpty)
        f.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 1, index: 3, entries: [], commit: 2))
        XCTAssertEqual(f.drain().committedEntries.map(\.index), [1, 2])
        f.node.step(Message(type: .heartbeat, to: 2, from: 1, term: 1, commit: 3))
        XCTAssertEqual(f.drain().committedEntries.map(\.index), [3])
    }

    /// §5.3: an entry commits exactly when the leader has replicated it on a majority — for every acknowledging set
    /// of a 5-node cluster (and the 1- and 3-node ones), the leader itself counting once its own copy is durable.
    func testLeaderCommitsExactlyWhenAMajorityAcknowledged() {
        var groups: [(voters: [NodeID], acks: Set<NodeID>)] = [([1], [])]
        for acks: Set<NodeID> in [[], [2], [3], [2, 3]] { groups.append(([1, 2, 3], acks)) }
        for mask in 0..<16 {
            groups.append(([1, 2, 3, 4, 5], Set((0..<4).filter { mask & (1 << $0) != 0 }.map { NodeID($0 + 2) })))
        }
        for (voters, acks) in groups {
            let s = leader(voters: voters)
            replicateToAll(s)          // commit the leader's empty entry everywhere
            s.drain()
            let li = s.node.lastIndex
            XCTAssertEqual(s.node.commitIndex, li)
            try! s.node.propose(Array("some data".utf8))
            for m in s.messages() where m.type == .append && acks.contains(m.to) { s.node.step(accept(m)) }
            let majority = acks.count + 1 >= voters.count / 2 + 1
            XCTAssertEqual(s.node.commitIndex > li, majority, "voters \(voters), acknowledged by \(acks.sorted())")
        }
    }

    /// §5.3: committing an entry commits all preceding ones, including entries of earlier leaders preloaded in the
    /// log; they are handed to the state machine in log order.
    func testCommittingAnEntryCommitsPreloadedEntriesOfEarlierTerms() {
        let preloaded: [[Entry]] = [
            [],
            [Entry(term: 2, index: 1)],
            [Entry(term: 1, index: 1), Entry(term: 2, index: 2)],
            [Entry(term: 1, index: 1)],
        ]
        for ents in preloaded {
            let s = leader(log: ents, hardState: HardState(term: 2))
            XCTAssertEqual(s.node.term, 3)
            let data = Array("some data".utf8)
            try! s.node.propose(data)
            replicateToAll(s)
            let li = LogIndex(ents.count)
            XCTAssertEqual(s.drain().committedEntries,
                           ents + [Entry(term: 3, index: li + 1), Entry(term: 3, index: li + 2, data: data)], "\(ents)")
        }
    }

    /// §5.3: once a follower learns an entry is committed it applies it, and every entry before it, in log order —
    /// but nothing past the leader's commit index.
    func testFollowerAppliesExactlyTheCommittedEntries() {
        let a = Entry(term: 1, index: 1, data: Array("some data".utf8))
        let b = Entry(term: 1, index: 2, data: Array("some data2".utf8))
        let swapped = [Entry(term: 1, index: 1, data: b.data), Entry(term: 1, index: 2, data: a.data)]
        for (ents, commit) in [([a], LogIndex(1)), ([a, b], 2), (swapped, 2), ([a, b], 1)] {
            let s = Solo(id: 2)
            s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 0, index: 0, entries: ents, commit: commit))
            XCTAssertEqual(s.node.commitIndex, commit)
            XCTAssertEqual(s.drain().committedEntries, Array(ents.prefix(Int(commit))))
        }
    }

    /// §5.3: the consistency check — an append is accepted iff the follower has an entry at the append's previous
    /// index with its term; one whose previous index lies at or below the commit index always matches (committed
    /// entries are the leader's too). Rejections carry the hint of where the logs may match.
    func testAppendCheckIncludingPreviousIndexesAtTheCommitIndex() {
        let cases: [(logTerm: Term, index: LogIndex, wantIndex: LogIndex, reject: Bool, hint: LogIndex, hintTerm: Term)] = [
            (0, 0, 1, false, 0, 0),   // before the committed entry: answered with the commit index
            (1, 1, 1, false, 0, 0),   // at the committed entry
            (2, 2, 2, false, 0, 0),   // at an uncommitted entry that matches
            (1, 2, 2, true, 1, 1),    // our entry 2 has term 2, not 1
            (2, 3, 3, true, 2, 2),    // we have no entry 3
        ]
        for tc in cases {
            let s = Solo(log: [Entry(term: 1, index: 1), Entry(term: 2, index: 2)], hardState: HardState(term: 2, commit: 1))
            s.node.step(Message(type: .append, to: 1, from: 2, term: 2, logTerm: tc.logTerm, index: tc.index))
            let out = s.messages()
            XCTAssertEqual(out.count, 1, "\(tc)")
            guard let r = out.first else { continue }
            XCTAssertEqual(r.type, .appendResponse, "\(tc)")
            XCTAssertEqual(r.to, 2, "\(tc)")
            XCTAssertEqual(r.term, 2, "\(tc)")
            XCTAssertEqual(r.index, tc.wantIndex, "\(tc)")
            XCTAssertEqual(r.reject, tc.reject, "\(tc)")
            if tc.reject {
                XCTAssertEqual(r.rejectHint, tc.hint, "\(tc)")
                XCTAssertEqual(r.logTerm, tc.hintTerm, "\(tc)")
            }
        }
    }

    /// §5.3: on a valid append the follower deletes a conflicting entry and all that follow it and appends the new
    /// ones; only what changed is handed out to be persisted — also when the replaced entries were themselves
    /// not yet persisted.
    func testConflictTruncationAndTheEntriesLeftToPersist() {
        // Stable log (1, term 1) (2, term 2); append after (index, logTerm) → whole log terms, unstable part.
        let cases: [(index: LogIndex, logTerm: Term, ents: [Entry], want: [Term], unstable: [Entry])] = [
            (2, 2, [Entry(term: 3, index: 3)], [1, 2, 3], [Entry(term: 3, index: 3)]),
            (1, 1, [Entry(term: 3, index: 2), Entry(term: 4, index: 3)], [1, 3, 4], [Entry(term: 3, index: 2), Entry(term: 4, index: 3)]),
            (0, 0, [Entry(term: 1, index: 1)], [1, 2], []),
            (0, 0, [Entry(term: 3, index: 1)], [3], [Entry(term: 3, index: 1)]),
        ]
        for tc in cases {
            let s = Solo(log: [Entry(term: 1, index: 1), Entry(term: 2, index: 2)], hardState: HardState(term: 2))
            // The leader's term is at least its entries' (a message carrying later-term entries is refused).
            s.node.step(Message(type: .append, to: 1, from: 2, term: 4, logTerm: tc.logTerm, index: tc.index, entries: tc.ents))
            XCTAssertEqual(terms(s.node.entries(from: 1)), tc.want, "\(tc)")
            let rd = s.drain()
            XCTAssertEqual(rd.entries, tc.unstable, "\(tc)")
            XCTAssertEqual(try! s.storage.entries(1, s.storage.lastIndex() + 1, maxBytes: .max).map(\.term), tc.want, "\(tc)")
        }
        // Unstable entries replaced before they were persisted: entry 3 (term 1) is still being fsynced when the
        // leader of term 2 replaces it with entries 3 and 4 of its term. Both new entries remain to persist:
        // finishing the old fsync (of index 3) must not mark the replacement at index 3 durable.
        let s = Solo(log: log([1, 1]), hardState: HardState(term: 1))
        s.node.step(Message(type: .append, to: 1, from: 2, term: 1, logTerm: 1, index: 2, entries: [Entry(term: 1, index: 3)]))
        let inFlight = s.node.ready()
        XCTAssertEqual(inFlight.entries, [Entry(term: 1, index: 3)])
        s.node.step(Message(type: .append, to: 1, from: 3, term: 2, logTerm: 1, index: 2,
                            entries: [Entry(term: 2, index: 3), Entry(term: 2, index: 4)]))
        XCTAssertEqual(terms(s.node.entries(from: 1)), [1, 1, 2, 2])
        s.storage.append(inFlight.entries)
        if let hs = inFlight.hardState { s.storage.setHardState(hs) }
        s.node.advance()
        let next = s.drain()
        XCTAssertEqual(next.entries, [Entry(term: 2, index: 3), Entry(term: 2, index: 4)], "the replacement is persisted, over the old entry")
        XCTAssertEqual(try! s.storage.entries(1, s.storage.lastIndex() + 1, maxBytes: .max).map(\.term), [1, 1, 2, 2])
        XCTAssertEqual(next.messages.filter { $0.type == .appendResponse && !$0.reject }.map(\.index).last, 4)
    }

    /// §5.3 ("if an existing entry conflicts… delete it"; only then): an append whose entries are all already in the
    /// log — a delayed or duplicated older append — never truncates what follows them, stable or not.
    func testAPrefixAppendNeverTruncates() {
        let s = Solo(log: log([1, 1, 1, 1]), hardState: HardState(term: 1))
        let before = s.node.entries(from: 1)
        s.node.step(Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, entries: Array(before.prefix(2))))
        XCTAssertEqual(s.node.entries(from: 1), before)
        var rd = s.drain()
        XCTAssertTrue(rd.entries.isEmpty, "nothing new to persist")
        XCTAssertEqual(rd.messages.map(\.index), [2], "acknowledges up to the append's last entry only")
        // Unstable entries 5 and 6 arrive; an older append for 3...4 then arrives late: 5 and 6 stay.
        s.node.step(Message(type: .append, to: 1, from: 2, term: 1, logTerm: 1, index: 4,
                            entries: [Entry(term: 1, index: 5), Entry(term: 1, index: 6)]))
        s.node.step(Message(type: .append, to: 1, from: 2, term: 1, logTerm: 1, index: 2, entries: Array(before[2...3])))
        XCTAssertEqual(s.node.lastIndex, 6)
        rd = s.drain()
        XCTAssertEqual(rd.entries.map(\.index), [5, 6])
        XCTAssertEqual(s.storage.lastIndex(), 6)
    }
}
