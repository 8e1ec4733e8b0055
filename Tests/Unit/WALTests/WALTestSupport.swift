import Foundation
import Raft
@testable import WAL
import XCTest

/// A fresh temporary directory per test, removed afterwards.
class WALTestCase: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "sutra-wal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func open(segmentSize: Int = 64 << 20) throws -> LogEngine {
        var o = LogEngine.Options()
        o.segmentSize = segmentSize
        return try LogEngine(directory: dir, options: o)
    }

    func entries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 10) -> [Entry] {
        range.map { Entry(term: term, index: $0, data: [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: size)) }
    }

    func segmentFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".wal") }.sorted().map { dir + "/" + $0 }
    }

    func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).intValue
    }

    func truncate(_ path: String, to size: Int) {
        XCTAssertEqual(Glibc.truncate(path, off_t(size)), 0)
    }

    func flipBit(_ path: String, at offset: Int, bit: UInt8 = 0) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset] ^= (1 << bit)
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Writes one batch per element: entries of group 1, hard state with commit = last index.
    func writeBatches(_ e: LogEngine, _ batches: [ClosedRange<UInt64>], term: UInt64 = 1) throws {
        for r in batches {
            var b = WriteBatch()
            b.append(group: 1, entries: entries(r, term: term))
            b.setHardState(group: 1, HardState(term: term, vote: 1, commit: r.upperBound))
            try e.write(b)
        }
    }

    /// Offsets where each frame of a segment starts (by re-scanning it).
    func frameOffsets(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try bytes.withUnsafeBytes { try SegmentScanner.scan($0, path: path, isLast: true).frames.map(\.offset) }
    }
}
