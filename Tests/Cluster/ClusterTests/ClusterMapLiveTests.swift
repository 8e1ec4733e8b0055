import Foundation
import XCTest

/// The cluster map on real processes: the meta group replicates it to every node, nodes announce their
/// addresses and the shards they lead, and the map survives kill -9 and restarts from each node's own disk.
final class ClusterMapLiveTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    /// Node `id`'s `/v1/cluster`: its map, and each shard's leader as the node knows it.
    func view(_ id: Int) -> (map: [String: Any], leaders: [Int])? {
        guard let o = cluster.http(id, "GET", "/v1/cluster").json, let map = o["map"] as? [String: Any],
              let shards = o["shards"] as? [[String: Any]] else { return nil }
        return (map, shards.map { ($0["leader"] as? NSNumber)?.intValue ?? 0 })
    }

    func version(_ map: [String: Any]) -> Int { (map["version"] as? NSNumber)?.intValue ?? -1 }
    func hints(_ map: [String: Any]) -> [Int] { (map["shards"] as? [[String: Any]] ?? []).map { ($0["leader_hint"] as? NSNumber)?.intValue ?? -1 } }

    /// Waits until the running nodes hold one map (same JSON) whose addresses are every node's and whose leader
    /// hints name the leaders every node sees, all of them among `ids` (the meta group's leader too); returns that
    /// map. Fails naming what differed.
    @discardableResult
    func waitForOneMap(_ ids: [Int], timeout: Double = 15, file: StaticString = #filePath, line: UInt = #line) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            let views = ids.compactMap(view)
            if views.count == ids.count, let first = views.first {
                // The map itself; `meta_group` is each node's own view of the group (its role, its indexes).
                func replicated(_ m: [String: Any]) -> NSDictionary { NSDictionary(dictionary: m.filter { $0.key != "meta_group" }) }
                let same = views.allSatisfy { replicated($0.map).isEqual(replicated(first.map)) }
                let leadersAgree = views.allSatisfy { $0.leaders == first.leaders } && first.leaders.allSatisfy(ids.contains)
                    && ids.contains(metaLeader(ids[0]))
                let nodes = first.map["nodes"] as? [[String: Any]] ?? []
                let addressed = nodes.allSatisfy { n in
                    let id = (n["id"] as? NSNumber)?.intValue ?? 0
                    return n["http_address"] as? String == "127.0.0.1:\(cluster.httpPort(id))"
                        && n["client_address"] as? String == "127.0.0.1:\(cluster.clientPort(id))"
                        && (n["peer_address"] as? String)?.hasPrefix("127.0.0.1:") == true && n["state"] as? String == "active"
                }
                if same && leadersAgree && addressed && hints(first.map) == first.leaders { return first.map }
                last = "versions \(views.map { version($0.map) }), hints \(views.map { hints($0.map) }), leaders \(views.map(\.leaders)), addresses known \(addressed)"
            } else {
                last = "\(views.count) of \(ids.count) nodes answered with a map"
            }
            usleep(100_000)
        }
        XCTFail("the nodes \(ids) did not converge on one map in \(timeout) s: \(last)", file: file, line: line)
        return nil
    }

    func metaLeader(_ id: Int) -> Int {
        ((view(id)?.map["meta_group"] as? [String: Any])?["leader"] as? NSNumber)?.intValue ?? 0
    }

    func testTheMapIsReplicatedAnnouncedAndSurvivesKillsAndRestarts() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        guard let first = waitForOneMap([1, 2, 3]) else { return }
        XCTAssertGreaterThanOrEqual(version(first), 3, "three nodes announced their addresses")
        XCTAssertEqual(first["replication"] as? Int, 3)
        for s in (first["shards"] as? [[String: Any]] ?? []) { XCTAssertEqual(s["voters"] as? [Int], [1, 2, 3]) }

        // kill -9 the meta group's leader: the others elect another, and the shards it led get new leader hints.
        let leader = metaLeader(1)
        XCTAssertTrue((1...3).contains(leader), "a meta group leader is known")
        cluster.kill9(leader)
        let survivors = (1...3).filter { $0 != leader }
        guard let without = waitForOneMap(survivors, timeout: 20) else { return }
        XCTAssertFalse(hints(without).contains(leader), "no shard's hint names the killed node")
        XCTAssertGreaterThan(version(without), version(first), "the shards the killed node led were told to the map")

        // Restarted from its own disk (its map's log in <data>/meta), it rejoins and holds the same map again.
        try cluster.start(leader)
        try cluster.waitReady()
        guard let again = waitForOneMap([1, 2, 3], timeout: 20) else { return }
        XCTAssertGreaterThanOrEqual(version(again), version(without))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(cluster.dir)/node\(leader)/meta"), "the map's log is apart from the WAL")
        let m = cluster.http(leader, "GET", "/metrics").text
        XCTAssertTrue(m.contains("sutra_cluster_map_version{node=\"\(leader)\"} \(version(again))"), "the map's version is a metric")
    }
}
