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

    private func embedding(_ i: Int) -> [Float] {
        let a = Double(i) * 0.05
        return [Float(cos(a)), Float(sin(a)), Float(i % 3) * 0.1, 0.5]
    }

    private func cosineDistance(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for j in 0..<a.count { dot += a[j] * b[j]; na += a[j] * a[j]; nb += b[j] * b[j] }
        return 1 - dot / (na.squareRoot() * nb.squareRoot())
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
            let e = embedding(i).map { "\($0)" }.joined(separator: ",")
            let r = retried(1 + i % 5, "POST", "/v1/concepts", #"{"id":"\#(conceptID(i))","content":"c\#(i)","embedding":[\#(e)]}"#)
            XCTAssertEqual(r.status, 200, r.text)
        }
        for i in 0..<(n - 1) {
            let r = retried(1 + i % 5, "POST", "/v1/associations", #"{"source":"\#(conceptID(i))","target":"\#(conceptID(i + 1))","type":"causal"}"#)
            XCTAssertEqual(r.status, 200, r.text)
        }
        let q: [Float] = [Float(cos(1.27)), Float(sin(1.27)), 0.03, 0.5]
        let qs = q.map { "\($0)" }.joined(separator: ",")
        let truth = (0..<n).sorted { cosineDistance(embedding($0), q) < cosineDistance(embedding($1), q) }.prefix(7).map { conceptID($0).description }

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

        // What reads every shard from one node is refused plainly there, not answered from part of the data.
        let digest = cluster.http(2, "GET", "/v1/digest", timeout: 10)
        XCTAssertEqual(digest.status, 503, digest.text)
        XCTAssertTrue(digest.text.contains("holds 3 of 5"), digest.text)

        // Node 1 dies: every shard keeps two of its three replicas, and every read still answers through the others.
        cluster.kill9(1)
        everyReadAnswers(through: 2...5, "node 1 dead")
    }

    func testAReplicationFactorAboveTheNodeCountIsRefused() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 2, dimension: 4)
        let r = try cluster.runToExit(1, overrides: ["--replication": "4"])
        XCTAssertEqual(r.code, 78, "a configuration refusal: \(r.output)")
        XCTAssertTrue(r.output.contains("replication (--replication / SUTRA_REPLICATION) is 4; allowed: 1…3"), r.output)
    }
}
