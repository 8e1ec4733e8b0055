@testable import Raft
import XCTest

/// Snapshots with log compaction, and one-at-a-time membership changes.
final class SnapshotMembershipTests: XCTestCase {
    func testLaggingFollowerReceivesASnapshot() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.isolate(3)
        c.cut.remove([1, 2]); c.cut.remove([2, 1])
        for k in 0..<20 { try! c[1].propose([UInt8(k)]) }
        c.settle()
        let s = c.storages[1]!
        try! s.createSnapshot(index: c[1].appliedIndex, confState: c[1].confState, data: Array("image".utf8))
        try! s.compact(upTo: c[1].appliedIndex)
        c.heal()
        c.tickAll(3)
        XCTAssertTrue(c.delivered.contains { $0.type == .snapshot && $0.to == 3 })
        XCTAssertEqual(c.storages[3]!.snapshotValue.data, Array("image".utf8))
        XCTAssertEqual(c[3].commitIndex, c[1].commitIndex)
        try! c[1].propose([99])
        c.settle()
        c.tickAll(1)
        XCTAssertEqual(c.appliedData(3), [[99]], "after the snapshot it applies new entries normally")
    }

    func testLearnerReceivesEntriesButNeverCountsOrVotes() {
        let c = TestCluster([1, 2, 3], learners: [4])
        c.elect(1)
        c.isolate(2); c.isolate(3)
        c.cut = c.cut.filter { !($0.contains(1) && $0.contains(4)) }
        try! c[1].propose([1])
        c.settle()
        XCTAssertEqual(c[4].lastIndex, c[1].lastIndex, "the learner has the entry")
        XCTAssertEqual(c[1].commitIndex, 1, "but leader + learner are no majority")
        for _ in 0..<40 { c.tick(4) }
        XCTAssertEqual(c[4].role, .follower, "a learner never campaigns")
    }

    func testAddLearnerPromoteAndRemoveAVoter() {
        let c = TestCluster([1, 2, 3], learners: [])
        c.elect(1)
        // A fourth replica started with the old membership (it is not a member yet).
        c.addReplica(4, confState: ConfState(voters: [1, 2, 3]))
        try! c[1].proposeConfChange(.addLearner(4))
        c.settle()
        XCTAssertEqual(c[1].confState, ConfState(voters: [1, 2, 3], learners: [4]))
        try! c[1].proposeConfChange(.addVoter(4))
        c.settle()
        XCTAssertEqual(c[1].confState.voters, [1, 2, 3, 4])
        XCTAssertEqual(c[4].confState.voters, [1, 2, 3, 4], "the new member applied the same changes")
        // With 4 voters, leader + one other is no longer a majority.
        c.cut = [[1, 3], [3, 1], [1, 4], [4, 1]]
        try! c[1].proposeConfChange(.remove(3))
        c.settle()
        XCTAssertEqual(c[1].confState.voters, [1, 2, 3, 4], "the removal cannot commit without a majority of 4")
        c.cut = []
        c.settle()
        c.tickAll(2)
        XCTAssertEqual(c[1].confState.voters, [1, 2, 4])
        // Removing the leader: once the change applies it takes no proposals and hands its leadership to the
        // remaining voter whose log matches its own furthest; it does not just step down (the remaining voters
        // might not know the removal is committed, and its longer log would make it refuse their votes).
        c.cut = [[1, 2], [2, 1]]   // node 2 falls behind: node 4 is the one to take over
        try! c[1].proposeConfChange(.remove(1))
        c.settle()
        XCTAssertEqual(c[1].confState.voters, [2, 4])
        XCTAssertThrowsError(try c[1].propose([7])) { XCTAssertEqual($0 as? RaftError, .transferInProgress) }
        c.tickAll(3)
        XCTAssertEqual(c[4].role, .leader, "the most caught-up remaining voter takes over")
        XCTAssertEqual(c[1].role, .follower)
        c.cut = []
        try! c[4].propose([8])
        c.settle()
        c.tickAll(2)
        XCTAssertEqual(c[2].confState.voters, [2, 4], "node 2 applied the removal too")
        XCTAssertEqual(c.appliedData(2).last, [8])
    }

    /// With one remaining voter down, the removed leader still hands over: it leads on (the deadlock it avoids,
    /// where the others still count it and it refuses their votes, is reproduced by the Raft simulation's seeds
    /// 1674, 15123, 23816 and 30902, which failed before).
    func testARemovedLeaderLeadsOnUntilARemainingVoterTakesOver() {
        let c = TestCluster([1, 2, 3, 4])
        c.elect(1)
        c.isolate(3)
        try! c[1].proposeConfChange(.remove(1))
        c.settle()
        XCTAssertEqual(c[1].confState.voters, [2, 3, 4])
        c.tickAll(30)
        XCTAssertNotEqual(c[1].role, .leader, "the removed leader handed over")
        let leaders = [2, 4].filter { c[NodeID($0)].role == .leader }
        XCTAssertEqual(leaders.count, 1, "a remaining voter leads, with node 3 still down")
        if let l = leaders.first {
            try! c[NodeID(l)].propose([9])
            c.settle()
            XCTAssertEqual(c[NodeID(l)].commitIndex, c[NodeID(l)].lastIndex, "and commits")
        }
    }

    func testConfChangeIsRefusedWhilePendingAndBeforeTheLeadersFirstEntryApplies() {
        let c = TestCluster([1, 2, 3])
        c[1].campaign()
        c.filter = { $0.type != .append }
        c.settle()
        XCTAssertEqual(c[1].role, .leader)
        XCTAssertThrowsError(try c[1].proposeConfChange(.addLearner(4))) {
            XCTAssertEqual($0 as? RaftError, .confChangePending, "before the empty entry of its term is applied")
        }
        c.filter = { _ in true }
        c.tickAll(1)
        XCTAssertNoThrow(try c[1].proposeConfChange(.addLearner(4)))
        XCTAssertThrowsError(try c[1].proposeConfChange(.addLearner(5))) {
            XCTAssertEqual($0 as? RaftError, .confChangePending, "one change at a time")
        }
        XCTAssertThrowsError(try c[1].proposeConfChange(.remove(9))) { _ in }
    }

    func testConfChangeEncodingRoundTripsAndRefusesUnknownBytes() {
        for cc in [ConfChange.addLearner(7), .addVoter(1 << 40), .remove(3)] {
            XCTAssertEqual(ConfChange.decode(cc.encode()), cc)
        }
        XCTAssertNil(ConfChange.decode([9, 1, 0, 0, 0, 0, 0, 0, 0]))
        XCTAssertNil(ConfChange.decode([1, 2, 3]))
    }
}


