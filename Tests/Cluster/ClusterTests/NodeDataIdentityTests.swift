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
        // 503 (a leadership being handed to its preferred node right after start, a leader just killed): retry,
        // as a client would — a put of the same id writes the same concept.
        var status = c.httpToLeader(via: 1, "POST", "/v1/concepts", body).status
        let deadline = Date().addingTimeInterval(10)
        while status == 503 && Date() < deadline {
            usleep(100_000)
            status = c.httpToLeader(via: 1, "POST", "/v1/concepts", body).status
        }
        return status
    }

    private func readAll(_ c: LocalTestCluster, _ count: Int) -> Int {
        (0..<count).filter { c.http(1, "GET", "/v1/concepts/\(conceptID($0))").status == 200 }.count
    }

    func testFlagsThatDisagreeWithTheDataDirectoryAreRefused() throws {
        let c = try LocalTestCluster(nodes: 1, shards: 4, dimension: 4, flags: ["--cluster-id", "alpha"])
        defer { c.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0) }
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
    }

    /// Truncating the last WAL segment (to half its size) loses acknowledged writes: the node must refuse to
    /// start, naming the file and offset, instead of calling them "an unacknowledged write".
    func testATruncatedWALSegmentIsRefusedWithFileAndOffset() throws {
        let c = try LocalTestCluster(nodes: 1, shards: 2, dimension: 384)
        defer { c.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0) }
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
    }

    /// Every file the node creates is 0600 and every directory 0700: WAL segments, snapshots, the vector index
    /// (saved by a flush), the identity file.
    func testDataFilesAreOwnerOnly() throws {
        let c = try LocalTestCluster(nodes: 1, shards: 2, dimension: 4, flags: ["--snapshot-entries", "100"])
        defer { c.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0) }
        try c.startAll()
        for n in 0..<150 { XCTAssertEqual(put(c, n, [1, 2, 3, Float(n)]), 200) }
        XCTAssertEqual(c.http(1, "POST", "/v1/flush").status, 200)
        XCTAssertEqual(c.terminate(1), 0)
        let root = "\(c.dir)/node1"
        var seen: [String: Int] = [:]
        let e = FileManager.default.enumerator(atPath: root)!
        var paths = [""]
        while let p = e.nextObject() as? String { paths.append(p) }
        for p in paths {
            let attrs = try FileManager.default.attributesOfItem(atPath: root + "/" + p)
            let mode = (attrs[.posixPermissions] as! NSNumber).intValue
            let isDir = (attrs[.type] as? FileAttributeType) == .typeDirectory
            XCTAssertEqual(mode, isDir ? 0o700 : 0o600, "\(p.isEmpty ? "." : p) is \(String(mode, radix: 8))")
            seen[p] = mode
        }
        for expected in ["identity", "wal", "wal/snap", "vectors", "vectors/vectors.hnsw", "vectors/vectors.meta", "wal/0000000000000001.wal"] {
            XCTAssertNotNil(seen[expected], "\(expected) exists (files: \(seen.keys.sorted()))")
        }
        XCTAssertTrue(seen.keys.contains { $0.hasPrefix("wal/snap/") && $0.hasSuffix(".snap") }, "a snapshot file: \(seen.keys.sorted())")
    }

    /// The way back for a node whose data is refused (docs/OPERATIONS.md): wipe its data directory and start it
    /// with the same flags; it rejoins and catches up from its peers (log and snapshots) on every shard, including
    /// a shard whose leader still believes the node holds entries it lost.
    func testAWipedNodeRejoinsAndCatchesUp() throws {
        let c = try LocalTestCluster(nodes: 3, shards: 2, dimension: 4, flags: ["--snapshot-entries", "100", "--compact-margin", "0"])
        defer { c.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0) }
        try c.startAll()
        for n in 0..<300 { XCTAssertEqual(put(c, n, [1, 2, 3, Float(n)]), 200, "write \(n)") }
        c.kill9(3)
        let walDir = "\(c.dir)/node3/wal"
        let last = try FileManager.default.contentsOfDirectory(atPath: walDir).filter { $0.hasSuffix(".wal") }.sorted().last!
        XCTAssertEqual(truncate("\(walDir)/\(last)", 1000), 0)
        let r = try c.runToExit(3)
        XCTAssertEqual(r.code, NodeDataIdentityTests.refused, r.output)
        try FileManager.default.removeItem(atPath: "\(c.dir)/node3")
        for n in 300..<400 { XCTAssertEqual(put(c, n, [1, 2, 3, Float(n)]), 200, "write \(n)") }
        try c.start(3)
        try c.waitReady(timeout: 30)
        let deadline = Date().addingTimeInterval(30)
        var missing: [Int] = []
        repeat {
            missing = (0..<400).filter { c.http(3, "GET", "/v1/concepts/\(conceptID($0))?consistency=stale").status != 200 }
            if missing.isEmpty { break }
            usleep(200_000)
        } while Date() < deadline
        XCTAssertEqual(missing, [], "every acknowledged write is back on the wiped node")
        print("wiped node 3 rejoined: installed \(metricSum(c.http(3, "GET", "/metrics"), "sutra_snapshots_installed_total{")) snapshots")
        for n in 400..<420 { XCTAssertEqual(put(c, n, [1, 2, 3, Float(n)]), 200, "write \(n) after the rejoin") }
    }
}
