import RaftSim
import XCTest

/// The deterministic simulation of two-phase commit over three Raft groups on three nodes, in the normal
/// test run: crashes of coordinators and participants at every step, lost, duplicated and reordered
/// messages, partitions; atomicity, decisions, settling and linearizable reads checked on every seed.
final class TxnSimulationTests: XCTestCase {
    func testThousandSeedsKeepTransactionsAtomic() {
        let outcome = TxnSeedRunner.run(seeds: 0..<1000)
        for f in outcome.failures.prefix(3) { print(f) }
        XCTAssertEqual(outcome.seedsRun, 1000)
        XCTAssertEqual(outcome.failures.map(\.seed), [], "failing seeds")
        let s = outcome.stats
        print("2PC simulation: \(s)")
        // The run must have exercised what it claims to.
        XCTAssertGreaterThan(s.committed, 10_000)
        XCTAssertGreaterThan(s.aborted, 1_000)
        XCTAssertGreaterThan(s.unknown, 100)
        XCTAssertGreaterThan(s.reads, 10_000)
        XCTAssertGreaterThan(s.crashes, 300)
        XCTAssertGreaterThan(s.partitions, 300)
        XCTAssertGreaterThan(s.recoveredOrAdopted, 100)
    }

    func testSameSeedReplaysExactly() throws {
        for seed: UInt64 in [5, 77] {
            let a = try TxnSimulation(config: TxnSimConfig(seed: seed)).run().get()
            let b = try TxnSimulation(config: TxnSimConfig(seed: seed)).run().get()
            XCTAssertEqual(a, b)
        }
    }

    /// A known-bad build must be caught: reads that ignore intents show half a transaction.
    func testCheckerCatchesReadsThatIgnoreIntents() {
        let outcome = TxnSeedRunner.run(seeds: 0..<100) { seed in
            var c = TxnSimConfig(seed: seed)
            c.readsIgnoreIntents = true
            return c
        }
        print("reads ignoring intents: \(outcome.failures.count) of 100 seeds caught")
        XCTAssertGreaterThan(outcome.failures.count, 0, "half-visible transactions went undetected")
        XCTAssertTrue(outcome.failures.contains { $0.reason.contains("half a transaction") })
    }
}
