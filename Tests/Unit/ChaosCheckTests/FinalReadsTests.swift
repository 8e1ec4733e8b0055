@testable import ChaosCheck
import XCTest

/// The final-read checks: the reads taken after healing must be explained by the history (no lost acknowledged
/// write, no phantom value), both by `checkWithFinalReads` and by the real-time `lostWrites` list.
final class FinalReadsTests: XCTestCase {
    private func sequentialWrites() -> HistoryBuilder {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", 20, 30)   // acknowledged, never read during the run
        h.put(1, "j", "w1", 0, 10)
        return h
    }

    func testFinalReadOfTheLastAcknowledgedWriteIsOK() {
        let ops = sequentialWrites().operations
        let r = Linearizability.checkWithFinalReads(ops, finals: ["k": "v2", "j": "w1"])
        XCTAssertEqual(r.verdict, .ok, "\(r.failures.map(\.text))")
        XCTAssertEqual(HistoryChecks.lostWrites(ops, finals: ["k": "v2", "j": "w1"]), [])
    }

    func testFinalReadCatchesALostAcknowledgedWrite() throws {
        let ops = sequentialWrites().operations
        XCTAssertEqual(Linearizability.check(ops).verdict, .ok, "the history alone cannot see the loss")
        let finals: [String: String?] = ["k": "v1", "j": "w1"]
        let r = Linearizability.checkWithFinalReads(ops, finals: finals)
        XCTAssertEqual(r.verdict, .violation)
        XCTAssertEqual(r.keys["j"], .ok)
        let f = try XCTUnwrap(r.failure(forKey: "k"))
        XCTAssertTrue(f.reason.hasPrefix("lost or phantom write"), f.reason)
        XCTAssertTrue(f.failedOperation?.contains("final read") == true, f.text)

        let lost = HistoryChecks.lostWrites(ops, finals: finals)
        XCTAssertEqual(lost.map(\.value), ["v2"])
        XCTAssertEqual(lost.first?.finalValue, "v1")
    }

    func testFinalReadOfAbsentAfterAnAcknowledgedWriteIsALoss() {
        let ops = sequentialWrites().operations
        var finals: [String: String?] = ["j": "w1"]
        finals.updateValue(nil, forKey: "k")
        XCTAssertEqual(Linearizability.checkWithFinalReads(ops, finals: finals).keys["k"], .violation)
        XCTAssertEqual(HistoryChecks.lostWrites(ops, finals: finals).map(\.value), ["v1", "v2"])
    }

    func testFinalReadOfANeverWrittenValueIsAPhantom() throws {
        let ops = sequentialWrites().operations
        let finals: [String: String?] = ["k": "v2", "j": "ghost", "new": nil]
        let r = Linearizability.checkWithFinalReads(ops, finals: finals)
        XCTAssertEqual(r.keys["j"], .violation)
        XCTAssertEqual(r.keys["new"], .ok, "a key never written may end absent")
        let f = try XCTUnwrap(r.failure(forKey: "j"))
        XCTAssertTrue(f.reason.hasPrefix("lost or phantom write: read of a value never written"), f.reason)
        XCTAssertEqual(HistoryChecks.neverWrittenReads(ops, finals: finals).map(\.key), ["j"])
    }

    /// An unknown-outcome write may or may not be the final value.
    func testFinalReadWithAnInfoWriteEitherWayIsOK() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", .info, 20, 30)
        let ops = h.operations
        for final in ["v1", "v2"] {
            XCTAssertEqual(Linearizability.checkWithFinalReads(ops, finals: ["k": final]).verdict, .ok, final)
            XCTAssertEqual(HistoryChecks.lostWrites(ops, finals: ["k": final]), [], final)
        }
    }

    /// A write concurrent with the final value's writer may have been overwritten by it: not lost.
    func testConcurrentWriteOverwrittenByTheFinalValueIsNotLost() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 30)
        h.put(2, "k", "v2", 10, 20)
        let ops = h.operations
        XCTAssertEqual(Linearizability.checkWithFinalReads(ops, finals: ["k": "v1"]).verdict, .ok)
        XCTAssertEqual(HistoryChecks.lostWrites(ops, finals: ["k": "v1"]), [])
    }

    /// A loss only the reads reveal: v2 was read after v1's write completed, so v2 came last, yet the key ends v1.
    func testLossRevealedByReadsIsCaughtByTheFinalReadCheckOnly() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 30)
        h.put(2, "k", "v2", 10, 20)
        h.get(3, "k", "v2", 40, 50)
        let ops = h.operations
        XCTAssertEqual(Linearizability.check(ops).verdict, .ok)
        XCTAssertEqual(Linearizability.checkWithFinalReads(ops, finals: ["k": "v1"]).verdict, .violation)
        XCTAssertEqual(HistoryChecks.lostWrites(ops, finals: ["k": "v1"]), [], "not a definite real-time loss")
    }

    func testFinalReadsComeAfterEverything() {
        let ops = sequentialWrites().operations
        let finals = Linearizability.finalReadOperations(after: ops, finals: ["k": "v2", "j": nil])
        XCTAssertEqual(finals.map(\.key), ["j", "k"])
        let end = ops.compactMap(\.completionTime).max()!
        XCTAssertTrue(finals.allSatisfy { $0.invokeTime > end && $0.outcome == .ok && $0.f == .get })
        XCTAssertLessThan(finals[0].completionTime!, finals[1].invokeTime)
        XCTAssertEqual(Set(finals.map(\.process)).count, 1)
        XCTAssertFalse(ops.contains { $0.process == finals[0].process })
    }
}
