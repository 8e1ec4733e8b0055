@testable import ChaosCheck
import Foundation
import XCTest

/// Summary counts and the machine-readable report.
final class ReportTests: XCTestCase {
    private func history() -> HistoryBuilder {
        var h = HistoryBuilder()
        h.put(1, "a", "a1", 0, 10)
        h.put(2, "a", "a2", .info, 5, 15)
        h.get(3, "a", "a1", 20, 30)
        h.cas(1, "b", nil, "b1", .ok, 0, 10)
        h.cas(2, "b", "zz", "b2", .fail, 20, 30)
        h.get(3, "b", nil, .fail, 20, 30)
        return h
    }

    func testSummaryCountsByFunctionAndOutcome() {
        let s = HistorySummary(history().operations)
        XCTAssertEqual(s.operations, 6)
        XCTAssertEqual(s.outcomes, OutcomeCounts(ok: 3, fail: 2, info: 1))
        XCTAssertEqual(s.byFunction["put"], OutcomeCounts(ok: 1, fail: 0, info: 1))
        XCTAssertEqual(s.byFunction["get"], OutcomeCounts(ok: 1, fail: 1, info: 0))
        XCTAssertEqual(s.byFunction["cas"], OutcomeCounts(ok: 1, fail: 1, info: 0))
        XCTAssertEqual(s.keys, 2)
        XCTAssertEqual(s.processes, 3)
        XCTAssertTrue(s.text.contains("6 operations on 2 keys by 3 processes"), s.text)
    }

    func testValidReportRoundTripsThroughJSON() throws {
        var finals: [String: String?] = ["a": "a2"]
        finals.updateValue("b1", forKey: "b")
        let report = HistoryChecker.check(events: history().events, finals: finals)
        XCTAssertTrue(report.valid, report.text)
        XCTAssertEqual(report.finalReads?.verdict, .ok)
        let json = try report.json()
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertTrue(text.contains(#""valid" : true"#), text)
        XCTAssertTrue(text.contains(#""total" : 6"#), text)
        XCTAssertEqual(try JSONDecoder().decode(CheckReport.self, from: json), report)
        print(report.text)
    }

    func testInvalidReportListsEveryFinding() throws {
        var h = history()
        h.get(4, "c", "ghost", 0, 10)       // never written
        h.put(4, "d", "d1", 20, 30)
        h.put(4, "d", "d2", 40, 50)
        h.get(5, "d", "d1", 60, 70)         // stale
        h.put(5, "e", "e1", 0, 10)
        let report = HistoryChecker.check(events: h.events, finals: ["a": "a1", "e": nil, "d": "d2"])
        XCTAssertFalse(report.valid)
        XCTAssertEqual(report.linearizability.verdict, .violation)
        XCTAssertEqual(report.linearizability.failures.map(\.key), ["c", "d"])
        XCTAssertEqual(report.neverWrittenReads.map(\.key), ["c"])
        XCTAssertEqual(report.lostWrites.map(\.key), ["e"])
        XCTAssertEqual(report.staleReads.map(\.key), ["d"])
        let finals = try XCTUnwrap(report.finalReads)
        XCTAssertEqual(finals.keys["e"], .violation)
        XCTAssertEqual(finals.keys["a"], .ok)
        XCTAssertEqual(finals.keys["d"], .unknown, "already failed; not searched again")
        let e = try XCTUnwrap(finals.failure(forKey: "e"))
        XCTAssertEqual(e.failedOperation, "final read of \"e\" → absent")
        XCTAssertEqual(e.lastLinearized, ["process 5: put \"e\" \"e1\" ok (invoked 0.000000000 s, completed 0.000000010 s)"])
        XCTAssertTrue(report.text.contains("lost or phantom write"), report.text)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chaoscheck-\(UUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try report.write(to: path)
        let back = try JSONDecoder().decode(CheckReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(back, report)
        XCTAssertFalse(back.valid)
        print(report.text)
    }

    func testUnknownIsNotValid() {
        let report = CheckReport(
            summary: HistorySummary([]),
            linearizability: LinearizabilityResult(verdict: .unknown, keys: ["k": .unknown], operationsChecked: 0,
                                                   elapsedSeconds: 0, failures: []),
            finalReads: nil, neverWrittenReads: [], lostWrites: [], historyProblems: [], historyNotes: [])
        XCTAssertFalse(report.valid)
    }

    func testOperationLinesAreExact() {
        let op = HistoryOperation(index: 0, process: 3, f: .cas, key: "k1", value: "v9", expected: "v5",
                                  invokeTime: 1_234_567_890, completionTime: 61_000_000_001, outcome: .ok)
        XCTAssertEqual(op.line(), #"process 3: cas "k1" "v5" → "v9" ok (invoked 1.234567890 s, completed 61.000000001 s)"#)
        XCTAssertEqual(op.line(since: 1_234_567_890), #"process 3: cas "k1" "v5" → "v9" ok (invoked 0.000000000 s, completed 59.765432111 s)"#)
        let get = HistoryOperation(index: 1, process: 4, f: .get, key: "k", value: nil, expected: nil,
                                   invokeTime: 5, completionTime: 99, outcome: .info)
        XCTAssertNil(get.completionTime, "info has no completion time")
        XCTAssertEqual(get.line(), #"process 4: get "k" info (invoked 0.000000005 s, outcome unknown)"#)
    }
}
