import Foundation
import HTTP
import SutraClient
import TLS
import XCTest

/// TLS on the client ports of real nodes: the SDK verifying with the cluster CA works; without TLS, or with
/// another CA, it does not; plaintext HTTP to the TLS port is refused cleanly and the node keeps serving; a
/// non-loopback listen address without TLS is refused at start.
final class ClusterClientTLSTests: XCTestCase {
    var cluster: LocalTestCluster!
    var dirs: [String] = []

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
    }

    func certificates(_ name: String) throws -> ClusterCertificates {
        let d = NSTemporaryDirectory() + "sutra-client-tls-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dirs.append(d)
        let c = ClusterCertificates(directory: d)
        try c.create(clusterID: "sutra", nodes: 1)
        return c
    }

    func testSDKVerifiesTheNodesCertificateAndPlaintextIsRefused() async throws {
        let certs = try certificates("good"), other = try certificates("other")
        cluster = try LocalTestCluster(nodes: 3, shards: 2, flags: ["--client-tls-cert", certs.nodeCertificate(1),
                                                                      "--client-tls-key", certs.nodeKey(1)])
        for id in 1...3 { try cluster.start(id) }
        let good = try SutraClient(endpoints: cluster.clientEndpoints,
                                   options: .init(requestTimeout: .seconds(20), tls: TLSOptions(caFile: certs.caCertificate)))
        let started = ContinuousClock.now
        try await good.put(NewConcept(id: conceptID(1), text: "over TLS"))
        print("client TLS: first write through the SDK after \(ContinuousClock.now - started) (cluster start included)")
        let back = try await good.get(conceptID(1))
        XCTAssertEqual(back?.text, "over TLS")

        func failsOver(_ label: String, _ options: SutraClient.Options) async throws -> String {
            let c = try SutraClient(endpoints: cluster.clientEndpoints, options: options)
            defer { Task { await c.close() } }
            do {
                _ = try await c.get(conceptID(1))
                XCTFail("\(label): a read succeeded")
                return ""
            } catch let e as SutraError {
                print("client TLS, \(label): \(e)")
                return "\(e)"
            }
        }
        let short = SutraClient.Options(requestTimeout: .milliseconds(1500))
        var wrongCA = short
        wrongCA.tls = TLSOptions(caFile: other.caCertificate)
        let wrong = try await failsOver("another CA", wrongCA)
        XCTAssertTrue(wrong.contains("TLS"), "the verification failure is named: \(wrong)")
        let plain = try await failsOver("plaintext client", short)
        XCTAssertTrue(plain.contains("timed out"), plain)
        // Plaintext HTTP to the TLS HTTP port: no HTTP answer, and the node keeps serving.
        XCTAssertNil(BlockingHTTPClient.request("GET", host: "127.0.0.1", port: cluster.httpPort(1), path: "/health", timeout: 2))
        try await good.put(NewConcept(id: conceptID(2), text: "still serving"))
        XCTAssertEqual(cluster.terminate(1), 0, "no node crashed")
        await good.close()
    }

    func testNonLoopbackListenWithoutTLSIsRefused() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LocalTestCluster.nodeBinary)
        let dir = NSTemporaryDirectory() + "sutra-insecure-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dirs.append(dir)
        p.arguments = ["--node-id", "1", "--data", dir, "--listen", "0.0.0.0", "--shards", "1", "--dimension", "0"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 78, "a configuration refusal exits 78 (EX_CONFIG)")
        XCTAssertTrue(text.contains("--allow-insecure-clients"), text)
    }
}
