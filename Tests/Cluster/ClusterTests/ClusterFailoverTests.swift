import Foundation
import SutraClient
import UV
import XCTest

/// Failover and shutdown under load, through the SDK, on real processes.
final class ClusterFailoverTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    /// Writes unique concepts from `workers` tasks until `stop` is set; returns the acknowledged ids and the
    /// errors the SDK gave up with.
    private static func writeLoad(_ client: SutraClient, workers: Int, stop: Locked<Bool>, prefix: UInt64) async -> (acked: [ConceptID], errors: [String]) {
        await withTaskGroup(of: ([ConceptID], [String]).self) { group in
            for w in 0..<workers {
                group.addTask {
                    var acked: [ConceptID] = [], errors: [String] = []
                    var n: UInt64 = 0
                    while !stop.withLock({ $0 }) {
                        let id = ConceptID(hi: prefix | UInt64(w), lo: n)
                        n += 1
                        do {
                            _ = try await client.put(NewConcept(id: id, text: "w\(w)-\(n)"))
                            acked.append(id)
                        } catch {
                            errors.append("\(error)")
                        }
                    }
                    return (acked, errors)
                }
            }
            var all: ([ConceptID], [String]) = ([], [])
            for await (a, e) in group { all.0 += a; all.1 += e }
            return all
        }
    }

    private func leaderOfShard0(_ client: SutraClient) async throws -> Int {
        for _ in 0..<100 {
            if let l = try await client.clusterInfo().shards.first(where: { $0.shard == 0 })?.leader { return Int(l) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterTestError("shard 0 has no leader")
    }

    /// kill -9 a shard leader under a steady write load: a new leader takes over, the SDK's writes continue
    /// (no errors surface), and every acknowledged write is present, on every node, after the killed node
    /// restarts and catches up.
    func testKillLeaderUnderLoadLosesNoAcknowledgedWrite() async throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 8)
        try cluster.startAll()
        let client = try SutraClient(endpoints: cluster.clientEndpoints)
        let stop = Locked(false)
        async let load = Self.writeLoad(client, workers: 16, stop: stop, prefix: 0xA000_0000_0000_0000)
        try await Task.sleep(for: .milliseconds(800))
        let victim = try await leaderOfShard0(client)
        cluster.kill9(victim)
        try await Task.sleep(for: .milliseconds(1500))
        try cluster.start(victim)
        try await Task.sleep(for: .milliseconds(700))
        stop.withLock { $0 = true }
        let (acked, errors) = await load
        XCTAssertEqual(errors, [], "the SDK rode through the failover")
        XCTAssertGreaterThan(acked.count, 100)
        try cluster.waitReady()
        for id in acked {
            let c = try await client.get(id)
            XCTAssertNotNil(c, "acknowledged write \(id) is present")
        }
        // The restarted node has caught up on every acknowledged write.
        let deadline = Date().addingTimeInterval(15)
        var missing = acked
        while !missing.isEmpty && Date() < deadline {
            missing = missing.filter { cluster.http(victim, "GET", "/v1/concepts/\($0)?consistency=stale").status != 200 }
            if !missing.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertEqual(missing.count, 0, "node \(victim) caught up")
        await client.close()
    }

    /// SIGTERM moves leaderships away first: the node exits 0 and no write error reaches the application
    /// (NOT_LEADER answers are followed by the SDK).
    func testGracefulShutdownMovesLeadershipsWithoutWriteErrors() async throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 8)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()   // node 1 leads its share of the shards when it is stopped
        let client = try SutraClient(endpoints: cluster.clientEndpoints)
        let stop = Locked(false)
        async let load = Self.writeLoad(client, workers: 16, stop: stop, prefix: 0xB000_0000_0000_0000)
        try await Task.sleep(for: .milliseconds(800))
        let code = cluster.terminate(1)
        XCTAssertEqual(code, 0, "graceful exit")
        let log = cluster.log(1)
        XCTAssertFalse(log.contains("still leading"), "every leadership was handed on: \(log.suffix(800))")
        XCTAssertTrue(log.contains("stopped"))
        // The peers heard that node 1 drains (wire v5), so neither handed a shard back to it.
        for peer in [2, 3] {
            XCTAssertTrue(cluster.log(peer).contains("node 1 is shutting down: no leadership is handed to it"), "node \(peer)")
        }
        try await Task.sleep(for: .milliseconds(800))
        stop.withLock { $0 = true }
        let (acked, errors) = await load
        XCTAssertEqual(errors, [])
        XCTAssertGreaterThan(acked.count, 100)
        for id in acked.shuffled().prefix(200) {
            let c = try await client.get(id)
            XCTAssertNotNil(c)
        }
        await client.close()
    }
}
