import Codec
import Foundation
import Raft
@testable import WAL
import XCTest

final class WALRecoveryTests: WALTestCase {
    func testRoundTripOfEveryRecordKindAcrossReopen() throws {
        var e: LogEngine? = try open()
        var b = WriteBatch()
        b.setInitialMembership(group: 7, ConfState(voters: [1, 2, 3]))
        b.append(group: 7, entries: entries(1...5, term: 2) + [Entry(term: 2, index: 6, kind: .confChange, data: ConfChange.addLearner(4).encode())])
        b.setHardState(group: 7, HardState(term: 2, vote: 3, commit: 4))
        try e!.write(b)
        var b2 = WriteBatch()
        b2.saveSnapshot(group: 7, Snapshot(metadata: SnapshotMetadata(index: 4, term: 2, confState: ConfState(voters: [1, 2, 3])), data: [9, 9, 9]))
        b2.compact(group: 7, upTo: 3)
        try e!.write(b2)
        e!.close()
        e = nil

        let r = try open()
        let g = r.group(7)
        XCTAssertEqual(r.groupIDs, [7])
        XCTAssertEqual(g.hardState, HardState(term: 2, vote: 3, commit: 4))
        XCTAssertEqual(g.firstIndex(), 4)
        XCTAssertEqual(g.lastIndex(), 6)
        XCTAssertEqual(try g.term(3), 2)
        XCTAssertThrowsError(try g.term(2)) { XCTAssertEqual($0 as? StorageError, .compacted) }
        XCTAssertEqual(try g.entries(4, 7, maxBytes: .max), entries(4...5, term: 2) + [Entry(term: 2, index: 6, kind: .confChange, data: ConfChange.addLearner(4).encode())])
        let snap = try g.snapshotWithData()
        XCTAssertEqual(snap.metadata.index, 4)
        XCTAssertEqual(snap.data, [9, 9, 9])
        XCTAssertEqual(try g.snapshot(), Snapshot(metadata: snap.metadata), "the core's snapshot carries no image")
        XCTAssertEqual(g.initialState().1, ConfState(voters: [1, 2, 3]))
    }

    func testManyGroupsInterleavedInOneFrame() throws {
        let e = try open()
        for round in 0..<20 {
            var b = WriteBatch()
            for gid in UInt64(1)...8 {
                let base = UInt64(round * 3 + 1)
                b.append(group: gid, entries: entries(base...(base + 2), term: gid))
                b.setHardState(group: gid, HardState(term: gid, vote: gid, commit: base + 2))
            }
            try e.write(b)
        }
        e.close()
        let r = try open()
        XCTAssertEqual(r.groupIDs, Array(1...8))
        for gid in UInt64(1)...8 {
            XCTAssertEqual(r.group(gid).lastIndex(), 60)
            XCTAssertEqual(try r.group(gid).term(60), gid)
            XCTAssertEqual(r.group(gid).hardState.commit, 60)
        }
        XCTAssertEqual(try frameOffsets(try segmentFiles()[0]).count, 20, "one frame (one fsync) per batch for all 8 groups")
    }

