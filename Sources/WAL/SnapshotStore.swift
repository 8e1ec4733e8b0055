import Codec
import Raft
#if canImport(Glibc)
import Glibc
#endif

/// Snapshot data files, one per group (the newest), under `<wal dir>/snap/`; images being received from a leader
/// under `<wal dir>/snap/incoming/` (removed at every start: a half-received image is never used).
///
/// File: `"SUTRASNP"`, version u32, group u64, index u64, term u64, data length u64, crc32c(data) u32, data.
/// Written to a temporary name (or received into `incoming/`), fsynced, renamed into place, and the directory
/// fsynced — so a crash leaves either the old snapshot or the new one, never a half-written file under the real name.
struct SnapshotStore {
    let directory: String
    /// Numbers the spools of this process: two streams of the same image never share a file (one may be waiting
    /// for its adoption while the other arrives).
    private let spools = SpoolCounter()
    var incomingDirectory: String { directory + "/incoming" }
    static let magic: [UInt8] = Array("SUTRASNP".utf8)
    static let headerSize = 8 + 4 + 8 + 8 + 8 + 8 + 4

    init(walDirectory: String) throws(WALError) {
        directory = walDirectory + "/snap"
        try FS.makeDirectory(directory)
        try FS.makeDirectory(incomingDirectory)
        for name in try FS.list(incomingDirectory) { try FS.remove(incomingDirectory + "/" + name) }
    }

    static func header(group: UInt64, metadata m: SnapshotMetadata, length: UInt64, crc: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: SnapshotStore.headerSize)
        w.raw(SnapshotStore.magic)
        w.u32(WALFormat.version)
        w.u64(group); w.u64(m.index); w.u64(m.term); w.u64(length)
        w.u32(crc)
        assert(w.bytes.count == SnapshotStore.headerSize, "snapshot header of \(w.bytes.count) bytes")
        return w.bytes
    }

    func path(group: UInt64, index: LogIndex) -> String {
        directory + "/" + fixedHex(group) + "-" + fixedHex(index) + ".snap"
    }

    /// Writes `data` as group `group`'s snapshot at `m` (header, then the data where it is: no copy of it).
    func write(group: UInt64, metadata m: SnapshotMetadata, data: [UInt8]) throws(WALError) {
        let final = path(group: group, index: m.index)
        let tmp = final + ".tmp"
        try FS.remove(tmp)
        let f = try RawFile(path: tmp, create: true)
        try f.pwriteAll(SnapshotStore.header(group: group, metadata: m, length: UInt64(data.count), crc: CRC32C.checksum(data)), at: 0)
        try f.pwriteAll(data, at: SnapshotStore.headerSize)
        try f.sync()
        f.close()
        try FS.rename(tmp, final)
        try FS.syncDirectory(directory)
    }

    /// Makes a received image (`spool`'s file, sealed by `finish`) group `group`'s snapshot at `m`: fsynced,
    /// renamed into place, the directory fsynced. Repeatable: once renamed, a second call only syncs again.
    func adopt(_ received: String, group: UInt64, metadata m: SnapshotMetadata) throws(WALError) {
        let final = path(group: group, index: m.index)
        if let f = try? RawFile(path: received, create: false) {
            try f.sync()
            f.close()
            try FS.rename(received, final)
        } else {
            // An earlier attempt of this write renamed it already (and then failed for space elsewhere).
            let f = try RawFile(path: final, create: false)
            f.close()
        }
        try FS.syncDirectory(directory)
    }

    /// A spool for group `group`'s image at `m` of `total` bytes, in `incoming/` (one per group: a new one
    /// replaces a file left by an earlier stream of that image).
    func spool(group: UInt64, metadata m: SnapshotMetadata, total: UInt64) throws(WALError) -> SnapshotSpool {
        spools.count += 1
        let p = incomingDirectory + "/" + fixedHex(group) + "-" + fixedHex(m.index) + "-" + fixedHex(m.term) + "-" + fixedHex(spools.count) + ".part"
        try FS.remove(p)
        return SnapshotSpool(group: group, metadata: m, total: total, file: try RawFile(path: p, create: true))
    }

    /// Group `group`'s saved snapshot at `m`, opened for reads by range: its header checked (magic, version,
    /// group, index, term, length against the file's size); its checksum as it is read (`SnapshotImage`).
    func openImage(group: UInt64, metadata m: SnapshotMetadata) throws(WALError) -> SnapshotImage {
        let p = path(group: group, index: m.index)
        let f = try RawFile(path: p, create: false)
        var head = [UInt8](repeating: 0, count: SnapshotStore.headerSize)
        let n = head.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress!, SnapshotStore.headerSize, 0) }
        guard n == SnapshotStore.headerSize else { throw .badSnapshot(path: p, detail: "shorter than its header") }
        var result: Result<SnapshotImage, WALError> = .failure(.badSnapshot(path: p, detail: "truncated"))
        let fileSize = try f.size()
        head.withUnsafeBytes { buf in
            var r = ByteReader(buf)
            do {
                guard try r.bytes(8) == SnapshotStore.magic else { result = .failure(.badSnapshot(path: p, detail: "not a snapshot file")); return }
                let version = try r.u32()
                guard version == WALFormat.version else { result = .failure(.unsupportedVersion(path: p, version: version)); return }
                let g = try r.u64(), index = try r.u64(), term = try r.u64(), len = try r.u64(), crc = try r.u32()
                guard g == group, index == m.index, term == m.term else {
                    result = .failure(.badSnapshot(path: p, detail: "header says group \(g) (\(index), \(term)), record says group \(group) (\(m.index), \(m.term))"))
                    return
                }
                guard UInt64(fileSize) == UInt64(SnapshotStore.headerSize) + len else {
                    result = .failure(.badSnapshot(path: p, detail: "\(fileSize) bytes, but its header says \(SnapshotStore.headerSize) + \(len)"))
                    return
                }
                result = .success(SnapshotImage(group: group, metadata: m, file: f, dataOffset: SnapshotStore.headerSize, size: len, crc: crc, removable: false))
            } catch {
                result = .failure(.badSnapshot(path: p, detail: "truncated header"))
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

/// The number of spools a `SnapshotStore` made (the loop's thread only).
final class SpoolCounter: @unchecked Sendable {
    var count: UInt64 = 0
}
