@testable import Raft
import XCTest

/// Raft paper §5.3–5.4: log replication, commit rules, log matching, divergent logs.
final class ReplicationTests: XCTestCase {
    /// §5.3: a new leader appends an empty entry of its own term.
    func testLeaderStartsWithAnEmptyEntryOfItsTerm() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        XCTAssertEqual(c[1].role, .leader)
        XCTAssertEqual(c[1].lastIndex, 1)
        XCTAssertEqual(c[1].entries(from: 1).first, Entry(term: 1, index: 1))
    }

    /// §5.3: an entry commits once a majority holds it durably; the followers then learn the commit index,
    /// and every replica applies it (the acknowledgement).
    func testLeaderCommitsOnceAMajorityHasTheEntry() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.cut = [[1, 3], [3, 1]]    // node 3 unreachable: a majority is still {1, 2}
        let idx = try! c[1].propose(Array("x".utf8))
        c.settle()
        XCTAssertEqual(c[1].commitIndex, idx)
        XCTAssertEqual(c.appliedData(1), [Array("x".utf8)])
        XCTAssertEqual(c[3].lastIndex, 1, "the cut-off replica did not get it")
        c.tickAll(1)   // a heartbeat carries the commit index to node 2
        XCTAssertEqual(c[2].commitIndex, idx)
        XCTAssertEqual(c.appliedData(2), [Array("x".utf8)])
        c.heal()
        c.tickAll(3)
        XCTAssertEqual(c.appliedData(3), [Array("x".utf8)], "the lagging follower catches up")
    }

    /// §5.3: without a majority nothing commits.
    func testNoCommitWithoutAMajority() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.isolate(1)
        try! c[1].propose([1])
        c.settle()
        XCTAssertEqual(c[1].commitIndex, 1, "only the empty entry of the election committed")
        XCTAssertTrue(c.appliedData(1).isEmpty)
    }

    /// The leader counts its own log only once it is durable (after advance), never before.
    func testLeaderCountsItselfOnlyAfterPersisting() {
        let s = Solo(voters: [1])
        s.node.campaign()
        XCTAssertEqual(s.node.role, .leader)
        XCTAssertEqual(s.node.commitIndex, 0, "the empty entry is not durable yet")
        let rd = s.node.ready()
        XCTAssertEqual(rd.entries.count, 1)
        XCTAssertTrue(rd.committedEntries.isEmpty)
        s.storage.append(rd.entries)
        if let hs = rd.hardState { s.storage.setHardState(hs) }
        s.node.advance()
        XCTAssertEqual(s.node.commitIndex, 1)
        XCTAssertEqual(s.drain().committedEntries.map(\.index), [1])
    }

    /// §5.3: committing an entry commits every entry before it.
    func testCommittingAnEntryCommitsAllPrecedingEntries() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.isolate(2); c.isolate(3)
        for k in 0..<5 { try! c[1].propose([UInt8(k)]) }
        c.settle()
        XCTAssertEqual(c[1].commitIndex, 1)
        c.heal()
        try! c[1].propose([9])
        c.settle()
        XCTAssertEqual(c[1].commitIndex, 7)
        XCTAssertEqual(c.appliedData(1), [[0], [1], [2], [3], [4], [9]])
    }

    /// §5.3: a follower commits min(leaderCommit, index of its last new entry).
    func testFollowerCommitIsBoundedByItsLastNewEntry() {
        let s = Solo(id: 2)
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 0, index: 0,
                            entries: [Entry(term: 1, index: 1), Entry(term: 1, index: 2)], commit: 5))
        XCTAssertEqual(s.node.commitIndex, 2)
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 1, index: 2, entries: [], commit: 1))
        XCTAssertEqual(s.node.commitIndex, 2, "commit never goes back")
    }

    /// §5.3: the follower's consistency check: an append whose previous entry does not match is rejected
    /// with a hint that lets the leader skip a whole divergent term.
    func testFollowerRejectsAnAppendThatDoesNotMatch() {
        let s = Solo(id: 2, log: log([1, 1, 2, 2, 2]), hardState: HardState(term: 2))
        // Leader of term 3 thinks our entry 5 has term 3.
        s.node.step(Message(type: .append, to: 2, from: 1, term: 3, logTerm: 3, index: 5, entries: [Entry(term: 3, index: 6)], commit: 0))
        var r = s.messages().first!
        XCTAssertTrue(r.reject)
        XCTAssertEqual(r.index, 5)
        XCTAssertEqual(r.rejectHint, 5, "our entry 5 has term 2 ≤ 3: the leader should look for term 2 at or before 5")
        XCTAssertEqual(r.logTerm, 2)
        // Leader claims entry 7 exists: our log is shorter; the hint points at our last entry.
        s.node.step(Message(type: .append, to: 2, from: 1, term: 3, logTerm: 3, index: 7, entries: [], commit: 0))
        r = s.messages().first!
        XCTAssertTrue(r.reject)
        XCTAssertEqual(r.rejectHint, 5)
        XCTAssertEqual(r.logTerm, 2)
        XCTAssertEqual(s.node.lastIndex, 5, "nothing appended on a mismatch")
        // A matching append is accepted and acknowledged with the last new index.
        s.node.step(Message(type: .append, to: 2, from: 1, term: 3, logTerm: 2, index: 5, entries: [Entry(term: 3, index: 6)], commit: 0))
        r = s.messages().first!
        XCTAssertFalse(r.reject)
        XCTAssertEqual(r.index, 6)
    }

    /// §5.3, figure 7: a new leader brings each kind of divergent follower log into line with its own.
    func testLeaderSyncsDivergentFollowerLogsFigure7() {
        let leaderLog: [Term] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let followers: [(String, [Term])] = [
            ("a", [1, 1, 1, 4, 4, 5, 5, 6, 6]),
            ("b", [1, 1, 1, 4]),
            ("c", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
            ("d", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
            ("e", [1, 1, 1, 4, 4, 4, 4]),
            ("f", [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
        ]
        for (name, flog) in followers {
            let c = TestCluster([1, 2, 3], configure: classic)
            // Node 1 holds the leader's log, node 2 the follower's, node 3 an empty log (it votes for 1).
            let logs: [NodeID: [Term]] = [1: leaderLog, 2: flog, 3: []]
            for id in c.ids {
                c.storages[id]!.append(log(logs[id]!))
                c.storages[id]!.setHardState(HardState(term: 7))
                c.restart(id)
            }
            c.elect(1)
            XCTAssertEqual(c[1].role, .leader, name)
            XCTAssertEqual(c[1].term, 8, name)
            c.tickAll(3)
            let l = c[1].entries(from: 1).map { "\($0.index):\($0.term)" }
            XCTAssertEqual(c[2].entries(from: 1).map { "\($0.index):\($0.term)" }, l, "follower \(name) matches the leader")
            XCTAssertEqual(c[2].commitIndex, 11, name)
        }
    }

    /// §5.4.2, figure 8: a leader never commits an entry of an earlier term by counting replicas; it commits
    /// it only indirectly, once an entry of its own term is on a majority.
    func testOnlyCurrentTermEntriesCommitByCountingFigure8() {
        let s = Solo(voters: [1, 2, 3, 4, 5], log: log([1, 2]), hardState: HardState(term: 2))
        s.node.campaign()
        for v: NodeID in [2, 3] { s.node.step(Message(type: .voteResponse, to: 1, from: v, term: 3)) }
        XCTAssertEqual(s.node.role, .leader)
        XCTAssertEqual(s.node.term, 3)
        s.drain()   // persists the empty entry (3, term 3): the leader's own match becomes 3
        // A majority (1, 2, 3) holds entry 2 (term 2) but not entry 3.
        for v: NodeID in [2, 3] { s.node.step(Message(type: .appendResponse, to: 1, from: v, term: 3, index: 2)) }
        XCTAssertEqual(s.node.commitIndex, 0, "entry 2 is from term 2: counting replicas must not commit it")
        s.node.step(Message(type: .appendResponse, to: 1, from: 2, term: 3, index: 3))
        XCTAssertEqual(s.node.commitIndex, 0, "entry 3 on 2 of 5 replicas is not yet a majority")
        s.node.step(Message(type: .appendResponse, to: 1, from: 3, term: 3, index: 3))
        XCTAssertEqual(s.node.commitIndex, 3, "entry 3 of term 3 on a majority commits it and, with it, entry 2")
    }

    /// Log matching across a leader change: entries of a deposed leader that never committed are replaced.
    func testUncommittedEntriesOfADeposedLeaderAreReplaced() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.isolate(1)
        try! c[1].propose(Array("lost".utf8))
        c.settle()
        c.elect(2)
        try! c[2].propose(Array("kept".utf8))
        c.settle()
        c.heal()
        c.tickAll(3)
        XCTAssertEqual(c[1].role, .follower)
        for id in c.ids { XCTAssertEqual(c.appliedData(id), [Array("kept".utf8)], "node \(id)") }
        XCTAssertEqual(c[1].entries(from: 1).map(\.term), c[2].entries(from: 1).map(\.term))
    }

    /// Many proposals in one loop turn travel in one append per follower (batching), bounded by maxSizePerMsg.
    func testProposalsOfOneTurnAreBatchedIntoOneMessagePerFollower() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        _ = try! c[1].propose(batch: (0..<100).map { [UInt8($0)] })
        let appends = c.process(1).filter { $0.type == .append }
        XCTAssertEqual(appends.count, 2)
        XCTAssertTrue(appends.allSatisfy { $0.entries.count == 100 })
    }
}

/// Heartbeats must not queue behind a slow fsync (etcd #7312): messages that claim nothing durable can leave
/// while a Ready is still being persisted; votes and accepting append responses cannot.
final class ImmediateMessageTests: XCTestCase {
    func testOnlyMessagesThatNeedNoPersistenceLeaveDuringAnFsync() {
        // A follower of a running group (not a blank replica, which would abstain: RaftNode+LostState).
        let s = Solo(id: 2, hardState: HardState(term: 1))
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 0, index: 0, entries: [Entry(term: 1, index: 1)], commit: 0))
        let inFlight = s.node.ready()          // the fsync of entry 1 is "running": no advance yet
        XCTAssertTrue(inFlight.mustSync)
        s.node.step(Message(type: .heartbeat, to: 2, from: 1, term: 1, commit: 0, context: 4))
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 1, index: 1, entries: [Entry(term: 1, index: 2)], commit: 0))
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 1, index: 7, entries: [], commit: 0))   // an index it lacks
        let early = s.node.takeImmediateMessages()
        XCTAssertEqual(early.map(\.type), [.heartbeatResponse, .appendResponse])
        XCTAssertEqual(early[0].context, 4)
        XCTAssertTrue(early[1].reject, "only the rejection may leave early")
        // The acceptance of entry 2 waits for the next Ready, which persists entry 2 first.
        s.storage.append(inFlight.entries)
        if let hs = inFlight.hardState { s.storage.setHardState(hs) }
        s.node.advance()
        let next = s.node.ready()
        XCTAssertEqual(next.entries.map(\.index), [2])
        XCTAssertEqual(next.messages.filter { $0.type == .appendResponse }.map(\.index), [2])
        XCTAssertTrue(next.messages.allSatisfy { !$0.canSendBeforePersisting || $0.type != .heartbeatResponse }, "not sent twice")
    }

    func testVotesNeverLeaveBeforeTheyArePersisted() {
        let s = Solo()
        s.node.step(Message(type: .vote, to: 1, from: 2, term: 3, logTerm: 0, index: 0))
        XCTAssertTrue(s.node.takeImmediateMessages().isEmpty)
        let rd = s.node.ready()
        XCTAssertEqual(rd.hardState?.vote, 2)
        XCTAssertEqual(rd.messages.map(\.type), [.voteResponse])
        for t in MessageType.allCases {
            let m = Message(type: t)
            if t == .vote || t == .voteResponse { XCTAssertFalse(m.canSendBeforePersisting, "\(t)") }
        }
        XCTAssertFalse(Message(type: .appendResponse, reject: false).canSendBeforePersisting)
    }
    /// Once an entry commits, the leader tells each follower the commit index in an append without entries. A
    /// follower whose match the leader already knows is exactly that append's index is sent it marked
    /// commit-only and does not answer it (the answer would say nothing new); it still applies the entry. A
    /// marked append the follower cannot accept is always answered.
    func testCommitOnlyAppendsAreNotAnswered() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.delivered = []
        let idx = try! c[1].propose(Array("x".utf8))
        c.settle()
        let commitOnly = c.delivered.filter { $0.type == .append && $0.entries.isEmpty }
        XCTAssertEqual(Set(commitOnly.map(\.to)), [2, 3], "both followers are told the commit")
        XCTAssertTrue(commitOnly.allSatisfy { $0.context == Message.commitOnlyContext && $0.commit == idx })
        let answers = c.delivered.filter { $0.type == .appendResponse }
        XCTAssertEqual(answers.count, 2, "one answer per follower, for the entry; none for the commit-only appends")
        XCTAssertEqual(c[2].commitIndex, idx)
        XCTAssertEqual(c[3].commitIndex, idx)
        XCTAssertEqual(c.appliedData(3), [Array("x".utf8)])

        // A follower that lost the entry (wiped) rejects a marked append: the rejection is sent.
        let s = MemoryStorage(confState: ConfState(voters: [1, 2, 3]))
        var cfg = RaftConfig(id: 3, seed: 5)
        classic(&cfg)
        let blank = RaftNode(config: cfg, storage: s)
        blank.step(Message(type: .append, to: 3, from: 1, term: c[1].term, logTerm: c[1].term, index: idx,
                           commit: idx, context: Message.commitOnlyContext))
        let out = blank.takeImmediateMessages() + blank.ready().messages
        XCTAssertEqual(out.filter { $0.type == .appendResponse && $0.reject }.count, 1)
    }
}
