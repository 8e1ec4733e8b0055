@testable import Shard
import XCTest

final class ShardSnapshotTests: XCTestCase {
    let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2), c = ConceptID(hi: 3, lo: 3)

    func populated(order: [Int] = [0, 1, 2]) -> ShardState {
        let s = ShardState(limits: ShardLimits(dimension: 2))
        let puts: [ShardCommand] = [
            .putConcept(Concept(id: a, content: Array("alpha".utf8), embedding: [0.25, -1], strength: 0.5, confidence: 0.75)),
            .putConcept(Concept(id: b, content: [], embedding: nil, strength: 1, confidence: 1)),
            .putConcept(Concept(id: c, content: [0, 255], embedding: [1, 2], strength: 0, confidence: 0)),
        ]
        var index: UInt64 = 1
        for k in order { s.apply(ShardRequest(clientID: 0, sequence: 0, command: puts[k]), at: index); index += 1 }
        s.apply(ShardRequest(clientID: 9, sequence: 4, command: .putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 0.5))), at: 10)
        s.apply(ShardRequest(clientID: 8, sequence: 1, command: .putEdge(.incoming, owner: c, Edge(other: a, type: .temporal, confidence: 1))), at: 11)
        s.apply(ShardRequest(clientID: 7, sequence: 2, command: .deleteConcept(ConceptID(hi: 9, lo: 9))), at: 12)
        return s
    }

    func testRoundTripRestoresStateAndSessions() throws {
        let s = populated()
        let r = try ShardState.restore(from: s.snapshotData(), limits: s.limits)
        XCTAssertEqual(r.concepts, s.concepts)
        XCTAssertEqual(r.lastApplied, 12)
        XCTAssertEqual(r.neighbors(of: a, direction: .outgoing), s.neighbors(of: a, direction: .outgoing))
        XCTAssertEqual(r.neighbors(of: c, direction: .incoming), s.neighbors(of: c, direction: .incoming))
        XCTAssertEqual(r.edgeCount, 2)
        // Sessions survive: a retry after restore gets the first answer and applies nothing.
        let retry = r.apply(ShardRequest(clientID: 9, sequence: 4, command: .deleteConcept(a)), at: 13)
        XCTAssertEqual(retry, .applied(version: 10))
        XCTAssertNotNil(r.concept(a))
        XCTAssertEqual(r.apply(ShardRequest(clientID: 7, sequence: 2, command: .deleteConcept(a)), at: 14), .rejected("concept \(ConceptID(hi: 9, lo: 9)) not found"))
        XCTAssertEqual(r.snapshotData(), try ShardState.restore(from: r.snapshotData(), limits: r.limits).snapshotData())
    }

    func testSameStateGivesIdenticalBytes() {
        // Same writes at the same indexes but inserted into the tables in another order.
        let x = populated(order: [0, 1, 2]).snapshotData()
        let y = populated(order: [0, 1, 2]).snapshotData()
        XCTAssertEqual(x, y)
        XCTAssertNotEqual(x, populated(order: [2, 1, 0]).snapshotData(), "different versions are different states")
    }

    func testCorruptionIsDetected() {
        let good = populated().snapshotData()
        for offset in stride(from: 12, to: good.count, by: 1) {
            var bad = good
            bad[offset] ^= 0x10
            XCTAssertThrowsError(try ShardState.restore(from: bad, limits: ShardLimits(dimension: 2)), "flip at \(offset)") { e in
                XCTAssertEqual(e as? ShardSnapshotError, .checksumMismatch, "flip at \(offset)")
            }
        }
        XCTAssertThrowsError(try ShardState.restore(from: Array(good.dropLast(7)), limits: ShardLimits(dimension: 2)))
        var v5 = good; v5[8] = 5
        XCTAssertThrowsError(try ShardState.restore(from: v5, limits: ShardLimits(dimension: 2))) { XCTAssertEqual($0 as? ShardSnapshotError, .unsupportedVersion(5)) }
        XCTAssertThrowsError(try ShardState.restore(from: good, limits: ShardLimits(dimension: 3))) {
            XCTAssertEqual($0 as? ShardSnapshotError, .invalid("snapshot dimension 2, cluster dimension 3"))
        }
        XCTAssertThrowsError(try ShardState.restore(from: Array("not a snapshot at all".utf8), limits: ShardLimits(dimension: 2))) {
            XCTAssertEqual($0 as? ShardSnapshotError, .notASnapshot)
        }
    }
}
