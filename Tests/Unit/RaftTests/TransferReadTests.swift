@testable import Raft
import XCTest

/// Leadership transfer and linearizable reads (ReadIndex, leases).
final class TransferReadTests: XCTestCase {
    func testTransferToAnUpToDateFollower() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        try! c[1].propose([1])
        c.settle()
        c.tickAll(1)
        try! c[1].transferLeadership(to: 2)
        XCTAssertThrowsError(try c[1].propose([2])) { XCTAssertEqual($0 as? RaftError, .transferInProgress) }
        c.settle()
        XCTAssertEqual(c[2].role, .leader)
        XCTAssertEqual(c[1].role, .follower)
        XCTAssertTrue(c.delivered.contains { $0.type == .timeoutNow && $0.to == 2 })
        try! c[2].propose([3])
        c.settle()
        c.tickAll(1)
        XCTAssertTrue(c.ids.allSatisfy { c.appliedData($0) == [[1], [3]] })
    }

    /// A retiring replica (its process is stopping gracefully) takes no transferred leadership and starts no
    /// election; it still votes, so the others elect among themselves.
    func testARetiringReplicaNeitherTakesATransferNorCampaigns() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        try! c[1].propose([1])
        c.settle()
        c[2].retiring = true
        try! c[1].transferLeadership(to: 2)
        c.settle()
        XCTAssertTrue(c.delivered.contains { $0.type == .timeoutNow && $0.to == 2 })
        XCTAssertEqual(c[2].role, .follower, "a timeout-now does not make a retiring replica campaign")
        XCTAssertEqual(c.leaders, [1])
        c.isolate(1)
        c.tickAll(30)
        XCTAssertEqual(c.leaders.filter { $0 != 1 }, [3], "node 3 wins with the retiring node's vote; node 2 never campaigns")
        XCTAssertEqual(c[2].role, .follower)
    }

    func testTransferToALaggingFollowerCatchesItUpFirst() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.cut = [[1, 3]]
        for k in 0..<10 { try! c[1].propose([UInt8(k)]) }
        c.settle()
        XCTAssertLessThan(c[3].lastIndex, c[1].lastIndex)
        c.cut = []
        try! c[1].transferLeadership(to: 3)
        c.settle()
        c.tickAll(2)
        XCTAssertEqual(c.leaders, [3], "node 3 was caught up, then took over")
        XCTAssertEqual(c.appliedData(3), (0..<10).map { [UInt8($0)] })
    }

    func testTransferThatCannotFinishIsAbortedAfterAnElectionTimeout() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.isolate(3)
        c.cut.remove([1, 2]); c.cut.remove([2, 1])
        try! c[1].transferLeadership(to: 3)
        XCTAssertEqual(c[1].leadTransferee, 3)
        c.tickAll(10)
        XCTAssertEqual(c[1].leadTransferee, noNode)
        XCTAssertEqual(c[1].role, .leader)
        XCTAssertNoThrow(try c[1].propose([1]), "proposals are accepted again")
        XCTAssertThrowsError(try c[1].transferLeadership(to: 1)) { XCTAssertEqual($0 as? RaftError, .invalidTransferTarget(1)) }
    }

    /// ReadIndex before the new leader has committed an entry of its term waits; after, it is released by one
    /// quorum heartbeat round at the commit index.
    func testReadIndexWaitsForTheLeadersFirstCommitThenAQuorumRound() {
        let c = TestCluster([1, 2, 3])
        c[1].campaign()
        // Deliver votes but not yet the appends of the empty entry.
        c.filter = { $0.type != .append }
        c.settle()
        XCTAssertEqual(c[1].role, .leader)
        XCTAssertEqual(c[1].commitIndex, 0)
        try! c[1].readIndex(requestID: 7)
        c.settle()
        XCTAssertTrue(c.readStates[1, default: []].isEmpty, "no read before an entry of this term commits")
        c.filter = { _ in true }
        c.tickAll(1)
        c.settle()
        XCTAssertEqual(c.readStates[1], [ReadState(index: 1, requestID: 7)])
        // After commit: a read is released only once a quorum answered the round.
        c.cut = [[2, 1], [3, 1]]
        try! c[1].readIndex(requestID: 8)
        c.settle()
        XCTAssertEqual(c.readStates[1]!.count, 1, "no quorum, no read")
        c.cut = [[3, 1]]
        c.tickAll(1)
        XCTAssertEqual(c.readStates[1]!.last, ReadState(index: 1, requestID: 8))
    }

    func testReadsOfOneTurnShareOneHeartbeatRound() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.tickAll(1)
        let before = c.delivered.filter { $0.type == .heartbeat }.count
        for id in UInt64(1)...50 { try! c[1].readIndex(requestID: id) }
        c.settle()
        XCTAssertEqual(c.readStates[1]!.map(\.requestID), Array(1...50))
        XCTAssertEqual(c.delivered.filter { $0.type == .heartbeat }.count - before, 2, "one round: one heartbeat per follower")
    }

    func testReadsAreDroppedWhenLeadershipIsLost() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.isolate(1)
        try! c[1].readIndex(requestID: 5)
        c.settle()
        for _ in 0..<20 { c.tick(1); c.settle() }   // check-quorum steps it down within two election timeouts
        XCTAssertEqual(c[1].role, .follower)
        XCTAssertEqual(c.droppedReads[1], [5])
        XCTAssertThrowsError(try c[1].readIndex(requestID: 6)) { XCTAssertEqual($0 as? RaftError, .notLeader(leader: noNode)) }
    }

    func testLeaseReadsAreServedWhileTheLeaseHoldsAndNotAfter() {
        let c = TestCluster([1, 2, 3], configure: { $0.readOnlyOption = .leaseBased })
        c.elect(1)
        c.tickAll(1)
        let beats = c.delivered.count
        try! c[1].readIndex(requestID: 1)
        c.settle()
        XCTAssertEqual(c.readStates[1], [ReadState(index: c[1].commitIndex, requestID: 1)])
        XCTAssertEqual(c.delivered.count, beats, "no heartbeat round was needed")
        c.isolate(1)
        for _ in 0..<9 { c.tick(1); c.settle() }   // past electionTick - leaseClockDriftTicks without contact
        try! c[1].readIndex(requestID: 2)
        c.settle()
        XCTAssertEqual(c.readStates[1]!.count, 1, "an expired lease falls back to a quorum round")
    }
}
