import Foundation
import SutraClient
import XCTest

/// Vector search on real nodes, through HTTP and the SDK: right by default (exact below the scan threshold), an
/// exact search on request, and filters on strength, confidence and association type applied inside the search —
/// k answers whenever k concepts pass, through any node.
final class ClusterSearchTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private func ids(_ r: LocalTestCluster.Reply) -> [String] {
        ((r.json?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
    }

    func testFiltersAndExactSearchThroughEveryNodeAndTheSDK() async throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 4)
        try cluster.startAll()
        let n = 60
        func retried(_ method: String, _ path: String, _ body: String) {
            var r = cluster.httpToLeader(via: 1, method, path, body)
            let deadline = Date().addingTimeInterval(10)
            while r.status == 503 && Date() < deadline { usleep(100_000); r = cluster.httpToLeader(via: 1, method, path, body) }
            XCTAssertEqual(r.status, 200, "\(path): \(r.text)")
        }
        for i in 0..<n {
            let e = circleEmbedding(i).map { "\($0)" }.joined(separator: ",")
            retried("POST", "/v1/concepts", #"{"id":"\#(conceptID(i))","content":"c\#(i)","embedding":[\#(e)],"strength":\#(i % 2 == 0 ? 0.9 : 0.2),"confidence":\#(i < 30 ? 1 : 0.4)}"#)
        }
        // Concepts 0, 10, 20, … cause the next one: both ends have a causal association.
        var causal = Set<String>()
        for i in stride(from: 0, to: n, by: 10) {
            retried("POST", "/v1/associations", #"{"source":"\#(conceptID(i))","target":"\#(conceptID(i + 1))","type":"causal"}"#)
            causal.insert(conceptID(i).description)
            causal.insert(conceptID(i + 1).description)
        }
        // Between concepts (no two at the same distance): angle 1.27, between concepts 25 and 26.
        let q: [Float] = [Float(cos(1.27)), Float(sin(1.27)), 0.03, 0.5]
        let qs = q.map { "\($0)" }.joined(separator: ",")
        let truth = (0..<n).sorted { cosineDistance(circleEmbedding($0), q) < cosineDistance(circleEmbedding($1), q) }
        func expected(_ k: Int, _ pass: (Int) -> Bool) -> [String] { truth.filter(pass).prefix(k).map { conceptID($0).description } }

        for node in 1...3 {
            let plain = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":10}"#)
            XCTAssertEqual(plain.status, 200, plain.text)
            XCTAssertEqual(ids(plain), expected(10) { _ in true }, "node \(node): a small index is scanned exactly: brute force's answer")
            let strong = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":5,"filter":{"min_strength":0.5}}"#)
            XCTAssertEqual(ids(strong), expected(5) { $0 % 2 == 0 }, "node \(node): only strength ≥ 0.5: \(strong.text)")
            let both = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":50,"filter":{"min_strength":0.5,"min_confidence":0.9}}"#)
            XCTAssertEqual(ids(both), expected(50) { $0 % 2 == 0 && $0 < 30 }, "node \(node): every condition holds; all 15 that pass")
            let linked = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":8,"filter":{"association_type":"causal"}}"#)
            XCTAssertEqual(ids(linked).count, 8, linked.text)
            XCTAssertTrue(Set(ids(linked)).isSubset(of: causal), "node \(node): only concepts with a causal association")
            XCTAssertEqual(ids(linked), expected(8) { causal.contains(conceptID($0).description) })
            let exact = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":7,"exact":true}"#)
            XCTAssertEqual(ids(exact), expected(7) { _ in true })
            let none = cluster.http(node, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":5,"filter":{"association_type":"temporal"}}"#)
            XCTAssertEqual(none.status, 200)
            XCTAssertEqual(ids(none), [], "no concept passes: no answer")
        }
        // The seed route takes the same options.
        let seed = cluster.http(2, "POST", "/search", #"{"vector":[\#(qs)],"top_k":3,"filter":{"min_strength":0.5}}"#)
        XCTAssertEqual(ids(seed), expected(3) { $0 % 2 == 0 }, seed.text)
        // Refusals name the field.
        let bad = cluster.http(1, "POST", "/v1/search", #"{"vector":[\#(qs)],"filter":{"min_strength":2}}"#)
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.text.contains("filter.min_strength"), bad.text)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/search", #"{"vector":[\#(qs)],"filter":{"association_type":"friendly"}}"#).status, 400)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/search", #"{"vector":[\#(qs)],"exact":"yes"}"#).status, 400)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/search", #"{"vector":[\#(qs)],"filter":[1]}"#).status, 400)

        // The SDK: the same answers (sent as search_v2, which a 0.1 node would refuse rather than ignore).
        let sdk = try SutraClient(endpoints: cluster.clientEndpoints)
        let viaSDK = try await sdk.search(vector: q, k: 5, filter: SearchFilter(minStrength: 0.5))
        XCTAssertEqual(viaSDK.map(\.id.description), expected(5) { $0 % 2 == 0 })
        let typed = try await sdk.search(vector: q, k: 8, filter: SearchFilter(associationType: .causal))
        XCTAssertEqual(typed.map(\.id.description), expected(8) { causal.contains(conceptID($0).description) })
        let exactSDK = try await sdk.search(vector: q, k: 4, exact: true, consistency: .stale)
        XCTAssertEqual(exactSDK.map(\.id.description), expected(4) { _ in true })
        await sdk.close()

        // After a restart from the saved vector index (vectors only: the filter's strength and confidence are
        // read again from the shards' state), node 2 filters as before.
        XCTAssertEqual(cluster.http(2, "POST", "/v1/flush").status, 200, "snapshots and the saved index")
        XCTAssertEqual(cluster.terminate(2), 0)
        try cluster.start(2)
        try cluster.waitReady()
        let again = cluster.http(2, "POST", "/v1/search", #"{"vector":[\#(qs)],"k":50,"filter":{"min_strength":0.5,"min_confidence":0.9}}"#)
        XCTAssertEqual(ids(again), expected(50) { $0 % 2 == 0 && $0 < 30 }, "after a restart: \(again.text)")

        // Counted by method.
        let metrics = cluster.http(1, "GET", "/metrics").text
        let exactCount = metrics.split(separator: "\n").first { $0.hasPrefix("sutra_vector_searches_total{") && $0.contains("method=\"exact\"") }
        XCTAssertGreaterThan(exactCount.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0, 0, String(describing: exactCount))
    }
}
