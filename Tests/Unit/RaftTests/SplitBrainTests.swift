@testable import Raft
import XCTest

/// Pre-vote, check-quorum, leader stickiness, and freeing stuck nodes.
final class SplitBrainTests: XCTestCase {
    /// A partitioned node that returns does not disrupt a stable leader: with pre-vote its term never grew.
    func testPreVoteKeepsAReturningNodeFromDisruptingTheLeader() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        let term = c[1].term
        c.isolate(3)
        c.tickAll(100)   // node 3 times out repeatedly, but only pre-votes
        XCTAssertEqual(c[3].term, term, "pre-vote kept node 3's term")
        XCTAssertEqual(c[1].role, .leader)
        c.heal()
        c.tickAll(20)
        XCTAssertEqual(c[1].role, .leader)
        XCTAssertEqual(c[1].term, term, "the leader was not disrupted")
        XCTAssertEqual(c[3].leader, 1)
    }

    /// Check-quorum: a leader that cannot hear a majority for an election timeout steps down.
    func testCheckQuorumLeaderStepsDown() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        c.tickAll(25)   // an established leader that has heard from everyone
        c.isolate(1)
        // Check-quorum runs every election timeout (10 ticks): the round in which contact was lost may still
        // count earlier answers, the next one cannot. So the leader is gone within two election timeouts.
        for _ in 0..<20 { c.tick(1); c.settle() }
        XCTAssertEqual(c[1].role, .follower, "the isolated leader stepped down")
        XCTAssertEqual(c[1].leader, noNode)
        XCTAssertThrowsError(try c[1].propose([1])) { XCTAssertEqual($0 as? RaftError, .notLeader(leader: noNode)) }
    }

    /// Leader stickiness: with check-quorum, a vote request within the minimum election timeout of hearing from
    /// the leader is ignored, so a node with a higher term cannot depose a healthy leader.
    func testVotesAreIgnoredWhileTheLeaderIsHeard() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        let term = c[1].term
        c[2].step(Message(type: .vote, to: 2, from: 3, term: term + 5, logTerm: c[3].lastTerm, index: c[3].lastIndex))
        XCTAssertEqual(c[2].term, term)
        XCTAssertEqual(c[2].vote, c[2].vote)
        XCTAssertTrue(c.process(2).isEmpty, "no answer at all")
    }

    /// Without pre-vote, an isolated node raises its term; when the partition heals, it gets stuck (its term is
    /// higher than the leader's, the leader's messages are stale to it). Its stale-term answer makes the leader
    /// step down, and a new election includes everyone again.
    func testStuckCandidateIsFreedAfterThePartitionHeals() {
        let c = TestCluster([1, 2, 3], configure: { $0.preVote = false })
        c.elect(1)
        try! c[1].propose([1])
        c.settle()
        c.isolate(3)
        c.tickAll(50)
        XCTAssertGreaterThan(c[3].term, c[1].term, "the isolated node campaigned and raised its term")
        XCTAssertEqual(c[3].role, .candidate)
        c.heal()
        c.tickAll(60)
        XCTAssertEqual(c.leaders.count, 1)
        let l = c.leaders[0]
        XCTAssertTrue(c.ids.allSatisfy { c[$0].term == c[l].term && c[$0].leader == l }, "everyone follows one leader again")
        try! c[l].propose([2])
        c.settle()
        c.tickAll(2)
        XCTAssertTrue(c.ids.allSatisfy { c.appliedData($0) == [[1], [2]] })
    }

    /// etcd #8243: a node with a lower term but an up-to-date log must still be able to win (pre-vote grants
    /// for a future term are answered with that term, and a lower term never blocks an election).
    func testLowerTermUpToDateNodeCanWin() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        try! c[1].propose([7])
        c.settle()
        c.tickAll(2)
        // Node 3 raises its term with a failed election while cut off (pre-vote disabled only for that moment).
        c.isolate(3)
        c[3].becomeCandidate()
        c[3].becomeCandidate()
        XCTAssertGreaterThan(c[3].term, c[1].term)
        // Now node 1 (lower term, same log) campaigns after the leader is gone.
        c.heal()
        c.isolate(2)
        c.cut.remove([1, 3]); c.cut.remove([3, 1])
        c[1].becomeFollower(term: c[1].term, leader: noNode)
        c.tickAll(100)
        XCTAssertEqual(c.leaders.count, 1, "a leader emerges among nodes 1 and 3")
        XCTAssertTrue([1, 3].contains(c.leaders[0]))
        XCTAssertEqual(c[1].term, c[3].term)
    }

    /// A pre-candidate that hears a rejection with a higher term steps down to that term.
    func testRejectedPreVoteWithHigherTermMakesPreCandidateFollow() {
        // A replica with a history (a blank one ignores the term of a pre-vote rejection: LostStateTests).
        let s = Solo(log: [Entry(term: 1, index: 1)], hardState: HardState(term: 1), configure: { _ in })
        s.node.campaign()
        XCTAssertEqual(s.node.role, .preCandidate)
        s.node.step(Message(type: .preVoteResponse, to: 1, from: 2, term: 4, reject: true))
        XCTAssertEqual(s.node.role, .follower)
        XCTAssertEqual(s.node.term, 4)
    }
}
