@testable import Raft
import XCTest

/// Messages a hostile or broken peer may send: terms and indexes at or near 2⁶⁴−1, appends whose entries do not
/// follow their index, snapshots without voters. Each is refused — counted, no trap, no state change.
final class HostileMessageTests: XCTestCase {
    /// A replica in each role, at term 1 (the leader of a 3-voter group, a candidate, a follower of node 2).
    private func replica(as role: RaftRole) -> Solo {
        let s = Solo()
        switch role {
        case .leader:
            s.node.campaign()
            s.drain()
            s.node.step(Message(type: .voteResponse, to: 1, from: 2, term: 1))
            s.drain()
        case .candidate:
            s.node.campaign()
            s.drain()
        default:
            s.node.step(Message(type: .heartbeat, to: 1, from: 2, term: 1))
            s.drain()
        }
        XCTAssertEqual(s.node.role, role)
        XCTAssertEqual(s.node.term, 1)
        return s
    }

    func testHeartbeatWithMaxTermIsRefusedInEveryRole() {
        for role in [RaftRole.follower, .candidate, .leader] {
            for term in [UInt64.max, UInt64.max - 1, RaftBounds.maxTerm + 1] {
                let s = replica(as: role)
                let before = s.node.hardState
                let why = s.node.step(Message(type: .heartbeat, to: 1, from: 3, term: term, commit: 0))
                XCTAssertEqual(why, .termTooLarge, "\(role) \(term)")
                XCTAssertEqual(s.node.hardState, before, "\(role)")
                XCTAssertEqual(s.node.role, role)
                XCTAssertEqual(s.node.rejectedMessages[.termTooLarge], 1)
                // The replica keeps working: ticks through an election timeout without trapping.
                for _ in 0..<50 { s.node.tick(); s.drain() }
            }
        }
    }

