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
        XCTAssertEqual(try fileSize(path), try firstFrameEnd(path) + (1 << 20), "one 1 MiB chunk past the first write, which extended it")
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 6)
        try writeBatches(r, [7...9])
        r.close()
        XCTAssertEqual(try open().group(1).lastIndex(), 9, "the next write went at the logical end, not the file end")
        XCTAssertEqual(try frameOffsets(path).count, 3, "three frames, contiguous from the header")
    }

    func testTornFrameFollowedByZerosIsTruncated() throws {
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
        XCTAssertEqual(try fileSize(path), last, "the torn frame was cut off")
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
