import Codec
import Raft
#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one snapshot image, read by range without holding them: a snapshot file (its data after the
/// header) — saved by this node or received from a leader — or bytes already in memory (the simulation's logs, a
/// snapshot Raft holds before it is saved).
///
/// Guarantees: a read returns exactly the bytes asked for, or throws naming the file; the file's CRC32C is
/// checked as its bytes are first read in order (a stream reads them so), so the last range of a damaged file is
/// refused rather than handed on; `withBytes` checks the whole image first. Nothing reads more than it returns,
/// except `withBytes`, which maps the file (page cache, not the heap). Used on the loop's thread only.
public final class SnapshotImage {
    public let group: UInt64
    public let metadata: SnapshotMetadata
    /// Bytes of the image (the file's data, not its header).
    public let size: UInt64
    /// The file holding it (nil: in memory).
    public var path: String? { file?.path }

    private let file: RawFile?
    private let memory: [UInt8]
    /// A received image's file (under `snap/incoming/`), which `discard` may remove; never a saved snapshot.
    private let removable: Bool
    private let dataOffset: Int
    private let expectedCRC: UInt32
    /// Lazy verification: the CRC of bytes [0, verifiedUpTo) as first read.
    private var verifiedUpTo: UInt64 = 0
    private var runningCRC: UInt32 = 0

    /// An image held in memory (no checksum to check: the bytes were never on disk).
    public init(group: UInt64, metadata: SnapshotMetadata, bytes: [UInt8]) {
        self.group = group
        self.metadata = metadata
        size = UInt64(bytes.count)
        memory = bytes
        file = nil
        removable = false
        dataOffset = 0
        expectedCRC = 0
    }

    /// An image in `file`, whose data of `size` bytes starts at `dataOffset` and has CRC32C `crc`.
    init(group: UInt64, metadata: SnapshotMetadata, file: RawFile, dataOffset: Int, size: UInt64, crc: UInt32, removable: Bool) {
        self.removable = removable
        self.group = group
        self.metadata = metadata
        self.size = size
        self.file = file
        self.dataOffset = dataOffset
        expectedCRC = crc
        memory = []
    }

    /// Bytes [offset, offset + count) of the image.
    public func read(offset: UInt64, count: Int) throws(WALError) -> [UInt8] {
        precondition(count >= 0 && offset + UInt64(count) <= size, "a read of \(count) bytes at \(offset) of an image of \(size)")
        guard let file else { return Array(memory[Int(offset)..<Int(offset) + count]) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let r = out.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress! + done, count - done, off_t(dataOffset + Int(offset) + done)) }
            if r < 0 {
                if errno == EINTR { continue }
                throw .io(op: "read", path: file.path, errno: errno)
            }
            if r == 0 { throw .badSnapshot(path: file.path, detail: "ends at \(dataOffset + Int(offset) + done) bytes, before its \(size) bytes of data") }
            done += r
        }
        let end = offset + UInt64(count)
        if offset <= verifiedUpTo && end > verifiedUpTo {
            runningCRC = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[Int(verifiedUpTo - offset)...]), continuing: runningCRC) }
            verifiedUpTo = end
            if verifiedUpTo == size && runningCRC != expectedCRC {
                throw .badSnapshot(path: file.path, detail: "checksum mismatch over its \(size) bytes of data")
            }
        }
        return out
    }

    /// The whole image in memory (small images: the meta group's, a peer of a release without streaming).
    public func readAll() throws(WALError) -> [UInt8] {
        guard file != nil else { return memory }
        verifiedUpTo = 0
        runningCRC = 0
        return try read(offset: 0, count: Int(size))
    }

    /// Calls `body` with the whole image, checked against its checksum first. A file is mapped read-only (its pages
    /// are the kernel's cache, dropped under memory pressure), not read into the heap.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let file else { return try memory.withUnsafeBytes(body) }
        let length = dataOffset + Int(size)
        guard let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, file.fd, 0), base != MAP_FAILED else {
            throw WALError.io(op: "mmap", path: file.path, errno: errno)
        }
        defer { munmap(base, length) }
        let data = UnsafeRawBufferPointer(start: base + dataOffset, count: Int(size))
        guard CRC32C.checksum(data) == expectedCRC else {
            throw WALError.badSnapshot(path: file.path, detail: "checksum mismatch over its \(size) bytes of data")
        }
        return try body(data)
    }
}

/// A snapshot image being received from a leader, written as it arrives — to a file under `snap/incoming/` (the
/// engine's logs) or to memory (the simulation's) — so no more of it than one chunk is ever in the heap. Bytes
/// only append, in order; `finish` seals the file (header with the CRC32C, the snapshot file format) and hands
/// back the image, which the WAL adopts by renaming it into place when the install is made durable. A spool
/// dropped without `finish` or adoption is removed (`discard`), and a restart removes any left behind.
public final class SnapshotSpool {
    public let group: UInt64
    public let metadata: SnapshotMetadata
    public let total: UInt64
    public private(set) var received: UInt64 = 0
    private let file: RawFile?
    private var memory: [UInt8] = []
    private var crc: UInt32 = 0
    private var finished = false

    init(group: UInt64, metadata: SnapshotMetadata, total: UInt64, file: RawFile?) {
        precondition(total > 0, "an empty image is not spooled")
        self.group = group
        self.metadata = metadata
        self.total = total
        self.file = file
    }

    /// A spool in memory (the simulation).
    public static func inMemory(group: UInt64, metadata: SnapshotMetadata, total: UInt64) -> SnapshotSpool {
        SnapshotSpool(group: group, metadata: metadata, total: total, file: nil)
    }

    /// Appends the next bytes of the image.
    public func append(_ bytes: [UInt8]) throws(WALError) {
        precondition(!finished && received + UInt64(bytes.count) <= total, "\(bytes.count) bytes appended at \(received) of an image of \(total)")
        if let file {
            try file.pwriteAll(bytes, at: SnapshotStore.headerSize + Int(received))
            crc = CRC32C.checksum(bytes, continuing: crc)
        } else {
            if memory.capacity < Int(received) + bytes.count {
                memory.reserveCapacity(Int(min(total, UInt64(max(Int(received) + bytes.count, memory.capacity * 2)))))
            }
            memory.append(contentsOf: bytes)
        }
        received += UInt64(bytes.count)
    }

    /// Every byte is in: the image, ready to be checked and (once Raft takes it) adopted by the log.
    public func finish() throws(WALError) -> SnapshotImage {
        precondition(!finished && received == total, "finish at \(received) of \(total) bytes")
        finished = true
        guard let file else { return SnapshotImage(group: group, metadata: metadata, bytes: memory) }
        try file.pwriteAll(SnapshotStore.header(group: group, metadata: metadata, length: total, crc: crc), at: 0)
        return SnapshotImage(group: group, metadata: metadata, file: file, dataOffset: SnapshotStore.headerSize, size: total, crc: crc, removable: true)
    }

    /// Removes what was received (an abandoned or refused stream).
    public func discard() {
        memory = []
        if let file { try? FS.remove(file.path) }
    }
}

extension SnapshotImage {
    /// Removes the file of a received image that will not be adopted (refused, or replaced before its install).
    public func discard() {
        if removable, let path { try? FS.remove(path) }
    }
}
