import Foundation
import Raft
@testable import WAL
import XCTest

/// Preallocation: the active segment is extended with zeros ahead of its data, so fdatasync does not commit a
/// size change per write. Zeros after the last frame are the end of the log; damage is still refused.
final class WALPreallocationTests: WALTestCase {
    func testZerosAfterTheDataAreTheEndOfTheLogAndWritesContinueThere() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6])
        e.close()
        let path = try segmentFiles()[0]
        let dataEnd = try frameEnd(path)
        XCTAssertGreaterThan(try fileSize(path), dataEnd, "the file is allocated beyond its data")
        XCTAssertEqual(try fileSize(path), 1 << 20, "one whole 1 MiB chunk, allocated when the segment was created")
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 6)
        try writeBatches(r, [7...9])
        r.close()
        XCTAssertEqual(try open().group(1).lastIndex(), 9, "the next write went at the logical end, not the file end")
        XCTAssertEqual(try frameOffsets(path).count, 3, "three frames, contiguous from the header")
    }

    func testTornFrameFollowedByZerosIsTrimmed() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6])
        e.close()
        let path = try segmentFiles()[0]
        let last = try frameOffsets(path).last!
        // The last frame's second half never reached the disk (zeros where it was): a torn write.
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let end = try frameEnd(path)
        for i in ((last + end) / 2)..<end { data[i] = 0 }
        try data.write(to: URL(fileURLWithPath: path))
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 3)
        XCTAssertEqual(try fileSize(path), 1 << 20, "the torn frame was zeroed; the file keeps its preallocated size")
        XCTAssertEqual(try frameOffsets(path).count, 1)
        try writeBatches(r, [4...4])
        r.close()
        XCTAssertEqual(try open().group(1).lastIndex(), 4)
    }

    func testAFrameLostInAnOlderSegmentIsASequenceGap() throws {
        let e = try open(segmentSize: 4096)
        for k in 0..<80 { try writeBatches(e, [(UInt64(k) * 3 + 1)...(UInt64(k) * 3 + 3)], term: 1) }
        e.close()
        let files = try segmentFiles()
        XCTAssertGreaterThan(files.count, 2)
        // Zero the last frame of the first segment: it reads as preallocated space, but the next segment's
        // first frame then does not follow the one before it.
        let first = files[0]
        let last = try frameOffsets(first).last!
        var data = try Data(contentsOf: URL(fileURLWithPath: first))
        for i in last..<data.count { data[i] = 0 }
        try data.write(to: URL(fileURLWithPath: first))
        XCTAssertThrowsError(try open(segmentSize: 4096)) { error in
            guard case WALError.corruption(_, _, let detail)? = error as? WALError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("frame sequence"), detail)
        }
    }

    /// A segment grows in whole chunks, allocated (durably) before the data that needs them.
    func testSegmentsGrowInWholeChunks() throws {
        let e = try open()
        for k in 0..<30 {
            var b = WriteBatch()
            b.append(group: 1, entries: entries(UInt64(k * 100 + 1)...UInt64(k * 100 + 100), term: 1, size: 1000))
            try e.write(b)
            let size = try fileSize(try segmentFiles()[0])
            XCTAssertEqual(size % (1 << 20), 0, "after write \(k): \(size) bytes")
            XCTAssertGreaterThanOrEqual(size, try frameEnd(try segmentFiles()[0]))
        }
        XCTAssertEqual(try fileSize(try segmentFiles()[0]), 3 << 20)
    }

    /// A segment written before preallocation signatures (header chunk 0, any size) opens, and is extended to
    /// whole chunks and given the signature.
    func testSegmentFromBeforeTheSignatureIsAdopted() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6])
        e.close()
        let path = try segmentFiles()[0]
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in 12..<16 { data[i] = 0 }
        let end = try frameEnd(path)
        try data.prefix(end + 1234).write(to: URL(fileURLWithPath: path))
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 6)
        XCTAssertEqual(try fileSize(path), 1 << 20)
        let header = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(16)
        XCTAssertEqual(header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self) }, 1 << 20)
        try writeBatches(r, [7...7])
        r.close()
        XCTAssertEqual(try open().group(1).lastIndex(), 7)
    }

    /// A damaged frame in a segment that is not the last is refused, naming that segment and the frame.
    func testDamageInAnOlderSegmentIsRefused() throws {
        let e = try open(segmentSize: 4096)
        for k in 0..<80 { try writeBatches(e, [(UInt64(k) * 3 + 1)...(UInt64(k) * 3 + 3)], term: 1) }
        e.close()
        let first = try segmentFiles()[0]
        let victim = try frameOffsets(first)[2]
        try flipBit(first, at: victim + 24, bit: 1)
        XCTAssertThrowsError(try open(segmentSize: 4096)) { error in
            guard case WALError.corruption(let p, let offset, let detail)? = error as? WALError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, first)
            XCTAssertEqual(offset, victim)
            XCTAssertTrue(detail.contains("not the last"), detail)
        }
    }

    /// Least privilege: segments and snapshot files are created 0600, the log's directories 0700 (whatever the
    /// umask; this test process runs with the usual 022).
    func testFilesAreOwnerOnly() throws {
        let logDir = dir + "/wal"
        let e = try LogEngine(directory: logDir)
        var b = WriteBatch()
        b.append(group: 1, entries: entries(1...3, term: 1))
        b.saveSnapshot(group: 1, Snapshot(metadata: SnapshotMetadata(index: 2, term: 1, confState: ConfState(voters: [1])), data: [1, 2]))
        try e.write(b)
        e.close()
        func mode(_ p: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as! NSNumber).intValue }
        XCTAssertEqual(try mode(logDir), 0o700)
        XCTAssertEqual(try mode(logDir + "/snap"), 0o700)
        XCTAssertEqual(try mode(logDir + "/0000000000000001.wal"), 0o600)
        XCTAssertEqual(try mode(logDir + "/snap/incoming"), 0o700, "where images from a leader arrive")
        let snaps = try FileManager.default.contentsOfDirectory(atPath: logDir + "/snap").filter { $0 != "incoming" }
        XCTAssertEqual(snaps.count, 1)
        for s in snaps { XCTAssertEqual(try mode(logDir + "/snap/" + s), 0o600, s) }
    }

    private func frameEnd(_ path: String) throws -> Int {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try bytes.withUnsafeBytes { b in
            let scanned = try SegmentScanner.scan(b, path: path, isLast: true)
            return scanned.frames.last!.payload.upperBound
        }
    }

    private func firstFrameEnd(_ path: String) throws -> Int {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try bytes.withUnsafeBytes { try SegmentScanner.scan($0, path: path, isLast: true).frames.first!.payload.upperBound }
    }
}
