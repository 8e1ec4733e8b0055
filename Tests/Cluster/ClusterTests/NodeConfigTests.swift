import Foundation
import XCTest

/// `sutra-node` refuses a bad setting before starting: one line naming the setting and its allowed range,
/// exit code ≠ 0.
final class NodeConfigTests: XCTestCase {
    /// Runs sutra-node; with `stopAfter`, a node still running then gets SIGTERM (graceful stop, exit 0).
    private func start(_ args: [String], env: [String: String] = [:], stopAfter: Double? = nil) throws -> (code: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LocalTestCluster.nodeBinary)
        p.arguments = args
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        if let stopAfter {
            let until = Date().addingTimeInterval(stopAfter)
            while p.isRunning && Date() < until { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        }
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate(); XCTFail("sutra-node \(args) kept running") }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func testBadSettingsStopTheNodeWithOneClearLine() throws {
        let dir = NSTemporaryDirectory() + "sutra-config-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [([String], [String: String], String)] = [
            (["--shards", "65"], [:], "shards (--shards / SUTRA_NUM_SHARDS) is 65; allowed: 1…64"),
            ([], ["SUTRA_NUM_SHARDS": "0"], "shards (--shards / SUTRA_NUM_SHARDS) is 0; allowed: 1…64"),
            (["--dimension", "4096"], [:], "dimension (--dimension / VECTOR_DIMENSION) is 4096; allowed: 0…2048"),
            ([], ["VECTOR_DIMENSION": "abc"], "dimension (VECTOR_DIMENSION) 'abc' is not a number"),
            (["--node-id", "x"], [:], "node id (--node-id / STORAGE_NODE_ID) 'x' is not a number 1…255"),
            (["--peers", "1=127.0.0.1"], [:], "peers (--peers / SUTRA_PEERS): '127.0.0.1' is not host:port with a port in 1…65535"),
            (["--tick-ms", "0"], [:], "tick (--tick-ms) is 0; allowed: 1…1000"),
            (["--log-level", "loud"], [:], "log level (--log-level) is loud; allowed: trace, debug, info, notice, warning, error, critical"),
        ]
        for (args, env, expected) in cases {
            let r = try start(["--data", dir] + args, env: env)
            XCTAssertEqual(r.code, 78, "\(args) \(env): a configuration refusal")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)")
            XCTAssertEqual(lines.first.map(String.init), "sutra-node: invalid configuration: \(expected)")
        }
        // A flag the parser does not know is a configuration refusal too (not the parser's usage exit 64).
        let unknown = try start(["--data", dir, "--shardz", "4"])
        XCTAssertEqual(unknown.code, 78, unknown.stderr)
        XCTAssertTrue(unknown.stderr.hasPrefix("sutra-node: invalid configuration: "), unknown.stderr)
        // The shard count is fixed when the cluster is created: a data directory of 2 shards refuses 4 (and 1).
        let made = try start(["--data", dir, "--shards", "2", "--peers", "1=127.0.0.1:1", "--tick-ms", "1000"], env: [:], stopAfter: 1.5)
        XCTAssertEqual(made.code, 0, made.stderr)
        for n in ["4", "1"] {
            let r = try start(["--data", dir, "--shards", n, "--peers", "1=127.0.0.1:1"])
            XCTAssertNotEqual(r.code, 0)
            XCTAssertEqual(r.code, 78)
            XCTAssertTrue(r.stderr.contains("refusing to start: --shards \(n) but data directory \(dir) was created with 2 shards"), r.stderr)
        }
        // The seeds' node names are accepted (storage-prod-2 is node 2) — and then a missing peer list entry is named.
        let r = try start(["--data", dir, "--peers", "1=127.0.0.1:1"], env: ["STORAGE_NODE_ID": "storage-prod-2"])
        XCTAssertEqual(r.stderr.split(separator: "\n").first.map(String.init), "sutra-node: invalid configuration: peers (--peers / SUTRA_PEERS) does not name this node (2)")
    }
}