    func testEveryMessageTypeWithMaxTermIsRefused() {
        for type in MessageType.allCases {
            let s = replica(as: .follower)
            var m = Message(type: type, to: 1, from: 2, term: .max)
            if type == .snapshot { m.snapshot = Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, confState: ConfState(voters: [1, 2, 3]))) }
            XCTAssertEqual(s.node.step(m), .termTooLarge, "\(type)")
            XCTAssertEqual(s.node.term, 1, "\(type)")
            XCTAssertEqual(s.node.role, .follower, "\(type)")
        }
    }

    /// A term exactly at the bound is accepted, and from there the replica never campaigns (`term + 1` is the
    /// one step that would have trapped at 2⁶⁴−1).
    func testTermAtTheBoundIsAcceptedButNeverCampaignedFrom() {
        let s = replica(as: .follower)
        XCTAssertNil(s.node.step(Message(type: .heartbeat, to: 1, from: 2, term: RaftBounds.maxTerm)))
        XCTAssertEqual(s.node.term, RaftBounds.maxTerm)
        for _ in 0..<100 { s.node.tick(); s.drain() }
        XCTAssertEqual(s.node.term, RaftBounds.maxTerm)
        XCTAssertEqual(s.node.role, .follower)
    }

    func testAppendWithAbsurdIndexesIsRefused() {
        let cases: [(Message, MessageRejection)] = [
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 1, index: .max, entries: [Entry(term: 1, index: 0)]), .indexTooLarge),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: .max - 1, entries: [Entry(term: 1, index: .max)]), .indexTooLarge),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, commit: .max), .indexTooLarge),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: .max, index: 0), .indexTooLarge),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 2, index: 0), .indexTooLarge),
            // Entries that do not follow index, skip one, go back in term, or are of a later term than the message.
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, entries: [Entry(term: 1, index: 5)]), .malformedEntries),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, entries: [Entry(term: 1, index: 1), Entry(term: 1, index: 3)]), .malformedEntries),
            (Message(type: .append, to: 1, from: 2, term: 2, logTerm: 0, index: 0, entries: [Entry(term: 2, index: 1), Entry(term: 1, index: 2)]), .malformedEntries),
            (Message(type: .append, to: 1, from: 2, term: 1, logTerm: 0, index: 0, entries: [Entry(term: 3, index: 1)]), .malformedEntries),
            (Message(type: .heartbeat, to: 1, from: 2, term: 1, entries: [Entry(term: 1, index: 1)]), .malformedEntries),
            (Message(type: .heartbeat, to: 1, from: 2, term: 1, commit: RaftBounds.maxIndex + 1), .indexTooLarge),
        ]
        for (m, expected) in cases {
            let s = replica(as: .follower)
            let before = (s.node.hardState, s.node.lastIndex)
            XCTAssertEqual(s.node.step(m), expected, "\(m)")
            XCTAssertEqual(s.node.hardState, before.0, "\(m)")
            XCTAssertEqual(s.node.lastIndex, before.1, "\(m)")
            XCTAssertTrue(s.drain().messages.isEmpty, "a refused message is not answered")
        }
    }

    func testMalformedSnapshotsAreRefused() {
        let voters = ConfState(voters: [1, 2, 3])
        let snaps: [Snapshot?] = [
            nil,
            Snapshot(metadata: SnapshotMetadata(index: .max, term: 1, confState: voters)),
            Snapshot(metadata: SnapshotMetadata(index: 0, term: 1, confState: voters)),
            Snapshot(metadata: SnapshotMetadata(index: 5, term: 2, confState: voters)),     // later than the message
            Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, confState: ConfState())), // nobody votes
        ]
        for snap in snaps {
            let s = replica(as: .follower)
            XCTAssertEqual(s.node.step(Message(type: .snapshot, to: 1, from: 2, term: 1, snapshot: snap)), .malformedSnapshot)
            XCTAssertEqual(s.node.lastIndex, 0)
            XCTAssertNil(s.node.pendingSnapshot)
        }
    }

    /// At the leader: acknowledgements and rejections past its log (the follower's +1 on `index` or on the
    /// hint would otherwise trap, or a match beyond the log would be believed).
    func testResponsesBeyondTheLeadersLogAreRefused() {
        let s = replica(as: .leader)
        let last = s.node.lastIndex
        let cases: [(Message, MessageRejection)] = [
            (Message(type: .appendResponse, to: 1, from: 2, term: 1, index: .max), .indexTooLarge),
            (Message(type: .appendResponse, to: 1, from: 2, term: 1, index: last + 1), .beyondLog),
            (Message(type: .appendResponse, to: 1, from: 2, term: 1, index: last, reject: true, rejectHint: last + 7), .beyondLog),
            (Message(type: .appendResponse, to: 1, from: 2, term: 1, logTerm: 1, index: .max, reject: true, rejectHint: .max), .indexTooLarge),
        ]
        for (m, expected) in cases {
            XCTAssertEqual(s.node.step(m), expected, "\(m)")
            XCTAssertEqual(s.node.progressState(of: 2)?.match, 0)
            XCTAssertEqual(s.node.commitIndex, 0)
        }
        XCTAssertEqual(s.node.role, .leader)
        // A true acknowledgement still counts.
        XCTAssertNil(s.node.step(Message(type: .appendResponse, to: 1, from: 2, term: 1, index: last)))
        s.drain()
        XCTAssertEqual(s.node.progressState(of: 2)?.match, last)
        XCTAssertEqual(s.node.commitIndex, last)
    }

    /// Valid messages of every kind in a real group are never refused (the guard costs no liveness).
    func testAnHonestGroupRefusesNothing() {
        let c = TestCluster([1, 2, 3])
        c.elect(1)
        for i in 0..<50 { _ = try? c[1].propose([UInt8(i)]) ; c.settle() }
        c.tickAll(30)
        c.isolate(3)
        for i in 0..<20 { _ = try? c[1].propose([UInt8(i)]); c.settle() }
        c.heal()
        c.tickAll(30)
        for id: NodeID in [1, 2, 3] { XCTAssertTrue(c[id].rejectedMessages.isEmpty, "\(id): \(c[id].rejectedMessages)") }
        XCTAssertEqual(c.appliedData(3).count, 70)
    }
}
