import Foundation
import SutraClient
import XCTest

/// A replication factor below the node count on real processes: five nodes, three replicas per shard. Each node
/// holds only its shards, and every read — a get, neighbours, a path across shards, a vector search — answers the
/// same through every node (the shards held elsewhere asked of the nodes that hold them), before and after a
/// node dies.
final class ClusterReplicationTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0 || ProcessInfo.processInfo.environment["SUTRA_KEEP_TEST_LOGS"] == "1")
        cluster = nil
    }

    /// A request retried while shards elect or a leadership moves (503, or no answer from a node just killed).
    private func retried(_ node: Int, _ method: String, _ path: String, _ body: String = "") -> LocalTestCluster.Reply {
        var r = cluster.http(node, method, path, body, timeout: 10)
        let deadline = Date().addingTimeInterval(15)
        while [0, 503, 504].contains(r.status) && Date() < deadline {
            usleep(100_000)
            r = cluster.http(node, method, path, body, timeout: 10)
        }
        return r
    }

    func testFiveNodesWithThreeReplicasAnswerEveryReadThroughEveryNode() async throws {
        cluster = try LocalTestCluster(nodes: 5, shards: 5, dimension: 4)
        for id in 1...5 { try cluster.start(id, overrides: ["--replication": "3"]) }
        try cluster.waitReady(timeout: 30)

        // The map places three replicas of each shard, three shards on each node.
        let view = cluster.http(1, "GET", "/v1/cluster").json
        let map = view?["map"] as? [String: Any]
        XCTAssertEqual(map?["replication"] as? Int, 3)
        let voters = (map?["shards"] as? [[String: Any]] ?? []).map { ($0["voters"] as? [Int] ?? []) }
        XCTAssertEqual(voters.count, 5)
        XCTAssertTrue(voters.allSatisfy { $0.count == 3 }, "\(voters)")
        for node in 1...5 { XCTAssertEqual(voters.filter { $0.contains(node) }.count, 3, "node \(node) holds three shards: \(voters)") }

        // Concepts with embeddings, and a chain of associations 0 → 1 → … → 39 that crosses shards at every hop.
        let n = 40
        for i in 0..<n {
            let e = circleEmbedding(i).map { "\($0)" }.joined(separator: ",")
            let r = retried(1 + i % 5, "POST", "/v1/concepts", #"{"id":"\#(conceptID(i))","content":"c\#(i)","embedding":[\#(e)]}"#)
            XCTAssertEqual(r.status, 200, r.text)
        }
        for i in 0..<(n - 1) {
            let r = retried(1 + i % 5, "POST", "/v1/associations", #"{"source":"\#(conceptID(i))","target":"\#(conceptID(i + 1))","type":"causal"}"#)
            XCTAssertEqual(r.status, 200, r.text)
        }
        let q: [Float] = [Float(cos(1.27)), Float(sin(1.27)), 0.03, 0.5]
        let qs = q.map { "\($0)" }.joined(separator: ",")
        let truth = (0..<n).sorted { cosineDistance(circleEmbedding($0), q) < cosineDistance(circleEmbedding($1), q) }.prefix(7).map { conceptID($0).description }

        func everyReadAnswers(through nodes: ClosedRange<Int>, _ label: String) {
            for node in nodes {
                for i in [0, 7, 13, 22, 39] {
                    let got = retried(node, "GET", "/v1/concepts/\(conceptID(i))")
                    XCTAssertEqual(got.json?["content"] as? String, "c\(i)", "\(label): concept \(i) through node \(node): \(got.status) \(got.text)")
                    let stale = retried(node, "GET", "/v1/concepts/\(conceptID(i))?consistency=stale")
                    XCTAssertEqual(stale.json?["content"] as? String, "c\(i)", "\(label): a stale read through node \(node): \(stale.text)")
                }
                let nb = retried(node, "GET", "/v1/concepts/\(conceptID(5))/neighbors")
                let ids = Set((nb.json?["neighbors"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
                XCTAssertEqual(ids, [conceptID(4).description, conceptID(6).description], "\(label): neighbours through node \(node): \(nb.text)")
                let missing = retried(node, "GET", "/v1/concepts/\(conceptID(9999))")
                XCTAssertEqual(missing.status, 404, "\(label): \(missing.text)")
                let path = retried(node, "GET", "/v1/path?from=\(conceptID(3))&to=\(conceptID(20))&max_depth=20")
                XCTAssertEqual(path.json?["found"] as? Bool, true, "\(label): path through node \(node): \(path.text)")
                XCTAssertEqual(path.json?["path"] as? [String], (3...20).map { conceptID($0).description }, "\(label): node \(node)")
                let tooFar = retried(node, "GET", "/v1/path?from=\(conceptID(3))&to=\(conceptID(39))&max_depth=20")
                XCTAssertEqual(tooFar.json?["found"] as? Bool, false, "\(label): 36 hops do not fit in depth 20: \(tooFar.text)")
                let search = retried(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":7}"#)
                let hits = ((search.json?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
                XCTAssertEqual(hits, Array(truth), "\(label): search through node \(node): \(search.text)")
            }
        }
        everyReadAnswers(through: 1...5, "five nodes up")

        // Reads of shards held elsewhere went over the peer links.
        var remote = 0
        for node in 1...5 {
            let line = cluster.http(node, "GET", "/metrics").text.split(separator: "\n").first { $0.hasPrefix("sutra_remote_reads_total") }
            remote += line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0
        }
        XCTAssertGreaterThan(remote, 0, "shards held elsewhere are read there")

        // The SDK routes single-shard reads to the shard's leader and paths and searches to any node.
        let sdk = try SutraClient(endpoints: cluster.clientEndpoints)
        for i in [1, 18, 33] {
            let c = try await sdk.get(conceptID(i))
            XCTAssertEqual(c.map { String(decoding: $0.content, as: UTF8.self) }, "c\(i)")
        }
        let viaSDK = try await sdk.search(vector: q, k: 7)
        XCTAssertEqual(viaSDK.map(\.id.description), Array(truth))
        await sdk.close()

        // A content digest through any node: the shards held elsewhere are hashed by their holders; every node
        // gives the same digest of every shard (40 concepts, 39 edges, each stored at both ends).
        func digests(through nodes: ClosedRange<Int>) -> [String] {
            nodes.map { node in
                let r = retried(node, "GET", "/v1/digest")
                XCTAssertEqual(r.status, 200, "digest through node \(node): \(r.text)")
                let shards = r.json?["shards"] as? [[String: Any]] ?? []
                XCTAssertEqual(shards.count, 5, r.text)
                XCTAssertEqual(shards.compactMap { ($0["concepts"] as? NSNumber)?.intValue }.reduce(0, +), n, r.text)
                XCTAssertEqual(shards.compactMap { ($0["edges"] as? NSNumber)?.intValue }.reduce(0, +), 2 * (n - 1), r.text)
                return r.json?["digest"] as? String ?? "none"
            }
        }
        let allDigests = digests(through: 1...5)
        XCTAssertEqual(Set(allDigests).count, 1, "one digest through every node: \(allDigests)")

        // What still reads every shard from one node (an online backup) is refused plainly there.
        let backup = cluster.http(2, "POST", "/v1/admin/backup", timeout: 10)
        XCTAssertEqual(backup.status, 503, backup.text)
        XCTAssertTrue(backup.text.contains("holds 3 of 5"), backup.text)

        // Node 1 dies: every shard keeps two of its three replicas, and every read still answers through the others.
        cluster.kill9(1)
        everyReadAnswers(through: 2...5, "node 1 dead")
        XCTAssertEqual(Set(digests(through: 2...5)), Set(allDigests), "the same digest with node 1 dead")
    }

    private func map(_ node: Int) -> [String: Any]? { cluster.http(node, "GET", "/v1/cluster").json?["map"] as? [String: Any] }

    private func voters(_ map: [String: Any]) -> [[Int]] { (map["shards"] as? [[String: Any]] ?? []).map { $0["voters"] as? [Int] ?? [] } }

    private func settled(_ map: [String: Any]) -> Bool { (map["shards"] as? [[String: Any]] ?? []).allSatisfy { $0["move"] == nil } }

    private func state(_ map: [String: Any], _ id: Int) -> String? {
        (map["nodes"] as? [[String: Any]])?.first { ($0["id"] as? NSNumber)?.intValue == id }?["state"] as? String
    }

    private func peerList(_ ids: ClosedRange<Int>) -> String {
        ids.map { "\($0)=127.0.0.1:\(cluster.base + 200 + $0)" }.joined(separator: ",")
    }

    /// A write through `node`, tried again (the same id and content) for up to 3 s — an election or two — while
    /// a membership change or an election is under way, as a client's retries would.
    private func put(_ n: Int, via node: Int) -> Bool {
        let deadline = Date().addingTimeInterval(3)
        var last = ""
        repeat {
            let r = cluster.http(node, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"concept \(n)\"}", timeout: 10)
            if r.status == 200 { return true }
            last = "\(r.status) \(r.text.prefix(200))"
            usleep(50_000)
        } while Date() < deadline
        print("write \(n) through node \(node) failed for 3 s: \(last)")
        return false
    }

    /// Writes through nodes 1–3 (which stay) until `done(map)` holds or `seconds` pass; returns whether it held.
    private func writeUntil(_ seconds: Double, from n: inout Int, acked: inout [Int], failed: inout Int, _ done: ([String: Any]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if put(n, via: n % 3 + 1) { acked.append(n) } else { failed += 1 }
            n += 1
            if n % 10 == 0, let m = map(1), done(m) { return true }
        }
        return false
    }

    private func unread(_ acked: [Int], via node: Int) -> [Int] {
        acked.filter { a in retried(node, "GET", "/v1/concepts/\(conceptID(a))").json?["content"] as? String != "concept \(a)" }
    }

    /// A loaded three-node cluster (three replicas per shard: every node holds every shard) grows to five nodes
    /// — added, started with --join, `rebalance` — while a client keeps writing: replicas move onto the new nodes
    /// until every node holds two or three of the four shards. Then it shrinks back: nodes 5 and 4 drained and
    /// removed. Every acknowledged write reads back through every node at every step; no write fails beyond its
    /// retries.
    func testALoadedClusterGrowsFromThreeToFiveNodesAndShrinksBack() throws {
        cluster = try LocalTestCluster(nodes: 5, shards: 4, dimension: 4)
        for id in 1...3 { try cluster.startWith(id: id, peers: peerList(1...3), peerPort: cluster.base + 200 + id) }
        try cluster.waitReady()
        var acked: [Int] = [], failed = 0, n = 0
        for _ in 0..<300 { if put(n, via: n % 3 + 1) { acked.append(n) } else { failed += 1 }; n += 1 }

        // Grow: nodes 4 and 5 added and started; they hold nothing until the rebalance.
        for id in 4...5 {
            let body = "{\"id\":\(id),\"peer_address\":\"127.0.0.1:\(cluster.base + 200 + id)\",\"client_address\":\"127.0.0.1:\(cluster.clientPort(id))\",\"http_address\":\"127.0.0.1:\(cluster.httpPort(id))\"}"
            let added = cluster.http(1, "POST", "/v1/admin/nodes", body, timeout: 10)
            XCTAssertEqual(added.status, 200, added.text)
            try cluster.startWith(id: id, peers: peerList(1...id), peerPort: cluster.base + 200 + id, switches: ["--join"])
        }
        var linked = false
        let linkDeadline = Date().addingTimeInterval(20)
        while !linked && Date() < linkDeadline {
            linked = cluster.http(1, "GET", "/v1/cluster").json.flatMap { v in
                (v["nodes"] as? [[String: Any]])?.filter { [4, 5].contains(($0["id"] as? NSNumber)?.intValue ?? 0) && $0["connected"] as? Bool == true }.count
            } == 2
            if !linked { usleep(100_000) }
        }
        XCTAssertTrue(linked, "nodes 4 and 5 linked to node 1")
        let rebalance = cluster.http(2, "POST", "/v1/admin/rebalance", timeout: 10)
        XCTAssertEqual(rebalance.status, 200, rebalance.text)
        var started = Date()
        let grown = writeUntil(120, from: &n, acked: &acked, failed: &failed) { m in
            let v = voters(m)
            return settled(m) && (1...5).allSatisfy { id in (2...3).contains(v.filter { $0.contains(id) }.count) } && v.allSatisfy { $0.count == 3 }
        }
        let growTook = Date().timeIntervalSince(started)
        XCTAssertTrue(grown, "replicas spread over five nodes within 120 s: \(map(1).map(voters) ?? [])\n\(cluster.log(1).suffix(3000))")
        XCTAssertEqual(map(4).flatMap { state($0, 4) }, "active")
        for node in 1...5 { XCTAssertEqual(unread(acked, via: node), [], "grown: acknowledged writes unread through node \(node)") }
        guard grown else { return }

        // Shrink: node 5, then node 4, drained (their replicas move back) and removed.
        started = Date()
        for id in [5, 4] {
            let drain = cluster.http(1, "POST", "/v1/admin/nodes/\(id)/drain", timeout: 10)
            XCTAssertEqual(drain.status, 200, drain.text)
            let drained = writeUntil(120, from: &n, acked: &acked, failed: &failed) { m in settled(m) && !voters(m).contains { $0.contains(id) } }
            XCTAssertTrue(drained, "node \(id) drained within 120 s: \(map(1).map(voters) ?? [])")
            let removed = cluster.http(1, "POST", "/v1/admin/nodes/\(id)/remove", timeout: 10)
            XCTAssertEqual(removed.status, 200, removed.text)
            XCTAssertEqual(map(1).flatMap { state($0, id) }, "removed")
            // Stopped a moment later, once the meta group's leader took it out of that group too (stopping it
            // earlier is within what the group survives here: one of four or five voters).
            usleep(2_000_000)
            XCTAssertEqual(cluster.terminate(id), 0, "node \(id) stops cleanly")
        }
        let shrinkTook = Date().timeIntervalSince(started)
        let final = map(1) ?? [:]
        XCTAssertEqual(voters(final), Array(repeating: [1, 2, 3], count: 4), "three nodes again, each holding every shard")
        for node in 1...3 { XCTAssertEqual(unread(acked, via: node), [], "shrunk: acknowledged writes unread through node \(node)") }
        XCTAssertEqual(failed, 0, "no write failed beyond its retries while the cluster grew and shrank")
        print("grow 3 → 5 (rebalance) in \(String(format: "%.1f", growTook)) s, shrink 5 → 3 (two drains) in \(String(format: "%.1f", shrinkTook)) s, under \(n) writes, \(acked.count) acknowledged, all read back")
    }

    /// `sutra move-replica` on real processes: four nodes, three replicas per shard; shard 0's replica on its
    /// leader moves by hand to the node that lacks it while a client keeps writing — the leadership is handed
    /// off, the source removed — and every acknowledged write reads back through every node. Moves no operator
    /// should make are refused, each with its reason.
    func testAReplicaMovesByHandUnderWritesAndWrongMovesAreRefused() throws {
        cluster = try LocalTestCluster(nodes: 4, shards: 2, dimension: 4)
        for id in 1...4 { try cluster.start(id, overrides: ["--replication": "3"]) }
        try cluster.waitReady(timeout: 30)
        var acked: [Int] = [], failed = 0, n = 0
        for _ in 0..<200 { if put(n, via: n % 3 + 1) { acked.append(n) } else { failed += 1 }; n += 1 }
        let before = try XCTUnwrap(map(1))
        let holders = voters(before)[0]
        let lacking = try XCTUnwrap((1...4).first { !holders.contains($0) })
        let from = try XCTUnwrap((cluster.http(1, "GET", "/v1/cluster").json?["shards"] as? [[String: Any]])?.first.flatMap { ($0["leader"] as? NSNumber)?.intValue })
        XCTAssertTrue(holders.contains(from), "shard 0's leader \(from) is one of its voters \(holders)")

        for (path, status, reason) in [
            ("/v1/admin/shards/0/move?from=\(from)&to=\(holders.first { $0 != from }!)", 400, "already holds shard 0"),
            ("/v1/admin/shards/0/move?from=\(lacking)&to=\(from)", 400, "holds no voting replica of shard 0"),
            ("/v1/admin/shards/0/move?from=\(from)&to=\(from)", 400, "cannot move to the node it is on"),
            ("/v1/admin/shards/0/move?from=\(from)&to=9", 404, "node 9 is not a member"),
            ("/v1/admin/shards/7/move?from=\(from)&to=\(lacking)", 404, "shard 7 does not exist"),
            ("/v1/admin/shards/0/move?from=\(from)", 400, "to (a node id, 1 or more) is required"),
        ] {
            let r = cluster.http(2, "POST", path, timeout: 10)
            XCTAssertEqual(r.status, status, "\(path): \(r.text)")
            XCTAssertTrue(r.text.contains(reason), "\(path): \(r.text)")
        }

        let started = Date()
        let asked = cluster.http(2, "POST", "/v1/admin/shards/0/move?from=\(from)&to=\(lacking)", timeout: 10)
        XCTAssertEqual(asked.status, 200, asked.text)
        // Moved: the node that lacked shard 0 is one of its three voters, nothing in flight. (The balancing that
        // follows a move may hand the source a replica again, so its absence is not what is waited for.)
        let moved = writeUntil(60, from: &n, acked: &acked, failed: &failed) { m in
            settled(m) && voters(m)[0].contains(lacking) && voters(m)[0].count == 3
        }
        XCTAssertTrue(moved, "shard 0 moved from node \(from) to node \(lacking) within 60 s: \(map(1).map(voters) ?? [])")
        for node in 1...4 { XCTAssertEqual(unread(acked, via: node), [], "acknowledged writes unread through node \(node)") }
        XCTAssertEqual(failed, 0, "no write failed beyond its retries while the replica moved")
        print("shard 0 moved by hand from node \(from) (its leader) to node \(lacking) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s under \(n) writes")
    }

    func testAReplicationFactorAboveTheNodeCountIsRefused() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 2, dimension: 4)
        let r = try cluster.runToExit(1, overrides: ["--replication": "4"])
        XCTAssertEqual(r.code, 78, "a configuration refusal: \(r.output)")
        XCTAssertTrue(r.output.contains("replication (--replication / SUTRA_REPLICATION) is 4; allowed: 1…3"), r.output)
    }
}
