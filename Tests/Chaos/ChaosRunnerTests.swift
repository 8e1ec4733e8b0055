import ChaosCheck
import ChaosLab
import ChaosRunner
import Foundation
import XCTest

/// The chaos runner end to end, in the normal test run: a short run of each fault type against a real
/// three-node cluster (every checker must pass), and proof that a known-bad build is caught.
final class ChaosRunnerTests: ChaosTestCase {
    /// A short `sutra chaos` run; partitions cut links with namespaces where possible, else through the proxy.
    private func run(_ faults: String, seconds: Double, seed: UInt64, network: NetworkMode = .auto,
                     batchShare: Double = 0.15, nodeFlags: [String] = []) async throws -> ChaosReport {
        try ChaosTestSupport.requireNodeBinary()
        let kinds = try FaultKind.parse(faults)
        var o = ChaosOptions(nodeBinary: ChaosTestSupport.nodeBinary)
        o.network = network
        o.duration = seconds
        o.faults = kinds
        o.seed = seed
        o.processes = 6
        o.batchShare = batchShare
        o.progress = false
        o.checkTimeLimit = .seconds(60)
        o.nodeFlags = nodeFlags
        let r = try await ChaosRun.run(o) { _ in }
        print(r.summary())
        return r
    }

    private func expectValid(_ r: ChaosReport, _ what: String) {
        XCTAssertTrue(r.valid, "\(what): \(r.verdicts.filter { !$0.value }.map(\.key))")
        XCTAssertGreaterThan(r.operations.ok, 100, "\(what): the workload ran")
        XCTAssertGreaterThan(r.batches.counts.ok, 0, "\(what): cross-shard batches were acknowledged")
        XCTAssertEqual(r.batches.readsAfterAcknowledgement, r.batches.counts.ok, "\(what): each read back at once")
        XCTAssertGreaterThan(r.faultRecords.filter { !$0.skipped }.count, 0, "\(what): faults were injected")
        XCTAssertEqual(r.faultRecords.compactMap(\.problem).filter { !$0.isEmpty }, [], "\(what): every fault was carried out")
    }

    /// Read-your-writes of cross-shard batches without faults (issue hole 1): every acknowledged batch is read
    /// back at once at a participant shard, and no read may miss it. A node that acknowledges a batch before its
    /// participants applied their parts fails this with stale reads of batch items.
    func testCrossShardBatchesAreReadBackAtOnce() async throws {
        let r = try await run("", seconds: 8, seed: 17, batchShare: 0.3)
        XCTAssertGreaterThan(r.batches.counts.ok, 50, "batches were acknowledged")
        XCTAssertEqual(r.batches.readsAfterAcknowledgement, r.batches.counts.ok)
        XCTAssertEqual(r.batches.staleReadsOfItems, 0, "\(r.check.staleReads.prefix(3).map(\.message))")
        XCTAssertTrue(r.valid, "\(r.verdicts.filter { !$0.value }.map(\.key))")
    }

    func testKillsKeepEveryCheckerGreen() async throws {
        let r = try await run("kill", seconds: 14, seed: 11)
        expectValid(r, "kill")
        XCTAssertFalse(r.rto.isEmpty, "leader kills have RTOs")
    }

    func testPausesKeepEveryCheckerGreen() async throws {
        expectValid(try await run("pause", seconds: 12, seed: 12), "pause")
    }

    func testPartitionsKeepEveryCheckerGreen() async throws {
        expectValid(try await run("partition", seconds: 18, seed: 13), "partitions")
    }

    /// Partitions through the fault-injecting proxy (what machines without namespaces use), on every machine.
    func testPartitionsThroughTheProxyKeepEveryCheckerGreen() async throws {
        let r = try await run("partition", seconds: 16, seed: 15, network: .proxy)
        expectValid(r, "partitions through the proxy")
        XCTAssertTrue(r.networkLab.contains("proxy"), r.networkLab)
        XCTAssertTrue(r.faultRecords.allSatisfy { $0.detail.contains("cut") }, "\(r.faultRecords.map(\.detail))")
    }

    /// Slow disks (a node's WAL writes sleep before each fdatasync): slower, never wrong.
    func testSlowDisksKeepEveryCheckerGreen() async throws {
        let r = try await run("slow-disk", seconds: 12, seed: 16)
        expectValid(r, "slow disk")
        XCTAssertTrue(r.faultRecords.allSatisfy { $0.detail.contains("sleeps") }, "\(r.faultRecords.map(\.detail))")
    }

    /// Disks replaced: a node killed, its data directory deleted, started empty; with snapshots every 100 entries,
    /// no log kept behind them and 4 KiB chunks, it comes back through streamed snapshots where the log was
    /// compacted — caught up before the next fault — and nothing acknowledged is lost.
    func testReplacedDisksKeepEveryCheckerGreen() async throws {
        let r = try await run("replace-disk", seconds: 14, seed: 18,
                              nodeFlags: ["--snapshot-entries", "100", "--compact-margin", "0", "--snapshot-chunk-bytes", "4096"])
        expectValid(r, "replace-disk")
        // Each wiped node caught up before the next fault (the last may still be catching up when the run ends).
        XCTAssertFalse(r.faultRecords.contains { $0.detail.contains("not caught up within") }, "\(r.faultRecords.map(\.detail))")
        XCTAssertTrue(r.faultRecords.dropLast().allSatisfy { $0.detail.hasSuffix("; caught up") }, "\(r.faultRecords.map(\.detail))")
        XCTAssertTrue(r.faultRecords.contains { $0.detail.hasSuffix("; caught up") }, "\(r.faultRecords.map(\.detail))")
    }

