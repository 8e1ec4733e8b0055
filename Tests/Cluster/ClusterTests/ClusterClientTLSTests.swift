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

    /// Runs the `sutra` CLI (next to the test's sutra-node) to completion; its exit status and output.
    private func cli(_ args: [String]) throws -> (status: Int32, output: String) { try runSutraCLI(args) }

    /// `sutra cluster up --client-tls` serves both client ports over TLS with the cluster's certificates, and the
    /// CLI of that data directory (status, bench, readiness) verifies them with the cluster CA by itself.
    func testCLIReachesTheTLSClusterItStarted() throws {
        let dir = NSTemporaryDirectory() + "sutra-cli-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dirs.append(dir)
        let base = 10_000 + Int.random(in: 0..<70) * 300
        let up = try cli(["cluster", "up", "--data", dir, "--base-port", "\(base)", "--client-tls", "--shards", "2", "--dimension", "4"])
        defer { _ = try? cli(["cluster", "down", "--data", dir]) }
        XCTAssertEqual(up.status, 0, up.output)
        XCTAssertTrue(up.output.contains("client ports: TLS"), up.output)
        XCTAssertTrue(up.output.contains("https://127.0.0.1:\(base + 101)"), up.output)
        let status = try cli(["status", "--data", dir])
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("3 nodes, 2 shards"), status.output)
        let bench = try cli(["bench", "--data", dir, "--duration", "1", "--concurrency", "2", "--json"])
        XCTAssertEqual(bench.status, 0, bench.output)
        XCTAssertTrue(bench.output.contains("\"errors\":0"), bench.output)
        // The HTTP port speaks only TLS, verified with the cluster CA.
        XCTAssertNil(BlockingHTTPClient.request("GET", host: "127.0.0.1", port: base + 101, path: "/health", timeout: 2))
        let ca = try TLSContext(TLSContext.Configuration(role: .client, certificateChainPath: nil, privateKeyPath: nil,
                                                         trustRootsPath: dir + "/certs/ca.crt", verification: .serverOnly, requireTLS13: false))
        XCTAssertEqual(BlockingHTTPClient.request("GET", host: "127.0.0.1", port: base + 101, path: "/health", timeout: 2, tls: ca)?.0, 200)
        let other = try certificates("other-ca")
        let wrong = try TLSContext(TLSContext.Configuration(role: .client, certificateChainPath: nil, privateKeyPath: nil,
                                                            trustRootsPath: other.caCertificate, verification: .serverOnly, requireTLS13: false))
        XCTAssertNil(BlockingHTTPClient.request("GET", host: "127.0.0.1", port: base + 101, path: "/health", timeout: 2, tls: wrong),
                     "a certificate from another CA is not accepted")
        let down = try cli(["cluster", "down", "--data", dir])
        XCTAssertEqual(down.status, 0, down.output)
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
