import Foundation
import TLS
import XCTest

/// `ClusterCertificates.create` (what `sutra certs init` runs): OpenSSL's own CLI verifies every certificate
/// against the CA and sees the identity SAN; keys are 0600; a CA is never overwritten.
final class ClusterCertificatesTests: XCTestCase {
    private func openssl(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testGeneratedCertificatesVerifyWithOpenSSLAndCarryTheirIdentity() throws {
        let dir = NSTemporaryDirectory() + "sutra-certs-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = ClusterCertificates(directory: dir)
        try certs.create(clusterID: "prod-eu", nodes: 3, hosts: ["db1.example.com", "10.0.0.2", "db3.example.com"])
        for id in 1...3 {
            let (code, out) = try openssl(["verify", "-CAfile", certs.caCertificate, certs.nodeCertificate(UInt64(id))])
            XCTAssertEqual(code, 0, out)
            let (_, text) = try openssl(["x509", "-in", certs.nodeCertificate(UInt64(id)), "-noout", "-text"])
            XCTAssertTrue(text.contains("URI:sutra://prod-eu/node/\(id)"), text)
            XCTAssertTrue(text.contains("IP Address:127.0.0.1"), text)
            XCTAssertTrue(text.contains("ASN1 OID: prime256v1"), text)
            XCTAssertTrue(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"), text)
        }
        XCTAssertTrue(try openssl(["x509", "-in", certs.nodeCertificate(2), "-noout", "-text"]).1.contains("IP Address:10.0.0.2"))
        XCTAssertTrue(try openssl(["x509", "-in", certs.nodeCertificate(3), "-noout", "-text"]).1.contains("DNS:db3.example.com"))
        XCTAssertEqual(try openssl(["verify", "-CAfile", certs.caCertificate, certs.clientCertificate]).0, 0)
        XCTAssertTrue(try openssl(["x509", "-in", certs.caCertificate, "-noout", "-text"]).1.contains("CA:TRUE"))
        for key in [certs.caKey, certs.nodeKey(1), certs.nodeKey(3), certs.clientKey] {
            let mode = (try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? NSNumber)?.intValue
            XCTAssertEqual(mode, 0o600, key)
        }
        XCTAssertThrowsError(try certs.create(clusterID: "prod-eu", nodes: 3)) { XCTAssertTrue("\($0)".contains("already exists"), "\($0)") }
        // A certificate from another CA does not verify against this one.
        let other = ClusterCertificates(directory: dir + "/other")
        try other.create(clusterID: "prod-eu", nodes: 1)
        XCTAssertNotEqual(try openssl(["verify", "-CAfile", certs.caCertificate, other.nodeCertificate(1)]).0, 0)
    }

    func testBadInputsAreRefused() {
        let certs = ClusterCertificates(directory: NSTemporaryDirectory() + "sutra-certs-bad-\(getpid())")
        XCTAssertThrowsError(try certs.create(clusterID: "a b", nodes: 3))
        XCTAssertThrowsError(try certs.create(clusterID: "c", nodes: 0))
        XCTAssertThrowsError(try certs.create(clusterID: "c", nodes: 3, hosts: ["a", "b"]))
        XCTAssertThrowsError(try certs.create(clusterID: "c", nodes: 1, hosts: ["a,URI:sutra://c/node/2"]))
    }
}
