import Foundation
import HTTP
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Text in, vectors inside, end to end: a three-node cluster embedding through the reference service
/// (tools/embedding-service: all-MiniLM-L6-v2, 384-d, started here by pid) learns sentences as text and finds
/// them by paraphrase; with the service down every text request is a 503 naming it.
final class TextSearchTests: XCTestCase {
    var cluster: LocalTestCluster!
    var service: pid_t = 0

    override func tearDown() {
        stopService()
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private var root: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path }

    /// Starts the reference service on `port` (installing its virtual environment first if needed).
    private func startService(port: Int) throws {
        let python = root + "/.build-embed/venv/bin/python"
        if !FileManager.default.isExecutableFile(atPath: python) {
            let install = Process()
            install.executableURL = URL(fileURLWithPath: root + "/scripts/embedding-service.sh")
            install.arguments = ["install"]
            try install.run()
            install.waitUntilExit()
            XCTAssertEqual(install.terminationStatus, 0, "scripts/embedding-service.sh install")
        }
        var pid: pid_t = 0
        let args = [python, root + "/tools/embedding-service/server.py", "--port", "\(port)"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        XCTAssertEqual(posix_spawn(&pid, python, nil, nil, &argv, environ), 0)
        service = pid
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if BlockingHTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/health", timeout: 1)?.0 == 200 { return }
            usleep(200_000)
        }
        XCTFail("the embedding service did not answer within 60 s")
    }

    private func stopService() {
        guard service > 0 else { return }
        kill(service, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<50 where waitpid(service, &status, WNOHANG) == 0 { usleep(100_000) }
        if waitpid(service, &status, WNOHANG) == 0 { kill(service, SIGKILL); waitpid(service, &status, 0) }
        service = 0
    }

    func testLearnTextAndFindItByParaphraseAndAClear503WhenTheServiceIsDown() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 384)
        let port = cluster.base + 290
        try startService(port: port)
        cluster.extraFlags += ["--embedding-service", "http://127.0.0.1:\(port)"]
        try cluster.startAll()
        XCTAssertTrue(cluster.log(1).contains("texts are embedded by http://127.0.0.1:\(port)/v1/embeddings"))

