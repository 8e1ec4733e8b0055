@testable import ChaosCheck
import XCTest

/// The search against a brute-force oracle on thousands of small random histories (both linearizable and not,
/// deletes included), and against the simulator on bigger ones (always linearizable, also with deletes and
/// batches).
final class OracleTests: XCTestCase {
    /// Brute force: every subset of the info writes × every real-time-respecting order of the operations.
    private func bruteForce(_ ops: [HistoryOperation]) -> Bool {
        let relevant = ops.filter { $0.outcome != .fail && !($0.f == .get && $0.outcome == .info) }
        let must = relevant.filter { $0.outcome == .ok }
        let maybe = relevant.filter { $0.outcome == .info }
        for mask in 0..<(1 << maybe.count) {
            var chosen = must
            for (i, op) in maybe.enumerated() where mask & (1 << i) != 0 { chosen.append(op) }
            if someOrder(chosen, used: 0, state: nil) { return true }
        }
        return false
    }

    private func someOrder(_ ops: [HistoryOperation], used: Int, state: String?) -> Bool {
        if used == (1 << ops.count) - 1 { return true }
        for (i, op) in ops.enumerated() where used & (1 << i) == 0 {
            // op may go next only if no other unused operation completed before op was invoked.
            let blocked = ops.indices.contains { j in
                j != i && used & (1 << j) == 0 && (ops[j].completionTime ?? .max) < op.invokeTime
            }
            if blocked { continue }
            var next = state
            switch op.f {
            case .get: if op.value != state { continue }
            case .put, .delete, .batch: next = op.value
            case .cas:
                if op.expected != state { continue }
                next = op.value
            }
            if someOrder(ops, used: used | (1 << i), state: next) { return true }
        }
        return false
    }

    private func randomHistory(_ rng: inout TestRandom) -> [HistoryEvent] {
        var h = HistoryBuilder()
        let values = ["a", "b", "c", "d"]
        var nextWrite = 0
        let count = 2 + rng.below(6)
        for p in 0..<count {
            let from = Int64(rng.below(40))
            let to = from + Int64(rng.below(25))
            let type: EventType = [.ok, .ok, .ok, .ok, .fail, .info][rng.below(6)]
            switch rng.below(7) / 2 {   // put, get, cas 2/7 each; delete 1/7
            case 0:
                nextWrite += 1
                // Mostly unique values, as the workload writes; sometimes a repeat, which turns the prune off.
                h.put(p, "k", rng.chance(0.25) ? "w\(1 + rng.below(nextWrite))" : "w\(nextWrite)", type, from, to)
            case 1:
                let v = rng.below(nextWrite + 2)
                h.get(p, "k", v == 0 ? nil : v <= nextWrite ? "w\(v)" : values[rng.below(values.count)], type, from, to)
            case 2:
                nextWrite += 1
                let e = rng.below(nextWrite + 1)
                h.cas(p, "k", e == 0 ? nil : "w\(e)", "w\(nextWrite)", type, from, to)
            default:
                // A delete writes absent, which then has more than one source: the prunes must stay exact.
                h.op(p, .delete, "k", nil, type, from: from, to: to)
            }
        }
        return h.events
    }

    func testSearchAgreesWithBruteForceOnSmallRandomHistories() {
        var rng = TestRandom(seed: 42)
        var counts = [true: 0, false: 0]
        for round in 0..<20000 {
            let ops = PairedHistory(events: randomHistory(&rng)).operations
            let expected = bruteForce(ops)
            counts[expected]! += 1
            let text = "round \(round):\n" + ops.map { $0.line() }.joined(separator: "\n")
            XCTAssertEqual(Linearizability.check(ops).verdict, expected ? .ok : .violation, text)
            // The search itself, with and without the single-source prune (check() re-runs violations without it).
            for prune in [true, false] {
                let result = RegisterSearch.run(RegisterHistory(ops), deadline: .now + .seconds(10), singleSourcePrune: prune)
                var linearizable = false
                if case .linearizable = result { linearizable = true }
                XCTAssertEqual(linearizable, expected, "prune \(prune), " + text)
                if linearizable != expected { return }
            }
        }
        print("oracle: \(counts[true]!) linearizable, \(counts[false]!) not")
        XCTAssertGreaterThan(counts[true]!, 2000)
        XCTAssertGreaterThan(counts[false]!, 2000)
    }