/// A snapshot restored between `ready()` and `advance()` supersedes the membership changes of that Ready.
final class SnapshotSupersedesConfChangeTests: XCTestCase {
    /// A follower is handed `[noop, addLearner(4)]` as committed entries; before it calls `advance()` a snapshot
    /// at a later index arrives whose membership is {1, 2, 3} (4 was removed again at index 4). The snapshot's
    /// membership must win: the conf change at index 2 ≤ the snapshot's index 5 is not applied by `advance()`.
    func testSnapshotRestoredBeforeAdvanceWinsOverAnOlderConfChange() {
        let s = Solo(id: 2)
        let addLearner = Entry(term: 1, index: 2, kind: .confChange, data: ConfChange.addLearner(4).encode())
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 0, index: 0,
                            entries: [Entry(term: 1, index: 1), addLearner], commit: 2))
        let rd = s.node.ready()
        XCTAssertEqual(rd.committedEntries.map(\.index), [1, 2], "the conf change is handed out for applying")
        s.storage.append(rd.entries)
        if let hs = rd.hardState { s.storage.setHardState(hs) }
        // While the application applies that Ready, the leader sends a snapshot at index 5, membership {1, 2, 3}.
        let members = ConfState(voters: [1, 2, 3])
        let snap = Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, confState: members), data: [7])
        s.node.step(Message(type: .snapshot, to: 2, from: 1, term: 1, snapshot: snap))
        XCTAssertEqual(s.node.confState, members, "restoring the snapshot adopts its membership")
        s.node.advance()
        XCTAssertEqual(s.node.confState, members, "advance() must not apply a conf change the snapshot already covers")
        let next = s.drain()
        XCTAssertEqual(next.snapshot?.metadata.index, 5)
        XCTAssertEqual(s.node.confState, members)
        XCTAssertEqual(s.node.appliedIndex, 5)
        // A conf change after the snapshot is applied as usual.
        let later = Entry(term: 1, index: 6, kind: .confChange, data: ConfChange.addLearner(5).encode())
        s.node.step(Message(type: .append, to: 2, from: 1, term: 1, logTerm: 1, index: 5, entries: [later], commit: 6))
        XCTAssertEqual(s.drain().committedEntries.map(\.index), [6])
        XCTAssertEqual(s.node.confState, ConfState(voters: [1, 2, 3], learners: [5]))
    }
}
