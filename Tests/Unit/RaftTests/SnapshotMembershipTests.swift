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
        // Removing the leader: it steps down once the change applies.
        try! c[1].proposeConfChange(.remove(1))
        c.settle()
        c.tickAll(2)
        XCTAssertEqual(c[1].role, .follower)
        c.tickAll(60)
        let leaders = [2, 4].filter { c[NodeID($0)].role == .leader }
        XCTAssertEqual(leaders.count, 1, "the remaining voters elect a leader")
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