    /// Membership changes under load: nodes killed for good and replaced by spares, live nodes drained onto
    /// spares and retired — with the new node, or the drained one, killed -9 in the middle of the moves and
    /// restarted (a joining node then holds the logs of some shards only) — and partitions between them, through
    /// the proxy so that the spares' links are cut too. Every move finishes, every checker passes.
    func testReplacedAndDrainedNodesKeepEveryCheckerGreen() async throws {
        let r = try await run("replace-node,drain-node,partition-leader", seconds: 30, seed: 5, network: .proxy)
        expectValid(r, "replace-node, drain-node")
        let membership = r.faultRecords.filter { $0.kind.changesMembership }
        XCTAssertGreaterThanOrEqual(membership.count, 3, "\(r.schedule)")
        XCTAssertTrue(membership.allSatisfy { $0.detail.contains("removed") }, "\(membership.map(\.detail))")
        XCTAssertTrue(membership.contains { $0.kind == .replaceNode } && membership.contains { $0.kind == .drainNode }, "\(r.schedule)")
        XCTAssertTrue(membership.contains { $0.detail.contains("mid-move") }, "a move was interrupted: \(membership.map(\.detail))")
    }

    /// The cluster grown by a spare (`rebalance`: balance moves onto it) and shrunk back (the target drained and
    /// stopped), again and again — and, between, a replica moved by hand off its shard's leader (`move-replica`) —
    /// with crashes mid-move: every checker green.
    func testGrownAndShrunkClustersKeepEveryCheckerGreen() async throws {
        let r = try await run("add-node,move-replica", seconds: 40, seed: 7, network: .proxy)
        expectValid(r, "add-node, move-replica")
        let grown = r.faultRecords.filter { ($0.kind == .addNode || $0.kind == .moveReplica) && !$0.skipped }
        XCTAssertGreaterThanOrEqual(grown.count, 2, "\(r.schedule)")
        XCTAssertTrue(grown.allSatisfy { $0.detail.contains("balanced onto node") && $0.detail.contains("removed") }, "\(grown.map(\.detail))")
        let moved = grown.filter { $0.kind == .moveReplica }
        XCTAssertFalse(moved.isEmpty, "\(r.schedule)")
        XCTAssertTrue(moved.allSatisfy { $0.detail.contains("moved by hand") && ($0.detail.contains("the move finished") || $0.detail.contains("rolled back")) },
                      "\(moved.map(\.detail))")
    }

    func testTransferStormsAndRollingRestartsKeepEveryCheckerGreen() async throws {
        expectValid(try await run("transfer,restart-rolling", seconds: 20, seed: 14), "transfer storm + rolling restart")
    }

    /// A known-bad build (`--unsafe-local-reads`: any replica answers linearizable reads from its own state)
    /// must be caught: a follower cut off from the leader misses a write the leader acknowledged, then serves
    /// the old value, and the linearizability checker flags that key. The same steps on a correct build (the
    /// follower refuses: not the leader) pass.
    func testKnownBadBuildServingLocalReadsIsCaught() throws {
        for bad in [true, false] {
            let inLab = ChaosTestSupport.namespacesAvailable
            let c = try startCluster(inLab: inLab, proxied: !inLab, shards: 1, flags: bad ? ["--unsafe-local-reads"] : [])
            let links = try XCTUnwrap(c.links)
            let leader = try c.waitForLeader(shard: 0)
            let follower = c.nodeIDs.first { $0 != leader }!
            let id = ChaosTestSupport.conceptID(42)
            let history = HistoryWriter()
            func now() -> Int64 { Int64(Monotonic.nanoseconds()) }
            func put(_ process: Int, _ value: String) {
                history.record(process: process, .invoke, .put, key: "k", value: value, time: now())
                let ok = ChaosTestSupport.put(c, via: leader, id: id, content: value)
                history.record(process: process, ok ? .ok : .info, .put, key: "k", value: value, time: now())
            }
            put(0, "v1")
            XCTAssertTrue(ChaosTestSupport.eventually(5) { ChaosTestSupport.get(c, via: follower, id: id) == "v1" || !bad })
            try links.apply(.isolate(follower))
            put(1, "v2")
            history.record(process: 2, .invoke, .get, key: "k", time: now())
            let r = c.http(follower, "GET", "/v1/concepts/\(id)", timeout: 3)
            let content = ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any])?["content"] as? String
            if r.status == 200 {
                history.record(process: 2, .ok, .get, key: "k", value: content, time: now())
            } else {
                history.record(process: 2, .fail, .get, key: "k", time: now())
            }
            _ = links.heal()
            let report = HistoryChecker.check(events: history.events)
            if bad {
                XCTAssertEqual(r.status, 200, "the known-bad follower answers from its own state")
                XCTAssertEqual(content, "v1", "…with the value from before the partition")
                XCTAssertFalse(report.valid, "the checker must catch the stale read")
                XCTAssertEqual(report.linearizability.failures.map(\.key), ["k"])
            } else {
                XCTAssertNotEqual(r.status, 200, "a correct follower refuses a linearizable read")
                XCTAssertTrue(report.valid, "a correct build passes: \(report.linearizability.failures.map(\.text))")
            }
            tearDown()
        }
    }
}
