import ClusterMap
@testable import NodeCore
import Raft
import XCTest

/// `NodeCore.nextStep`: the one membership change a group's leader makes next to bring its Raft configuration
/// to the cluster map's placement — pure, so every case is a value in, a step out.
final class MembershipStepTests: XCTestCase {
    typealias Placement = ClusterMap.ShardPlacement

    private func step(_ p: Placement, _ conf: ConfState, me: NodeID = 1, commit: LogIndex = 1000,
                      unreachable: Set<NodeID> = [], matches: [NodeID: LogIndex]) -> NodeCore.MembershipStep? {
        NodeCore.nextStep(placement: p, conf: conf, me: me, commit: commit, reachable: { !unreachable.contains($0) }) { n in
            matches[n].map { ($0, false) }
        }
    }

    func testAMoveGoesLearnerThenPromotionThenVoterThenTheSourceLeaves() {
        var p = Placement(voters: [1, 2, 3], learners: [4], move: .init(from: 3, to: 4))
        let all: [NodeID: LogIndex] = [1: 1000, 2: 1000, 3: 1000]
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3]), matches: all), .change(.addLearner(4)))
        XCTAssertNil(step(p, ConfState(voters: [1, 2, 3], learners: [4]), matches: all.merging([4: 10]) { $1 }), "not caught up yet")
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3], learners: [4]), matches: all.merging([4: 990]) { $1 }),
                       .tellMap(.promoteMove(shard: -1)), "caught up: the map promotes it")
        p = Placement(voters: [1, 2, 3, 4], move: .init(from: 3, to: 4, phase: .promoted))
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3], learners: [4]), matches: all.merging([4: 990]) { $1 }), .change(.addVoter(4)))
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3, 4]), matches: all.merging([4: 990]) { $1 }), .change(.remove(3)))
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 4]), matches: all.merging([4: 990]) { $1 }), .tellMap(.finishMove(shard: -1)))
    }

    /// A caught-up target is not promoted in the map while a voter other than the move's source cannot be
    /// reached (Raft could not make it a voter; the move must stay one that can be rolled back for that voter's
    /// repair); an unreachable source does not hold it back (a dead machine being replaced).
    func testNoPromotionInTheMapWhileAnotherVoterIsUnreachable() {
        let p = Placement(voters: [1, 2, 3], learners: [4], move: .init(from: 3, to: 4))
        let conf = ConfState(voters: [1, 2, 3], learners: [4])
        let all: [NodeID: LogIndex] = [1: 1000, 2: 1000, 3: 1000, 4: 995]
        XCTAssertNil(step(p, conf, unreachable: [2], matches: all), "voter 2 is unreachable")
        XCTAssertEqual(step(p, conf, unreachable: [3], matches: all), .tellMap(.promoteMove(shard: -1)), "only the source is")
        XCTAssertEqual(step(p, conf, matches: all), .tellMap(.promoteMove(shard: -1)))
    }

    /// A promoted move's target that fell behind again holds the source's removal back: the group keeps three
    /// voters until the new one votes.
    func testAPromotedTargetBehindHoldsTheSourceBack() {
        let p = Placement(voters: [1, 2, 3, 4], move: .init(from: 3, to: 4, phase: .promoted))
        XCTAssertNil(step(p, ConfState(voters: [1, 2, 3], learners: [4]), matches: [1: 1000, 2: 1000, 3: 1000, 4: 5]))
    }

    /// A learner that is no move's target and never catches up (a machine that never came up, now draining)
    /// does not hold back the next machine joining, nor the departure of nodes the map dropped.
    func testALearnerThatNeverCaughtUpHoldsNothingBack() {
        let p = Placement(voters: [1, 2, 3, 4, 5])
        let conf = ConfState(voters: [1, 2, 3], learners: [4])
        XCTAssertEqual(step(p, conf, matches: [1: 1000, 2: 1000, 3: 1000]), .change(.addLearner(5)))
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3], learners: [4, 5]), matches: [1: 1000, 2: 1000, 3: 1000, 5: 999]),
                       .change(.addVoter(5)))
        let dropped = Placement(voters: [1, 2, 5])
        XCTAssertEqual(step(dropped, ConfState(voters: [1, 2, 3, 5], learners: [4]), matches: [1: 1000, 2: 1000, 5: 999]),
                       .change(.remove(3)))
        XCTAssertEqual(step(dropped, ConfState(voters: [1, 2, 5], learners: [4]), matches: [1: 1000, 2: 1000, 5: 999]),
                       .change(.remove(4)))
    }

    /// No learner becomes a voter while a voter cannot be reached (a drain while another node is dead): four
    /// voters with two dead — the dead one and the newcomer, should it die too — would stall the group for good.
    func testNoPromotionWhileAVoterIsUnreachable() {
        let p = Placement(voters: [1, 2, 3, 4], move: .init(from: 3, to: 4, phase: .promoted))
        let conf = ConfState(voters: [1, 2, 3], learners: [4])
        let matches: [NodeID: LogIndex] = [1: 1000, 2: 1000, 3: 1000, 4: 990]
        XCTAssertEqual(step(p, conf, matches: matches), .change(.addVoter(4)))
        XCTAssertNil(step(p, conf, unreachable: [2], matches: matches), "node 2 unreachable: node 4 stays a learner")
    }

    /// An unreachable source of a promoted move (a dead machine being replaced) leaves before its replacement
    /// votes; a leader that is itself leaving hands its leadership to a caught-up voter first.
    func testADeadSourceLeavesFirstAndALeavingLeaderHandsOver() {
        let p = Placement(voters: [1, 2, 3, 4], move: .init(from: 3, to: 4, phase: .promoted))
        XCTAssertEqual(step(p, ConfState(voters: [1, 2, 3], learners: [4]), unreachable: [3], matches: [1: 1000, 2: 1000, 4: 990]),
                       .change(.remove(3)))
        // Not while the voters left could not commit it: with node 2 unreachable too, {1, 2} would need node 2 —
        // and once applied (on append) the removal shuts out node 3, which could have formed a quorum again.
        XCTAssertNil(step(p, ConfState(voters: [1, 2, 3], learners: [4]), unreachable: [2, 3], matches: [1: 1000, 4: 990]),
                     "nodes 2 and 3 unreachable: nothing changes until one is back")
        // Nor while one of them abstains (a node back with a wiped disk, not yet caught up).
        let abstaining = NodeCore.nextStep(placement: p, conf: ConfState(voters: [1, 2, 3], learners: [4]), me: 1, commit: 1000,
                                           reachable: { $0 != 3 }) { n in n == 2 ? (0, true) : [1: 1000, 4: 990][n].map { ($0, false) } }
        XCTAssertNil(abstaining, "node 2 abstains: the removal of node 3 waits")
        let leaving = Placement(voters: [1, 2, 3, 4], move: .init(from: 1, to: 4, phase: .promoted))
        XCTAssertEqual(step(leaving, ConfState(voters: [1, 2, 3, 4]), matches: [1: 1000, 2: 1000, 3: 900, 4: 990]),
                       .transferLeadership(to: 2))
    }
}
