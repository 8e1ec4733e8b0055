import Foundation
import NodeCore
import Raft
import Shard
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Forged peers against real `sutra-node` processes (plaintext peers, no credentials): after each attack every
/// node runs with the same pid, no shard's term jumped, every acknowledged write reads back and new writes
/// are accepted.
///
/// The cluster lists four nodes and runs 2, 3 and 4: node 1 never starts, so the attacker can speak as node 1
/// (a known peer, the lowest id, whose link is down) and reach each node's Raft cores. Claims the transport
/// refuses (a live link's id) are tried too. Forging valid entries needs TLS to defeat and is not tried here.
final class PeerAttackTests: XCTestCase {
    var cluster: LocalTestCluster!
    let running = [2, 3, 4]
    let shards = 4
    var acked: [Int] = []
    var pids: [Int: pid_t] = [:]

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private func peerPort(_ id: Int) -> Int { cluster.base + 200 + id }

    private func put(_ n: Int, via node: Int) -> Bool {
        let body = "{\"id\":\"\(conceptID(n))\",\"content\":\"concept \(n)\"}"
        return cluster.httpToLeader(via: node, "POST", "/v1/concepts", body).status == 200
    }

    private func waitUntil(_ timeout: Double, _ what: String, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !cond() {
            if Date() > deadline { XCTFail("timed out waiting for \(what)"); return }
            usleep(50_000)
        }
    }

    /// The meta group's term and last applied index on `node` (from `/v1/cluster` `map.meta_group`).
    private func metaGroup(_ node: Int) -> (term: UInt64, last: UInt64) {
        let g = (cluster.http(node, "GET", "/v1/cluster").json?["map"] as? [String: Any])?["meta_group"] as? [String: Any]
        return ((g?["term"] as? NSNumber)?.uint64Value ?? 0, (g?["applied_index"] as? NSNumber)?.uint64Value ?? 0)
    }

    /// Every shard's term on `node`.
    private func terms(_ node: Int) -> [UInt64] {
        cluster.clusterView(node).map { ($0["term"] as? NSNumber)?.uint64Value ?? 0 }
    }

    private func metric(_ node: Int, _ prefix: String) -> Double {
        metricSum(cluster.http(node, "GET", "/metrics"), prefix)
    }

    /// The checks after every attack.
    private func assertClusterIntact(after attack: String) {
        for id in running {
            var st: Int32 = 0
            XCTAssertEqual(waitpid(pids[id]!, &st, WNOHANG), 0, "\(attack): node \(id) exited: \(cluster.log(id).suffix(800))")
            XCTAssertEqual(cluster.pids[id], pids[id], "\(attack): node \(id) has another pid")
        }
        for id in running {
            let t = terms(id)
            XCTAssertEqual(t.count, shards, "\(attack): node \(id) answers /v1/cluster")
            XCTAssertTrue(t.allSatisfy { $0 < 1000 }, "\(attack): node \(id) terms \(t)")
            XCTAssertLessThan(metaGroup(id).term, 1000, "\(attack): node \(id)'s meta-group term")
        }
        for n in acked {
            let r = cluster.httpToLeader(via: running[n % running.count], "GET", "/v1/concepts/\(conceptID(n))")
            XCTAssertEqual(r.status, 200, "\(attack): acknowledged write \(n) reads back")
            XCTAssertEqual(r.json?["content"] as? String, "concept \(n)", "\(attack)")
        }
        let next = (acked.max() ?? 0) + 1
        var ok = false
        let deadline = Date().addingTimeInterval(10)
        while !ok && Date() < deadline { ok = put(next, via: running[next % running.count]); if !ok { usleep(100_000) } }
        XCTAssertTrue(ok, "\(attack): the cluster accepts a new write")
        if ok { acked.append(next) }
    }

