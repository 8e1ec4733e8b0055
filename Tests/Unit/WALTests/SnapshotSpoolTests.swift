import Codec
import Foundation
import Raft
@testable import WAL
import XCTest

/// Images received from a leader go to a file under `snap/incoming/` as they arrive, are read back by range or
/// mapped whole, and become the group's snapshot by a rename when the install is written — never whole in memory.
final class SnapshotSpoolTests: WALTestCase {
    private let meta = SnapshotMetadata(index: 70, term: 4, confState: ConfState(voters: [1, 2, 3]))

    private func image(bytes: Int, seed: UInt64 = 7) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<bytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    private func incoming() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir + "/snap/incoming").sorted()
    }

    private func receive(_ data: [UInt8], into e: LogEngine, group: UInt64 = 2, chunk: Int = 1000) throws -> SnapshotImage {
        let spool = try e.group(group).receiveImage(meta, total: UInt64(data.count))
        var at = 0
        while at < data.count {
            let end = min(at + chunk, data.count)
            try spool.append(Array(data[at..<end]))
            at = end
        }
        XCTAssertEqual(spool.received, UInt64(data.count))
        return try spool.finish()
    }

    func testAReceivedImageIsReadByRangeMappedWholeAndAdoptedByTheInstall() throws {
        let data = image(bytes: 25_321)
        let e = try open()
        let received = try receive(data, into: e)
        XCTAssertEqual(received.size, UInt64(data.count))
        let path = try XCTUnwrap(received.path)
        XCTAssertTrue(path.contains("/snap/incoming/"), path)
        XCTAssertEqual(try received.read(offset: 1000, count: 777), Array(data[1000..<1777]))
        XCTAssertEqual(try received.withBytes { Array($0) }, data)
        XCTAssertEqual(try incoming().count, 1)

        var b = WriteBatch()
        b.installSnapshot(group: 2, Snapshot(metadata: meta), image: received)
        try e.write(b)
        XCTAssertEqual(try incoming(), [], "adopted: renamed into place")
        XCTAssertEqual(try e.group(2).snapshotWithData(), Snapshot(metadata: meta, data: data))
        XCTAssertEqual(e.group(2).firstIndex(), 71)
        e.close()
        XCTAssertEqual(try open().group(2).snapshotWithData().data, data, "durable across a restart")
    }

    func testAnAdoptionRepeatsAfterAFailedAttempt() throws {
        let data = image(bytes: 5_000)
        let e = try open()
        var b = WriteBatch()
        b.installSnapshot(group: 2, Snapshot(metadata: meta), image: try receive(data, into: e))
        let p = try e.prepare(b)
        try p.perform()
        try p.perform()   // what an attempt after a full disk does: the rename is done, the rest repeats
        e.complete(p)
        XCTAssertEqual(try e.group(2).snapshotWithData().data, data)
    }

    func testAHalfReceivedImageIsRemovedAtStartAndTwoStreamsOfOneImageNeverShareAFile() throws {
        let e = try open()
        let a = try e.group(2).receiveImage(meta, total: 10_000)
        try a.append(image(bytes: 4_000))
        let b = try e.group(2).receiveImage(meta, total: 10_000)
        try b.append(image(bytes: 10))
        XCTAssertEqual(try incoming().count, 2, "one file per stream, even of the same image")
        b.discard()
        XCTAssertEqual(try incoming().count, 1)
        e.close()
        _ = try open()
        XCTAssertEqual(try incoming(), [], "a restart never uses a half-received image")
    }

    func testAReceivedImageDamagedOnDiskIsRefusedNamingItsFile() throws {
        let data = image(bytes: 8_000)
        let e = try open()
        let received = try receive(data, into: e)
        let path = try XCTUnwrap(received.path)
        try flipBit(path, at: SnapshotStore.headerSize + 4_000)
        XCTAssertThrowsError(try received.withBytes { _ in () }) { error in
            guard case WALError.badSnapshot(let p, let why) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertTrue(why.contains("checksum"), why)
        }
    }

    func testASavedImageIsStreamedByRangeAndItsLastRangeCatchesDamage() throws {
        let data = image(bytes: 9_999)
        let e = try open()
        var b = WriteBatch()
        b.saveSnapshot(group: 5, Snapshot(metadata: meta, data: data))
        try e.write(b)
        let saved = try XCTUnwrap(e.group(5).snapshotImage())
        XCTAssertEqual(saved.path, dir + "/snap/" + fixedHex(5) + "-" + fixedHex(70) + ".snap")
        var out: [UInt8] = []
        while out.count < data.count { out += try saved.read(offset: UInt64(out.count), count: min(4096, data.count - out.count)) }
        XCTAssertEqual(out, data)
        saved.discard()
        XCTAssertEqual(try e.group(5).snapshotWithData().data, data, "a saved snapshot is never removed by `discard`")
    }
}
