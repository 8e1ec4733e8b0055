import Foundation
import HTTP
import Release
import Shard
import XCTest

/// Real three-node clusters on loopback, driven through the HTTP/JSON API.
final class ClusterHTTPTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private func put(_ n: Int, via node: Int = 1, embedding: [Float]? = nil, file: StaticString = #filePath, line: UInt = #line) {
        var body = "{\"id\":\"\(conceptID(n))\",\"content\":\"concept \(n)\""
        if let e = embedding { body += ",\"embedding\":[\(e.map { "\($0)" }.joined(separator: ","))]" }
        body += "}"
        var r = cluster.httpToLeader(via: node, "POST", "/v1/concepts", body)
        // 503 (no leader right now, or the leader this node knows is unreachable — it was just killed): retry,
        // as a client would; a put of the same id applies the same concept.
        let deadline = Date().addingTimeInterval(10)
        while r.status == 503 && Date() < deadline {
            usleep(100_000)
            r = cluster.httpToLeader(via: node, "POST", "/v1/concepts", body)
        }
        XCTAssertEqual(r.status, 200, "put \(n): \(String(decoding: r.body, as: UTF8.self))", file: file, line: line)
    }

    private func waitUntil(_ timeout: Double = 10, _ what: String, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !cond() {
            if Date() > deadline { XCTFail("timed out waiting for \(what)"); return }
            usleep(50_000)
        }
    }

    /// An answer bigger than the socket buffers, on a connection the request asks to close (`Connection: close`,
    /// as every `BlockingHTTPClient` request does): all of it arrives before the node closes. The node used to
    /// close with the write still queued, cutting such answers short (a backup shard of 18 MB arrived as 4).
    func testABigAnswerArrivesWholeBeforeTheConnectionCloses() throws {
        cluster = try LocalTestCluster(nodes: 1, shards: 1, flags: ["--insecure-peers"])
        try cluster.startAll()
        try cluster.waitReady()
        let content = String(repeating: "0123456789abcdef", count: (9 << 20) / 16)   // 9 MiB: within the 10 MiB limit
        let put = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(7))\",\"content\":\"\(content)\"}")
        XCTAssertEqual(put.status, 200, put.text.prefix(300).description)
        for _ in 0..<3 {
            let r = cluster.http(1, "GET", "/v1/concepts/\(conceptID(7))", timeout: 30)
            XCTAssertEqual(r.status, 200, "the answer was cut short (or did not come)")
            XCTAssertEqual(r.json?["content"] as? String, content)
        }
    }

    /// 3 nodes × 8 shards: writes through one node reach every shard's leader; every node reads them back
    /// (linearizably through the leader it names, and from its own replica); each shard has exactly one leader.
    func testWriteThroughOneNodeReadThroughEveryNode() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 8)
        try cluster.startAll()
        for n in 0..<40 { put(n, via: 1) }
        for node in 1...3 {
            for n in 0..<40 {
                let r = cluster.httpToLeader(via: node, "GET", "/v1/concepts/\(conceptID(n))")
                XCTAssertEqual(r.status, 200)
                XCTAssertEqual(r.json?["content"] as? String, "concept \(n)")
            }
            waitUntil(10, "node \(node)'s replicas to apply every write") {
                (0..<40).allSatisfy { cluster.http(node, "GET", "/v1/concepts/\(conceptID($0))?consistency=stale").status == 200 }
            }
        }
        // Exactly one leader per shard, and every node agrees on it.
        waitUntil(10, "every node to agree on one leader per shard") {
            let views = (1...3).map { cluster.clusterView($0) }
            return (0..<8).allSatisfy { s in
                let leaders = Set(views.map { ($0[s]["leader"] as? NSNumber)?.intValue ?? 0 })
                let claiming = views.filter { ($0[s]["role"] as? String) == "leader" }.count
                return leaders.count == 1 && !leaders.contains(0) && claiming == 1
            }
        }
    }

    /// Any node answers any request (issue 15 item 1): writes, compare-and-set, deletes, linearizable reads,
    /// cross-shard associations and batches sent straight to a node that does not lead the shard (or, for a
    /// transaction, leads none of its shards) are answered 200 by that node — never 421 — with what the leader's
    /// node answers; every node then reads every write back. Each node counts what it forwarded.
    func testEveryNodeAnswersEveryRequestWithoutRedirects() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        let leaderOf = { (s: Int) in s % 3 + 1 }     // placed: shard s led by node s % 3 + 1
        func send(_ node: Int, _ method: String, _ path: String, _ body: String = "") -> LocalTestCluster.Reply {
            var r = cluster.http(node, method, path, body)
            let deadline = Date().addingTimeInterval(10)
            while r.status == 503 && Date() < deadline {   // an election in between: retry, as a client would
                usleep(100_000)
                r = cluster.http(node, method, path, body)
            }
            return r
        }
        // A concept per (shard, node that does not lead it), written through that node.
        var ids: [(n: Int, shard: Int)] = []
        var n = 0
        while ids.count < 8 {
            n += 1
            let s = conceptID(n).shard(of: 4)
            if ids.filter({ $0.shard == s }).count < 2 { ids.append((n, s)) }
        }
        for (n, s) in ids {
            let via = leaderOf(s) % 3 + 1                  // a node that does not lead shard s
            XCTAssertNotEqual(via, leaderOf(s))
            let r = send(via, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"v\(n)\"}")
            XCTAssertEqual(r.status, 200, "put of \(n) (shard \(s)) through node \(via): \(r.text)")
            XCTAssertNotNil(r.json?["version"], r.text)
            // Compare-and-set through the third node: the condition is checked by the leader.
            let third = 6 - via - leaderOf(s)
            let cas = send(third, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"w\(n)\",\"if_content\":\"v\(n)\"}")
            XCTAssertEqual(cas.status, 200, "conditional put of \(n) through node \(third): \(cas.text)")
            let failed = send(third, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"x\(n)\",\"if_content\":\"v\(n)\"}")
            XCTAssertEqual(failed.status, 412, "a forwarded condition that does not hold: \(failed.text)")
        }
        for (n, _) in ids {
            for node in 1...3 {
                let r = send(node, "GET", "/v1/concepts/\(conceptID(n))")
                XCTAssertEqual(r.status, 200, "get of \(n) through node \(node): \(r.text)")
                XCTAssertEqual(r.json?["content"] as? String, "w\(n)", "node \(node) reads the acknowledged write")
            }
        }
        // Cross-shard associations through a node that leads neither end's shard, when there is one.
        var pairs = 0
        for (a, sa) in ids {
            for (b, sb) in ids where sa != sb {
                guard let via = (1...3).first(where: { $0 != leaderOf(sa) && $0 != leaderOf(sb) }) else { continue }
                let r = send(via, "POST", "/v1/associations",
                             "{\"source\":\"\(conceptID(a))\",\"target\":\"\(conceptID(b))\",\"type\":\"causal\",\"confidence\":0.5}")
                XCTAssertEqual(r.status, 200, "association \(a) → \(b) through node \(via): \(r.text)")
                pairs += 1
                for node in 1...3 {
                    let out = send(node, "GET", "/v1/concepts/\(conceptID(a))/neighbors?direction=out")
                    let ins = send(node, "GET", "/v1/concepts/\(conceptID(b))/neighbors?direction=in")
                    let outIDs = (out.json?["neighbors"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                    let inIDs = (ins.json?["neighbors"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                    XCTAssertTrue(outIDs.contains(conceptID(b).description), "node \(node): out-edge \(a) → \(b): \(out.text)")
                    XCTAssertTrue(inIDs.contains(conceptID(a).description), "node \(node): in-edge \(a) → \(b): \(ins.text)")
                }
                break
            }
        }
        XCTAssertGreaterThan(pairs, 0, "no pair of shards led by two nodes with a third to ask")
        // A batch across every shard through every node, then a delete through a node that does not lead it.
        for node in 1...3 {
            let items = ids.map { "{\"op\":\"put\",\"id\":\"\(conceptID($0.n))\",\"content\":\"b\(node)-\($0.n)\"}" }
            let r = send(node, "POST", "/v1/batch", "{\"items\":[\(items.joined(separator: ","))]}")
            XCTAssertEqual(r.status, 200, "cross-shard batch through node \(node): \(r.text)")
            for (n, _) in ids {
                XCTAssertEqual(send(node % 3 + 1, "GET", "/v1/concepts/\(conceptID(n))").json?["content"] as? String, "b\(node)-\(n)")
            }
        }
        let (gone, s) = ids[0]
        let del = send(leaderOf(s) % 3 + 1, "DELETE", "/v1/concepts/\(conceptID(gone))")
        XCTAssertEqual(del.status, 200, del.text)
        for node in 1...3 { XCTAssertEqual(send(node, "GET", "/v1/concepts/\(conceptID(gone))").status, 404, "node \(node)") }
        for node in 1...3 {
            XCTAssertGreaterThan(metricSum(cluster.http(node, "GET", "/metrics"), "sutra_client_requests_forwarded_total"), 0, "node \(node) forwarded")
        }
    }

    /// A leadership handoff is invisible to clients: right after each of many transfers of shard 0's leadership,
    /// a write of a shard-0 concept and a linearizable read of it through every node answer 200 at the first
    /// try — a request meeting the handoff (the old leader refusing proposals, a node knowing no leader yet)
    /// waits for the new leader inside the node instead of answering 503.
    func testLeadershipHandoffsAreInvisibleToClients() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        let ids = (1...2_000).filter { conceptID($0).shard(of: 4) == 0 }.prefix(120)
        var transfers = 0, requests = 0
        var next = ids.makeIterator()
        for round in 0..<30 {
            // Hand shard 0 on from whichever node leads it now (the others refuse).
            guard let from = (1...3).first(where: { cluster.http($0, "POST", "/v1/admin/transfer-leader?shard=0&to=\($0 % 3 + 1)").status == 200 }) else {
                usleep(50_000)
                continue
            }
            transfers += 1
            for node in [from, from % 3 + 1, (from + 1) % 3 + 1] {
                guard let n = next.next() else { break }
                let put = cluster.http(node, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"h\(n)\"}")
                XCTAssertEqual(put.status, 200, "round \(round): a put through node \(node) right after node \(from) began handing shard 0 on: \(put.text)")
                let get = cluster.http(node % 3 + 1, "GET", "/v1/concepts/\(conceptID(n))")
                XCTAssertEqual(get.status, 200, "round \(round): a read through node \(node % 3 + 1): \(get.text)")
                XCTAssertEqual(get.json?["content"] as? String, "h\(n)")
                requests += 2
            }
        }
        XCTAssertGreaterThanOrEqual(transfers, 20, "shard 0 changed hands often enough to test anything")
        let waited = (1...3).map { metricSum(cluster.http($0, "GET", "/metrics"), "sutra_leader_wait_retries_total") }.reduce(0, +)
        print("leadership handoffs: \(transfers) transfers, \(requests) requests answered 200 at the first try; \(waited) tries again inside the nodes")
    }

    /// Issue 15 items 2–4 over HTTP: creates name what they made (an id-less create's id, every batch item's);
    /// an Idempotency-Key makes an id-less create or batch name the same concepts when retried; unknown fields and
    /// query parameters are refused naming them (with the near one), strength and confidence outside [0, 1] too;
    /// HEAD answers GET's head; a 405 says what is allowed.
    func testWritesNameWhatTheyMadeAndStrictInputIsRefusedClearly() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        func post(_ path: String, _ body: String, key: String? = nil, node: Int = 1) -> LocalTestCluster.Reply {
            let r = BlockingHTTPClient.exchange("POST", host: "127.0.0.1", port: cluster.httpPort(node), path: path, body: Array(body.utf8),
                                                timeout: 5, headers: key.map { [("Idempotency-Key", $0)] } ?? [])
            return r.map { LocalTestCluster.Reply(status: $0.status, body: $0.body, headers: $0.headers) } ?? LocalTestCluster.Reply(status: 0, body: [])
        }
        let made = post("/v1/concepts", #"{"content":"no id given"}"#)
        XCTAssertEqual(made.status, 200, made.text)
        let id = try XCTUnwrap(made.json?["id"] as? String, "the made-up id comes back: \(made.text)")
        XCTAssertNotNil(made.json?["version"])
        XCTAssertEqual(cluster.http(2, "GET", "/v1/concepts/\(id)").json?["content"] as? String, "no id given")

        // The same key, retried (through another node too): one concept, the first answer again.
        let first = post("/v1/concepts", #"{"content":"once"}"#, key: "order-7781")
        let again = post("/v1/concepts", #"{"content":"once"}"#, key: "order-7781", node: 3)
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(again.status, 200, again.text)
        XCTAssertEqual(first.json?["id"] as? String, again.json?["id"] as? String, "a retry names the same concept")
        XCTAssertEqual((first.json?["version"] as? NSNumber)?.intValue, (again.json?["version"] as? NSNumber)?.intValue)
        XCTAssertEqual(again.headers["idempotent-replayed"], "true")
        XCTAssertNotEqual(post("/v1/concepts", #"{"content":"once"}"#, key: "order-7782").json?["id"] as? String, first.json?["id"] as? String)
        let batch = #"{"items":[{"op":"put","content":"b1"},{"op":"put","content":"b2"}]}"#
        let b1 = post("/v1/batch", batch, key: "batch-1"), b2 = post("/v1/batch", batch, key: "batch-1", node: 2)
        let ids1 = (b1.json?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        let ids2 = (b2.json?["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        XCTAssertEqual(ids1.count, 2, b1.text)
        XCTAssertEqual(ids1, ids2, "a retried batch names the same concepts")
        XCTAssertEqual(Set(ids1).count, 2)
        XCTAssertEqual(post("/v1/concepts", #"{"content":"x"}"#, key: "bad key with spaces").status, 400)

        // Strict input.
        func refused(_ r: LocalTestCluster.Reply, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(r.status, 400, r.text, file: file, line: line)
            XCTAssertEqual(r.errorCode, "INVALID_ARGUMENT", r.text, file: file, line: line)
            for n in needles { XCTAssertTrue(r.text.contains(n), "\(r.text) should say \(n)", file: file, line: line) }
        }
        refused(post("/v1/concepts", #"{"contnet":"typo"}"#), ["unknown field 'contnet'", "did you mean 'content'"])
        refused(post("/v1/search", #"{"vector":[1,2,3,4],"filter":{"min_strenght":0.5}}"#), ["unknown field 'min_strenght'", "did you mean 'min_strength'"])
        refused(post("/v1/associations", #"{"source":"\#(id)","target":"\#(id)","confidense":1}"#), ["'confidense'", "did you mean 'confidence'"])
        refused(post("/v1/batch", #"{"items":[{"op":"put","contetn":"x"}]}"#), ["item 0", "'contetn'"])
        refused(cluster.http(1, "GET", "/v1/concepts/\(id)?consistancy=stale"), ["query parameter 'consistancy'", "did you mean 'consistency'"])
        refused(post("/v1/concepts", #"{"content":"x","strength":5}"#), ["strength", "[0, 1]"])
        refused(post("/v1/concepts", #"{"content":"x","confidence":-1}"#), ["confidence", "[0, 1]"])
        // A client session's sequence reused for another cross-shard write while the first one's record is still
        // kept: refused with a 400 that says so — never an acknowledgment of writes not made, never a hang (a
        // retry arriving while the first was being resolved waited for an answer already given).
        let ends = (1..<200).map { conceptID($0) }
        let a = ends[0], b = ends.first { $0.shard(of: 4) != a.shard(of: 4) }!
        let c = ends.first { $0 != a && $0 != b && $0.shard(of: 4) == a.shard(of: 4) }!, d = ends.first { $0 != b && $0.shard(of: 4) == b.shard(of: 4) }!
        func associate(_ s: ConceptID, _ t: ConceptID) -> LocalTestCluster.Reply {
            let r = BlockingHTTPClient.exchange("POST", host: "127.0.0.1", port: cluster.httpPort(1), path: "/v1/associations",
                                                body: Array(#"{"source":"\#(s)","target":"\#(t)"}"#.utf8), timeout: 5,
                                                headers: [("X-Sutra-Client-Id", "4242"), ("X-Sutra-Sequence", "1")])
            return r.map { LocalTestCluster.Reply(status: $0.status, body: $0.body, headers: $0.headers) } ?? LocalTestCluster.Reply(status: 0, body: [])
        }
        for x in [a, b, c, d] { XCTAssertEqual(post("/v1/concepts", #"{"id":"\#(x)","content":"end"}"#).status, 200) }
        XCTAssertEqual(associate(a, b).status, 200)
        var reused = associate(c, d)
        for _ in 0..<50 where reused.status == 409 { usleep(100_000); reused = associate(c, d) }
        refused(reused, ["was already used by another transaction", "new sequence"])

        // HEAD: GET's status and Content-Length, no body. 405: Allow.
        let get = cluster.http(1, "GET", "/v1/concepts/\(id)")
        let raw = try RawConnection(port: cluster.httpPort(1))
        try raw.sendRaw(Array("HEAD /v1/concepts/\(id) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let head = String(decoding: raw.receiveUntilClosed(), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertTrue(head.contains("Content-Length: \(get.body.count)\r\n"), head)
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), "no body after the head: \(head)")
        let put = cluster.http(1, "PUT", "/v1/concepts", "{}")
        XCTAssertEqual(put.status, 405)
        XCTAssertEqual(put.headers["allow"], "POST")
        XCTAssertEqual(cluster.http(1, "PATCH", "/v1/associations").headers["allow"], "POST, DELETE")
    }

    /// The seed documents' smoke tests, run literally with curl (their port replaced by a node's, and not its
    /// leader's): learn answers a sequence, query finds what was learned (and says found: false for an unknown
    /// id), search by vector answers results, a text query is a clear 503, stats count what is there, health says
    /// healthy, transaction-stats has active_count, flush answers.
    func testTheSeedDocumentsSmokeTestsPass() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        let base = "http://127.0.0.1:\(cluster.httpPort(2))"
        func curl(_ args: [String]) throws -> [String: Any] {
            let r = try runProgram("/usr/bin/env", ["curl", "-s"] + args)
            XCTAssertEqual(r.status, 0, r.output)
            return (try? JSONSerialization.jsonObject(with: Data(r.output.utf8))) as? [String: Any] ?? ["unparsed": r.output]
        }
        let json = ["-H", "Content-Type: application/json"]
        let learned = try curl(["-X", "POST", "\(base)/learn"] + json + ["-d", #"{"content": "Test concept", "strength": 1.0, "confidence": 0.9}"#])
        XCTAssertNotNil(learned["sequence"] as? NSNumber, "\(learned)")
        let id = try XCTUnwrap(learned["concept_id"] as? String, "\(learned)")
        let found = try curl(["-X", "POST", "\(base)/query"] + json + ["-d", "{\"concept_id\": \"\(id)\"}"])
        XCTAssertEqual(found["found"] as? Bool, true, "\(found)")
        XCTAssertEqual(found["content"] as? String, "Test concept")
        XCTAssertEqual((found["confidence"] as? NSNumber)?.floatValue, 0.9)
        let missing = try curl(["-X", "POST", "\(base)/query"] + json + ["-d", "{\"concept_id\": \"\(conceptID(999))\"}"])
        XCTAssertEqual(missing["found"] as? Bool, false, "\(missing)")
        XCTAssertEqual(try curl(["-X", "POST", "\(base)/learn"] + json + ["-d", #"{"content": "with a vector", "embedding": [1, 0, 0, 0]}"#])["sequence"] != nil, true)
        let results = try curl(["-X", "POST", "\(base)/search"] + json + ["-d", #"{"vector": [1, 0, 0, 0], "top_k": 10}"#])
        XCTAssertEqual((results["results"] as? [[String: Any]])?.count, 1, "\(results)")
        let text = try runProgram("/usr/bin/env", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "\(base)/search"] + json + ["-d", #"{"query": "test", "top_k": 10}"#])
        XCTAssertEqual(text.output, "503", "a text query without an embedding service")
        let health = try curl(["\(base)/health"])
        XCTAssertEqual(health["healthy"] as? Bool, true)
        XCTAssertEqual(health["status"] as? String, "ok")
        // Stats are this node's replicas: every write is applied here shortly.
        var stats: [String: Any] = [:]
        let deadline = Date().addingTimeInterval(10)
        repeat { stats = try curl(["\(base)/stats"]); usleep(50_000) } while (stats["concepts"] as? NSNumber)?.intValue != 2 && Date() < deadline
        XCTAssertEqual((stats["concepts"] as? NSNumber)?.intValue, 2, "\(stats)")
        XCTAssertEqual((stats["edges"] as? NSNumber)?.intValue, 0)
        XCTAssertNotNil(stats["uptime_seconds"] as? NSNumber)
        XCTAssertNotNil(stats["vectors"] as? NSNumber)
        XCTAssertNotNil(try curl(["\(base)/transaction-stats"])["active_count"] as? NSNumber)
        XCTAssertEqual(try curl(["-X", "POST", "\(base)/flush"])["flushed"] as? Bool, true)
        let typo = try curl(["-X", "POST", "\(base)/learn"] + json + ["-d", #"{"contnet": "x"}"#])
        XCTAssertTrue(((typo["error"] as? [String: Any])?["message"] as? String ?? "").contains("did you mean 'content'"), "\(typo)")
    }

    /// PATCH changes only the fields it gives (through any node), under the same conditions as a put: the
    /// untouched fields keep their values, an unmet condition is a 412 that changes nothing, a missing concept a
    /// 404, an empty patch and `if_absent` 400s; `"embedding": null` removes the embedding.
    func testPatchChangesOnlyTheGivenFields() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        let id = conceptID(5).description
        XCTAssertEqual(cluster.http(1, "POST", "/v1/concepts", #"{"id":"\#(id)","content":"first","embedding":[1,2,3,4],"strength":0.5,"confidence":0.25}"#).status, 200)
        for node in 1...3 {
            let r = cluster.http(node, "PATCH", "/v1/concepts/\(id)", #"{"strength":0.75}"#)
            XCTAssertEqual(r.status, 200, "node \(node): \(r.text)")
            XCTAssertEqual(r.json?["id"] as? String, id)
        }
        var got = cluster.http(2, "GET", "/v1/concepts/\(id)").json ?? [:]
        XCTAssertEqual(got["content"] as? String, "first", "content untouched")
        XCTAssertEqual((got["embedding"] as? [NSNumber])?.map(\.floatValue), [1, 2, 3, 4], "embedding untouched")
        XCTAssertEqual((got["strength"] as? NSNumber)?.floatValue, 0.75)
        XCTAssertEqual((got["confidence"] as? NSNumber)?.floatValue, 0.25, "confidence untouched")
        let version = (got["updated_version"] as? NSNumber)?.intValue ?? 0

        let stale = cluster.http(3, "PATCH", "/v1/concepts/\(id)", #"{"content":"second","if_version":\#(version - 1)}"#)
        XCTAssertEqual(stale.status, 412, stale.text)
        XCTAssertEqual(cluster.http(1, "GET", "/v1/concepts/\(id)").json?["content"] as? String, "first", "nothing changed")
        let cas = cluster.http(3, "PATCH", "/v1/concepts/\(id)", #"{"content":"second","embedding":null,"if_version":\#(version)}"#)
        XCTAssertEqual(cas.status, 200, cas.text)
        got = cluster.http(1, "GET", "/v1/concepts/\(id)").json ?? [:]
        XCTAssertEqual(got["content"] as? String, "second")
        XCTAssertNil(got["embedding"], "the embedding was removed: \(got)")
        XCTAssertEqual((got["strength"] as? NSNumber)?.floatValue, 0.75)
        XCTAssertEqual(cluster.http(1, "PATCH", "/v1/concepts/\(id)", #"{"content":"third","if_content":"second"}"#).status, 200)

        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(conceptID(6))", #"{"strength":0.5}"#).status, 404)
        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(id)", "{}").status, 400)
        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(id)", #"{"strength":0.5,"if_absent":true}"#).status, 400)
        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(id)", #"{"id":"\#(id)","strength":0.5}"#).status, 400, "the id is the path's")
        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(id)", #"{"strength":1.5}"#).status, 400)
        XCTAssertEqual(cluster.http(2, "PATCH", "/v1/concepts/\(id)", #"{"embedding":[1,2]}"#).status, 400, "another dimension")
        XCTAssertEqual(cluster.http(1, "GET", "/v1/concepts/\(id)").json?["content"] as? String, "third")
    }

    /// Issue 15 item 3: removing an association removes both edge records (across shards, through any node);
    /// deleting a concept removes every edge that touches it on every shard in the same transaction — none is
    /// left dangling, on any node.
    func testDissociateAndCascadingDeleteLeaveNoDanglingEdge() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        // x on one shard; y, z and w spread over the others.
        let x = 1
        var others: [Int] = []
        var n = 2
        while others.count < 3 {
            if conceptID(n).shard(of: 4) != conceptID(x).shard(of: 4) { others.append(n) }
            n += 1
        }
        for c in [x] + others {
            XCTAssertEqual(cluster.http(c % 3 + 1, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(c))\",\"content\":\"c\(c)\"}").status, 200)
        }
        let (y, z, w) = (others[0], others[1], others[2])
        func associate(_ a: Int, _ b: Int, _ type: String = "causal") {
            let r = cluster.http(2, "POST", "/v1/associations", "{\"source\":\"\(conceptID(a))\",\"target\":\"\(conceptID(b))\",\"type\":\"\(type)\"}")
            XCTAssertEqual(r.status, 200, r.text)
        }
        func neighbors(_ c: Int, _ dir: String, via node: Int) -> [String] {
            let r = cluster.http(node, "GET", "/v1/concepts/\(conceptID(c))/neighbors?direction=\(dir)")
            return (r.json?["neighbors"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        }
        associate(x, y); associate(x, z); associate(w, x); associate(y, z)
        associate(x, y, "temporal")

        // One association of two between x and y goes; the other stays.
        let d = cluster.http(3, "DELETE", "/v1/associations?source=\(conceptID(x))&target=\(conceptID(y))&type=temporal")
        XCTAssertEqual(d.status, 200, d.text)
        for node in 1...3 {
            let outs = cluster.http(node, "GET", "/v1/concepts/\(conceptID(x))/neighbors?direction=out").json?["neighbors"] as? [[String: Any]] ?? []
            XCTAssertEqual(outs.filter { ($0["id"] as? String) == conceptID(y).description }.compactMap { $0["type"] as? String }, ["causal"], "node \(node)")
            let ins = cluster.http(node, "GET", "/v1/concepts/\(conceptID(y))/neighbors?direction=in").json?["neighbors"] as? [[String: Any]] ?? []
            XCTAssertEqual(ins.filter { ($0["id"] as? String) == conceptID(x).description }.compactMap { $0["type"] as? String }, ["causal"], "node \(node)")
        }
        XCTAssertEqual(cluster.http(1, "DELETE", "/v1/associations?source=\(conceptID(x))&target=\(conceptID(y))&type=temporal").status, 200,
                       "removing an association that is not there is no error")

        // Deleting x takes x → y, x → z and w → x with it, on y's, z's and w's shards; y → z stays.
        let del = cluster.http(3, "DELETE", "/v1/concepts/\(conceptID(x))")
        XCTAssertEqual(del.status, 200, del.text)
        let gone = conceptID(x).description
        for node in 1...3 {
            XCTAssertFalse(neighbors(y, "in", via: node).contains(gone), "node \(node): y keeps no in-edge from x")
            XCTAssertFalse(neighbors(z, "in", via: node).contains(gone), "node \(node): z keeps no in-edge from x")
            XCTAssertFalse(neighbors(w, "out", via: node).contains(gone), "node \(node): w keeps no out-edge to x")
            XCTAssertTrue(neighbors(y, "out", via: node).contains(conceptID(z).description), "node \(node): y → z stays")
            XCTAssertEqual(cluster.http(node, "GET", "/v1/concepts/\(gone)").status, 404)
        }
        XCTAssertEqual(cluster.http(1, "DELETE", "/v1/concepts/\(gone)").status, 404)
    }

    /// Every binary prints the release with --version; /metrics names the release and the formats it speaks
    /// (`sutra_build_info`) and reports the process's own resources (`process_*`, as Prometheus clients do).
    func testVersionBuildInfoAndProcessMetrics() throws {
        let dir = URL(fileURLWithPath: LocalTestCluster.nodeBinary).deletingLastPathComponent()
        for binary in ["sutra-node", "sutra"] {
            let p = Process()
            p.executableURL = dir.appendingPathComponent(binary)
            p.arguments = ["--version"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, binary)
            XCTAssertEqual(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), SutraRelease.version + "\n", binary)
        }
        let before = Date().timeIntervalSince1970
        cluster = try LocalTestCluster(nodes: 3, shards: 2)
        try cluster.startAll()
        let text = String(decoding: cluster.http(2, "GET", "/metrics").body, as: UTF8.self)
        XCTAssertTrue(text.contains("sutra_build_info{node=\"2\",version=\"\(SutraRelease.version)\",peer_wire_max=\"10\",client_protocol_max=\"1\","), text)
        func value(_ name: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) } ?? -1
        }
        XCTAssertGreaterThan(value("process_cpu_seconds_total"), 0)
        XCTAssertGreaterThan(value("process_resident_memory_bytes"), 4_000_000)
        XCTAssertGreaterThan(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"))
        XCTAssertGreaterThan(value("process_open_fds"), 5, "listeners, peer links, the WAL")
        XCTAssertGreaterThanOrEqual(value("process_max_fds"), value("process_open_fds"))
        let started = value("process_start_time_seconds")
        XCTAssertTrue(started >= before - 1 && started <= Date().timeIntervalSince1970, "start time \(started)")
    }

    /// Every limit and malformed input gets a clear error; the node keeps serving the same connection's
    /// later requests and everyone else.
    func testLimitsAndMalformedInputGetClearErrors() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 4, flags: ["--max-frame-bytes", "\(12 << 20)"])
        try cluster.startAll()
        put(1, embedding: [1, 0, 0, 0])
        put(2, embedding: [0, 1, 0, 0])
        let a = conceptID(1), b = conceptID(2)
        func expect(_ r: LocalTestCluster.Reply, _ status: Int, _ code: String, _ what: String) {
            XCTAssertEqual(r.status, status, "\(what): \(String(decoding: r.body.prefix(300), as: UTF8.self))")
            XCTAssertEqual(r.errorCode, code, what)
            XCTAssertFalse(((r.json?["error"] as? [String: Any])?["message"] as? String ?? "").isEmpty, "\(what) explains itself")
        }
        expect(cluster.http(1, "POST", "/v1/concepts", "{\"id\": \"00"), 400, "INVALID_ARGUMENT", "bad JSON")
        expect(cluster.http(1, "POST", "/v1/concepts", "[1,2]"), 400, "INVALID_ARGUMENT", "JSON that is not an object")
        expect(cluster.http(1, "POST", "/v1/concepts", "{\"id\":\"xyz\"}"), 400, "INVALID_ARGUMENT", "bad id")
        expect(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"embedding\":[1,2,3]}"), 400, "INVALID_ARGUMENT", "wrong dimension")
        let big = String(repeating: "x", count: (10 << 20) + 1)
        expect(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"\(big)\"}"), 413, "TOO_LARGE", "content over 10 MiB")
        expect(cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(conceptID(999))"), 404, "NOT_FOUND", "unknown concept")
        expect(cluster.http(1, "GET", "/v1/path?from=\(a)&to=\(b)&max_depth=21"), 413, "TOO_LARGE", "depth 21")
        expect(cluster.http(1, "POST", "/v1/search", "{\"vector\":[1,0,0,0],\"k\":1001}"), 413, "TOO_LARGE", "k 1001")
        expect(cluster.http(1, "POST", "/v1/search", "{\"vector\":[1,0,0],\"k\":3}"), 400, "INVALID_ARGUMENT", "query of the wrong dimension")
        let items = (0..<1001).map { "{\"op\":\"delete\",\"id\":\"\(conceptID($0))\"}" }.joined(separator: ",")
        expect(cluster.http(1, "POST", "/v1/batch", "{\"items\":[\(items)]}"), 413, "TOO_LARGE", "batch of 1001")
        expect(cluster.http(1, "POST", "/v1/associations", "{\"source\":\"\(a)\",\"target\":\"\(b)\",\"type\":\"friendly\"}"), 400, "INVALID_ARGUMENT", "unknown type")
        XCTAssertEqual(cluster.http(1, "GET", "/v1/nope").status, 404)
        // Over the configured frame limit: refused before the body is read.
        let huge = [UInt8](repeating: 0x20, count: 13 << 20)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/concepts", bytes: huge).status, 413)
        // The binary protocol: a frame that is not a Request, then an oversize frame, on one connection that
        // keeps working.
        let conn = try RawConnection(port: cluster.clientPort(1))
        try conn.send(frame: [0xFF, 0xFF, 0xFF])
        XCTAssertTrue(try conn.receiveFrame().contains(Array("not a valid".utf8)))
        try conn.send(rawLength: UInt32(13 << 20), payload: [UInt8](repeating: 0, count: 13 << 20))
        XCTAssertTrue(try conn.receiveFrame().contains(Array("exceeds the limit".utf8)))
        try conn.send(frame: [0x08, 0x07, 0xA2, 0x01, 0x00])  // Request{id: 7, cluster_info: {}}
        let reply = try conn.receiveFrame()
        XCTAssertEqual(Array(reply.prefix(2)), [0x08, 0x07], "the connection still answers requests")
        // Clients that hang up before their answers are ready (writes in flight) do not hurt the node.
        for _ in 0..<20 {
            let quitter = try RawConnection(port: cluster.httpPort(1))
            try quitter.sendRaw(Array("POST /v1/concepts HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".utf8))
            let binaryQuitter = try RawConnection(port: cluster.clientPort(1))
            try binaryQuitter.send(frame: [0x08, 0x09, 0xA2, 0x01, 0x00])
        }
        usleep(200_000)
        // And the node still serves everyone.
        XCTAssertEqual(cluster.httpToLeader(via: 2, "GET", "/v1/concepts/\(a)").status, 200)
        XCTAssertEqual(cluster.http(1, "GET", "/health").status, 200)
    }

    /// Restarting every node (kill -9) brings back all data — concepts, embeddings (search), associations —
    /// from snapshots plus the log tail after them.
    func testRestartAllNodesRecoversSnapshotsAndLogTail() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, dimension: 4, flags: ["--snapshot-entries", "100"])
        try cluster.startAll()
        func vector(_ n: Int) -> [Float] { [Float(cos(Double(n))), Float(sin(Double(n))), Float(n % 5) / 5, 1] }
        for n in 0..<600 { put(n, via: 1 + n % 3, embedding: vector(n)) }
        for n in 0..<50 {
            let r = cluster.httpToLeader(via: 1, "POST", "/v1/associations", "{\"source\":\"\(conceptID(n))\",\"target\":\"\(conceptID(n + 1))\",\"type\":\"causal\"}")
            XCTAssertEqual(r.status, 200)
        }
        for id in 1...3 {
            XCTAssertGreaterThan(metricSum(cluster.http(id, "GET", "/metrics"), "sutra_snapshots_total{"), 0, "node \(id) took snapshots")
        }
        // Flush every node (snapshots + the vector index saved beside them), then write a log tail after it.
        for id in 1...3 {
            XCTAssertEqual(cluster.http(id, "POST", "/v1/flush").status, 200)
            XCTAssertEqual(metricSum(cluster.http(id, "GET", "/metrics"), "sutra_flushes_total{"), 1)
        }
        for n in 600..<650 { put(n, via: 1, embedding: vector(n)) }
        let query = "{\"vector\":[\(vector(77).map { "\($0)" }.joined(separator: ","))],\"k\":5}"
        let searchBefore = cluster.http(1, "POST", "/v1/search", query).json?["results"] as? [[String: Any]]
        XCTAssertEqual(searchBefore?.first?["id"] as? String, conceptID(77).description)
        for id in 1...3 { cluster.kill9(id) }
        try cluster.startAll()
        for n in 0..<650 {
            // Right after a restart leaderships still settle (placement hands some back): a 503 or 421 says
            // "retry", as it would to any client; a 404 or a wrong content is a lost write.
            var r = cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(conceptID(n))")
            let deadline = Date().addingTimeInterval(10)
            while [0, 421, 503, 504].contains(r.status) && Date() < deadline {
                usleep(100_000)
                r = cluster.httpToLeader(via: 1 + n % 3, "GET", "/v1/concepts/\(conceptID(n))")
            }
            XCTAssertEqual(r.json?["content"] as? String, "concept \(n)", "concept \(n) after restart: \(r.status) \(r.text.prefix(300))")
        }
        let path = cluster.http(2, "GET", "/v1/path?from=\(conceptID(0))&to=\(conceptID(20))&max_depth=20").json
        XCTAssertEqual(path?["found"] as? Bool, true)
        XCTAssertEqual(path?["path"] as? [String], (0...20).map { conceptID($0).description })
        XCTAssertEqual(cluster.http(2, "GET", "/v1/path?from=\(conceptID(0))&to=\(conceptID(21))&max_depth=20").json?["found"] as? Bool, false,
                       "21 hops do not fit in depth 20")
        for id in 1...3 {
            let tail = "{\"vector\":[\(vector(620).map { "\($0)" }.joined(separator: ","))],\"k\":1}"
            // A search passes a read barrier on every shard: while placement hands a leadership back right after the
            // restart, that is a 503 "retry", as for any client.
            var r = cluster.http(id, "POST", "/v1/search", tail)
            let deadline = Date().addingTimeInterval(10)
            while r.status == 503 && Date() < deadline {
                usleep(100_000)
                r = cluster.http(id, "POST", "/v1/search", tail)
            }
            let hit = r.json?["results"] as? [[String: Any]]
            XCTAssertEqual(hit?.first?["id"] as? String, conceptID(620).description, "node \(id): a vector written after the flush is found")
        }
        let searchAfter = cluster.http(1, "POST", "/v1/search", query).json?["results"] as? [[String: Any]]
        XCTAssertEqual(searchAfter?.count, 5)
        XCTAssertEqual(searchAfter?.compactMap { $0["id"] as? String }, searchBefore?.compactMap { $0["id"] as? String })
    }

    /// The log's size bounds it too: a shard snapshots (and compacts) after `--snapshot-bytes` of entries even
    /// when the entry count is far from `--snapshot-entries`.
    func testLogSizeTriggersSnapshots() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 1, dimension: 4,
                                       flags: ["--snapshot-bytes", "1048576", "--snapshot-entries", "1000000", "--compact-margin", "0"])
        try cluster.startAll()
        let big = String(repeating: "b", count: 100_000)
        for n in 0..<15 {
            XCTAssertEqual(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(conceptID(n))\",\"content\":\"\(big)\"}").status, 200)
        }
        waitUntil(10, "a snapshot on every node") {
            (1...3).allSatisfy { metricSum(cluster.http($0, "GET", "/metrics"), "sutra_snapshots_total{") >= 1 }
        }
        XCTAssertLessThan(metricSum(cluster.http(1, "GET", "/metrics"), "sutra_log_entries{"), 15, "the log was compacted")
    }

    /// A follower that is down while the leaders snapshot and compact their logs catches up through a snapshot.
    func testFollowerCatchesUpThroughSnapshot() throws {
        // Chunks of 4 KiB: each shard's image (tens of KiB) is streamed in many chunks, a window at a time.
        cluster = try LocalTestCluster(nodes: 3, shards: 2, dimension: 4,
                                       flags: ["--snapshot-entries", "100", "--compact-margin", "0", "--snapshot-chunk-bytes", "4096"])
        try cluster.startAll()
        put(0)
        cluster.kill9(3)
        for n in 1..<500 { put(n, via: 1) }
        try cluster.start(3)
        try cluster.waitReady()
        // Caught up: node 3 has applied, for every shard, at least what its leader had committed.
        let target = cluster.clusterView(1).map { ($0["commit_index"] as? NSNumber)?.intValue ?? 0 }
        waitUntil(30, "node 3 to apply \(target) (it is at \(cluster.clusterView(3).map { $0["applied_index"] ?? "?" }))") {
            let applied = cluster.clusterView(3).map { ($0["applied_index"] as? NSNumber)?.intValue ?? 0 }
            return applied.count == target.count && zip(applied, target).allSatisfy { $0 >= $1 }
        }
        let missing = (0..<500).filter { cluster.http(3, "GET", "/v1/concepts/\(conceptID($0))?consistency=stale").status != 200 }
        XCTAssertEqual(missing, [], "every concept is on node 3")
        XCTAssertGreaterThan(metricSum(cluster.http(3, "GET", "/metrics"), "sutra_snapshots_installed_total{"), 0,
                             "node 3 caught up by installing snapshots")
        let node3 = cluster.http(3, "GET", "/metrics")
        XCTAssertGreaterThan(metricSum(node3, "sutra_snapshot_streams_received_total{"), 0, "streamed in chunks")
        XCTAssertGreaterThan(metricSum(node3, "sutra_snapshot_stream_bytes_received_total{"), 8192, "more than two chunks")
        let sent = (1...2).map { metricSum(cluster.http($0, "GET", "/metrics"), "sutra_snapshot_streams_sent_total{") }.reduce(0, +)
        XCTAssertGreaterThan(sent, 0, "a leader saw its stream acknowledged whole")
        // The images came into files and were adopted (renamed into place) by the installs: nothing is left in
        // `incoming/`, and the adopted files are the snapshots node 3 restarts from.
        let incoming = "\(cluster.dir)/node3/wal/snap/incoming"
        waitUntil(10, "node 3's received images adopted") {
            ((try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? ["?"]).isEmpty
        }
        cluster.kill9(3)
        try cluster.start(3)
        try cluster.waitReady()
        let lost = (0..<500).filter { cluster.http(3, "GET", "/v1/concepts/\(conceptID($0))?consistency=stale").status != 200 }
        XCTAssertEqual(lost, [], "node 3 restarted from the adopted snapshots")
    }
}

/// The sum of every sample of a metric family in a /metrics answer.
func metricSum(_ r: LocalTestCluster.Reply, _ prefix: String) -> Double {
    String(decoding: r.body, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix(prefix) }
        .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
}

/// A raw TCP connection for the binary protocol's framing tests.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw ClusterTestError("connect to \(port) failed") }
    }

    deinit { close(fd) }

    func send(frame payload: [UInt8]) throws { try send(rawLength: UInt32(payload.count), payload: payload) }

    func sendRaw(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw ClusterTestError("send failed") }
    }

    func send(rawLength: UInt32, payload: [UInt8]) throws {
        var bytes = withUnsafeBytes(of: rawLength.littleEndian) { Array($0) }
        bytes += payload
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClusterTestError("send failed") }
            off += n
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw ClusterTestError("connection closed or timed out") }
            got += n
        }
        return out
    }

    /// Every byte until the node closes the connection (or 5 s of silence).
    func receiveUntilClosed() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return out }
            out += buf[0..<n]
        }
    }

    func receiveFrame() throws -> [UInt8] {
        let h = try read(4)
        let len = Int(UInt32(h[0]) | UInt32(h[1]) << 8 | UInt32(h[2]) << 16 | UInt32(h[3]) << 24)
        return try read(len)
    }
}
