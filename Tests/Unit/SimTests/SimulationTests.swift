import Raft
import RaftSim
import XCTest

/// The deterministic simulation in the normal test run: many seeds, replay, and proof that the checker bites.
final class SimulationTests: XCTestCase {
    /// 1,000 seeds of the standard fault mix (3 and 5 voters, drops, duplicates, delays, partitions,
    /// crashes, transfers, snapshots, membership changes, reads). Any invariant failure prints the seed,
    /// the reason and the last events; replay it with `sutra-sim --seed N --trace`.
    func testThousandSeedsKeepEveryInvariant() {
        let outcome = SeedRunner.run(seeds: 0..<1000, parallelism: 2)
        for f in outcome.failures.prefix(3) { print(f) }
        XCTAssertEqual(outcome.seedsRun, 1000)
        XCTAssertEqual(outcome.failures.map(\.seed), [], "failing seeds")
        // The run must actually have exercised the faults it claims to.
        let s = outcome.stats
        XCTAssertGreaterThan(s.crashes, 500)
        XCTAssertGreaterThan(s.partitions, 500)
        XCTAssertGreaterThan(s.snapshotsInstalled, 100)
        XCTAssertGreaterThan(s.transfers, 500)
        XCTAssertGreaterThan(s.confChanges, 500)
        XCTAssertGreaterThan(s.writesAcked, 100_000)
        XCTAssertGreaterThan(s.readsServed, 50_000)
        XCTAssertGreaterThan(s.messagesDropped, 100_000)
        XCTAssertGreaterThan(s.slowPersists, 5_000)
    }

    /// Lease reads under slow disks: fsyncs — hence votes and acknowledgements, and on nodes that send only after
    /// persisting their heartbeat answers too — held back past the lease margin and past an election timeout,
    /// with one-way link cuts. No read may be stale, and every node's membership must match what it applied.
    func testLeaseReadsWithSlowDisksStayLinearizable() {
        let outcome = SeedRunner.run(seeds: 7000..<7300, parallelism: 2) { seed in
            var c = SimConfig.standard(seed: seed)
            c.readOnly = .leaseBased
            return c
        }
        for f in outcome.failures.prefix(2) { print(f) }
        XCTAssertEqual(outcome.failures.map(\.seed), [], "failing seeds")
        let s = outcome.stats
        XCTAssertGreaterThan(s.slowPersists, 2_000, "slow fsyncs were injected")
        XCTAssertGreaterThan(s.leaseReads, 10_000, "reads were answered by leases")
    }

    /// Without pre-vote and check-quorum (the classic algorithm) the safety properties still hold.
    func testClassicRaftWithoutPreVoteOrCheckQuorum() {
        let outcome = SeedRunner.run(seeds: 5000..<5150, parallelism: 2) { seed in
            var c = SimConfig.standard(seed: seed)
            c.preVote = false
            c.checkQuorum = false
            c.readOnly = .safe
            return c
        }
        for f in outcome.failures.prefix(2) { print(f) }
        XCTAssertEqual(outcome.failures.map(\.seed), [])
    }

    /// A seed replays exactly: same figures, same outcome.
    func testSameSeedReplaysExactly() throws {
        for seed: UInt64 in [3, 42, 977] {
            let a = try Simulation(config: .standard(seed: seed)).run().get()
            let b = try Simulation(config: .standard(seed: seed)).run().get()
            XCTAssertEqual(a.messagesDelivered, b.messagesDelivered)
            XCTAssertEqual(a.writesAcked, b.writesAcked)
            XCTAssertEqual(a.elections, b.elections)
            XCTAssertEqual(a.readsServed, b.readsServed)
        }
    }

    /// The checker must catch a known-bad build: leaders serving reads from local state without
    /// confirming leadership return stale data under partitions, and the run must say so.
    func testCheckerCatchesStaleLocalReads() {
        let outcome = SeedRunner.run(seeds: 0..<100, parallelism: 2) { seed in
            var c = SimConfig.standard(seed: seed)
            c.unsafeLocalReads = true
            return c
        }
        XCTAssertGreaterThan(outcome.failures.count, 0, "unsafe local reads went undetected")
        let first = outcome.failures.first
        XCTAssertTrue(first?.reason.contains("stale read") ?? false, first?.reason ?? "")
        XCTAssertFalse(first?.trace.isEmpty ?? true, "a failure carries a readable trace")
        XCTAssertTrue(first?.description.contains("--seed \(first!.seed)") ?? false, "a failure says how to replay it")
    }
}
