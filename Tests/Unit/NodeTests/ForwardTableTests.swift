@testable import NodeCore
import Raft
import XCTest

/// Forward replies are matched by (peer, incarnation, id): a previous process's reply, another peer's, or a late
/// one never completes another request.
final class ForwardTableTests: XCTestCase {
    func testOnlyTheExactPeerIncarnationAndIDMatch() {
        var old = ForwardTable(incarnation: 7)
        let oldID = old.nextForwardID()
        var table = ForwardTable(incarnation: 8)
        let id = table.nextForwardID()
        XCTAssertNotEqual(oldID, id, "ids start from the incarnation")
        var answered: [ForwardResult] = []
        table.register(id: id, peer: 2, stamp: 8, deadline: 10) { answered.append($0) }
        // The dead process (incarnation 7) asked node 2 something with the same id: its reply is not ours.
        XCTAssertNil(table.takeReply(from: 2, incarnation: 7, id: id))
        XCTAssertNil(table.takeReply(from: 3, incarnation: 8, id: id), "another peer's reply")
        XCTAssertNil(table.takeReply(from: 2, incarnation: 8, id: id + 1), "another id")
        XCTAssertEqual(table.unmatchedReplies, 3)
        XCTAssertEqual(table.count, 1)
        table.takeReply(from: 2, incarnation: 8, id: id)?(.ok(5))
        XCTAssertEqual(answered, [.ok(5)])
        XCTAssertNil(table.takeReply(from: 2, incarnation: 8, id: id), "a duplicate reply")
        XCTAssertEqual(table.unmatchedReplies, 4)
    }

    func testExpiryAndLinkLossTakeTheirForwardsOnce() {
        var table = ForwardTable(incarnation: 3)
        var failed: [NodeID] = []
        for (peer, deadline) in [(NodeID(2), UInt64(5)), (2, 50), (3, 5)] {
            table.register(id: table.nextForwardID(), peer: peer, stamp: 3, deadline: deadline) { _ in failed.append(peer) }
        }
        for f in table.expire(now: 5) { f.done(.failed(.unavailable("late"))) }
        XCTAssertEqual(failed.sorted(), [2, 3])
        for f in table.fail(peer: 2) { f.done(.failed(.unavailable("down"))) }
        XCTAssertEqual(failed.sorted(), [2, 2, 3])
        XCTAssertEqual(table.count, 0)
        XCTAssertTrue(table.expire(now: 1000).isEmpty)
    }
}
