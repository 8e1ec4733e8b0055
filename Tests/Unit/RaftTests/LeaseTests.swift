@testable import Raft
import XCTest

/// Lease reads (thesis §6.4.1): the lease runs from when the leader *sent* the round a quorum acknowledged.
final class LeaseTests: XCTestCase {
    /// A three-voter leader with lease reads that has committed its first entry, driven by hand.
    private func leaseLeader() -> Solo {
        let s = Solo(configure: { $0.preVote = false; $0.readOnlyOption = .leaseBased })
        s.node.campaign()
        s.drain()
        s.node.step(Message(type: .voteResponse, to: 1, from: 2, term: 1))
        XCTAssertEqual(s.node.role, .leader)
        for m in s.messages() where m.type == .append {
            s.node.step(Message(type: .appendResponse, to: 1, from: m.to, term: 1, index: m.index + LogIndex(m.entries.count)))
        }
        s.drain()
        XCTAssertEqual(s.node.commitIndex, 1)
        return s
    }

    /// Ticks the leader once; returns the heartbeats it sent.
    private func tick(_ s: Solo) -> [Message] {
        s.node.tick()
        return s.messages().filter { $0.type == .heartbeat }
    }

    private func answer(_ s: Solo, _ beats: [Message]) {
        for hb in beats {
            s.node.step(Message(type: .heartbeatResponse, to: 1, from: hb.to, term: hb.term, context: hb.context))
        }
    }

    /// Whether a read is answered at once (by the lease) rather than waiting for a quorum round.
    private func servedByLease(_ s: Solo, _ id: UInt64) -> Bool {
        try! s.node.readIndex(requestID: id)
        return s.drain().readStates.map(\.requestID) == [id]
    }

    /// Acknowledgements that arrive later than the lease margin (a slow fsync or a slow link on the way back)
    /// must not extend the lease from their arrival: the follower started its election timeout when it *received*
    /// the heartbeat, so it may vote for someone else one election timeout after that, however late its answer.
    func testLateAcknowledgementsDoNotExtendTheLeaseBeyondTheirRoundsSendTime() {
        let s = leaseLeader()
        for _ in 0..<3 { answer(s, tick(s)) }          // steady state: every round answered at once
        let held = tick(s)                              // round sent at tick S = 4
        XCTAssertEqual(held.count, 2)
        XCTAssertEqual(s.node.tickCount, 4)
        for _ in 0..<5 { _ = tick(s) }                  // 5 ticks (> leaseClockDriftTicks = 2) with no answers
        answer(s, held)                                 // the answers to round S finally arrive, at tick 9
        XCTAssertEqual(s.node.role, .leader)
        XCTAssertTrue(servedByLease(s, 1), "tick 9 < S + electionTick - drift = 12: the lease holds")
        for _ in 0..<4 { _ = tick(s) }                  // tick 13: past S + 8, though only 4 ticks after the answers
        XCTAssertEqual(s.node.role, .leader)
        // The followers heard round S at tick 4 and may vote elsewhere from tick 14 on; dated from the answers'
        // arrival the lease would last until tick 17.
        try! s.node.readIndex(requestID: 2)
        let rd = s.drain()
        XCTAssertTrue(rd.readStates.isEmpty, "the lease is dated from the round's send time, not the answers' arrival")
        // The read waits for a quorum round instead, and is released once one answers it.
        let beats = rd.messages.filter { $0.type == .heartbeat }
        XCTAssertEqual(beats.count, 2)
        answer(s, beats)
        XCTAssertEqual(s.drain().readStates.map(\.requestID), [2])
        XCTAssertTrue(servedByLease(s, 3), "a promptly answered round renews the lease")
    }

    /// Answers echoing no round, or a round this leader never sent, confirm nothing: no lease, no ReadIndex read.
    func testAnswersToRoundsNeverSentConfirmNothing() {
        let s = leaseLeader()
        s.node.step(Message(type: .heartbeatResponse, to: 1, from: 2, term: 1, context: 999))
        s.node.step(Message(type: .heartbeatResponse, to: 1, from: 3, term: 1, context: 0))
        XCTAssertFalse(servedByLease(s, 1))
    }
}
