import Foundation
import SutraClient
import UV
import XCTest

/// Cross-shard transactions on real processes: atomicity through kill -9 of the coordinator's and a
/// participant's leader, bad input, atomic cross-shard batches, compare-and-set.
final class ClusterTxnTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    /// `count` ids on each of the shards asked for.
    static func ids(on shards: [Int], count: Int, of total: Int, salt: UInt64) -> [[ConceptID]] {
        var out = Array(repeating: [ConceptID](), count: shards.count)
        var k: UInt64 = 1
        while out.contains(where: { $0.count < count }) {
            let id = ConceptID(hi: salt &+ k &* 0x9E37_79B9, lo: k)
            if let i = shards.firstIndex(of: id.shard(of: total)), out[i].count < count { out[i].append(id) }
            k += 1
        }
        return out
    }

    func leader(of shard: Int, _ client: SutraClient) async throws -> Int {
        for _ in 0..<200 {
            if let l = try? await client.clusterInfo().shards.first(where: { $0.shard == shard })?.leader, l != 0 { return Int(l) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterTestError("shard \(shard) has no leader")
    }

    /// Intents held and records pending, summed over the running nodes' views of the shards they lead.
    func unresolved() -> Int {
        (1...3).reduce(0) { sum, n in
            guard let t = cluster.http(n, "GET", "/v1/cluster").json?["transactions"] as? [String: Any] else { return sum }
            return sum + ((t["intents"] as? NSNumber)?.intValue ?? 0) + ((t["pending"] as? NSNumber)?.intValue ?? 0)
        }
    }

    enum Outcome: Sendable { case acked, failed(String), unknown(String) }

    /// Cross-shard associations under load while the leader of the record shard (the coordinator), then the
    /// leader of the participant shard, is killed -9 and restarted. Afterwards no intent remains, every
    /// acknowledged association has both edges, and no other one has exactly one.
    func testAssociationsStayWholeThroughKillsOfCoordinatorAndParticipant() async throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        let client = try SutraClient(endpoints: cluster.clientEndpoints)
        let groups = Self.ids(on: [0, 1], count: 100, of: 4, salt: 0x7000)
        let sources = groups[0], targets = groups[1]
        for id in sources + targets { try await client.put(NewConcept(id: id, text: "c")) }
        let pairs = sources.flatMap { s in targets.map { t in (s, t) } }
        let next = Locked(0)
        let outcomes = Locked([Int: Outcome]())
        let stop = Locked(false)
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        while !stop.withLock({ $0 }) {
                            let i = next.withLock { n -> Int in n += 1; return n - 1 }
                            guard i < pairs.count else { return }
                            let (s, t) = pairs[i]
                            let o: Outcome
                            do {
                                try await client.associate(source: s, target: t, type: .causal, confidence: 1)
                                o = .acked
                            } catch SutraError.timeout(let op, let last) {
                                o = .unknown("\(op): \(String(describing: last))")
                            } catch {
                                o = .failed("\(error)")
                            }
                            outcomes.withLock { $0[i] = o }
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(700))
        let coordinatorNode = try await leader(of: 0, client)
        cluster.kill9(coordinatorNode)
        try await Task.sleep(for: .milliseconds(1500))
        try cluster.start(coordinatorNode)
        try await Task.sleep(for: .milliseconds(1200))
        let participantNode = try await leader(of: 1, client)
        let startedBeforeSecondKill = next.withLock { $0 }
        cluster.kill9(participantNode)
        try await Task.sleep(for: .milliseconds(1500))
        try cluster.start(participantNode)
        try await Task.sleep(for: .milliseconds(700))
        stop.withLock { $0 = true }
        await load.value
        XCTAssertGreaterThan(next.withLock { $0 }, startedBeforeSecondKill + 50, "the load ran through both kills")
        try cluster.waitReady()
        // No intent and no undecided record is left (bounded; the intent timeout is 1 s).
        let deadline = Date().addingTimeInterval(20)
        var left = unresolved()
        while left > 0 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            left = unresolved()
        }
        XCTAssertEqual(left, 0, "intents or pending records remain 20 s after the faults")

        let all = outcomes.withLock { $0 }
        var outs: [ConceptID: Set<ConceptID>] = [:], ins: [ConceptID: Set<ConceptID>] = [:]
        for s in sources { outs[s] = Set(try await client.neighbors(of: s, direction: .outgoing).map(\.other)) }
        for t in targets { ins[t] = Set(try await client.neighbors(of: t, direction: .incoming).map(\.other)) }
        var acked = 0, halves: [String] = []
        for (i, o) in all.sorted(by: { $0.key < $1.key }) {
            let (s, t) = pairs[i]
            let out = outs[s]!.contains(t), inc = ins[t]!.contains(s)
            switch o {
            case .acked:
                acked += 1
                if !(out && inc) { halves.append("acknowledged \(i): out-edge \(out), in-edge \(inc)") }
            case .failed(let why), .unknown(let why):
                if out != inc { halves.append("unacknowledged \(i) (\(why)): out-edge \(out), in-edge \(inc)") }
            }
        }
        XCTAssertEqual(halves, [], "associations with one edge")
        XCTAssertGreaterThan(acked, 100, "the load kept committing (\(all.count) attempted)")
        print("cross-shard associations: \(all.count) attempted, \(acked) acknowledged, coordinator killed: node \(coordinatorNode), participant killed: node \(participantNode)")
    }

    /// Bad input gets clear errors and writes nothing; a cross-shard batch is all or nothing; compare-and-set.
    func testBadInputAtomicBatchesAndCompareAndSet() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        try cluster.startAll()
        let groups = Self.ids(on: [0, 1, 2], count: 3, of: 4, salt: 0x9100)
        let (a, b, c) = (groups[0][0], groups[1][0], groups[2][0])
        let missing = groups[1][2]
        for id in [a, b, c, groups[0][1]] {
            XCTAssertEqual(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(id)\",\"content\":\"v1\"}").status, 200)
        }
        func error(_ r: LocalTestCluster.Reply) -> String { "\(r.status) \(r.errorCode ?? "-")" }
        // An association to a concept that does not exist, on another shard: refused, nothing written.
        var r = cluster.httpToLeader(via: 1, "POST", "/v1/associations", "{\"source\":\"\(a)\",\"target\":\"\(missing)\",\"type\":\"causal\"}")
        XCTAssertEqual(error(r), "404 NOT_FOUND", String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(edges(a, "out"), [])
        // From a missing concept.
        r = cluster.httpToLeader(via: 1, "POST", "/v1/associations", "{\"source\":\"\(missing)\",\"target\":\"\(a)\",\"type\":\"causal\"}")
        XCTAssertEqual(error(r), "404 NOT_FOUND")
        XCTAssertEqual(edges(a, "in"), [])
        // Self-loops are refused.
        r = cluster.httpToLeader(via: 1, "POST", "/v1/associations", "{\"source\":\"\(a)\",\"target\":\"\(a)\",\"type\":\"causal\"}")
        XCTAssertEqual(error(r), "400 INVALID_ARGUMENT")
        XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains("itself"))
        // A cross-shard batch with one bad item applies nothing at all.
        let bad = "{\"items\":[{\"op\":\"associate\",\"source\":\"\(a)\",\"target\":\"\(b)\",\"type\":\"semantic\"}," +
            "{\"op\":\"put\",\"id\":\"\(groups[2][1])\",\"content\":\"new\"}," +
            "{\"op\":\"associate\",\"source\":\"\(c)\",\"target\":\"\(missing)\",\"type\":\"semantic\"}]}"
        r = cluster.httpToLeader(via: 1, "POST", "/v1/batch", bad)
        XCTAssertEqual(error(r), "404 NOT_FOUND", String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(edges(a, "out"), [])
        XCTAssertEqual(edges(b, "in"), [])
        XCTAssertEqual(cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(groups[2][1])").status, 404)
        // The same batch without the bad item applies whole.
        let good = "{\"items\":[{\"op\":\"associate\",\"source\":\"\(a)\",\"target\":\"\(b)\",\"type\":\"semantic\"}," +
            "{\"op\":\"put\",\"id\":\"\(groups[2][1])\",\"content\":\"new\"}," +
            "{\"op\":\"associate\",\"source\":\"\(c)\",\"target\":\"\(groups[0][1])\",\"type\":\"semantic\"}]}"
        r = cluster.httpToLeader(via: 1, "POST", "/v1/batch", good)
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(edges(a, "out"), ["\(b)"])
        XCTAssertEqual(edges(b, "in"), ["\(a)"])
        XCTAssertEqual(edges(groups[0][1], "in"), ["\(c)"])
        XCTAssertEqual(cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(groups[2][1])").status, 200)
        // Compare-and-set.
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v2\",\"if_absent\":true}")
        XCTAssertEqual(error(r), "412 PRECONDITION_FAILED")
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v2\",\"if_content\":\"nope\"}")
        XCTAssertEqual(error(r), "412 PRECONDITION_FAILED")
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v2\",\"if_content\":\"v1\"}")
        XCTAssertEqual(r.status, 200)
        let version = (r.json?["version"] as? NSNumber)?.uint64Value ?? 0
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v3\",\"if_version\":\(version)}")
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v4\",\"if_version\":\(version)}")
        XCTAssertEqual(error(r), "412 PRECONDITION_FAILED")
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v4\",\"if_absent\":true,\"if_version\":1}")
        XCTAssertEqual(error(r), "400 INVALID_ARGUMENT")
        r = cluster.httpToLeader(via: 1, "POST", "/v1/concepts", "{\"id\":\"\(a)\",\"content\":\"v4\",\"strength\":true}")
        XCTAssertEqual(error(r), "400 INVALID_ARGUMENT", "a boolean is not a number")
        XCTAssertEqual(cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(a)").json?["content"] as? String, "v3")
        // The edges survived the content rewrites.
        XCTAssertEqual(edges(a, "out"), ["\(b)"])
        // Leadership transfer on request (the chaos runner's transfer storms): refused clearly when wrong.
        XCTAssertEqual(error(cluster.http(1, "POST", "/v1/admin/transfer-leader?shard=99")), "400 INVALID_ARGUMENT")
        XCTAssertEqual(error(cluster.http(1, "POST", "/v1/admin/transfer-leader")), "400 INVALID_ARGUMENT")
        // The slow-disk hook is test-only: a production node refuses it and names the switch.
        let slow = cluster.http(1, "POST", "/v1/admin/fault/fsync-delay?ms=100")
        XCTAssertEqual(error(slow), "400 INVALID_ARGUMENT")
        XCTAssertTrue(String(decoding: slow.body, as: UTF8.self).contains("--enable-fault-injection"))
        // Transaction counters are visible.
        let t = cluster.http(1, "GET", "/v1/cluster").json?["transactions"] as? [String: Any]
        XCTAssertNotNil(t?["committed"])
        XCTAssertTrue(String(decoding: cluster.http(1, "GET", "/metrics").body, as: UTF8.self).contains("sutra_txn_oldest_pending_seconds"))
    }

    func edges(_ id: ConceptID, _ direction: String) -> [String] {
        let r = cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(id)/neighbors?direction=\(direction)")
        return ((r.json?["neighbors"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }.sorted()
    }
}