    /// Opens a connection to `node`'s peer port speaking as `claim` and completes the handshake (hello, then the
    /// configuration the nodes run with). Returns the node's hello.
    private func handshake(_ conn: RawConnection, as claim: NodeID, to node: Int) throws -> PeerHello? {
        try conn.sendRaw(PeerFrame.hello(PeerHello(clusterID: "sutra", node: claim, clientAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2")).encode())
        let first = try conn.receiveFrame()
        guard case .hello(let h) = try first.withUnsafeBytes({ try PeerFrame.decode($0) }) else { return nil }
        let config = try conn.receiveFrame()
        guard case .config(let c) = try config.withUnsafeBytes({ try PeerFrame.decode($0) }) else { return nil }
        XCTAssertEqual(c.shardCount, UInt32(shards))
        try conn.sendRaw(PeerFrame.config(c).encode())
        return h
    }

    /// Whether the node closed `conn`: end of stream (or a reset) before a 5 s receive timeout; bytes it sends
    /// meanwhile are skipped. A timeout means the node kept the connection open.
    private func closedByNode(_ conn: RawConnection) -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(conn.fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    /// Starts nodes 2–4 of the four-node plaintext cluster and writes `writes` acknowledged concepts.
    private func startRunningNodes(writes: Int) throws {
        cluster = try LocalTestCluster(nodes: 4, shards: shards, dimension: 4, flags: ["--insecure-peers"])
        for id in running { try cluster.start(id) }
        try cluster.waitReady(timeout: 30)
        for id in running { pids[id] = cluster.pids[id] }
        for n in 0..<writes where put(n, via: running[n % running.count]) { acked.append(n) }
        XCTAssertEqual(acked.count, writes)
    }

    func testForgedPeersCannotCrashOrCorruptTheCluster() throws {
        try startRunningNodes(writes: 30)
        let started = Date()

        // 1. A hello as node 1, then heartbeats (compact and full) with term 2^64-1 on every shard.
        for id in running {
            let conn = try RawConnection(port: peerPort(id))
            XCTAssertNotNil(try handshake(conn, as: 1, to: id))
            let to = NodeID(id)
            // Every shard's group and the meta group's ("shard" = the shard count).
            try conn.sendRaw(PeerFrame.heartbeats((0...shards).map { CoalescedHeartbeat(shard: UInt32($0), isResponse: false, term: .max, commit: .max, context: 0) }).encode())
            try conn.sendRaw(PeerFrame.raft((0...shards).map { ShardMessage(shard: UInt32($0), message: Message(type: .heartbeat, to: to, from: 1, term: .max - 1, commit: 5)) }).encode())
            try conn.sendRaw(PeerFrame.raft([ShardMessage(shard: 0, message: Message(type: .vote, to: to, from: 1, term: .max, logTerm: .max, index: .max))]).encode())
            usleep(300_000)
        }
        assertClusterIntact(after: "term 2^64-1")
        for id in running { XCTAssertGreaterThan(metric(id, "sutra_peer_rejected_messages_total{node=\"\(id)\",reason=\"term_too_large\"}"), 0, "node \(id) counted the huge terms") }

        // 2. An append at the next term carrying an entry that does not decode; 3. a snapshot of garbage.
        for id in running {
            let conn = try RawConnection(port: peerPort(id))
            XCTAssertNotNil(try handshake(conn, as: 1, to: id))
            let to = NodeID(id)
            var msgs: [ShardMessage] = []
            let meta = metaGroup(id)
            for (s, t) in (terms(id) + [meta.term]).enumerated() {
                let last = s == shards ? meta.last : (cluster.clusterView(id)[s]["last_index"] as? NSNumber)?.uint64Value ?? 0
                msgs.append(ShardMessage(shard: UInt32(s), message: Message(type: .append, to: to, from: 1, term: t + 1, logTerm: 0, index: last,
                                                                            entries: [Entry(term: t + 1, index: last + 1, data: [0xFF, 0xEE, 1, 2, 3])], commit: last + 1)))
                var garbage = [UInt8](repeating: 0, count: 4096)
                for k in garbage.indices { garbage[k] = UInt8(truncatingIfNeeded: k &* 2_654_435_761 >> 7) }
                msgs.append(ShardMessage(shard: UInt32(s), message: Message(type: .snapshot, to: to, from: 1, term: t + 1,
                                                                            snapshot: Snapshot(metadata: SnapshotMetadata(index: last + 100, term: t + 1, confState: ConfState(voters: [1, 2, 3, 4])), data: garbage))))
            }
            try conn.sendRaw(PeerFrame.raft(msgs).encode())
            usleep(300_000)
        }
        assertClusterIntact(after: "undecodable entry and garbage snapshot")
        for id in running {
            XCTAssertGreaterThan(metric(id, "sutra_peer_rejected_messages_total{node=\"\(id)\",reason=\"undecodable_entry\"}"), 0, "node \(id)")
            XCTAssertGreaterThan(metric(id, "sutra_peer_rejected_messages_total{node=\"\(id)\",reason=\"undecodable_snapshot\"}"), 0, "node \(id)")
        }

        // 4. A frame announcing 1 GiB before any hello: closed at once, nothing buffered.
        for id in running {
            let conn = try RawConnection(port: peerPort(id))
            try conn.sendRaw([0x00, 0x00, 0x00, 0x40, 1, 2, 3, 4])
            XCTAssertTrue(closedByNode(conn), "node \(id) closes a pre-hello frame of 1 GiB")
        }
        assertClusterIntact(after: "1 GiB pre-hello frame")

        // 5. A hello claiming node 2, whose link to nodes 3 and 4 is up: refused, the real link stays.
        for id in [3, 4] {
            let conn = try RawConnection(port: peerPort(id))
            try conn.sendRaw(PeerFrame.hello(PeerHello(clusterID: "sutra", node: 2, clientAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2")).encode())
            XCTAssertTrue(closedByNode(conn), "node \(id) refuses a second node 2")
            let link = (cluster.http(id, "GET", "/v1/cluster").json?["nodes"] as? [[String: Any]])?.first { ($0["id"] as? NSNumber)?.intValue == 2 }
            XCTAssertEqual(link?["link"] as? String, "connected", "node \(id)'s link to node 2")
            XCTAssertTrue(cluster.log(id).contains("the link to node 2 is alive"), "node \(id) logged the refusal")
        }
        // ...and a hello claiming a higher id than the node it dials (node 4 dialing node 3), or an unknown one.
        for claim: NodeID in [4, 9] {
            let conn = try RawConnection(port: peerPort(3))
            try conn.sendRaw(PeerFrame.hello(PeerHello(clusterID: "sutra", node: claim, clientAddress: "a:1", httpAddress: "a:2")).encode())
            XCTAssertTrue(closedByNode(conn), "node 3 refuses a hello from node \(claim)")
        }
        XCTAssertTrue(cluster.log(3).contains("node 4 may not dial node 3"))
        XCTAssertTrue(cluster.log(3).contains("node 9 is not in this node's peer list"))
        assertClusterIntact(after: "hijack claims")
        print("peer attacks: 5 attacks on \(running.count) nodes survived in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; max term \(running.flatMap { terms($0) }.max() ?? 0); \(acked.count) acknowledged writes read back")
    }

    /// Idle sockets on a peer port cost the node a bounded amount: at most `maxPendingInbound` connections wait
    /// for their hello at once (more are closed at accept), each for at most `pendingInboundTimeoutMs` — then the
    /// port takes a real handshake again and the cluster serves throughout.
    func testIdleInboundPeerConnectionsAreCappedAndTimedOut() throws {
        try startRunningNodes(writes: 10)
        // Node 2 accepts only node 1's link (never started): every pending inbound connection there is ours.
        let cap = 32, extra = 8
        var idle: [RawConnection] = []
        for i in 0..<(cap + extra) {
            let c = try RawConnection(port: peerPort(2))
            var tv = timeval(tv_sec: 15, tv_usec: 0)   // beyond the node's 5 s, with room for a busy CI machine
            setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            if i % 2 == 1 { try c.sendRaw([0x05]) }   // half send one byte of a frame length, then stall
            idle.append(c)
            usleep(5_000)
        }
        usleep(500_000)
        XCTAssertEqual(metric(2, "sutra_peer_refused_connections_total{node=\"2\",reason=\"cap\"}"), Double(extra), "the connections past the cap were closed at accept")
        for c in idle.suffix(extra) { XCTAssertTrue(closedByNode(c), "a connection past the cap is closed") }
        let waited = Date()
        for c in idle.prefix(cap) { XCTAssertTrue(closedByNode(c), "an idle pending connection is closed") }
        let closedAfter = Date().timeIntervalSince(waited)
        XCTAssertEqual(metric(2, "sutra_peer_refused_connections_total{node=\"2\",reason=\"timeout\"}"), Double(cap), "the pending connections timed out")
        XCTAssertTrue(cluster.log(2).contains("sent no accepted hello within 5000 ms"), "the timeout is logged")
        // The port takes a real handshake again.
        let conn = try RawConnection(port: peerPort(2))
        XCTAssertNotNil(try handshake(conn, as: 1, to: 2), "a hello after the flood is answered")
        assertClusterIntact(after: "\(cap + extra) idle peer connections")
        print("peer port flood: \(extra) of \(cap + extra) idle connections refused at the cap, \(cap) timed out (the last closed \(String(format: "%.1f", closedAfter)) s after the cap's)")
    }

    /// A node started with another shard count or dimension is refused by its peers (and refuses them), one log
    /// line each naming both values, and `/v1/cluster` shows the refusal.
    func testConfigurationMismatchIsRefusedOnBothSides() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: shards, dimension: 4, flags: ["--insecure-peers"])
        try cluster.start(1)
        try cluster.start(2)
        try cluster.waitReady(timeout: 30)
        // Node 3 with 8 shards in its own data directory (a fresh one: its data records nothing yet).
        let peers = (1...3).map { "\($0)=127.0.0.1:\(cluster.base + 200 + $0)" }.joined(separator: ",")
        let odd = try LocalTestCluster(nodes: 3, shards: 8, dimension: 4, flags: ["--insecure-peers"])
        defer { odd.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0) }
        try odd.startWith(id: 3, peers: peers, peerPort: cluster.base + 203)
        waitUntil(10, "both sides to refuse") {
            cluster.log(1).contains("configuration mismatch with node 3: shard count 4 here, 8 on the peer")
                && odd.log(3).contains("configuration mismatch with node 1: shard count 8 here, 4 on the peer")
        }
        usleep(2_000_000)   // several redials: still one line
        XCTAssertEqual(cluster.log(1).components(separatedBy: "configuration mismatch with node 3").count - 1, 1, "logged once")
        let view = cluster.http(1, "GET", "/v1/cluster").json?["nodes"] as? [[String: Any]]
        let link = view?.first { ($0["id"] as? NSNumber)?.intValue == 3 }?["link"] as? String
        XCTAssertEqual(link, "refused: configuration mismatch with node 3: shard count 4 here, 8 on the peer")
        XCTAssertEqual(view?.first { ($0["id"] as? NSNumber)?.intValue == 2 }?["link"] as? String, "connected")
    }
}
