@testable import Raft
import XCTest

/// Raft paper §5.1–5.2 and §5.4.1: terms, roles, elections, votes.
final class ElectionTests: XCTestCase {
    func testStartsAsFollower() {
        let s = Solo()
        XCTAssertEqual(s.node.role, .follower)
        XCTAssertEqual(s.node.term, 0)
        XCTAssertEqual(s.node.leader, noNode)
    }

    /// §5.1: any message with a higher term makes the receiver adopt it and become a follower.
    func testTermUpdateFromAnyMessageWithAHigherTerm() {
        let types: [MessageType] = [.append, .appendResponse, .vote, .voteResponse, .heartbeat, .heartbeatResponse, .snapshot, .timeoutNow]
        for type in types {
            for startAs in ["follower", "candidate", "leader"] {
                // A replica with a log entry: a blank one would abstain after hearing of a history (LostStateTests).
                let s = Solo(log: [Entry(term: 1, index: 1)], hardState: HardState(term: 1))
                switch startAs {
                case "candidate": s.node.campaign()
                case "leader":
                    s.node.campaign()
                    s.drain()
                    s.node.step(Message(type: .voteResponse, to: 1, from: 2, term: s.node.term))
                    XCTAssertEqual(s.node.role, .leader)
                default: break
                }
                var m = Message(type: type, to: 1, from: 2, term: 5)
                if type == .snapshot { m.snapshot = Snapshot(metadata: SnapshotMetadata(index: 10, term: 4, confState: ConfState(voters: [1, 2, 3])), data: []) }
                s.node.step(m)
                if type == .timeoutNow {
                    // Adopts term 5, then (as a follower told to take over) campaigns at once: term 6.
                    XCTAssertEqual(s.node.term, 6, "\(type) to a \(startAs)")
                    XCTAssertEqual(s.node.role, .candidate, "\(type) to a \(startAs)")
                    continue
                }
                XCTAssertEqual(s.node.term, 5, "\(type) to a \(startAs)")
                XCTAssertEqual(s.node.role, .follower, "\(type) to a \(startAs)")
                let expectedLeader: NodeID = [.append, .heartbeat, .snapshot].contains(type) ? 2 : noNode
                XCTAssertEqual(s.node.leader, expectedLeader, "\(type) to a \(startAs)")
            }
        }
    }

    /// A pre-vote request never changes the receiver's term (it asks about a future term).
    func testPreVoteDoesNotChangeTheReceiversTerm() {
        let s = Solo(configure: { _ in })
        s.node.step(Message(type: .preVote, to: 1, from: 2, term: 9, logTerm: 0, index: 0))
        XCTAssertEqual(s.node.term, 0)
        let out = s.messages()
        XCTAssertEqual(out.map(\.type), [.preVoteResponse])
        XCTAssertFalse(out[0].reject)
        XCTAssertEqual(out[0].term, 9, "a granted pre-vote carries the future term")
    }

    /// §5.1: a message with a stale term is rejected: nothing changes, and the sender learns the current term.
    func testStaleTermMessagesAreRejected() {
        let s = Solo(log: log([1, 2]), hardState: HardState(term: 3))
        XCTAssertEqual(s.node.term, 3)
        s.node.step(Message(type: .append, to: 1, from: 2, term: 2, logTerm: 2, index: 2, entries: [Entry(term: 2, index: 3)], commit: 3))
        XCTAssertEqual(s.node.lastIndex, 2, "entries from a stale leader are not taken")
        XCTAssertEqual(s.node.commitIndex, 0)
        XCTAssertEqual(s.node.leader, noNode)
        s.node.step(Message(type: .vote, to: 1, from: 3, term: 2, logTerm: 5, index: 9))
        XCTAssertEqual(s.node.vote, noNode, "no vote for a stale candidate")
        XCTAssertTrue(s.messages().isEmpty, "classic Raft ignores stale messages")
        // With check-quorum or pre-vote the stale leader is told the current term so it can step down.
        let s2 = Solo(log: log([1, 2]), hardState: HardState(term: 3), configure: { _ in })
        s2.node.step(Message(type: .heartbeat, to: 1, from: 2, term: 2))
        let out = s2.messages()
        XCTAssertEqual(out.map(\.type), [.appendResponse])
        XCTAssertEqual(out.first?.term, 3)
    }

    /// The leader sends a heartbeat to every follower each heartbeatTick.
    func testLeaderSendsHeartbeatsEveryHeartbeatTick() {
        let c = TestCluster([1, 2, 3], configure: { $0.heartbeatTick = 2; classic(&$0) })
        c.elect(1)
        XCTAssertEqual(c[1].role, .leader)
        _ = c.process(1)
        c.tick(1)
        XCTAssertTrue(c.process(1).filter { $0.type == .heartbeat }.isEmpty, "not yet")
        c.tick(1)
        let hb = c.process(1).filter { $0.type == .heartbeat }
        XCTAssertEqual(Set(hb.map(\.to)), [2, 3])
    }

    /// §5.2: a follower that hears nothing for its randomized election timeout becomes a candidate, votes for
    /// itself and asks every other voter.
    func testFollowerStartsAnElectionAfterItsTimeout() {
        let s = Solo()
        let timeout = s.node.randomizedElectionTimeout
        for _ in 0..<(timeout - 1) { s.node.tick() }
        XCTAssertEqual(s.node.role, .follower)
        s.node.tick()
        XCTAssertEqual(s.node.role, .candidate)
        XCTAssertEqual(s.node.term, 1)
        XCTAssertEqual(s.node.vote, 1)
        let rd = s.drain()
        XCTAssertEqual(rd.hardState?.vote, 1, "the self-vote is persisted in the same Ready as the requests")
        XCTAssertEqual(Set(rd.messages.filter { $0.type == .vote }.map(\.to)), [2, 3])
    }

