@testable import ChaosCheck
import XCTest

/// Pairing invokes with completions, and the tolerances for odd histories.
final class PairingTests: XCTestCase {
    private func e(_ p: Int, _ type: EventType, _ f: OpFunction, _ key: String, _ value: String?,
                   expected: String? = nil, _ t: Int64) -> HistoryEvent {
        HistoryEvent(process: p, type: type, f: f, key: key, value: value, expected: expected, time: t)
    }

    func testPairsInterleavedProcesses() {
        let paired = PairedHistory(events: [
            e(1, .invoke, .put, "a", "x", 1),
            e(2, .invoke, .get, "a", nil, 2),
            e(3, .invoke, .cas, "b", "y", expected: "q", 3),
            e(2, .ok, .get, "a", "x", 4),
            e(1, .ok, .put, "a", "x", 5),
            e(3, .fail, .cas, "b", "y", expected: "q", 6),
        ])
        XCTAssertEqual(paired.problems, [])
        XCTAssertEqual(paired.notes, [])
        XCTAssertEqual(paired.operations, [
            HistoryOperation(index: 0, process: 1, f: .put, key: "a", value: "x", expected: nil, invokeTime: 1,
                             completionTime: 5, outcome: .ok),
            HistoryOperation(index: 1, process: 2, f: .get, key: "a", value: "x", expected: nil, invokeTime: 2,
                             completionTime: 4, outcome: .ok),
            HistoryOperation(index: 2, process: 3, f: .cas, key: "b", value: "y", expected: "q", invokeTime: 3,
                             completionTime: 6, outcome: .fail),
        ])
    }

    func testInfoHasNoCompletionTimeAndOpenInvokesBecomeInfo() {
        let paired = PairedHistory(events: [
            e(1, .invoke, .put, "a", "x", 1),
            e(1, .info, .put, "a", "x", 5),
            e(2, .invoke, .put, "a", "y", 6),
        ])
        XCTAssertEqual(paired.operations.map(\.outcome), [.info, .info])
        XCTAssertEqual(paired.operations.map(\.completionTime), [nil, nil])
        XCTAssertEqual(paired.problems, [])
        XCTAssertEqual(paired.notes.count, 1)
        XCTAssertTrue(paired.notes[0].contains("no completion"), paired.notes[0])
    }

    /// A process that goes on after an info is tolerated as a fresh logical process.
    func testProcessReusedAfterInfoIsTolerated() {
        let paired = PairedHistory(events: [
            e(1, .invoke, .put, "a", "x", 1),
            e(1, .info, .put, "a", "x", 5),
            e(1, .invoke, .get, "a", nil, 6),
            e(1, .ok, .get, "a", "x", 7),
        ])
        XCTAssertEqual(paired.problems, [])
        XCTAssertEqual(paired.operations.map(\.outcome), [.info, .ok])
        XCTAssertTrue(paired.notes.contains { $0.contains("fresh logical processes") }, "\(paired.notes)")
        XCTAssertEqual(Linearizability.check(paired.operations).verdict, .ok)
    }

    func testMalformedPairingsAreProblems() {
        let paired = PairedHistory(events: [
            e(1, .ok, .put, "a", "x", 1),                 // no invoke
            e(2, .invoke, .put, "a", "y", 2),
            e(2, .invoke, .put, "a", "z", 3),             // previous still open
            e(2, .ok, .get, "a", "z", 4),                 // wrong f
        ])
        XCTAssertEqual(paired.problems.count, 3, "\(paired.problems)")
        XCTAssertEqual(paired.operations.map(\.outcome), [.info, .info])
        let report = HistoryChecker.check(paired)
        XCTAssertFalse(report.valid)
    }
}
