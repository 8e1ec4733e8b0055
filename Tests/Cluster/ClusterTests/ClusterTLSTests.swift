import Foundation
import TLS
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Mutual TLS between real `sutra-node` processes on loopback: a default (certificates) cluster elects and
/// serves; plaintext, a foreign CA and a certificate of another node are refused while the cluster keeps
/// serving; permissive nodes link to a plaintext node (rolling upgrade); a node without certificates refuses to start.
final class ClusterTLSTests: XCTestCase {
    private var cluster: LocalTestCluster?

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private func peerSecurity(_ c: LocalTestCluster, _ id: Int) -> [String: Any] {
        (c.http(id, "GET", "/v1/cluster").json?["peer_security"] as? [String: Any]) ?? [:]
    }

    private func ids(_ v: Any?) -> [Int] { ((v as? [NSNumber]) ?? []).map(\.intValue) }

    /// Writes `n` concepts through node `via` (following NOT_LEADER) and reads each back from every running node.
    private func writeAndRead(_ c: LocalTestCluster, via: Int, from: [Int], first: Int, count n: Int) throws {
        for i in first..<(first + n) {
            let body = "{\"id\":\"\(conceptID(i))\",\"content\":\"tls \(i)\"}"
            var r = c.httpToLeader(via: via, "POST", "/v1/concepts", body)
            // "No leader right now" is refused before anything is proposed (a node just restarted or reconnected
            // may set off an election): retry, as a client would.
            let deadline = Date().addingTimeInterval(10)
            while r.status == 503 && r.text.contains("no leader right now") && Date() < deadline {
                usleep(100_000)
                r = c.httpToLeader(via: via, "POST", "/v1/concepts", body)
            }
            XCTAssertEqual(r.status, 200, "put \(i): \(r.text)")
            if r.status != 200 { return }
        }
        for id in from {
            for i in first..<(first + n) {
                let r = c.httpToLeader(via: id, "GET", "/v1/concepts/\(conceptID(i))")
                XCTAssertEqual(r.status, 200, "node \(id) get \(i): \(r.text)")
                if r.status != 200 { return }
            }
        }
    }

