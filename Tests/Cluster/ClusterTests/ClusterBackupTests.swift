import Backup
import Foundation
import HTTP
import Raft
import Shard
import WAL
import XCTest

/// Online backup and restore on real processes, following docs/OPERATIONS.md ("Backup and restore") literally:
/// `sutra backup` while cross-shard associations are written, `sutra restore` into a new directory, `sutra cluster
/// up` on it, and `sutra digest` of the restored cluster equal to the backup's. The backup holds no half
/// transaction; a damaged backup file is refused by name; the backup routes refuse malformed requests.
final class ClusterBackupTests: XCTestCase {
    private var dirs: [String] = []

    override func tearDown() {
        for d in dirs {
            _ = try? runSutraCLI(["cluster", "down", "--data", d, "--timeout", "5"])
            if (testRun?.failureCount ?? 0) == 0 { try? FileManager.default.removeItem(atPath: d) } else { print("kept \(d)") }
        }
        dirs = []
    }

    private func newDir() -> String {
        let dir = NSTemporaryDirectory() + "sutra-backup-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dirs.append(dir)
        return dir
    }

    private func run(_ args: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try runSutraCLI(args)
        XCTAssertEqual(r.status, 0, "\(what): \(r.output)", file: file, line: line)
        return r.output
    }

    private func lastLine(_ s: String) -> String { String(s.split(separator: "\n").last ?? "") }

    /// Every out-edge in the backup has its in-edge on the other side with the same confidence, and no image
    /// holds a transaction record or intent.
    private func assertNoHalfTransaction(_ backup: String) throws -> Int {
        let m = try BackupReader.manifest(in: backup)
        let states = try BackupReader.verifiedShards(of: m, in: backup)
        struct Side: Hashable { var source: ConceptID; var target: ConceptID; var type: AssociationType; var confidence: Float }
        var outs = Set<Side>(), ins = Set<Side>()
        for (s, state) in states.enumerated() {
            let image = state.contentImage(shard: s)
            XCTAssertEqual(image.openRecords + image.openIntents, 0, "shard \(s) holds an open transaction")
            for (owner, edges) in image.edges(.outgoing) { for e in edges { outs.insert(Side(source: owner, target: e.other, type: e.type, confidence: e.confidence)) } }
            for (owner, edges) in image.edges(.incoming) { for e in edges { ins.insert(Side(source: e.other, target: owner, type: e.type, confidence: e.confidence)) } }
        }
        XCTAssertEqual(outs.subtracting(ins).count, 0, "out-edges without their in-edge: half transactions in the backup")
        XCTAssertEqual(ins.subtracting(outs).count, 0, "in-edges without their out-edge: half transactions in the backup")
        return outs.count
    }

