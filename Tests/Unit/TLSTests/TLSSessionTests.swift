import Foundation
import TLS
import XCTest

/// Two `TLSSession`s pumped against each other in memory: mutual TLS 1.3 handshakes, identities, data both ways,
/// and every refusal (wrong CA, expired, no certificate, garbage, truncation, bounds) as an error, never a crash.
final class TLSSessionTests: XCTestCase {
    func testMutualHandshakeNamesBothPeersAndCountsItsTime() throws {
        let dir = try CertDir()
        let clientCtx = try dir.peerContext(1, .client), serverCtx = try dir.peerContext(2, .server)
        var times: [Double] = []
        for _ in 0..<50 {
            let start = DispatchTime.now().uptimeNanoseconds
            let client = try TLSSession(context: clientCtx), server = try TLSSession(context: serverCtx)
            var pump = Pump()
            XCTAssertTrue(pump.run(client, server))
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            XCTAssertNil(pump.serverError); XCTAssertNil(pump.clientError)
            XCTAssertEqual(client.state, .established); XCTAssertEqual(server.state, .established)
            XCTAssertEqual(client.protocolVersion, "TLSv1.3")
            XCTAssertEqual(server.peer?.nodeIdentities, [SutraNodeIdentity(clusterID: "test", nodeID: 1)])
            XCTAssertEqual(client.peer?.nodeIdentities, [SutraNodeIdentity(clusterID: "test", nodeID: 2)])
            XCTAssertTrue(client.peer?.ipAddresses.contains("127.0.0.1") ?? false)
            XCTAssertGreaterThan(client.peer?.notAfter ?? 0, Int64(Date().timeIntervalSince1970))
        }
        times.sort()
        print(String(format: "TLS 1.3 mutual handshake in memory (ECDSA P-256, both sides, one thread): median %.3f ms, p90 %.3f ms over %d",
                     times[times.count / 2], times[times.count * 9 / 10], times.count))
    }

