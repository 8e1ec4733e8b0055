import ChaosLab
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Shared set-up for the chaos tests: where `sutra-node` is, skipping with a clear message where the machine
/// cannot do what a test needs, clusters that are always stopped (by pid) and reported on failure.
enum ChaosTestSupport {
    /// `sutra-node` beside the test bundle (SwiftPM builds every product for `swift test`).
    static var nodeBinary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sutra-node").path
    }

    /// Skips unless network namespaces can be created here (root, iproute2).
    static func requireLab() throws {
        let a = NetworkLab.isAvailable()
        if !a.available { throw XCTSkip("network namespaces unavailable, so this lab test cannot run: \(a.reason)") }
    }

    /// Skips unless the node binary is built.
    static func requireNodeBinary() throws {
        if !FileManager.default.isExecutableFile(atPath: nodeBinary) {
            throw XCTSkip("sutra-node is not built at \(nodeBinary): run `swift build --product sutra-node`")
        }
    }

    /// A 32-hex-digit concept id.
    static func conceptID(_ n: UInt64, prefix: UInt64 = 0xC4A0_5000_0000_0000) -> String {
        String(format: "%016llx%016llx", prefix, n)
    }

    /// Writes a concept through whichever node leads its shard; true on 200.
    static func put(_ c: LabCluster, via: Int, id: String, content: String) -> Bool {
        request(c, via: via, "POST", "/v1/concepts", body: "{\"id\":\"\(id)\",\"content\":\"\(content)\"}").status == 200
    }

    /// One request through node `via`; a 503 (a leadership being handed to its preferred node, a leader just
    /// restarted) is retried for up to 5 s, as a client does — a put of the same id writes the same concept.
    static func request(_ c: LabCluster, via: Int, _ method: String, _ path: String, body: String = "") -> HTTPReply {
        var reply = c.httpToLeader(via: via, method, path, body: body, timeout: 3)
        let deadline = Date().addingTimeInterval(5)
        while reply.status == 503 && Date() < deadline {
            usleep(50_000)
            reply = c.httpToLeader(via: via, method, path, body: body, timeout: 3)
        }
        return reply
    }

    /// Reads a concept's content (linearizable, at its leader); nil if not found or no answer.
    static func get(_ c: LabCluster, via: Int, id: String) -> String? {
        let r = request(c, via: via, "GET", "/v1/concepts/\(id)")
        guard r.status == 200, let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] else { return nil }
        return o["content"] as? String
    }

    /// Retries `body` every 100 ms until it is true or `timeout` passes.
    static func eventually(_ timeout: Double, _ body: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if body() { return true }
            usleep(100_000)
        } while Date() < deadline
        return body()
    }

    /// Whether this machine can create network namespaces (else partitions go through the proxy).
    static var namespacesAvailable: Bool { NetworkLab.isAvailable().available }

    /// Whether a pid no longer exists (reaped; not even a zombie).
    static func gone(_ pid: pid_t) -> Bool { kill(pid, 0) != 0 && errno == ESRCH }
}

/// A test case owning at most one lab and one cluster: teardown stops every node by pid (bounded), checks that
/// none is left, tears the lab down, and prints the node logs when the test failed.
class ChaosTestCase: XCTestCase {
    var lab: NetworkLab?
    var cluster: LabCluster?
    private var startedPIDs: [pid_t] = []

    /// A 3-node cluster, started and ready: inside a fresh lab when `inLab` (skips if namespaces are
    /// unavailable), else on loopback — with its node links through a `LinkProxy` when `proxied`.
    func startCluster(inLab: Bool, proxied: Bool = false, shards: Int = 4, flags: [String] = []) throws -> LabCluster {
        try ChaosTestSupport.requireNodeBinary()
        if inLab {
            try ChaosTestSupport.requireLab()
            lab = try NetworkLab(nodes: 3)
        }
        var o = LabCluster.Options()
        o.shards = shards
        o.extraFlags = flags
        o.proxiedLinks = proxied
        let c = try LabCluster(binary: ChaosTestSupport.nodeBinary, lab: lab, options: o)
        cluster = c
        try c.startAll(timeout: 30)
        rememberPIDs()
        return c
    }

    /// Records the nodes' current pids so teardown can check each one is gone (call after restarts too).
    func rememberPIDs() {
        startedPIDs += cluster?.processes.compactMap(\.pid) ?? []
    }

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        if let c = cluster {
            rememberPIDs()
            if failed { print("chaos test failed; node logs in \(c.directory):\n\(c.logReport())") }
            c.destroy(keepFiles: failed)
            for pid in startedPIDs { XCTAssertTrue(ChaosTestSupport.gone(pid), "process \(pid) survived stopAll") }
        }
        if let lab {
            let problems = lab.destroy()
            XCTAssertEqual(problems, [], "lab teardown")
        }
        cluster = nil
        lab = nil
        startedPIDs = []
        super.tearDown()
    }
}