    /// §5.2: a candidate that neither wins nor loses starts a new election (new term) when its timeout fires.
    func testCandidateRestartsElectionOnTimeout() {
        let s = Solo()
        s.node.campaign()
        XCTAssertEqual(s.node.term, 1)
        for _ in 0..<(2 * 10) { s.node.tick() }
        XCTAssertEqual(s.node.role, .candidate)
        XCTAssertEqual(s.node.term, 2)
    }

    /// §5.2: a candidate that hears from a leader of its term returns to follower.
    func testCandidateFallsBackToFollowerOnAppendOfItsTerm() {
        let s = Solo()
        s.node.campaign()
        s.node.step(Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, commit: 0))
        XCTAssertEqual(s.node.role, .follower)
        XCTAssertEqual(s.node.leader, 2)
        XCTAssertEqual(s.node.term, 1)
    }

    /// §5.2: a majority of votes wins in one round; a minority does not; a majority of rejections loses.
    func testElectionInOneRound() {
        let cases: [(size: Int, grants: [NodeID], rejects: [NodeID], expected: RaftRole)] = [
            (3, [2], [], .leader), (3, [], [2, 3], .follower), (3, [], [2], .candidate),
            (5, [2, 3], [], .leader), (5, [2], [], .candidate), (5, [], [2, 3, 4], .follower), (5, [2], [3, 4], .candidate),
            (1, [], [], .leader),
        ]
        for tc in cases {
            let voters = (1...UInt64(tc.size)).map { $0 }
            let s = Solo(voters: voters)
            s.node.campaign()
            for g in tc.grants { s.node.step(Message(type: .voteResponse, to: 1, from: g, term: 1)) }
            for r in tc.rejects { s.node.step(Message(type: .voteResponse, to: 1, from: r, term: 1, reject: true)) }
            XCTAssertEqual(s.node.role, tc.expected, "\(tc)")
        }
    }

    /// §5.2: at most one vote per term, first come first served; the same candidate may ask again.
    func testOneVotePerTerm() {
        let s = Solo()
        s.node.step(Message(type: .vote, to: 1, from: 2, term: 1, logTerm: 0, index: 0))
        XCTAssertEqual(s.node.vote, 2)
        s.node.step(Message(type: .vote, to: 1, from: 3, term: 1, logTerm: 0, index: 0))
        s.node.step(Message(type: .vote, to: 1, from: 2, term: 1, logTerm: 0, index: 0))
        let out = s.drain()
        XCTAssertEqual(out.hardState?.vote, 2)
        let responses = out.messages.filter { $0.type == .voteResponse }
        XCTAssertEqual(responses.map(\.to), [2, 3, 2])
        XCTAssertEqual(responses.map(\.reject), [false, true, false])
    }

    /// §5.4.1: a vote is granted only to a candidate whose log is at least as up to date.
    func testVoteRequiresAnUpToDateLog() {
        // Our log ends at (index 3, term 2).
        let cases: [(lastIndex: LogIndex, lastTerm: Term, grant: Bool)] = [
            (3, 2, true), (4, 2, true), (2, 2, false), (1, 3, true), (5, 1, false), (3, 1, false),
        ]
        for tc in cases {
            let s = Solo(log: log([1, 2, 2]), hardState: HardState(term: 2))
            s.node.step(Message(type: .vote, to: 1, from: 2, term: 3, logTerm: tc.lastTerm, index: tc.lastIndex))
            let r = s.messages().first { $0.type == .voteResponse }
            XCTAssertEqual(r?.reject, !tc.grant, "\(tc)")
        }
    }

    /// Persist before send: a granted vote leaves in the same Ready whose hard state records it.
    func testGrantedVoteIsPersistedInTheSameReady() {
        let s = Solo()
        s.node.step(Message(type: .vote, to: 1, from: 3, term: 4, logTerm: 0, index: 0))
        let rd = s.drain()
        XCTAssertEqual(rd.hardState, HardState(term: 4, vote: 3, commit: 0))
        XCTAssertTrue(rd.mustSync)
        XCTAssertEqual(rd.messages.map(\.type), [.voteResponse])
    }

    /// §5.2: randomized timeouts are in [electionTick, 2·electionTick) and spread out across replicas.
    func testRandomizedElectionTimeoutsAreInRangeAndDiffer() {
        var seen = Set<Int>()
        for id in UInt64(1)...30 {
            var c = RaftConfig(id: id, seed: 42)
            c.electionTick = 10
            let n = RaftNode(config: c, storage: MemoryStorage(confState: ConfState(voters: [id])))
            for _ in 0..<5 {
                XCTAssertTrue((10..<20).contains(n.randomizedElectionTimeout))
                seen.insert(n.randomizedElectionTimeout)
                n.becomeFollower(term: n.term + 1, leader: noNode)
            }
        }
        XCTAssertGreaterThanOrEqual(seen.count, 8, "timeouts are spread over the range")
    }

    /// Election safety end to end: with non-conflicting timeouts a group of 5 elects exactly one leader.
    func testGroupElectsExactlyOneLeader() {
        for seed in UInt64(1)...20 {
            let c = TestCluster([1, 2, 3, 4, 5], seed: seed)
            c.tickAll(60)
            XCTAssertEqual(c.leaders.count, 1, "seed \(seed)")
            let l = c.leaders[0]
            XCTAssertTrue(c.ids.allSatisfy { c[$0].leader == l && c[$0].term == c[l].term }, "seed \(seed)")
        }
    }
}
