import RaftSim
import XCTest

/// The cluster simulation of real `NodeCore`s (3 and 5 nodes, 3–4 shards) in the normal test run: a seeded
/// lossy, reordering network with partitions, crashes that lose undurable writes and restart as new
/// incarnations, slow disks; a client workload of every operation; linearizability of every read kind, lost
/// writes, search completeness, 2PC invariants, convergence.
final class ClusterSimulationTests: XCTestCase {
    /// Seeds for the normal run (`SUTRA_CLUSTER_SIM_SEEDS` overrides; the offline command runs 100,000).
    var seedCount: UInt64 { UInt64(ProcessInfo.processInfo.environment["SUTRA_CLUSTER_SIM_SEEDS"] ?? "") ?? 1000 }

    func testSeedsKeepEveryInvariant() {
        let started = Date()
        let outcome = ClusterSeedRunner.run(seeds: 0..<seedCount)
        for f in outcome.failures.prefix(3) { print(f) }
        XCTAssertEqual(outcome.failures.map(\.seed), [], "failing seeds")
        let s = outcome.stats
        print("cluster simulation: \(outcome.seedsRun) seeds in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(s)")
        // The run must have exercised what it claims to.
        let n = Int(outcome.seedsRun)
        XCTAssertGreaterThan(s.crashes, n / 4)
        XCTAssertGreaterThan(s.incarnations, n * 3 + n / 4)
        XCTAssertGreaterThan(s.partitions, n / 4)
        XCTAssertGreaterThan(s.slowDisks, n / 4)
        // Fewer stops run under healthy conditions since a third of the seeds spend part of the run with a node
        // killed for good (being replaced).
        XCTAssertGreaterThan(s.gracefulStopsChecked, n / 5)
        XCTAssertGreaterThan(s.replacements, n / 4, "nodes killed for good were replaced through replica moves")
        XCTAssertEqual(s.replacements, s.replacementsBegun, "every replacement begun finished")
        XCTAssertGreaterThan(s.growths, n / 4, "clusters grown by a node and rebalanced onto it")
        XCTAssertEqual(s.growths, s.growthsBegun, "every rebalance begun finished")
        XCTAssertGreaterThan(s.replacementsOfDeadReplacements, s.replacements / 5,
                             "replacements whose new node died mid-move were replaced in turn by a second spare")
        XCTAssertGreaterThan(s.batchesOK, n * 5)
        XCTAssertGreaterThan(s.searchesChecked, n * 5)
        XCTAssertGreaterThan(s.readsChecked, n * 20)
        XCTAssertGreaterThan(s.forwardAnswersChecked, n * 30)
        // An eighth of the seeds run five nodes with three replicas per shard: reads of the shards a node does
        // not hold are answered by nodes that hold them.
        XCTAssertGreaterThan(s.shardReadsAnswered, n, "shard reads answered by another node")
        XCTAssertGreaterThan(s.txnsCommitted, n * 5)
        XCTAssertGreaterThan(s.opsUnknown, 0)
        XCTAssertGreaterThan(s.leaderWaitRetries, UInt64(n), "requests met elections and handoffs and waited them out")
        XCTAssertGreaterThan(s.snapshotStreamsReceived, UInt64(n / 100), "snapshots were streamed in chunks and installed")
        // Seeds with fewer replicas than nodes move replicas by hand (`sutra move-replica`) under the faults; every
        // seed asks a content digest through every node once settled.
        XCTAssertGreaterThan(s.manualMovesFinished, n / 20, "replicas moved by hand, finished")
        XCTAssertGreaterThan(s.digestsChecked, n * 2, "digests through every node checked against the replicas' data")
    }

    func testSameSeedReplaysExactly() throws {
        for seed: UInt64 in [3, 7, 42] {
            let a = try ClusterSimulation(config: .standard(seed: seed)).run().get()
            let b = try ClusterSimulation(config: .standard(seed: seed)).run().get()
            XCTAssertEqual(a, b)
        }
    }

    /// The known-bad build (`--unsafe-local-reads`: reads from local state without confirming leadership)
    /// must be caught.
    func testCheckerCatchesStaleLocalReads() {
        let outcome = ClusterSeedRunner.run(seeds: 0..<60) { seed in
            var c = ClusterSimConfig.standard(seed: seed)
            c.unsafeLocalReads = true
            return c
        }
        print("unsafe local reads: \(outcome.failures.count) of 60 seeds caught")
        if let f = outcome.failures.first { print(f) }
        XCTAssertGreaterThan(outcome.failures.count, 0, "stale reads went undetected")
    }
}