    func testConflictingSuffixTruncationSurvivesReopen() throws {
        let e = try open()
        try writeBatches(e, [1...10], term: 1)
        var b = WriteBatch()
        b.append(group: 1, entries: entries(6...7, term: 2))   // a new leader overwrote 6...10
        try e.write(b)
        XCTAssertEqual(e.group(1).lastIndex(), 7)
        e.close()
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 7)
        XCTAssertEqual(try r.group(1).term(5), 1)
        XCTAssertEqual(try r.group(1).term(6), 2)
        XCTAssertThrowsError(try r.group(1).term(8)) { XCTAssertEqual($0 as? StorageError, .unavailable) }
    }

    func testInstalledSnapshotReplacesTheLog() throws {
        let e = try open()
        try writeBatches(e, [1...10], term: 1)
        var b = WriteBatch()
        b.installSnapshot(group: 1, Snapshot(metadata: SnapshotMetadata(index: 50, term: 3, confState: ConfState(voters: [1, 2])), data: Array("state".utf8)))
        b.append(group: 1, entries: entries(51...52, term: 3))
        try e.write(b)
        e.close()
        let r = try open()
        let g = r.group(1)
        XCTAssertEqual(g.firstIndex(), 51)
        XCTAssertEqual(g.lastIndex(), 52)
        XCTAssertEqual(try g.term(50), 3)
        XCTAssertEqual(try g.snapshotWithData().data, Array("state".utf8))
        XCTAssertEqual(g.initialState().1, ConfState(voters: [1, 2]))
    }

    /// Torn tail: the last frame reached the disk only up to some byte (zeros after it, in the preallocated
    /// space), at every byte offset inside it. Open must succeed with every earlier frame intact and the last one
    /// gone, keep the file's size (zeros, not a shorter file), and accept new writes afterwards.
    func testTornTailAtEveryByteOffsetOfTheLastFrame() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6, 7...9])
        e.close()
        let path = try segmentFiles()[0]
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let lastFrame = try frameOffsets(path).last!
        // The frame ends at its header + payload length; preallocated zeros may follow it in the file.
        let length = original.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: lastFrame + 4, as: UInt32.self))) }
        let frameEnd = lastFrame + WALFormat.frameHeaderSize + length
        XCTAssertTrue(original[frameEnd...].allSatisfy { $0 == 0 }, "only zeros follow the last frame")
        // (Cuts that only "lose" bytes that were zero anyway leave the frame whole: not a torn write.)
        for cut in lastFrame..<frameEnd where !original[cut..<frameEnd].allSatisfy({ $0 == 0 }) {
            var torn = original
            for i in cut..<frameEnd { torn[i] = 0 }
            try torn.write(to: URL(fileURLWithPath: path))
            let r = try open()
            XCTAssertEqual(r.group(1).lastIndex(), 6, "cut at \(cut)")
            XCTAssertEqual(r.group(1).hardState.commit, 6, "cut at \(cut)")
            XCTAssertEqual(try fileSize(path), original.count, "the file keeps its preallocated size (cut at \(cut))")
            XCTAssertFalse(try frameOffsets(path).contains(lastFrame), "the torn frame was zeroed (cut at \(cut))")
            try writeBatches(r, [7...7])
            r.close()
            XCTAssertEqual(try open().group(1).lastIndex(), 7, "a write after recovery survives (cut at \(cut))")
        }
    }

    /// A segment truncated (a shorter file than preallocation ever leaves) is refused with the file and the
    /// offset of the frame the cut went through — at every cut inside the last frame and at half the file —
    /// never trimmed as "a torn write".
    func testTruncatedSegmentIsRefusedWithFileAndOffset() throws {
        let e = try open()
        // ~600 KB of entries: more than half of the 1 MiB the segment is preallocated to.
        for k in 0..<60 {
            var b = WriteBatch()
            let base = UInt64(k * 10 + 1)
            b.append(group: 1, entries: entries(base...(base + 9), term: 1, size: 1000))
            b.setHardState(group: 1, HardState(term: 1, vote: 1, commit: base + 9))
            try e.write(b)
        }
        e.close()
        let path = try segmentFiles()[0]
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(original.count % (1 << 20), 0, "a preallocated segment is whole chunks")
        let offsets = try frameOffsets(path)
        let half = original.count / 2
        let cutFrame = offsets.last { $0 < half }!
        XCTAssertLessThan(half, try frameEnd(path, offsets.last!), "half the file is inside the data")
        var cuts = [half]
        for c in stride(from: offsets.last! + 1, to: try frameEnd(path, offsets.last!), by: 97) { cuts.append(c) }
        for cut in cuts {
            try original.write(to: URL(fileURLWithPath: path))
            truncate(path, to: cut)
            XCTAssertThrowsError(try open(), "cut at \(cut)") { error in
                guard case WALError.corruption(let p, let offset, let detail) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(p, path)
                XCTAssertEqual(offset, cut == half ? cutFrame : offsets.last!, "cut at \(cut)")
                XCTAssertTrue(detail.contains("cut short") && !detail.contains("unacknowledged"), detail)
            }
        }
        // A cut exactly after a frame: nothing runs past the end, but the size is not whole chunks.
        try original.write(to: URL(fileURLWithPath: path))
        truncate(path, to: offsets.last!)
        XCTAssertThrowsError(try open()) { error in
            guard case WALError.corruption(_, let offset, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(offset, offsets.last!)
            XCTAssertTrue(detail.contains("whole number"), detail)
        }
        // Cutting only preallocated zeros loses nothing and is accepted.
        try original.write(to: URL(fileURLWithPath: path))
        truncate(path, to: try frameEnd(path, offsets.last!) + 10)
        XCTAssertEqual(try open().group(1).lastIndex(), 600)
    }

    /// Zeros after the last frame are the preallocated end of the data: every frame is kept.
    func testZeroedTailKeepsEveryFrame() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6])
        e.close()
        let path = try segmentFiles()[0]
        XCTAssertEqual(try fileSize(path), 1 << 20)
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 6)
        XCTAssertEqual(try fileSize(path), 1 << 20)
    }

    private func frameEnd(_ path: String, _ frame: Int) throws -> Int {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        return frame + WALFormat.frameHeaderSize + d.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: frame + 4, as: UInt32.self))) }
    }

    func testBitFlipInTheLastFrameIsATornTail() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6])
        e.close()
        let path = try segmentFiles()[0]
        let last = try frameOffsets(path).last!
        try flipBit(path, at: last + 30, bit: 3)
        let r = try open()
        XCTAssertEqual(r.group(1).lastIndex(), 3)
    }

    /// Corruption before the tail (a flipped bit in an earlier frame, header or payload) is refused with a clear
    /// error naming the file and offset: the data after it was acknowledged and must not be dropped.
    func testBitFlipInTheMiddleIsRefusedWithFileAndOffset() throws {
        let e = try open()
        try writeBatches(e, [1...3, 4...6, 7...9, 10...12])
        e.close()
        let path = try segmentFiles()[0]
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let offsets = try frameOffsets(path)
        let victim = offsets[1]
        for position in [victim + 1, victim + 5, victim + 9, victim + 14, victim + 25, offsets[2] - 1] {
            try original.write(to: URL(fileURLWithPath: path))
            try flipBit(path, at: position, bit: 5)
            XCTAssertThrowsError(try open(), "flip at \(position)") { error in
                guard case WALError.corruption(let p, let offset, _) = error else {
                    return XCTFail("expected corruption, got \(error)")
                }
                XCTAssertEqual(p, path)
                XCTAssertEqual(offset, victim)
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("offset \(victim)"), "\(error)")
            }
        }
    }

    /// Crash between write and fsync: the unsynced write may reach the disk in part. Whatever part, reopening
    /// yields every synced write whole and the unsynced one whole or not at all — never partially applied.
    func testCrashBetweenWriteAndFsync() throws {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<40 {
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let e = try open()
            try writeBatches(e, [1...4, 5...8])
            let path = try segmentFiles()[0]
            let synced = try frameOffsets(path).last.map { frameEndAfter(path, from: $0) }!
            var b = WriteBatch()
            b.append(group: 1, entries: entries(9...20, term: 1, size: 50))
            b.setHardState(group: 1, HardState(term: 1, vote: 1, commit: 20))
            try e.writeWithoutSyncForTesting(b)
            e.close()
            // Whatever part of the unsynced frame reached the disk; the rest is still the preallocated zeros.
            let full = frameEndAfter(path, from: synced)
            let keep = trial == 0 ? full : Int.random(in: synced...full, using: &rng)
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            let whole = data[keep..<full].allSatisfy { $0 == 0 }   // the lost bytes were zeros anyway
            for i in keep..<full { data[i] = 0 }
            try data.write(to: URL(fileURLWithPath: path))
            let r = try open()
            let last = r.group(1).lastIndex()
            XCTAssertTrue(last == 8 || (last == 20 && whole), "trial \(trial): kept \(keep) of \(synced)...\(full), recovered up to \(last)")
            XCTAssertEqual(r.group(1).hardState.commit, last, "hard state and entries recovered together")
            r.close()
        }
    }

    func testNewerFormatVersionIsRefused() throws {
        let e = try open()
        try writeBatches(e, [1...2])
        e.close()
        let path = try segmentFiles()[0]
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[8] = 2   // version field
        try data.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try open()) { error in
            XCTAssertEqual(error as? WALError, .unsupportedVersion(path: path, version: 2))
        }
    }

    func testSegmentsRotateAndAreDeletedOnceCompacted() throws {
        let e = try open(segmentSize: 4096)
        var next: UInt64 = 1
        for _ in 0..<60 {
            var b = WriteBatch()
            b.append(group: 1, entries: entries(next...(next + 4), term: 1, size: 40))
            b.append(group: 2, entries: entries(next...(next + 4), term: 1, size: 40))
            b.setHardState(group: 1, HardState(term: 1, vote: 1, commit: next + 4))
            try e.write(b)
            next += 5
        }
        let before = e.segmentCount
        XCTAssertGreaterThan(before, 5)
        // Group 1 compacts everything; group 2 nothing: no segment may go yet.
        var s = WriteBatch()
        s.saveSnapshot(group: 1, Snapshot(metadata: SnapshotMetadata(index: 290, term: 1, confState: ConfState(voters: [1])), data: [1]))
        s.compact(group: 1, upTo: 290)
        try e.write(s)
        XCTAssertGreaterThanOrEqual(e.segmentCount, before)
        var s2 = WriteBatch()
        s2.saveSnapshot(group: 2, Snapshot(metadata: SnapshotMetadata(index: 290, term: 1, confState: ConfState(voters: [1])), data: [2]))
        s2.compact(group: 2, upTo: 290)
        try e.write(s2)
        XCTAssertLessThan(e.segmentCount, before, "segments whose entries are all compacted are deleted")
        XCTAssertEqual(try segmentFiles().count, e.segmentCount)
        e.close()
        let r = try open(segmentSize: 4096)
        for gid: UInt64 in [1, 2] {
            let g = r.group(gid)
            XCTAssertEqual(g.firstIndex(), 291)
            XCTAssertEqual(g.lastIndex(), 300)
            XCTAssertEqual(try g.term(290), 1)
            XCTAssertEqual(try g.snapshot().metadata.index, 290)
        }
        XCTAssertEqual(r.group(1).hardState.commit, 300, "hard state survives in the rotation checkpoint")
    }

    /// A group that had compacted part of its log when a segment rotated: the new segment's checkpoint restates
    /// that compaction point, while the entries after it stay in the old segment until a later compaction lets
    /// that segment go. Reopening must accept the gap this leaves behind the checkpoint (the chaos runner's
    /// rolling restarts found nodes refusing to start on exactly this) — and still refuse a real gap.
    func testCheckpointBehindADeletedSegmentIsNotCorruption() throws {
        let e = try open(segmentSize: 4096)
        var b = WriteBatch()
        b.append(group: 1, entries: entries(1...20, term: 1, size: 40))
        try e.write(b)
        var s = WriteBatch()
        s.saveSnapshot(group: 1, Snapshot(metadata: SnapshotMetadata(index: 10, term: 1, confState: ConfState(voters: [1])), data: [1]))
        s.compact(group: 1, upTo: 10)
        try e.write(s)
        var next: UInt64 = 21
        while e.segmentCount < 3 {
            var w = WriteBatch()
            w.append(group: 1, entries: entries(next...(next + 4), term: 2, size: 40))
            try e.write(w)
            next += 5
        }
        // Compact past everything the first segment holds (not past the second's): the first one goes.
        let upTo = next - 3
        var c = WriteBatch()
        c.saveSnapshot(group: 1, Snapshot(metadata: SnapshotMetadata(index: upTo, term: 2, confState: ConfState(voters: [1])), data: [2]))
        c.compact(group: 1, upTo: upTo)
        try e.write(c)
        XCTAssertFalse(try segmentFiles().contains { $0.hasSuffix("0000000000000001.wal") }, "the first segment was deleted")
        e.close()
        let r = try open(segmentSize: 4096)
        XCTAssertEqual(r.group(1).firstIndex(), upTo + 1)
        XCTAssertEqual(r.group(1).lastIndex(), next - 1)
        XCTAssertEqual(try r.group(1).term(upTo), 2)
        XCTAssertEqual(try r.group(1).entries(upTo + 1, next, maxBytes: .max).map(\.index), Array((upTo + 1)...(next - 1)))
    }

    /// A missing segment whose entries were never compacted (lost or deleted by hand) is refused.
    func testMissingUncompactedSegmentIsRefused() throws {
        let e = try open(segmentSize: 2048)
        var next: UInt64 = 1
        while e.segmentCount < 3 {
            try writeBatches(e, [next...(next + 4)])
            next += 5
        }
        e.close()
        let first = try segmentFiles()[0]
        try FileManager.default.removeItem(atPath: first)
        XCTAssertThrowsError(try open(segmentSize: 2048)) { error in
            guard case WALError.corruption(_, _, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("compacted"), detail)
        }
    }

    func testCorruptSnapshotFileIsReported() throws {
        let e = try open()
        var b = WriteBatch()
        b.saveSnapshot(group: 3, Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, confState: ConfState(voters: [1])), data: [1, 2, 3, 4]))
        try e.write(b)
        e.close()
        let snapPath = dir + "/snap/" + fixedHex(3) + "-" + fixedHex(5) + ".snap"
        try flipBit(snapPath, at: SnapshotStore.headerSize + 1)
        XCTAssertThrowsError(try SnapshotStore(walDirectory: dir).openImage(group: 3, metadata: SnapshotMetadata(index: 5, term: 1)).readAll()) { error in
            guard case WALError.badSnapshot(let p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, snapPath)
        }
        // The whole image, and a stream's reads by range, refuse it, naming the file: the last range read fails.
        let g = try open().group(3)
        XCTAssertThrowsError(try g.snapshotWithData()) { error in
            guard case WALError.badSnapshot(let p, let why) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, snapPath)
            XCTAssertTrue(why.contains("checksum"), why)
        }
        let image = try XCTUnwrap(g.snapshotImage())
        XCTAssertEqual(try image.read(offset: 0, count: 2).count, 2)
        XCTAssertThrowsError(try image.read(offset: 2, count: 2)) { XCTAssertEqual(($0 as? WALError).map { "\($0)" }?.contains(snapPath), true) }
        // A damaged header: the core is told the snapshot is unavailable for now.
        try flipBit(snapPath, at: 9)
        XCTAssertThrowsError(try open().group(3).snapshot()) { XCTAssertEqual($0 as? StorageError, .snapshotTemporarilyUnavailable) }
    }

    /// The per-group view behaves exactly like MemoryStorage under the same random operations.
    func testGroupLogMatchesMemoryStorage() throws {
        var rng = SplitMix64(seed: 99)
        let e = try open(segmentSize: 8192)
        let mem = MemoryStorage()
        var term: UInt64 = 1
        for _ in 0..<300 {
            let g = e.group(1)
            var b = WriteBatch()
            switch rng.below(10) {
            case 0..<6:
                // Append, sometimes overwriting a suffix with a higher term.
                let last = mem.lastIndex()
                var start = last + 1
                if rng.chance(0.3) && last >= mem.firstIndex() { start = max(mem.firstIndex(), last - LogIndex(rng.below(3))); term += 1 }
                let n = 1 + rng.below(4)
                let ents = (0..<n).map { Entry(term: term, index: start + LogIndex($0), data: [UInt8(rng.below(256))]) }
                mem.append(ents)
                b.append(group: 1, entries: ents)
            case 6..<8:
                let hs = HardState(term: term, vote: 1, commit: mem.lastIndex())
                mem.setHardState(hs)
                b.setHardState(group: 1, hs)
            default:
                let last = mem.lastIndex(), first = mem.firstIndex()
                guard last > first + 1 else { continue }
                let at = first + LogIndex(rng.below(Int(last - first)))
                try mem.createSnapshot(index: at, confState: ConfState(voters: [1]), data: [1])
                try mem.compact(upTo: at)
                b.saveSnapshot(group: 1, try mem.snapshot())
                b.compact(group: 1, upTo: at)
            }
            try e.write(b)
            XCTAssertEqual(g.firstIndex(), mem.firstIndex())
            XCTAssertEqual(g.lastIndex(), mem.lastIndex())
            XCTAssertEqual(try g.term(g.firstIndex() - 1), try mem.term(mem.firstIndex() - 1))
            XCTAssertEqual(try g.entries(g.firstIndex(), g.lastIndex() + 1, maxBytes: 60), try mem.entries(mem.firstIndex(), mem.lastIndex() + 1, maxBytes: 60))
            XCTAssertEqual(g.hardState, mem.hardState)
        }
        e.close()
        let r = try open(segmentSize: 8192).group(1)
        XCTAssertEqual(r.lastIndex(), mem.lastIndex())
        XCTAssertEqual(r.firstIndex(), mem.firstIndex())
        XCTAssertEqual(try r.entries(r.firstIndex(), r.lastIndex() + 1, maxBytes: .max), try mem.entries(mem.firstIndex(), mem.lastIndex() + 1, maxBytes: .max))
    }

    /// The end of the frame starting at `offset` (its declared length; the file may hold less).
    func frameEndAfter(_ path: String, from offset: Int) -> Int {
        let d = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        return offset + WALFormat.frameHeaderSize + d.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))) }
    }
}