    func testABackupUnderLoadRestoresIntoANewClusterWithTheSameDigest() throws {
        let base1 = 10_000 + Int.random(in: 0..<35) * 300, base2 = base1 + 35 * 300
        let live = newDir(), backup = newDir(), restored = newDir()
        _ = try run(["cluster", "up", "--data", live, "--base-port", "\(base1)", "--shards", "4", "--dimension", "4"], "cluster up")

        // Cross-shard associations (two-phase commits) and plain writes throughout the backup.
        let bench = Process()
        bench.executableURL = URL(fileURLWithPath: LocalTestCluster.nodeBinary).deletingLastPathComponent().appendingPathComponent("sutra")
        bench.arguments = ["bench", "--data", live, "--duration", "8", "--concurrency", "8", "--mix", "assoc-cross", "--keys", "300"]
        let benchOut = Pipe()
        bench.standardOutput = benchOut
        bench.standardError = FileHandle.nullDevice
        try bench.run()
        defer { if bench.isRunning { bench.terminate() } }
        sleep(3)
        let taken = try run(["backup", "--data", live, "--to", backup], "backup under load")
        XCTAssertTrue(taken.contains("consistent"), taken)
        let benchText = String(decoding: benchOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        bench.waitUntilExit()
        // Two of the load's own transactions on one association conflict now and then (300 keys, 8 workers):
        // that answer is "retry", nothing of it applied. Any other error is the backup's doing.
        XCTAssertTrue(benchText.contains(", 0 errors") || benchText.contains("first error: conflict"),
                      "the load saw errors during the backup: \(benchText)")
        XCTAssertTrue(benchText.contains(" ops in "), benchText)

        let edges = try assertNoHalfTransaction(backup)
        XCTAssertGreaterThan(edges, 100, "the backup should hold the associations written before it")
        let backupDigest = lastLine(try run(["digest", "--backup", backup], "digest of the backup"))
        XCTAssertEqual(backupDigest.count, 64, backupDigest)

        // The procedure of docs/OPERATIONS.md: restore into a new directory, start it, compare digests.
        _ = try run(["restore", "--from", backup, "--data", restored], "restore")
        _ = try run(["cluster", "up", "--data", restored, "--base-port", "\(base2)"], "cluster up on the restored data")
        let restoredDigest = try run(["digest", "--data", restored], "digest of the restored cluster")
        XCTAssertEqual(restoredDigest.split(separator: "\n").filter { $0.hasPrefix("node ") }.count, 3, restoredDigest)
        XCTAssertEqual(lastLine(restoredDigest), backupDigest, "the restored cluster does not hold what the backup holds")
        // The restored cluster takes writes.
        _ = try run(["put", "--data", restored, "--id", "000000000000000000000000000000f1", "--content", "after restore"], "a write after restore")
        XCTAssertNotEqual(lastLine(try run(["digest", "--data", restored], "digest")), backupDigest)
    }

    /// What a 0.1 node would meet in a stopped node's data: backup fence commands left in the shards' logs, and
    /// snapshots in a format above 3.
    private func fenceEntriesAndSnapshotFormats(_ nodeDir: String) throws -> (fences: Int, formats: Set<UInt32>) {
        let engine = try LogEngine(directory: nodeDir + "/wal")
        defer { engine.close() }
        var fences = 0
        var formats = Set<UInt32>()
        for gid in engine.groupIDs {
            let g = engine.group(gid)
            if g.lastIndex() > g.compactIndex {
                for e in try g.entries(g.compactIndex + 1, g.lastIndex() + 1, maxBytes: .max) where e.kind == .normal && !e.data.isEmpty {
                    guard let request = try? ShardRequest.decode(e.data) else { continue }
                    switch request.command {
                    case .backupFence, .liftBackupFence: fences += 1
                    default: break
                    }
                }
            }
            if g.snapshotMetadata.index > 0 {
                let data = try g.snapshotWithData().data
                if data.count >= 12 { formats.insert(UInt32(data[8]) | UInt32(data[9]) << 8 | UInt32(data[10]) << 16 | UInt32(data[11]) << 24) }
            }
        }
        return (fences, formats)
    }

    /// The downgrade procedure after a backup (`CHANGELOG.md`): `sutra compact-log` leaves no backup fence in any
    /// node's log and only format-3 snapshots, so a 0.1 node would never meet what it cannot read. Before it, the
    /// fences are there.
    func testCompactLogLeavesNoBackupFenceInAnyLog() throws {
        let base = 10_000 + Int.random(in: 0..<70) * 300
        let live = newDir(), backup = newDir()
        _ = try run(["cluster", "up", "--data", live, "--base-port", "\(base)", "--shards", "2", "--dimension", "2"], "cluster up")
        for i in 1...10 { _ = try run(["put", "--data", live, "--id", String(format: "%032x", i), "--content", "c\(i)"], "put") }
        _ = try run(["backup", "--data", live, "--to", backup], "backup")
        _ = try run(["cluster", "down", "--data", live], "cluster down")
        let before = try (1...3).map { try fenceEntriesAndSnapshotFormats(live + "/node\($0)") }
        XCTAssertTrue(before.allSatisfy { $0.fences > 0 }, "every node's log should hold the backup's fence entries: \(before)")

        _ = try run(["cluster", "up", "--data", live, "--base-port", "\(base)"], "cluster up again")
        for i in 11...15 { _ = try run(["put", "--data", live, "--id", String(format: "%032x", i), "--content", "c\(i)"], "put") }
        let compacted = try run(["compact-log", "--data", live], "compact-log")
        XCTAssertEqual(compacted.split(separator: "\n").filter { $0.contains("\"snapshots\"") }.count, 3, compacted)
        _ = try run(["cluster", "down", "--data", live], "cluster down")
        for id in 1...3 {
            let after = try fenceEntriesAndSnapshotFormats(live + "/node\(id)")
            XCTAssertEqual(after.fences, 0, "node \(id)'s log still holds backup fence entries")
            XCTAssertEqual(after.formats, [ShardState.snapshotVersion], "node \(id)'s snapshots")
        }
        // Everything is still there.
        _ = try run(["cluster", "up", "--data", live, "--base-port", "\(base)"], "cluster up after compaction")
        XCTAssertTrue(try run(["get", "--data", live, String(format: "%032x", 3)], "get").contains("\"c3\""))
        XCTAssertTrue(try run(["get", "--data", live, String(format: "%032x", 14)], "get").contains("\"c14\""))
    }

    func testADamagedBackupIsRefusedNamingTheFileAndTheRoutesRefuseMalformedRequests() throws {
        let base = 10_000 + Int.random(in: 0..<70) * 300
        let live = newDir(), backup = newDir()
        _ = try run(["cluster", "up", "--data", live, "--base-port", "\(base)", "--shards", "3", "--dimension", "2"], "cluster up")
        for i in 1...20 {
            _ = try run(["put", "--data", live, "--id", String(format: "%032x", i), "--content", "c\(i)"], "put")
        }
        _ = try run(["backup", "--data", live, "--to", backup], "backup")

        // One flipped byte in one shard file: restore and digest refuse it, naming the file.
        let victim = backup + "/" + BackupManifest.fileName(shard: 1)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: victim)))
        bytes[bytes.count / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        for args in [["restore", "--from", backup, "--data", newDir()], ["digest", "--backup", backup]] {
            let r = try runSutraCLI(args)
            XCTAssertNotEqual(r.status, 0, "\(args[0]) accepted a damaged backup: \(r.output)")
            XCTAssertTrue(r.output.contains(BackupManifest.fileName(shard: 1)), "\(args[0]) does not name the damaged file: \(r.output)")
        }

        // The routes: admin only, malformed ids and shards refused before any work, unknown backups 404.
        let token = try String(contentsOfFile: live + "/admin.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func http(_ method: String, _ path: String, token: String?) -> Int {
            BlockingHTTPClient.exchange(method, host: "127.0.0.1", port: base + 101, path: path, timeout: 5,
                                        headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])?.status ?? 0
        }
        XCTAssertEqual(http("POST", "/v1/admin/backup", token: nil), 401)
        XCTAssertEqual(http("GET", "/v1/admin/backup/0000000000000001/shards/0", token: nil), 401)
        XCTAssertEqual(http("GET", "/v1/admin/backup/zz/shards/0", token: token), 400)
        XCTAssertEqual(http("GET", "/v1/admin/backup/0000000000000001/shards/-1", token: token), 400)
        XCTAssertEqual(http("GET", "/v1/admin/backup/0000000000000001/shards/99999999999999999999", token: token), 400)
        XCTAssertEqual(http("GET", "/v1/admin/backup/0000000000000001/shards/0", token: token), 404)
        XCTAssertEqual(http("DELETE", "/v1/admin/backup/0000000000000001", token: token), 404)
        XCTAssertEqual(http("POST", "/v1/admin/backup?fence_seconds=0", token: token), 400)
        XCTAssertEqual(http("POST", "/v1/admin/backup?wait_seconds=100000", token: token), 400)
        // The node still serves.
        XCTAssertEqual(http("GET", "/health", token: nil), 200)
    }
}
