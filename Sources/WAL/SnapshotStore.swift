import Codec
import Raft
#if canImport(Glibc)
import Glibc
#endif

/// Snapshot data files, one per group (the newest), under `<wal dir>/snap/`.
///
/// File: `"SUTRASNP"`, version u32, group u64, index u64, term u64, data length u64, crc32c(data) u32, data.
/// Written to a temporary name, fsynced, renamed into place, and the directory fsynced — so a crash leaves
/// either the old snapshot or the new one, never a half-written file under the real name.
struct SnapshotStore {
    let directory: String
    static let magic: [UInt8] = Array("SUTRASNP".utf8)
    static let headerSize = 8 + 4 + 8 + 8 + 8 + 8 + 4

    init(walDirectory: String) throws(WALError) {
        directory = walDirectory + "/snap"
        try FS.makeDirectory(directory)
    }

    func path(group: UInt64, index: LogIndex) -> String {
        directory + "/" + fixedHex(group) + "-" + fixedHex(index) + ".snap"
    }

    func write(group: UInt64, metadata m: SnapshotMetadata, data: [UInt8]) throws(WALError) {
        var w = ByteWriter(capacity: SnapshotStore.headerSize + data.count)
        w.raw(SnapshotStore.magic)
        w.u32(WALFormat.version)
        w.u64(group); w.u64(m.index); w.u64(m.term); w.u64(UInt64(data.count))
        w.u32(CRC32C.checksum(data))
        w.raw(data)
        let final = path(group: group, index: m.index)
        let tmp = final + ".tmp"
        try FS.remove(tmp)
        let f = try RawFile(path: tmp, create: true)
        try f.pwriteAll(w.bytes, at: 0)
        try f.sync()
        f.close()
        try FS.rename(tmp, final)
        try FS.syncDirectory(directory)
    }

    func read(group: UInt64, metadata m: SnapshotMetadata) throws(WALError) -> [UInt8] {
        let p = path(group: group, index: m.index)
        let f = try RawFile(path: p, create: false)
        let bytes = try f.readAll()
        var result: Result<[UInt8], WALError> = .failure(.badSnapshot(path: p, detail: "truncated"))
        bytes.withUnsafeBytes { buf in
            var r = ByteReader(buf)
            do {
                let magic = try r.bytes(8)
                guard magic == SnapshotStore.magic else { result = .failure(.badSnapshot(path: p, detail: "not a snapshot file")); return }
                let version = try r.u32()
                guard version == WALFormat.version else { result = .failure(.unsupportedVersion(path: p, version: version)); return }
                let g = try r.u64(), index = try r.u64(), term = try r.u64(), len = Int(try r.u64()), crc = try r.u32()
                guard g == group, index == m.index, term == m.term else {
                    result = .failure(.badSnapshot(path: p, detail: "header says group \(g) (\(index), \(term)), record says group \(group) (\(m.index), \(m.term))"))
                    return
                }
                let data = try r.bytes(len)
                guard CRC32C.checksum(data) == crc else { result = .failure(.badSnapshot(path: p, detail: "checksum mismatch")); return }
                result = .success(data)
            } catch {
                result = .failure(.badSnapshot(path: p, detail: "truncated"))
            }
        }
        return try result.get()
    }

    /// Removes this group's snapshot files older than `keep`.
    func removeOlder(group: UInt64, than keep: LogIndex) throws(WALError) {
        let prefix = fixedHex(group) + "-"
        for name in try FS.list(directory) where name.hasPrefix(prefix) && name.hasSuffix(".snap") {
            let idxHex = name.dropFirst(prefix.count).dropLast(5)
            if let idx = UInt64(idxHex, radix: 16), idx < keep { try FS.remove(directory + "/" + name) }
        }
    }
}