    func testSimulatedHistoriesAreLinearizable() {
        for seed in UInt64(1)...20 {
            let sim = RegisterSimulator(operations: 2000, keys: 3, processes: 6, seed: seed, failRate: 0.05, infoRate: 0.05)
            let paired = PairedHistory(events: sim.events())
            XCTAssertEqual(paired.problems, [])
            let r = Linearizability.check(paired.operations)
            XCTAssertEqual(r.verdict, .ok, "seed \(seed): \(r.failures.map(\.text).joined(separator: "\n"))")
            XCTAssertEqual(HistoryChecks.neverWrittenReads(paired.operations), [])
            XCTAssertEqual(HistoryChecks.staleReads(paired.operations), [])
        }
    }

    /// Simulated histories with deletes and multi-key batches (applied atomically, some failed, some timed out)
    /// are linearizable, and none of their reads is stale.
    func testSimulatedHistoriesWithDeletesAndBatchesAreLinearizable() {
        var batches = 0
        for seed in UInt64(1)...20 {
            let sim = RegisterSimulator(operations: 2000, keys: 4, processes: 6, seed: seed, failRate: 0.05, infoRate: 0.05,
                                        deleteRate: 0.1, batchRate: 0.2)
            let paired = PairedHistory(events: sim.events())
            XCTAssertEqual(paired.problems, [])
            batches += HistorySummary(paired.operations).batches.total
            let r = Linearizability.check(paired.operations)
            XCTAssertEqual(r.verdict, .ok, "seed \(seed): \(r.failures.map(\.text).joined(separator: "\n"))")
            XCTAssertEqual(HistoryChecks.staleReads(paired.operations), [], "seed \(seed)")
            XCTAssertEqual(HistoryChecks.neverWrittenReads(paired.operations), [])
        }
        XCTAssertGreaterThan(batches, 4000, "the simulator made batches")
    }

    /// Breaking one read of a simulated history (making it return the value of the write two writes earlier,
    /// after the newer ones were all acknowledged) must be caught.
    func testCorruptedSimulatedHistoryIsAViolation() {
        let sim = RegisterSimulator(operations: 3000, keys: 2, processes: 4, seed: 7, failRate: 0, infoRate: 0)
        var events = sim.events()
        let ops = PairedHistory(events: events).operations
        // Find an ok get whose key had two ok puts fully before it, both after any other write of the key.
        var corrupted = false
        search: for op in ops where op.f == .get && op.outcome == .ok {
            let before = ops.filter { $0.key == op.key && $0.isWrite && $0.outcome == .ok && $0.completionTime! < op.invokeTime }
            let concurrent = ops.filter { $0.key == op.key && $0.isWrite && $0.outcome != .fail && $0.invokeTime < op.completionTime! && ($0.completionTime ?? .max) > op.invokeTime }
            guard before.count >= 2, concurrent.isEmpty else { continue }
            let last = before.max { $0.completionTime! < $1.completionTime! }!
            guard let older = before.first(where: { $0.completionTime! < last.invokeTime && $0.value != op.value }) else { continue }
            for (i, e) in events.enumerated() where e.process == op.process && e.type == .ok && e.time == op.completionTime {
                events[i].value = older.value
                corrupted = true
                break search
            }
        }
        XCTAssertTrue(corrupted)
        let broken = PairedHistory(events: events).operations
        XCTAssertEqual(Linearizability.check(broken).verdict, .violation)
        XCTAssertEqual(HistoryChecks.staleReads(broken).count, 1, "a read of a value overwritten twice before it began is stale")
    }
}
