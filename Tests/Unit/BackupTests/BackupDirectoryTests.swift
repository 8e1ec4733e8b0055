import Backup
import Codec
import Foundation
import Node
import Raft
import Shard
import WAL
import XCTest

/// A backup directory as `sutra backup` writes it, checked by `BackupReader` (every damage refused naming the
/// file) and restored by `RestoreWriter` into node directories that open as the backup's shards.
final class BackupDirectoryTests: XCTestCase {
    var dirs: [String] = []
    override func tearDown() { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }

    func newDir() -> String {
        let d = NSTemporaryDirectory() + "sutra-backup-test-\(UInt64.random(in: 1...UInt64.max))"
        dirs.append(d)
        return d
    }

    /// Two shards with data, written as a backup directory the way the CLI writes it.
    func writeBackup() throws -> (String, BackupManifest) {
        let dir = newDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var entries: [BackupManifest.Shard] = []
        var digests: [ShardDigest] = []
        for shard in 0..<2 {
            let s = ShardState(limits: ShardLimits(dimension: 2))
            for i in 0..<5 {
                _ = s.apply(ShardRequest(clientID: 0, sequence: 0, command: .putConcept(Concept(id: ConceptID(hi: UInt64(shard), lo: UInt64(i)), content: [1, 2], embedding: [Float(i), 1]))), at: UInt64(i + 1))
            }
            let image = s.contentImage(shard: shard)
            let bytes = image.backupData(), d = ShardDigest.compute(image)
            digests.append(d)
            let name = BackupManifest.fileName(shard: shard)
            try BackupDirectory.write(bytes, dir: dir, name: name)
            entries.append(.init(shard: shard, appliedIndex: image.appliedIndex, concepts: d.concepts, edges: d.edges, digest: d.hex,
                                 file: name, bytes: bytes.count, sha256: lowerHex(ShardDigest.sha256(bytes))))
        }
        let m = BackupManifest(backupID: fixedHex(0xABCDEF), clusterID: "c", shardCount: 2, dimension: 2, nodeRelease: "t", cliRelease: "t",
                               snapshotFormat: 3, takenAt: "now", consistentAfterMs: 0, digest: lowerHex(ShardDigest.cluster(digests)), shards: entries)
        try BackupDirectory.write([UInt8](try m.encoded()), dir: dir, name: BackupManifest.fileName)
        return (dir, m)
    }

    func testAWholeBackupVerifiesAndRestoresIntoNodesThatHoldIt() throws {
        let (dir, m) = try writeBackup()
        XCTAssertEqual(try BackupReader.manifest(in: dir), m)
        let states = try BackupReader.verifiedShards(of: m, in: dir)
        let target = newDir()
        let prepared = RestoreWriter.Prepared(states, backup: m)
        try RestoreWriter.write(prepared, clusterID: "restored", voters: [1, 2, 3], node: 2, dataDir: target)
        let id = try XCTUnwrap(try RecordedIdentity.of(dataDir: target))
        XCTAssertEqual([id.clusterID, "\(id.nodeID)", "\(id.shards)", "\(id.dimension)"], ["restored", "2", "2", "2"])
        let engine = try LogEngine(directory: target + "/wal")
        defer { engine.close() }
        for s in 0..<2 {
            let log = engine.group(UInt64(s))
            XCTAssertEqual(log.snapshotMetadata.index, m.shards[s].appliedIndex)
            XCTAssertEqual(log.snapshotMetadata.confState.voters, [1, 2, 3])
            XCTAssertEqual(log.hardState.commit, m.shards[s].appliedIndex)
            let restored = try ShardState.restore(from: try log.snapshotWithData().data, limits: ShardLimits(dimension: 2))
            XCTAssertEqual(ShardDigest.compute(restored.contentImage(shard: s)).hex, m.shards[s].digest)
        }
        XCTAssertThrowsError(try RestoreWriter.write(prepared, clusterID: "restored", voters: [1, 2, 3], node: 2, dataDir: target),
                             "a directory with data is never written into")
    }

    func testEveryDamageIsRefusedNamingTheFile() throws {
        let (dir, m) = try writeBackup()
        let file = dir + "/" + m.shards[1].file
        var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
        bytes[40] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try BackupReader.verifiedShards(of: m, in: dir)) { e in
            XCTAssertEqual((e as? BackupError)?.file, file)
            XCTAssertTrue("\(e)".contains("SHA-256"), "\(e)")
        }
        try Data(bytes.prefix(10)).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try BackupReader.verifiedShards(of: m, in: dir)) { e in XCTAssertTrue("\(e)".contains("truncated"), "\(e)") }
        // A manifest that lies about a digest (the file itself intact) is caught by the content check.
        var lying = m
        lying.shards[0].digest = String(repeating: "0", count: 64)
        XCTAssertThrowsError(try BackupReader.shard(lying.shards[0], in: dir, dimension: 2)) { e in XCTAssertTrue("\(e)".contains("content digest"), "\(e)") }
        // A newer layout, and no manifest at all.
        var newer = m
        newer.formatVersion = BackupManifest.currentFormatVersion + 1
        XCTAssertNotNil(newer.problem())
        try FileManager.default.removeItem(atPath: dir + "/" + BackupManifest.fileName)
        XCTAssertThrowsError(try BackupReader.manifest(in: dir)) { e in XCTAssertTrue("\(e)".contains("not a finished backup"), "\(e)") }
    }
}