    func testDataBothWaysLargeAndTinyAndSplitAnywhere() throws {
        let dir = try CertDir()
        let client = try TLSSession(context: dir.peerContext(1, .client)), server = try TLSSession(context: dir.peerContext(2, .server))
        // Written before the handshake completes: held, then sent.
        try client.send(Array("early".utf8))
        var pump = Pump()
        pump.run(client, server)
        XCTAssertEqual(pump.toServer, Array("early".utf8))
        // Large: 5 MiB each way.
        let big = (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        try client.send(big)
        try server.send(big.reversed())
        pump = Pump()
        pump.run(client, server)
        XCTAssertEqual(pump.toServer, big)
        XCTAssertEqual(pump.toClient, big.reversed())
        // Large again, delivered in odd-sized pieces: most records arrive in parts, so OpenSSL already holds part of
        // one when the rest comes (receive's buffer, sized by the buffered ciphertext, then fills and reads on).
        try client.send(big)
        pump = Pump()
        pump.run(client, server, chunk: 7_001, rounds: 2_000)
        XCTAssertEqual(pump.toServer, big)
        XCTAssertNil(pump.serverError)
        // Tiny: 1,000 one-byte writes, delivered one ciphertext byte at a time.
        for i in 0..<1000 { try server.send([UInt8(i & 0xff)]) }
        pump = Pump()
        pump.run(client, server, chunk: 1, rounds: 10)
        XCTAssertEqual(pump.toClient, (0..<1000).map { UInt8($0 & 0xff) })
        XCTAssertNil(pump.clientError)
        // close_notify ends the other side cleanly.
        client.close()
        pump = Pump()
        pump.run(client, server)
        XCTAssertEqual(server.state, .closed)
        XCTAssertThrowsError(try server.send([1]))
    }

    /// Handshakes `client` against `server` and returns both errors.
    private func refused(_ clientCtx: TLSContext, _ serverCtx: TLSContext) throws -> Pump {
        let client = try TLSSession(context: clientCtx), server = try TLSSession(context: serverCtx)
        var pump = Pump()
        pump.run(client, server)
        // TLS 1.3: a client learns that the server refused its certificate from the alert after its Finished.
        if pump.clientError == nil { _ = try? client.send([1]); pump.run(client, server) }
        XCTAssertFalse(server.isEstablished, "server accepted")
        XCTAssertTrue(pump.toServer.isEmpty && pump.toClient.isEmpty)
        return pump
    }

    func testCertificateFromAnotherCAIsRefusedBothWays() throws {
        let ours = try CertDir(), theirs = try CertDir()
        // Their node dials us (trusting our CA, so only our side can refuse).
        let intruder = try TLSContext(.peer(role: .client, certificate: theirs.certs.nodeCertificate(1), key: theirs.certs.nodeKey(1), ca: ours.certs.caCertificate))
        var p = try refused(intruder, try ours.peerContext(2, .server))
        XCTAssertEqual(p.serverError?.kind, .handshake)
        XCTAssertTrue(p.serverError?.description.contains("certificate verification failed") ?? false, "\(String(describing: p.serverError))")
        // We dial their node.
        p = try refused(try ours.peerContext(1, .client), try theirs.peerContext(2, .server))
        XCTAssertEqual(p.clientError?.kind, .handshake)
        XCTAssertTrue(p.clientError?.description.contains("certificate verification failed") ?? false, "\(String(describing: p.clientError))")
    }

    func testExpiredCertificateIsRefused() throws {
        let dir = try CertDir()
        let key = dir.path + "/old.key", crt = dir.path + "/old.crt"
        try CertificateFactory.makeLeaf(caKeyPath: dir.certs.caKey, caCertificatePath: dir.certs.caCertificate, commonName: "old",
                                        subjectAltNames: ["URI:sutra://test/node/1"], validFrom: -7200, validUntil: -3600,
                                        keyPath: key, certificatePath: crt)
        let old = try TLSContext(.peer(role: .client, certificate: crt, key: key, ca: dir.certs.caCertificate))
        let p = try refused(old, try dir.peerContext(2, .server))
        XCTAssertTrue(p.serverError?.description.contains("certificate has expired") ?? false, "\(String(describing: p.serverError))")
    }

    func testClientWithoutCertificateIsRefusedByMutualTLS() throws {
        let dir = try CertDir()
        let anonymous = try TLSContext(.init(role: .client, certificateChainPath: nil, privateKeyPath: nil,
                                             trustRootsPath: dir.certs.caCertificate, verification: .serverOnly))
        let p = try refused(anonymous, try dir.peerContext(2, .server))
        XCTAssertTrue(p.serverError?.description.contains("certificate") ?? false, "\(String(describing: p.serverError))")
    }

    func testServerOnlyModeAndExpectedHostName() throws {
        let dir = try CertDir()
        let server = try TLSContext(.init(role: .server, certificateChainPath: dir.certs.nodeCertificate(1), privateKeyPath: dir.certs.nodeKey(1),
                                          trustRootsPath: nil, verification: .serverOnly, requireTLS13: false))
        let client = try TLSContext(.init(role: .client, certificateChainPath: nil, privateKeyPath: nil,
                                          trustRootsPath: dir.certs.caCertificate, verification: .serverOnly, requireTLS13: false))
        for (name, ok) in [("127.0.0.1", true), ("localhost", true), ("10.9.9.9", false), ("db.example.com", false)] {
            let c = try TLSSession(context: client, serverName: name), s = try TLSSession(context: server)
            var pump = Pump()
            pump.run(c, s)
            XCTAssertEqual(c.isEstablished, ok, name)
            if !ok { XCTAssertTrue(pump.clientError?.description.contains("mismatch") ?? false, "\(name): \(String(describing: pump.clientError))") }
            if ok { XCTAssertNil(s.peer) }
        }
    }

    func testGarbageBeforeAndAfterTheHandshakeIsAnErrorNotACrash() throws {
        let dir = try CertDir()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let server = try TLSSession(context: dir.peerContext(2, .server))
            let junk = (0..<Int.random(in: 1...3000)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            do { _ = try server.receive(junk); _ = try server.receive(junk) } catch { XCTAssertNotEqual(error.kind, .closed) }
            XCTAssertNotEqual(server.state, .established)
        }
        // A plaintext peer hello (length-prefixed frame) on a TLS port.
        let server = try TLSSession(context: dir.peerContext(2, .server))
        XCTAssertThrowsError(try server.receive([40, 0, 0, 0, 1] + Array("sutra".utf8) + [UInt8](repeating: 7, count: 35)))
        if case .failed = server.state {} else { XCTFail("\(server.state)") }
        XCTAssertThrowsError(try server.receive([1]))   // stays failed
        // After the handshake: a corrupted record.
        let c = try TLSSession(context: dir.peerContext(1, .client)), s = try TLSSession(context: dir.peerContext(2, .server))
        var pump = Pump()
        pump.run(c, s)
        try c.send(Array(repeating: 9, count: 100))
        var record = c.takeOutgoing()
        record[record.count / 2] ^= 0x40
        XCTAssertThrowsError(try s.receive(record)) { XCTAssertEqual(($0 as? TLSError)?.kind, .protocolError) }
    }

    func testTruncatedHandshakeWaitsWithBoundedBuffersAndNeverEstablishes() throws {
        let dir = try CertDir()
        let client = try TLSSession(context: dir.peerContext(1, .client)), server = try TLSSession(context: dir.peerContext(2, .server))
        let hello = client.takeOutgoing()
        XCTAssertGreaterThan(hello.count, 50)
        XCTAssertEqual(try server.receive(Array(hello.prefix(hello.count / 2))), [])
        XCTAssertEqual(server.state, .handshaking)
        XCTAssertEqual(server.takeOutgoing(), [], "nothing answered to half a ClientHello")
        // The rest arrives: the server answers; its flight cut short leaves the client waiting, not established.
        XCTAssertEqual(try server.receive(Array(hello.dropFirst(hello.count / 2))), [])
        let flight = server.takeOutgoing()
        XCTAssertEqual(try client.receive(Array(flight.prefix(flight.count - 10))), [])
        XCTAssertEqual(client.state, .handshaking)
        XCTAssertEqual(server.state, .handshaking)
        // A record header announcing a huge record that never comes is held only up to the record limit.
        let s2 = try TLSSession(context: dir.peerContext(2, .server))
        XCTAssertThrowsError(try s2.receive([0x16, 0x03, 0x01, 0xff, 0xff] + [UInt8](repeating: 0, count: 70_000)))
        // Plaintext queued before the handshake is bounded.
        let small = try TLSSession(context: dir.peerContext(1, .client), maxPendingPlaintext: 1000)
        try small.send(Array(repeating: 1, count: 1000))
        XCTAssertThrowsError(try small.send([1])) { XCTAssertEqual(($0 as? TLSError)?.kind, .overflow) }
    }

    func testContextRefusesMissingAndMismatchedFiles() throws {
        let dir = try CertDir()
        XCTAssertThrowsError(try TLSContext(.peer(role: .server, certificate: dir.path + "/none.crt", key: dir.certs.nodeKey(1), ca: dir.certs.caCertificate))) {
            XCTAssertTrue("\($0)".contains("none.crt"), "\($0)")
        }
        XCTAssertThrowsError(try TLSContext(.peer(role: .server, certificate: dir.certs.nodeCertificate(1), key: dir.certs.nodeKey(2), ca: dir.certs.caCertificate))) {
            XCTAssertTrue("\($0)".contains("mismatch"), "\($0)")
        }
        let ctx = try dir.peerContext(1, .server)
        XCTAssertNoThrow(try ctx.reloaded())
    }

    func testNodeIdentityURIParsing() {
        XCTAssertEqual(SutraNodeIdentity(uri: "sutra://prod-1/node/3"), SutraNodeIdentity(clusterID: "prod-1", nodeID: 3))
        for bad in ["sutra://prod/node/03", "sutra://prod/node/0", "sutra://prod/node/-1", "sutra://prod/node/3/", "sutra:///node/3",
                    "sutra://prod/client/3", "http://prod/node/3", "sutra://pr od/node/3", "sutra://prod/node/99999999999999999999",
                    "sutra://prod/node/", "sutra://prod/node/3x", "sutra://prod/node/3?x"] {
            XCTAssertNil(SutraNodeIdentity(uri: bad), bad)
        }
    }
}
