// Fuzzes WAL recovery's decoders (Sources/WAL): the segment scanner (frames, checksums, torn tail vs damage),
// the record decoder and a group's replay of the records. An input whose first byte is even is wrapped in a
// valid segment header and one correctly checksummed frame, so the record decoder and the replay are reached;
// an odd one is scanned as a raw segment. Property: refused with a WALError, never a crash.
import Codec
import FuzzSupport
import Raft
@testable import WAL

func segment(_ payload: [UInt8], seq: UInt64 = 1) -> [UInt8] {
    var w = ByteWriter()
    w.raw(Array("SUTRAWAL".utf8)); w.u32(WALFormat.version); w.u32(4096)
    w.u32(WALFormat.frameMagic); w.u32(UInt32(payload.count)); w.u32(0); w.u64(seq); w.raw(payload)
    let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(16 + 12)...])) }
    w.patchU32(crc, at: 16 + 8)
    return w.bytes
}

let seeds: () -> [[UInt8]] = {
    var w = ByteWriter()
    WALRecord.snapshotSaved(group: 0, SnapshotMetadata(index: 0, term: 0, confState: ConfState(voters: [1, 2, 3]))).encode(into: &w)
    WALRecord.entries(group: 0, [Entry(term: 1, index: 1, data: [1, 2, 3]), Entry(term: 1, index: 2, kind: .confChange, data: [])]).encode(into: &w)
    WALRecord.hardState(group: 0, HardState(term: 1, vote: 1, commit: 2)).encode(into: &w)
    WALRecord.compact(group: 0, index: 1, term: 1).encode(into: &w)
    WALRecord.snapshotInstalled(group: 1, SnapshotMetadata(index: 5, term: 2, confState: ConfState(voters: [1]))).encode(into: &w)
    return [[0] + w.bytes, [1] + segment(w.bytes) + [UInt8](repeating: 0, count: 64)]
}

runFuzzer(seeds: seeds) { data, size in
    let input = fuzzBytes(data, size)
    guard let mode = input.first else { return 0 }
    let bytes = mode & 1 == 0 ? segment(Array(input.dropFirst())) : Array(input.dropFirst())
    bytes.withUnsafeBytes { buf in
        guard let scanned = try? SegmentScanner.scan(buf, path: "fuzz.wal", isLast: mode & 2 == 0) else { return }
        var groups: [UInt64: GroupLog] = [:]
        for f in scanned.frames {
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: buf[f.payload]))
            while r.remaining > 0 {
                guard let rec = try? WALRecord.decode(&r) else { break }
                let g = groups[rec.group] ?? GroupLog(group: rec.group)
                groups[rec.group] = g
                try? g.apply(rec)
            }
        }
    }
    return 0
}