        let topics: [(String, [String])] = [
            ("cooking", ["Simmer the tomato sauce slowly with garlic and basil.", "Knead the bread dough for ten minutes before it rises.",
                         "Sear the steak in a very hot cast iron pan.", "Whisk the eggs and sugar until pale for the sponge cake."]),
            ("astronomy", ["Jupiter is the largest planet in our solar system.", "A light year is the distance light travels in one year.",
                           "The Andromeda galaxy will collide with the Milky Way.", "Saturn's rings are made mostly of ice particles."]),
            ("finance", ["The central bank raised interest rates to curb inflation.", "Diversifying a portfolio lowers its risk.",
                         "Bond prices fall when yields rise.", "The company reported record quarterly earnings."]),
            ("sport", ["The striker scored twice in the second half.", "She won the marathon in under two and a half hours.",
                       "The tennis final went to a fifth set tie-break.", "The team trained at altitude before the championship."]),
            ("computing", ["The compiler turns source code into machine instructions.", "A hash table gives constant time lookups on average.",
                           "Raft elects a leader to replicate a log across servers.", "Garbage collection frees memory that is no longer reachable."]),
            ("gardening", ["Water the tomato plants early in the morning.", "Prune the roses in late winter before new growth.",
                           "Compost improves the structure of clay soil.", "Plant tulip bulbs in autumn for spring flowers."]),
        ]
        var idOf: [String: String] = [:]
        for (_, sentences) in topics {
            for s in sentences {
                // /learn (the seed route) and /v1/concepts alike: text, no embedding.
                let r = idOf.count % 2 == 0
                    ? cluster.http(1 + idOf.count % 3, "POST", "/learn", #"{"content":"\#(s)"}"#)
                    : cluster.http(1 + idOf.count % 3, "POST", "/v1/concepts", #"{"content":"\#(s)"}"#)
                XCTAssertEqual(r.status, 200, r.text)
                idOf[s] = (r.json?["id"] as? String)
            }
        }
        XCTAssertEqual(idOf.count, 24)
        // Each concept got the embedding of its text: 384 numbers.
        let one = cluster.http(2, "GET", "/v1/concepts/\(idOf[topics[0].1[0]]!)")
        XCTAssertEqual((one.json?["embedding"] as? [Any])?.count, 384, one.text)

        func top(_ query: String, k: Int = 4, node: Int = 1) -> [String] {
            let r = cluster.http(node, "POST", "/v1/search", #"{"text":"\#(query)","k":\#(k)}"#)
            XCTAssertEqual(r.status, 200, r.text)
            return ((r.json?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        }
        let paraphrases: [(String, String)] = [
            ("how do I make a pasta sauce from tomatoes", "Simmer the tomato sauce slowly with garlic and basil."),
            ("which planet is the biggest", "Jupiter is the largest planet in our solar system."),
            ("why do bonds lose value when rates go up", "Bond prices fall when yields rise."),
            ("a distributed consensus algorithm with leader election", "Raft elects a leader to replicate a log across servers."),
            ("running a long distance race quickly", "She won the marathon in under two and a half hours."),
            ("when should I cut back my rose bushes", "Prune the roses in late winter before new growth."),
        ]
        var firsts = 0
        for (i, (query, expected)) in paraphrases.enumerated() {
            let found = top(query, node: 1 + i % 3)
            if found.first == idOf[expected] { firsts += 1 }
            let named = found.map { id in idOf.first { $0.value == id }?.key ?? id }
            XCTAssertTrue(found.prefix(3).contains(idOf[expected]!), "'\(query)' finds '\(expected)' among its first three: \(named)")
        }
        XCTAssertGreaterThanOrEqual(firsts, 5, "the paraphrased sentence comes first for nearly every query")
        // The seed route's text query, and a filtered text search.
        let seed = cluster.http(3, "POST", "/search", #"{"query":"stars and galaxies in space","top_k":4}"#)
        let seedIDs = Set(((seed.json?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
        XCTAssertGreaterThanOrEqual(seedIDs.intersection(topics[1].1.compactMap { idOf[$0] }).count, 3, seed.text)
        // The seed document's search smoke test, literally (its port replaced by a node's): results.
        let smoke = try runProgram("/usr/bin/env", ["curl", "-s", "-X", "POST", "http://127.0.0.1:\(cluster.httpPort(2))/search",
                                                    "-H", "Content-Type: application/json", "-d", #"{"query": "test", "top_k": 10}"#])
        let smokeResults = (try? JSONSerialization.jsonObject(with: Data(smoke.output.utf8)) as? [String: Any])?["results"] as? [Any]
        XCTAssertEqual(smokeResults?.count, 10, smoke.output)
        let metrics = cluster.http(1, "GET", "/metrics").text
        XCTAssertTrue(metrics.contains("sutra_embedding_texts_total{node=\"1\"}"),
                      "counted: \(metrics.split(separator: "\n").filter { $0.contains("embedding") })")

        // The service down: a clear 503 naming it, for writes with text and for text searches; vectors still work.
        stopService()
        let down = cluster.http(1, "POST", "/v1/concepts", #"{"content":"nobody embeds this"}"#)
        XCTAssertEqual(down.status, 503, down.text)
        XCTAssertTrue(down.text.replacingOccurrences(of: "\\/", with: "/").contains("embedding service http://127.0.0.1:\(port)/v1/embeddings"), down.text)
        XCTAssertTrue(down.text.contains("Connection refused"), down.text)
        let search = cluster.http(2, "POST", "/v1/search", #"{"text":"anything"}"#)
        XCTAssertEqual(search.status, 503, search.text)
        XCTAssertTrue(search.text.contains("embedding service"), search.text)
        let vector = Array(repeating: "0.05", count: 384).joined(separator: ",")
        let byVector = cluster.http(1, "POST", "/v1/search", #"{"vector":[\#(vector)],"k":2}"#)
        XCTAssertEqual(byVector.status, 200, byVector.text)
        let binary = cluster.http(1, "POST", "/v1/concepts", #"{"content_base64":"AAEC/w=="}"#)
        XCTAssertEqual(binary.status, 200, "binary content needs no embedding: \(binary.text)")
    }
}
