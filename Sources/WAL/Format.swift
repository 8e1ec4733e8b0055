import Codec
import Raft

/// The on-disk format constants of the WAL (see docs/WAL.md).
public enum WALFormat {
    /// Format version written in every segment header. A reader refuses any other version.
    public static let version: UInt32 = 1
    /// 8 bytes at the start of every segment.
    static let segmentMagic: [UInt8] = Array("SUTRAWAL".utf8)
    static let segmentHeaderSize = 16
    /// Marks the start of every frame.
    static let frameMagic: UInt32 = 0x4652_5457   // "WTRF" little endian
    /// magic u32, payload length u32, crc32c u32, seq u64.
    static let frameHeaderSize = 20
    /// Refuse frames larger than this when reading (a corrupted length must not allocate gigabytes).
    static let maxFrameSize = 1 << 30
    /// The smallest preallocation chunk a segment header may record (its `reserved` u32, docs/WAL.md).
    static let minChunk = 512
    /// The largest one (it must fit the header's u32).
    static let maxChunk = 1 << 30
}

/// One logical change to one Raft group, as stored in a frame's payload.
enum WALRecord: Equatable {
    /// Entries starting at `entries[0].index`; replaces everything the group had at or after that index.
    case entries(group: UInt64, [Entry])
    case hardState(group: UInt64, HardState)
    /// The group's newest local snapshot (its data is in a snapshot file); entries are untouched.
    case snapshotSaved(group: UInt64, SnapshotMetadata)
    /// A snapshot received from the leader replaced the group's whole log.
    case snapshotInstalled(group: UInt64, SnapshotMetadata)
    /// Entries up to and including `index` (whose term is `term`) are no longer needed.
    case compact(group: UInt64, index: LogIndex, term: Term)

    var tag: UInt8 {
        switch self {
        case .entries: return 1
        case .hardState: return 2
        case .snapshotSaved: return 3
        case .snapshotInstalled: return 4
        case .compact: return 5
        }
    }

    var group: UInt64 {
        switch self {
        case .entries(let g, _), .hardState(let g, _), .snapshotSaved(let g, _), .snapshotInstalled(let g, _),
             .compact(let g, _, _): return g
        }
    }

    func encode(into w: inout ByteWriter) {
        w.u8(tag)
        w.u64(group)
        switch self {
        case .entries(_, let ents):
            w.u32(UInt32(ents.count))
            for e in ents {
                w.u64(e.index)
                w.u64(e.term)
                w.u8(e.kind.rawValue)
                w.u32(UInt32(e.data.count))
                w.raw(e.data)
            }
        case .hardState(_, let hs):
            w.u64(hs.term); w.u64(hs.vote); w.u64(hs.commit)
        case .snapshotSaved(_, let m), .snapshotInstalled(_, let m):
            w.u64(m.index); w.u64(m.term)
            w.u32(UInt32(m.confState.voters.count))
            for v in m.confState.voters { w.u64(v) }
            w.u32(UInt32(m.confState.learners.count))
            for l in m.confState.learners { w.u64(l) }
        case .compact(_, let i, let t):
            w.u64(i); w.u64(t)
        }
    }

    enum DecodeError: Error { case truncated, unknownRecord(UInt8), unknownEntryKind(UInt8) }

    static func decode(_ r: inout ByteReader) throws(DecodeError) -> WALRecord {
        do {
            let tag = try r.u8()
            let group = try r.u64()
            switch tag {
            case 1:
                let n = Int(try r.u32())
                var ents: [Entry] = []
                ents.reserveCapacity(min(n, 1 << 16))
                for _ in 0..<n {
                    let index = try r.u64(), term = try r.u64(), k = try r.u8()
                    guard let kind = EntryKind(rawValue: k) else { throw DecodeError.unknownEntryKind(k) }
                    let len = Int(try r.u32())
                    ents.append(Entry(term: term, index: index, kind: kind, data: try r.bytes(len)))
                }
                return .entries(group: group, ents)
            case 2:
                return .hardState(group: group, HardState(term: try r.u64(), vote: try r.u64(), commit: try r.u64()))
            case 3, 4:
                let index = try r.u64(), term = try r.u64()
                var voters: [NodeID] = [], learners: [NodeID] = []
                let nv = Int(try r.u32())
                guard nv <= r.remaining / 8 else { throw DecodeError.truncated }
                for _ in 0..<nv { voters.append(try r.u64()) }
                let nl = Int(try r.u32())
                guard nl <= r.remaining / 8 else { throw DecodeError.truncated }
                for _ in 0..<nl { learners.append(try r.u64()) }
                let m = SnapshotMetadata(index: index, term: term, confState: ConfState(voters: voters, learners: learners))
                return tag == 3 ? .snapshotSaved(group: group, m) : .snapshotInstalled(group: group, m)
            case 5:
                return .compact(group: group, index: try r.u64(), term: try r.u64())
            default:
                throw DecodeError.unknownRecord(tag)
            }
        } catch let e as DecodeError {
            throw e
        } catch {
            throw .truncated
        }
    }
}
