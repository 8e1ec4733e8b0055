import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The data directory checks its own configuration, and the WAL tells damage from a torn tail, on real
/// `sutra-node` processes: a node restarted with another --shards, --dimension, --cluster-id or --node-id, or
/// with a cut WAL segment, refuses to start with one line and exit code 78; restarted as it was created, it
/// starts and serves everything it acknowledged.
final class NodeDataIdentityTests: XCTestCase {
    static let refused: Int32 = 78

    private func put(_ c: LocalTestCluster, _ n: Int, _ embedding: [Float]) -> Int {
        let body = "{\"id\":\"\(conceptID(n))\",\"content\":\"concept \(n)\",\"embedding\":[\(embedding.map { "\($0)" }.joined(separator: ","))]}"
        return c.httpToLeader(via: 1, "POST", "/v1/concepts", body).status
    }

    private func readAll(_ c: LocalTestCluster, _ count: Int) -> Int {
        (0..<count).filter { c.http(1, "GET", "/v1/concepts/\(conceptID($0))").status == 200 }.count
    }

    func testFlagsThatDisagreeWithTheDataDirectoryAreRefused() throws {
        let c = try LocalTestCluster(nodes: 1, shards: 4, dimension: 4, flags: ["--cluster-id", "alpha"])
        var ok = false
        defer { c.destroy(keepLogs: !ok) }
        try c.startAll()
        for n in 0..<20 { XCTAssertEqual(put(c, n, [1, 2, 3, Float(n)]), 200, "write \(n)") }
        XCTAssertEqual(c.terminate(1), 0)
        let identity = "\(c.dir)/node1/identity"
        XCTAssertTrue(FileManager.default.fileExists(atPath: identity))
        let data = "\(c.dir)/node1"
        let cases: [([String: String], String)] = [
            (["--shards": "8"], "refusing to start: --shards 8 but data directory \(data) was created with 4 shards"),
            (["--dimension": "8"], "refusing to start: --dimension 8 but data directory \(data) was created with dimension 4"),
            (["--cluster-id": "beta"], "refusing to start: --cluster-id 'beta' but data directory \(data) was created for cluster 'alpha'"),
            (["--node-id": "2", "--peers": "2=127.0.0.1:\(c.base + 202)", "--peer-port": "\(c.base + 202)"], "refusing to start: --node-id 2 but data directory \(data) belongs to node 1"),
        ]
        for (override, line) in cases {
            let r = try c.runToExit(1, overrides: override)
            XCTAssertEqual(r.code, NodeDataIdentityTests.refused, "\(override): \(r.output)")
            let lines = r.output.split(separator: "\n").filter { $0.hasPrefix("sutra-node:") }
            XCTAssertEqual(lines.map(String.init), ["sutra-node: \(line)"], "\(override): \(r.output)")
        }
        // The original flags start fine and every acknowledged write is there.
        try c.start(1)
        try c.waitReady()
        XCTAssertEqual(readAll(c, 20), 20)
        XCTAssertEqual(c.terminate(1), 0)

        // A damaged identity file is refused and named.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: identity))
        bytes[20] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: identity))
        let r = try c.runToExit(1)
        XCTAssertEqual(r.code, NodeDataIdentityTests.refused, r.output)
        XCTAssertTrue(r.output.contains("identity file \(identity) is damaged at byte offset"), r.output)

        // A directory from before identity files (a WAL, no identity) is adopted from the flags, once.
        try FileManager.default.removeItem(atPath: identity)
        try c.start(1)
        try c.waitReady()
        XCTAssertEqual(readAll(c, 20), 20)
        XCTAssertEqual(c.terminate(1), 0)
        XCTAssertTrue(c.log(1).contains("predates identity files: adopted as cluster 'alpha', node 1, 4 shards, dimension 4"), c.log(1).suffix(2000).description)
        XCTAssertEqual(try c.runToExit(1, overrides: ["--shards": "2"]).code, NodeDataIdentityTests.refused)
        ok = true
    }

    /// Truncating the last WAL segment (to half its size) loses acknowledged writes: the node must refuse to
    /// start, naming the file and offset, instead of calling them "an unacknowledged write".
    func testATruncatedWALSegmentIsRefusedWithFileAndOffset() throws {
        let c = try LocalTestCluster(nodes: 1, shards: 2, dimension: 384)
        var ok = false
        defer { c.destroy(keepLogs: !ok) }
        try c.startAll()
        // Enough data that half of the preallocated segment lies inside it (~1.6 KB per write).
        let vector = (0..<384).map { Float($0) / 7 }
        var acknowledged = 0
        for n in 0..<800 where put(c, n, vector) == 200 { acknowledged += 1 }
        XCTAssertEqual(acknowledged, 800)
        XCTAssertEqual(c.terminate(1), 0)
        let walDir = "\(c.dir)/node1/wal"
        let segments = try FileManager.default.contentsOfDirectory(atPath: walDir).filter { $0.hasSuffix(".wal") }.sorted()
        let last = "\(walDir)/\(segments.last!)"
        let original = try Data(contentsOf: URL(fileURLWithPath: last))
        print("last WAL segment: \(original.count) bytes; truncated to \(original.count / 2)")
        XCTAssertEqual(truncate(last, off_t(original.count / 2)), 0)
        let r = try c.runToExit(1)
        XCTAssertEqual(r.code, NodeDataIdentityTests.refused, r.output)
        let line = r.output.split(separator: "\n").first { $0.hasPrefix("sutra-node:") }.map(String.init) ?? ""
        XCTAssertTrue(line.hasPrefix("sutra-node: refusing to start: WAL: corruption in \(last) at byte offset "), r.output)
        XCTAssertTrue(line.contains("cut short"), line)
        print("refusal: \(line) (exit \(r.code))")
        XCTAssertFalse(r.output.contains("unacknowledged"), r.output)
        // Put back, the segment opens and every acknowledged write is there.
        try original.write(to: URL(fileURLWithPath: last))
        try c.start(1)
        try c.waitReady()
        XCTAssertEqual(readAll(c, 800), 800)
        ok = true
    }
}
