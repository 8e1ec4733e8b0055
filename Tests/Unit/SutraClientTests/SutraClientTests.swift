import ClientProto
import Foundation
import SutraClient
import XCTest

/// The SDK against in-process fake nodes on loopback. Every test bounds its waits with short client deadlines,
/// closes its client and stops its nodes.
final class SutraClientTests: XCTestCase {
    private static let x = ConceptID(hi: 1, lo: 2)
    private static let y = ConceptID(hi: 3, lo: 4)

    private func isPut(_ op: Sutra_V1_Request.OneOf_Op) -> Bool { if case .putConcept = op { return true }; return false }
    private func isClusterInfo(_ op: Sutra_V1_Request.OneOf_Op) -> Bool {
        if case .clusterInfo = op { return true }
        return false
    }

    /// Runs `body` with a client, closing it whatever happens.
    private func withClient(_ endpoints: [String], _ options: SutraClient.Options = .init(requestTimeout: .seconds(3)),
                            _ body: (SutraClient) async throws -> Void) async throws {
        let client = try SutraClient(endpoints: endpoints, options: options)
        do {
            try await body(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    private func elapsed(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func testLearnsTheClusterAndFollowsNotLeaderToTheSecondNode() async throws {
        let a = try FakeNode(id: 1)
        let b = try FakeNode(id: 2)
        defer { a.stop(); b.stop() }
        let (bAddress, nodes) = (b.address, [a, b])
        let clusterA = Reply.cluster(nodes: nodes, leader: 1)
        a.setHandler { r in
            switch r.op {
            case .clusterInfo?: return .respond(clusterA)
            case .putConcept?: return .respond(Reply.error(.notLeader, "node 1 does not lead the shard", leader: 2, address: bAddress))
            default: return .respond(Reply.error(.internal, "unexpected"))
            }
        }
        b.setHandler { r in
            if case .putConcept? = r.op { return .respond(Reply.write(42)) }
            return .respond(Reply.error(.internal, "unexpected"))
        }
        try await withClient([a.address]) { client in
            let v = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(v, 42)
            XCTAssertEqual(a.puts.count, 1)
            XCTAssertEqual(b.puts.count, 1)
            XCTAssertEqual(a.requests(isClusterInfo).count, 1, "the cluster is learned once, on first use")
            let (first, redirected) = (a.puts[0], b.puts[0])
            XCTAssertEqual(first.clientID, client.clientID)
            XCTAssertNotEqual(first.clientID, 0)
            XCTAssertEqual(redirected.clientID, first.clientID)
            XCTAssertEqual(redirected.sequence, first.sequence, "a redirected write keeps its sequence")
            XCTAssertNotEqual(redirected.id, first.id, "each attempt has its own request id")

            // The hint is cached: the next write to that shard goes straight to node 2.
            try await client.put(NewConcept(id: Self.x, text: "x again"))
            XCTAssertEqual(a.puts.count, 1)
            XCTAssertEqual(b.puts.count, 2)
            XCTAssertGreaterThan(b.puts[1].sequence, b.puts[0].sequence, "a new write has a new sequence")
        }
    }

    /// By default every request says `no_forward` (the client routes itself); in gateway mode every request goes
    /// to the first endpoint without it, even when the map names another leader, and the node forwards.
    func testGatewayModeSendsEverythingToTheFirstEndpointForForwarding() async throws {
        let a = try FakeNode(id: 1)
        let b = try FakeNode(id: 2)
        defer { a.stop(); b.stop() }
        let cluster = Reply.cluster(nodes: [a, b], leader: 2)
        for n in [a, b] {
            n.setHandler { r in
                switch r.op {
                case .clusterInfo?: return .respond(cluster)
                case .putConcept?: return .respond(Reply.write(7))
                default: return .respond(Reply.error(.internal, "unexpected"))
                }
            }
        }
        try await withClient([a.address]) { client in
            try await client.put(NewConcept(id: Self.x, text: "routed"))
            XCTAssertEqual(b.puts.count, 1, "routed to the leader the map names")
            XCTAssertEqual(b.puts.first?.noForward, true)
        }
        var gateway = SutraClient.Options(requestTimeout: .seconds(3))
        gateway.viaGateway = true
        try await withClient([a.address, b.address], gateway) { client in
            for k in 0..<3 { try await client.put(NewConcept(id: ConceptID(hi: 9, lo: UInt64(k)), text: "via gateway")) }
            XCTAssertEqual(a.puts.count, 3, "every write through the first endpoint")
            XCTAssertEqual(b.puts.count, 1, "none more to the leader itself")
            XCTAssertTrue(a.puts.allSatisfy { !$0.noForward }, "the gateway may forward them")
        }
    }

    func testUnavailableTwiceThenSuccessRetriesWithTheSameClientIDAndSequence() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        let putsSeen = Shared(0)
        a.setHandler { r in
            switch r.op {
            case .clusterInfo?: return .respond(cluster)
            case .putConcept?:
                let n = putsSeen.with { n -> Int in
                    n += 1
                    return n
                }
                return .respond(n <= 2 ? Reply.error(.unavailable, "electing a leader") : Reply.write(7))
            default: return .ignore
            }
        }
        try await withClient([a.address]) { client in
            let v = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(v, 7)
            let puts = a.puts
            XCTAssertEqual(puts.count, 3)
            XCTAssertEqual(Set(puts.map(\.clientID)), [client.clientID])
            XCTAssertEqual(Set(puts.map(\.sequence)).count, 1, "every retry carries the same sequence")
            XCTAssertNotEqual(puts[0].sequence, 0)
            XCTAssertEqual(Set(puts.map(\.id)).count, 3, "each attempt has its own request id")
            XCTAssertGreaterThanOrEqual(a.requests(isClusterInfo).count, 2, "UNAVAILABLE refreshes the shard map")

            try await client.put(NewConcept(id: Self.y, text: "y"))
            XCTAssertEqual(a.puts.count, 4)
            XCTAssertGreaterThan(a.puts[3].sequence, puts[0].sequence)
        }
    }

    func testNoAnswerEndsInATimeoutWithinTheDeadline() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .ignore
        }
        let options = SutraClient.Options(requestTimeout: .milliseconds(600), attemptTimeout: .seconds(5))
        try await withClient([a.address], options) { client in
            let start = ContinuousClock.now
            do {
                try await client.put(NewConcept(id: Self.x, text: "x"))
                XCTFail("a put nobody answers must time out")
            } catch SutraError.timeout(let operation, _) {
                XCTAssertEqual(operation, "put")
            }
            let t = elapsed(since: start)
            XCTAssertGreaterThanOrEqual(t, 0.55, "not before the deadline")
            XCTAssertLessThan(t, 1.5, "soon after the deadline")
            XCTAssertEqual(a.puts.count, 1, "one attempt: its own timeout is longer than the deadline")
        }
    }

    func testAnUnansweredAttemptIsResentWithTheSameSequenceUntilTheDeadline() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .ignore
        }
        let options = SutraClient.Options(requestTimeout: .milliseconds(900), attemptTimeout: .milliseconds(150))
        try await withClient([a.address], options) { client in
            let start = ContinuousClock.now
            do {
                try await client.put(NewConcept(id: Self.x, text: "x"))
                XCTFail("a put nobody answers must time out")
            } catch SutraError.timeout(let operation, let last) {
                XCTAssertEqual(operation, "put")
                guard case .noResponse? = last else { return XCTFail("last error: \(String(describing: last))") }
            }
            XCTAssertLessThan(elapsed(since: start), 2.0)
            let puts = a.puts
            XCTAssertGreaterThanOrEqual(puts.count, 3)
            XCTAssertEqual(Set(puts.map(\.sequence)).count, 1)
            XCTAssertEqual(Set(puts.map(\.clientID)), [client.clientID])
        }
    }

    func testInvalidArgumentIsThrownAtOnceWithoutRetry() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        let message = "embedding has 2 dimensions; this cluster's dimension is 3"
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .respond(Reply.error(.invalidArgument, message))
        }
        try await withClient([a.address], .init(requestTimeout: .seconds(5))) { client in
            let start = ContinuousClock.now
            do {
                try await client.put(NewConcept(id: Self.x, text: "x", embedding: [1, 2]))
                XCTFail("INVALID_ARGUMENT must be thrown")
            } catch let error as SutraError {
                XCTAssertEqual(error, .invalidArgument(message))
            }
            XCTAssertLessThan(elapsed(since: start), 1.0, "thrown at once, not at the deadline")
            XCTAssertEqual(a.puts.count, 1, "never retried")
        }
    }

    func testReadsDecodeResultsAndNotFoundIsNil() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        let x = Self.x
        a.setHandler { r in
            switch r.op {
            case .clusterInfo?: return .respond(cluster)
            case .getConcept(let g)?:
                guard g.id == Data(x.bytes) else { return .respond(Reply.error(.notFound, "no such concept")) }
                var resp = Sutra_V1_Response()
                resp.concept.id = g.id
                resp.concept.content = Data("hello".utf8)
                resp.concept.embedding = [1, 0, 0]
                resp.concept.strength = 0.5
                resp.concept.createdVersion = 3
                resp.concept.updatedVersion = 9
                return .respond(resp)
            case .neighbors?:
                var resp = Sutra_V1_Response()
                var e = Sutra_V1_Edge()
                e.other = Data(Self.y.bytes)
                e.type = .causal
                e.confidence = 0.25
                e.direction = .incoming
                resp.neighbors.edges = [e]
                return .respond(resp)
            case .search?:
                var resp = Sutra_V1_Response()
                var h = Sutra_V1_SearchHit()
                h.id = Data(x.bytes)
                h.distance = 0.125
                resp.search.hits = [h]
                return .respond(resp)
            case .findPath?:
                var resp = Sutra_V1_Response()
                resp.path.found = true
                resp.path.ids = [Data(x.bytes), Data(Self.y.bytes)]
                resp.path.visited = 5
                return .respond(resp)
            default:
                return .respond(Reply.error(.invalidArgument, "unexpected"))
            }
        }
        try await withClient([a.address]) { client in
            let c = try await client.get(x)
            XCTAssertEqual(c, Concept(id: x, content: Array("hello".utf8), embedding: [1, 0, 0], strength: 0.5,
                                      confidence: 1, createdVersion: 3, updatedVersion: 9))
            let missing = try await client.get(Self.y, consistency: .stale)
            XCTAssertNil(missing)
            let gets = a.requests { if case .getConcept = $0 { return true } else { return false } }
            XCTAssertEqual(gets.map(\.consistency), [.linearizable, .stale])
            XCTAssertEqual(gets[0].clientID, 0, "reads carry no write identity")

            let n = try await client.neighbors(of: x, direction: .incoming, type: .causal)
            XCTAssertEqual(n, [Neighbor(other: Self.y, type: .causal, confidence: 0.25, direction: .incoming)])
            let hits = try await client.search(vector: [1, 0, 0], k: 1)
            XCTAssertEqual(hits, [SearchHit(id: x, distance: 0.125)])
            let path = try await client.findPath(from: x, to: Self.y, maxDepth: 3)
            XCTAssertEqual(path, PathResult(path: [x, Self.y], visited: 5))
            let info = try await client.clusterInfo()
            XCTAssertEqual(info.numShards, 4)
            XCTAssertEqual(info.dimension, 3)
            XCTAssertEqual(info.nodes.map(\.clientAddress), [a.address])
            XCTAssertEqual(info.shards.map(\.leader), [1, 1, 1, 1])
        }
    }

    func testAnUnreachableEndpointIsSkipped() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .respond(Reply.write(5))
        }
        // Port 1 on loopback: nothing listens there, so the connection is refused.
        try await withClient(["127.0.0.1:1", a.address]) { client in
            for _ in 0..<3 {
                let info = try await client.clusterInfo()
                XCTAssertEqual(info.clusterID, "test-cluster")
            }
            let v = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(v, 5)
        }
    }

    func testALostLeaderConnectionRefreshesTheMapAndTheWriteMovesOn() async throws {
        let a = try FakeNode(id: 1)
        let b = try FakeNode(id: 2)
        defer { a.stop(); b.stop() }
        let nodes = [a, b]
        let (leaderA, leaderB) = (Reply.cluster(nodes: nodes, leader: 1), Reply.cluster(nodes: nodes, leader: 2))
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(leaderA) }
            return .ignore  // the old leader hangs, then dies
        }
        b.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(leaderB) }
            return .respond(Reply.write(11))
        }
        try await withClient([a.address]) { client in
            let concept = NewConcept(id: Self.x, text: "x")
            let pending = Task { () async throws -> UInt64 in try await client.put(concept) }
            let deadline = ContinuousClock.now + .seconds(3)
            while a.puts.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            XCTAssertEqual(a.puts.count, 1)
            a.stop()  // the client sees EOF, then refused connections
            let v = try await pending.value
            XCTAssertEqual(v, 11)
            XCTAssertEqual(b.puts.count, 1)
            XCTAssertGreaterThanOrEqual(b.requests(isClusterInfo).count, 1, "the map was refreshed from node 2")
            XCTAssertEqual(b.puts[0].sequence, a.puts[0].sequence, "the retried write keeps its sequence")
            XCTAssertEqual(b.puts[0].clientID, a.puts[0].clientID)
        }
    }

    /// A busy client re-reads the map every few seconds: a node added after it learned the map (here node 3,
    /// which takes the leaderships) is found, and once the only node it was given is gone, its writes still
    /// reach the cluster — the machines of a cluster may all be replaced while a client runs.
    func testABusyClientFollowsNodesAddedAfterItLearnedTheMap() async throws {
        let a = try FakeNode(id: 1)
        let c = try FakeNode(id: 3)
        defer { a.stop(); c.stop() }
        let before = Reply.cluster(nodes: [a], leader: 1)
        let after = Reply.cluster(nodes: [a, c], leader: 3)
        let grown = Flag()
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(grown.isSet ? after : before) }
            return .respond(Reply.write(1))
        }
        c.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(Reply.cluster(nodes: [a, c], leader: 3, answeredBy: 3)) }
            return .respond(Reply.write(3))
        }
        try await withClient([a.address]) { client in
            let first = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(first, 1)
            grown.set()
            // Writes for 6 s (the map is re-read every 5 s while calls are made).
            let start = ContinuousClock.now
            while elapsed(since: start) < 6, c.puts.isEmpty {
                _ = try await client.put(NewConcept(id: Self.x, text: "x"))
                try await Task.sleep(for: .milliseconds(100))
            }
            XCTAssertGreaterThanOrEqual(a.requests(isClusterInfo).count, 2, "the map was read again")
            XCTAssertFalse(c.puts.isEmpty, "the writes moved to the node the new map names as leader")
            a.stop()
            let last = try await client.put(NewConcept(id: Self.y, text: "y"))
            XCTAssertEqual(last, 3, "node 1 gone, node 3 answers")
        }
    }

    /// A leader that freezes (SIGSTOP: connections stay open, nothing is answered, not even `Hello`) is probed
    /// and given up on after `probeTimeout`, long before the attempt timeout: the write moves to the node that
    /// answers, with its sequence. With a 60 s attempt timeout and a 10 s deadline, only the probe can save it.
    func testAFrozenLeaderIsProbedAndItsWriteMovesOnBeforeTheAttemptTimeout() async throws {
        let a = try FakeNode(id: 1)
        let b = try FakeNode(id: 2)
        defer { a.stop(); b.stop() }
        let nodes = [a, b]
        let (leaderA, leaderB) = (Reply.cluster(nodes: nodes, leader: 1), Reply.cluster(nodes: nodes, leader: 2))
        let frozen = a.frozen
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(leaderA) }
            frozen.with { $0 = true }  // the first write freezes the leader
            return .ignore
        }
        b.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(leaderB) }
            return .respond(Reply.write(21))
        }
        let options = SutraClient.Options(requestTimeout: .seconds(10), attemptTimeout: .seconds(60),
                                          probeAfter: .milliseconds(100), probeTimeout: .milliseconds(200))
        try await withClient([a.address], options) { client in
            let v = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(v, 21)
            XCTAssertEqual(a.puts.count, 1)
            XCTAssertEqual(b.puts.count, 1)
            XCTAssertEqual(b.puts[0].sequence, a.puts[0].sequence, "the moved write keeps its sequence")
            XCTAssertGreaterThanOrEqual(a.hellos.get, 2, "the connection's Hello, then at least one probe")
        }
    }

    /// A node that is slow to answer but alive (it answers the probe at once) keeps its requests: no retry
    /// elsewhere, however long the answer takes within the attempt timeout.
    func testASlowButLiveNodeIsNotGivenUpOn() async throws {
        let a = try FakeNode(id: 1)
        let b = try FakeNode(id: 2)
        defer { a.stop(); b.stop() }
        let leaderA = Reply.cluster(nodes: [a, b], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(leaderA) }
            return .respondAfter(ms: 800, Reply.write(7))
        }
        b.setHandler { _ in .respond(Reply.error(.notLeader, "not me", leader: 1, address: "")) }
        let options = SutraClient.Options(requestTimeout: .seconds(10), attemptTimeout: .seconds(5),
                                          probeAfter: .milliseconds(100), probeTimeout: .milliseconds(200))
        try await withClient([a.address], options) { client in
            let v = try await client.put(NewConcept(id: Self.x, text: "x"))
            XCTAssertEqual(v, 7)
            XCTAssertEqual(a.puts.count, 1, "answered by the first attempt")
            XCTAssertEqual(b.puts.count, 0, "never retried elsewhere")
            XCTAssertGreaterThanOrEqual(a.hellos.get, 2, "it was probed while the answer took its time")
        }
    }

    /// Many writes of one client to one shard are in flight together, each with its own sequence; every
    /// request tells the shard the lowest sequence still outstanding (`acked_below`), so the shard may forget
    /// older outcomes and never mistakes a pipelined write for a stale retry.
    func testWritesPipelineWithDistinctSequencesAndAckedBelow() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1, numShards: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .respondAfter(ms: 30, Reply.write(r.sequence))
        }
        try await withClient([a.address]) { client in
            _ = try await client.clusterInfo()
            try await withThrowingTaskGroup(of: UInt64.self) { group in
                for i in 0..<4 {
                    group.addTask { try await client.put(NewConcept(id: ConceptID(hi: UInt64(i), lo: 7), text: "\(i)")) }
                }
                var versions: [UInt64] = []
                for try await v in group { versions.append(v) }
                XCTAssertEqual(versions.sorted(), [1, 2, 3, 4])
            }
            XCTAssertEqual(a.maxInFlight, 4, "writes to one shard are pipelined")
            XCTAssertEqual(a.puts.map(\.sequence).sorted(), [1, 2, 3, 4], "each write has its own sequence")
            XCTAssertTrue(a.puts.allSatisfy { $0.ackedBelow == 1 }, "sequence 1 was outstanding when each left")
            _ = try await client.put(NewConcept(id: ConceptID(hi: 9, lo: 7), text: "later"))
            XCTAssertEqual(a.puts.last?.sequence, 5)
            XCTAssertEqual(a.puts.last?.ackedBelow, 5, "every earlier write has its answer")
        }
    }

    func testCloseFailsPendingCallsAndLaterCalls() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .ignore
        }
        let client = try SutraClient(endpoints: [a.address], options: .init(requestTimeout: .seconds(10)))
        let concept = NewConcept(id: Self.x, text: "x")
        let pending = Task { () async throws -> UInt64 in try await client.put(concept) }
        let deadline = ContinuousClock.now + .seconds(5)
        while a.puts.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertEqual(a.puts.count, 1)
        let start = ContinuousClock.now
        await client.close()
        do {
            _ = try await pending.value
            XCTFail("a pending call must fail on close")
        } catch let error as SutraError {
            XCTAssertEqual(error, .closed)
        }
        XCTAssertLessThan(elapsed(since: start), 1.0)
        do {
            _ = try await client.get(Self.x)
            XCTFail("a call after close must fail")
        } catch let error as SutraError {
            XCTAssertEqual(error, .closed)
        }
        await client.close()  // idempotent
    }

    func testCancellingTheCallingTaskEndsTheCall() async throws {
        let a = try FakeNode(id: 1)
        defer { a.stop() }
        let cluster = Reply.cluster(nodes: [a], leader: 1)
        a.setHandler { r in
            if case .clusterInfo? = r.op { return .respond(cluster) }
            return .ignore
        }
        try await withClient([a.address], .init(requestTimeout: .seconds(10))) { client in
            let x = Self.x
            let call = Task { () async throws -> Concept? in try await client.get(x) }
            let deadline = ContinuousClock.now + .seconds(5)
            while a.requests.count < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let start = ContinuousClock.now
            call.cancel()
            do {
                _ = try await call.value
                XCTFail("a cancelled call must throw")
            } catch is CancellationError {}
            XCTAssertLessThan(elapsed(since: start), 1.0)
        }
    }

    func testBadEndpointsAndOptionsAreRefused() {
        // Host names are endpoints (resolved at every connection attempt); malformed ones are refused.
        for bad in ["node_a:7100", "-node:7100", "a..b:7100", String(repeating: "a", count: 64) + ".example:7100", "node a:7100"] {
            XCTAssertThrowsError(try SutraClient(endpoints: [bad])) { e in XCTAssertEqual(e as? SutraError, .invalidEndpoint(bad)) }
        }
        XCTAssertNoThrow(try SutraClient(endpoints: ["node-a:7100", "sutra1.internal:7100"]))
        XCTAssertThrowsError(try SutraClient(endpoints: ["127.0.0.1"]))
        XCTAssertThrowsError(try SutraClient(endpoints: []))
        XCTAssertThrowsError(try SutraClient(endpoints: ["127.0.0.1:7100"], options: .init(requestTimeout: .zero)))
    }
}

/// A flag set once from the test, read from the fake nodes' threads.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
