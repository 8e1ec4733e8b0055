@testable import ChaosCheck
import XCTest

/// Size and time: a big simulated history is judged ok; an adversarial one stops at the time limit.
final class ScaleTests: XCTestCase {
    /// 200k operations over 50 keys by 8 concurrent processes, 1% of them timing out (CHAOSCHECK_OPS,
    /// CHAOSCHECK_KEYS, CHAOSCHECK_PROCESSES, CHAOSCHECK_INFO override, to measure other shapes by hand).
    func testLargeSimulatedHistoryIsOK() {
        let env = ProcessInfo.processInfo.environment
        let sim = RegisterSimulator(operations: Int(env["CHAOSCHECK_OPS"] ?? "") ?? 200_000,
                                    keys: Int(env["CHAOSCHECK_KEYS"] ?? "") ?? 50,
                                    processes: Int(env["CHAOSCHECK_PROCESSES"] ?? "") ?? 8, seed: 2024,
                                    infoRate: Double(env["CHAOSCHECK_INFO"] ?? "") ?? 0.01)
        var t = ContinuousClock.now
        let events = sim.events()
        let generated = ContinuousClock.now - t
        t = ContinuousClock.now
        let paired = PairedHistory(events: events)
        let paired_ = ContinuousClock.now - t
        t = ContinuousClock.now
        let result = Linearizability.check(paired.operations, timeLimit: .seconds(300))
        let checked = ContinuousClock.now - t
        XCTAssertEqual(result.verdict, .ok, result.failures.map(\.text).joined(separator: "\n"))
        XCTAssertEqual(paired.operations.count, sim.operations)
        print("scale: \(paired.operations.count) operations (\(result.operationsChecked) searched) on \(result.keys.count) keys: generated in \(generated), paired in \(paired_), checked in \(checked)")
    }

    /// JSON lines of a big history parse at a useful speed (figure printed, not asserted).
    func testParsingSpeed() throws {
        let events = RegisterSimulator(operations: 50_000, keys: 10, processes: 8, seed: 3).events()
        let text = events.map(\.jsonLine).joined(separator: "\n")
        let t = ContinuousClock.now
        let parsed = try HistoryReader.parse(text)
        print("parse: \(parsed.count) events in \(ContinuousClock.now - t)")
        XCTAssertEqual(parsed, events)
    }

    /// Forty overlapping puts, then two reads that no order of them explains: the search must explore every
    /// order of the puts (2^40 configurations), so a tiny time limit gives `unknown`, promptly and without trapping.
    func testAdversarialHistoryTimesOutAsUnknown() throws {
        var h = HistoryBuilder()
        for p in 0..<40 { h.put(p, "hard", "v\(p)", Int64(p), 1000 + Int64(p)) }
        h.get(50, "hard", "v1", 2000, 2010)
        h.get(50, "hard", "v2", 2020, 2030)
        h.put(60, "easy", "e", 0, 10)
        let start = ContinuousClock.now
        let r = h.check(timeLimit: .milliseconds(200))
        let elapsed = ContinuousClock.now - start
        XCTAssertEqual(r.verdict, .unknown)
        XCTAssertEqual(r.keys["hard"], .unknown)
        XCTAssertEqual(r.keys["easy"], .ok)
        let f = try XCTUnwrap(r.failure(forKey: "hard"))
        XCTAssertTrue(f.reason.contains("timed out"), f.reason)
        XCTAssertLessThan(elapsed, .seconds(5))
        print("adversarial: unknown after \(elapsed)")
    }
}