    /// Waits until node `id` reports exactly these TLS and plaintext links.
    private func waitLinks(_ c: LocalTestCluster, _ id: Int, tls: [Int], plaintext: [Int], timeout: Double = 15) {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String: Any] = [:]
        while Date() < deadline {
            seen = peerSecurity(c, id)
            if ids(seen["tls_peers"]) == tls && ids(seen["plaintext_peers"]) == plaintext { return }
            usleep(100_000)
        }
        XCTFail("node \(id): wanted TLS \(tls) plaintext \(plaintext), saw \(seen)")
    }

    /// A peer hello frame (wire format of docs/PROTOCOL.md) claiming `node` of cluster `sutra`.
    private func plaintextHello(node: UInt64) -> [UInt8] {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func str(_ s: String) -> [UInt8] { u32(UInt32(s.utf8.count)) + Array(s.utf8) }
        let body: [UInt8] = [1] + str("sutra") + withUnsafeBytes(of: node.littleEndian, Array.init) + u32(1) + u32(3)
            + str("127.0.0.1:1") + str("127.0.0.1:2")
        return u32(UInt32(body.count)) + body
    }

    func testDefaultClusterIsMutualTLSAndRefusesPlaintext() throws {
        let c = try LocalTestCluster()
        cluster = c
        let start = Date()
        try c.startAll()
        print(String(format: "3-node mutual-TLS cluster ready in %.2f s", Date().timeIntervalSince(start)))
        waitLinks(c, 1, tls: [2, 3], plaintext: [])
        waitLinks(c, 3, tls: [1, 2], plaintext: [])
        XCTAssertEqual(peerSecurity(c, 2)["mode"] as? String, "required")
        XCTAssertTrue(c.http(1, "GET", "/metrics").text.contains("sutra_peer_insecure{node=\"1\"} 0"))
        XCTAssertTrue(c.http(1, "GET", "/metrics").text.contains("sutra_peer_link_tls{node=\"1\",peer=\"2\"} 1"))
        try writeAndRead(c, via: 1, from: [1, 2, 3], first: 0, count: 20)
        let terms = c.clusterView(1).map { ($0["term"] as? NSNumber)?.intValue ?? 0 }

        // A raw plaintext connection sending a hello that claims node 1 to node 3's peer port: closed.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(c.peerPorts[2]).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(rc, 0)
        let hello = plaintextHello(node: 1)
        XCTAssertEqual(hello.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }, hello.count)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        XCTAssertEqual(n, 0, "the node closes the connection without a byte (got \(n))")
        XCTAssertTrue(c.log(3).contains("peer connection refused: plaintext on the peer port"), c.log(3))
        // The cluster is unharmed: the real links stay TLS, no term moved, writes go on.
        waitLinks(c, 3, tls: [1, 2], plaintext: [], timeout: 2)
        try writeAndRead(c, via: 3, from: [1, 2, 3], first: 100, count: 10)
        XCTAssertEqual(c.clusterView(1).map { ($0["term"] as? NSNumber)?.intValue ?? 0 }, terms, "no election")
    }

    /// Certificate rotation without a restart: SIGHUP makes a node present the new peer certificate (its expiry
    /// metric moves) and links made afterwards verify with it; a bad file or another node's certificate is
    /// refused, counted and logged, and the certificate in force stays.
    func testPeerCertificateRotatesOnSIGHUP() throws {
        let c = try LocalTestCluster()
        cluster = c
        try c.startAll()
        waitLinks(c, 1, tls: [2, 3], plaintext: [])
        // Start-up placement first: a node stopped while it is being handed its preferred shards can end up
        // stopping while still leading them (seen here), and the writes below then meet "no leader right now".
        try c.waitLeadersPlaced()
        let certs = c.certificates!
        func metric(_ name: String) -> Double { metricSum(c.http(1, "GET", "/metrics"), "\(name){node=\"1\"}") }
        func hangUp(expecting line: String, occurrence: Int) {
            kill(c.pids[1]!, SIGHUP)
            let deadline = Date().addingTimeInterval(10)
            while c.log(1).components(separatedBy: line).count - 1 < occurrence && Date() < deadline { usleep(50_000) }
            XCTAssertEqual(c.log(1).components(separatedBy: line).count - 1, occurrence, "node 1 logged \(line)")
        }
        let first = metric("sutra_peer_tls_certificate_not_after_seconds")
        XCTAssertGreaterThan(first, Date().timeIntervalSince1970 + 800 * 86_400, "the certificate cluster up made lasts 825 days")

        // A rotated certificate for node 1, from the same CA, valid 30 days.
        let staged = c.dir + "/rotated"
        try CertificateFactory.makeLeaf(caKeyPath: certs.caKey, caCertificatePath: certs.caCertificate, commonName: "sutra node 1 of sutra (rotated)",
                                        subjectAltNames: ClusterCertificates.nodeNames(clusterID: "sutra", node: 1, hosts: []),
                                        validUntil: 30 * 86_400, keyPath: staged + ".key", certificatePath: staged + ".crt")
        XCTAssertEqual(rename(staged + ".key", certs.nodeKey(1)), 0)
        XCTAssertEqual(rename(staged + ".crt", certs.nodeCertificate(1)), 0)
        hangUp(expecting: "SIGHUP: peer TLS certificate reloaded", occurrence: 1)
        let rotated = metric("sutra_peer_tls_certificate_not_after_seconds")
        XCTAssertLessThan(rotated, Date().timeIntervalSince1970 + 31 * 86_400, "node 1 presents the 30-day certificate")
        // New links verify with it: node 2 restarts, node 1 dials it again.
        _ = c.terminate(2)
        try c.start(2)
        waitLinks(c, 1, tls: [2, 3], plaintext: [])
        waitLinks(c, 2, tls: [1, 3], plaintext: [])
        try c.waitLeadersPlaced()
        try writeAndRead(c, via: 2, from: [1, 2, 3], first: 0, count: 10)

        // Node 2's certificate in node 1's files: refused (another identity), the rotated one stays.
        let keep = (try String(contentsOfFile: certs.nodeCertificate(1), encoding: .utf8), try String(contentsOfFile: certs.nodeKey(1), encoding: .utf8))
        try String(contentsOfFile: certs.nodeCertificate(2), encoding: .utf8).write(toFile: certs.nodeCertificate(1), atomically: true, encoding: .utf8)
        try String(contentsOfFile: certs.nodeKey(2), encoding: .utf8).write(toFile: certs.nodeKey(1), atomically: true, encoding: .utf8)
        hangUp(expecting: "SIGHUP: peer TLS certificate not reloaded", occurrence: 1)
        XCTAssertTrue(c.log(1).contains("sutra://sutra/node/2"), "the refusal names the other identity")
        // A damaged certificate file: refused too.
        try "not a certificate".write(toFile: certs.nodeCertificate(1), atomically: true, encoding: .utf8)
        hangUp(expecting: "SIGHUP: peer TLS certificate not reloaded", occurrence: 2)
        XCTAssertEqual(metric("sutra_peer_tls_reload_failures_total"), 2)
        XCTAssertEqual(metric("sutra_peer_tls_certificate_not_after_seconds"), rotated, "the rotated certificate stays in force")
        try keep.0.write(toFile: certs.nodeCertificate(1), atomically: true, encoding: .utf8)
        try keep.1.write(toFile: certs.nodeKey(1), atomically: true, encoding: .utf8)
        _ = c.terminate(3)
        try c.start(3)
        waitLinks(c, 1, tls: [2, 3], plaintext: [])
        try writeAndRead(c, via: 3, from: [1, 2, 3], first: 100, count: 10)
    }

    func testCertificateFromAnotherCAIsRefused() throws {
        let c = try LocalTestCluster()
        cluster = c
        let foreign = ClusterCertificates(directory: c.dir + "/foreign")
        try foreign.create(clusterID: "sutra", nodes: 3)
        // Node 3 holds a certificate of another CA for the right node and cluster, and trusts our CA.
        c.peerTLSOverride[3] = ["--tls-cert", foreign.nodeCertificate(3), "--tls-key", foreign.nodeKey(3), "--tls-ca", c.certificates!.caCertificate]
        try c.start(1); try c.start(2); try c.start(3)
        try c.waitReadyNodes([1, 2])
        waitLinks(c, 1, tls: [2], plaintext: [])
        usleep(1_500_000)
        waitLinks(c, 1, tls: [2], plaintext: [], timeout: 1)
        waitLinks(c, 3, tls: [], plaintext: [], timeout: 1)
        XCTAssertTrue(c.log(1).contains("certificate verification failed"), c.log(1))
        try writeAndRead(c, via: 1, from: [1, 2], first: 0, count: 10)
    }

    func testCertificateOfNode2UsedByNode3IsRefused() throws {
        let c = try LocalTestCluster()
        cluster = c
        let certs = c.certificates!
        c.peerTLSOverride[3] = ["--tls-cert", certs.nodeCertificate(2), "--tls-key", certs.nodeKey(2), "--tls-ca", certs.caCertificate]
        try c.start(1); try c.start(2); try c.start(3)
        try c.waitReadyNodes([1, 2])
        waitLinks(c, 1, tls: [2], plaintext: [])
        usleep(1_500_000)
        waitLinks(c, 2, tls: [1], plaintext: [], timeout: 1)
        waitLinks(c, 3, tls: [], plaintext: [], timeout: 1)
        XCTAssertTrue(c.log(1).contains("link to node 3 refused: its certificate is for node 2"), c.log(1))
        // Node 3 dials nobody (higher ids accept); the real node 2's link is untouched.
        try writeAndRead(c, via: 2, from: [1, 2], first: 0, count: 10)
    }

    func testPermissiveNodesLinkToAPlaintextNode() throws {
        let c = try LocalTestCluster()
        cluster = c
        // Node 2 runs like the older release (plaintext); nodes 1 and 3 are mid-upgrade. 1→2: TLS refused by
        // silence, then plaintext; 2→3: plaintext accepted by a permissive node; 1→3: TLS.
        c.peerTLSOverride[2] = ["--insecure-peers"]
        let certs = c.certificates!
        for id in [1, 3] {
            c.peerTLSOverride[id] = ["--tls-cert", certs.nodeCertificate(UInt64(id)), "--tls-key", certs.nodeKey(UInt64(id)),
                                     "--tls-ca", certs.caCertificate, "--peer-tls", "permissive"]
        }
        let start = Date()
        try c.startAll()
        waitLinks(c, 1, tls: [3], plaintext: [2], timeout: 20)
        print(String(format: "permissive cluster with one plaintext node ready and linked in %.2f s", Date().timeIntervalSince(start)))
        waitLinks(c, 3, tls: [1], plaintext: [2])
        waitLinks(c, 2, tls: [], plaintext: [1, 3])
        XCTAssertEqual(peerSecurity(c, 2)["mode"] as? String, "off")
        XCTAssertEqual(peerSecurity(c, 1)["mode"] as? String, "permissive")
        XCTAssertTrue(c.http(2, "GET", "/metrics").text.contains("sutra_peer_insecure{node=\"2\"} 1"))
        XCTAssertTrue(c.log(2).contains("INSECURE PEERS"), c.log(2))
        XCTAssertTrue(c.log(1).contains("node 2 does not answer TLS: dialing it in plaintext"), c.log(1))
        XCTAssertTrue(c.log(1).contains("PLAINTEXT PEER LINKS"), c.log(1))
        try writeAndRead(c, via: 2, from: [1, 2, 3], first: 0, count: 10)
    }

    func testNodeWithoutCertificatesRefusesToStartUnlessInsecure() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LocalTestCluster.nodeBinary)
        let dir = NSTemporaryDirectory() + "sutra-tls-start-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        p.arguments = ["--data", dir, "--peers", "1=127.0.0.1:1,2=127.0.0.1:2"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 78, "a configuration refusal exits 78 (EX_CONFIG)")
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
        XCTAssertTrue(text.hasPrefix("sutra-node: invalid configuration: peer TLS: no certificates"), text)
        XCTAssertTrue(text.contains("--insecure-peers"), text)
    }
}

extension LocalTestCluster {
    /// Waits until the given nodes answer /ready with 200.
    func waitReadyNodes(_ ids: [Int], timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = Set(ids)
        while !pending.isEmpty {
            for id in pending where http(id, "GET", "/ready").status == 200 { pending.remove(id) }
            if pending.isEmpty { return }
            if Date() > deadline { throw ClusterTestError("nodes \(pending.sorted()) not ready after \(timeout) s") }
            usleep(100_000)
        }
    }
}
