import Codec
import Logging
import Raft

/// A node's write-ahead log: **one shared log for every Raft group (shard) the node hosts**, so one fdatasync
/// makes a whole event-loop turn's appends durable for all shards (group commit).
///
/// Guarantees:
/// - a write is acknowledged (`perform()` returns) only after fdatasync; each write is one CRC32C-checked frame,
///   so after a crash it is either wholly present or wholly absent;
/// - on open, a torn tail (a crash mid-write: the last frame of the last segment cut short, zeros after) is
///   zeroed and logged; damage anywhere else — a cut (truncated) segment included, which preallocation makes
///   recognizable — is refused with the file and byte offset (`WALError.corruption`); a newer format version is
///   refused;
/// - the per-group views (`group(_:)`) expose only durable state, with `MemoryStorage`'s semantics;
/// - old segments are deleted only when every group has compacted every entry they hold.
///
/// Not thread-safe: use it from one thread (the node's loop), except `PreparedWrite.perform()`, which may run
/// elsewhere while exactly one write is in flight.
public final class LogEngine {
    public struct Options: Sendable {
        /// A new segment is started once the active one would grow past this size.
        public var segmentSize: Int = 64 << 20
        /// The active segment is extended with zeros this far ahead of its data, so most writes overwrite
        /// already-allocated blocks and fdatasync does not also commit a file-size change (ext4: no journal
        /// commit per write). 0 turns preallocation off.
        public var preallocateBytes: Int = 1 << 20
        public init() {}
    }

    final class Segment {
        let id: UInt64
        let path: String
        /// Bytes of frames (the logical end; the file may extend further with preallocated zeros).
        var size: Int
        /// The file's size: bytes up to here are allocated (data, then zeros).
        var allocated: Int
        /// Per group, the highest entry index written in this segment.
        var maxIndex: [UInt64: LogIndex] = [:]
        init(id: UInt64, path: String, size: Int, allocated: Int? = nil) {
            self.id = id
            self.path = path
            self.size = size
            self.allocated = allocated ?? size
        }
    }

    public let directory: String
    let options: Options
    /// The preallocation chunk new segments record in their header (0: preallocation off). Segments are
    /// extended in whole chunks, durably, before data is written into the new space (docs/WAL.md).
    let chunk: Int
    let logger: Logger
    let snapshots: SnapshotStore
    private var groups: [UInt64: GroupLog] = [:]
    private var segments: [Segment] = []
    private var activeFile: RawFile!
    private var nextSeq: UInt64 = 1
    private var inFlight = false
    private var failure: WALError?
    /// State used only while replaying the log on open.
    private struct Recovery {
        var anchored: Set<UInt64> = []
        var inferredBase: [UInt64: (index: LogIndex, path: String, offset: Int)] = [:]
        /// Highest compaction point recorded (compact or installed snapshot) per group.
        var compactedTo: [UInt64: LogIndex] = [:]
    }
    private var recovery = Recovery()

    /// Opens (creating if needed) the log in `directory` and recovers every group from it.
    public init(directory: String, options: Options = Options(), logger: Logger = Logger(label: "sutra.wal")) throws(WALError) {
        self.directory = directory
        self.options = options
        self.logger = logger
        chunk = options.preallocateBytes > 0
            ? min(max(min(options.preallocateBytes, options.segmentSize), WALFormat.minChunk), WALFormat.maxChunk) : 0
        try FS.makeDirectory(directory)
        snapshots = try SnapshotStore(walDirectory: directory)
        let names = try FS.list(directory).filter { $0.hasSuffix(".wal") }
        var lastSeq: UInt64?
        var active: RawFile?
        for (k, name) in names.enumerated() {
            let path = directory + "/" + name
            guard let id = UInt64(name.dropLast(4), radix: 16) else { continue }
            let isLast = k == names.count - 1
            let file = try RawFile(path: path, create: false)
            let bytes = try file.readAll()
            var scanError: WALError?
            var scanned = SegmentScanner.Result()
            bytes.withUnsafeBytes { buf in
                do throws(WALError) {
                    scanned = try SegmentScanner.scan(buf, path: path, isLast: isLast)
                } catch { scanError = error }
            }
            if let scanError { throw scanError }
            let seg = Segment(id: id, path: path, size: scanned.dataEnd ?? bytes.count, allocated: bytes.count)
            var replayError: WALError?
            bytes.withUnsafeBytes { buf in
                do throws(WALError) {
                    for (n, f) in scanned.frames.enumerated() {
                        if let prev = lastSeq, f.seq != prev + 1 {
                            throw WALError.corruption(path: path, offset: f.offset, detail: "frame sequence \(f.seq) follows \(prev)")
                        }
                        lastSeq = f.seq
                        // The oldest surviving segment's checkpoint (its first frame) restates each group's
                        // compaction point, but the entries after that point may have lived in segments deleted
                        // since (a later compaction covered them): it must not anchor the groups, or that
                        // legitimate gap would read as corruption.
                        let anchors = !(k == 0 && n == 0 && id > 1)
                        try replay(UnsafeRawBufferPointer(rebasing: buf[f.payload]), into: seg, path: path, offset: f.offset, anchors: anchors)
                    }
                } catch { replayError = error }
            }
            if let replayError { throw replayError }
            if let torn = scanned.tornAt {
                if scanned.chunk > 0 {
                    logger.warning("WAL: torn tail in \(path) at byte offset \(torn) (\(scanned.tornDetail)): the last write was cut short by a crash before its fsync returned, so it was never acknowledged; zeroing its \(bytes.count - torn) bytes")
                } else {
                    logger.warning("WAL: damaged tail in \(path) at byte offset \(torn) (\(scanned.tornDetail)); this segment predates preallocation signatures, so a crash cannot be told from a cut file: dropping its last \(bytes.count - torn) bytes")
                }
                if torn < WALFormat.segmentHeaderSize {
                    // The header never reached the disk: an empty segment.
                    try file.truncate(to: 0)
                    try file.pwriteAll(LogEngine.segmentHeader(chunk: chunk) + [UInt8](repeating: 0, count: chunk > 0 ? chunk - WALFormat.segmentHeaderSize : 0), at: 0)
                    seg.size = WALFormat.segmentHeaderSize
                    seg.allocated = max(chunk, seg.size)
                } else {
                    // Zeros, not a shorter file: the segment keeps its preallocated size (its signature).
                    try file.pwriteAll([UInt8](repeating: 0, count: bytes.count - torn), at: torn)
                    seg.size = torn
                    seg.allocated = bytes.count
                }
                try file.sync()
            }
            if isLast && scanned.chunk == 0 && chunk > 0 && scanned.tornAt.map({ $0 >= WALFormat.segmentHeaderSize }) ?? true {
                // A segment from before preallocation signatures: extend it to whole chunks (durably), then
                // record the chunk in its header, so from now on it has the signature too.
                let target = roundUp(seg.allocated, to: chunk)
                if target > seg.allocated {
                    try file.pwriteAll([UInt8](repeating: 0, count: target - seg.allocated), at: seg.allocated)
                    seg.allocated = target
                }
                try file.sync()
                try file.pwriteAll(LogEngine.segmentHeader(chunk: chunk), at: 0)
                try file.sync()
                logger.notice("WAL: \(path) now records its \(chunk)-byte preallocation chunk (a segment written before this release)")
            }
            segments.append(seg)
            if isLast { active = file } else { file.close() }
        }
        for (gid, base) in recovery.inferredBase.sorted(by: { $0.key < $1.key }) where (recovery.compactedTo[gid] ?? 0) < base.index {
            throw .corruption(path: base.path, offset: base.offset,
                              detail: "group \(gid)'s entries start at \(base.index + 1) but nothing in the log says entries up to \(base.index) were compacted")
        }
        recovery = Recovery()
        if let a = active {
            activeFile = a
        } else {
            let seg = Segment(id: 1, path: directory + "/" + fixedHex(1) + ".wal", size: WALFormat.segmentHeaderSize,
                              allocated: max(chunk, WALFormat.segmentHeaderSize))
            let f = try RawFile(path: seg.path, create: true)
            try f.pwriteAll(LogEngine.segmentHeader(chunk: chunk) + [UInt8](repeating: 0, count: seg.allocated - WALFormat.segmentHeaderSize), at: 0)
            try f.sync()
            try FS.syncDirectory(directory)
            segments.append(seg)
            activeFile = f
        }
        nextSeq = (lastSeq ?? 0) + 1
    }

    private func replay(_ payload: UnsafeRawBufferPointer, into seg: Segment, path: String, offset: Int, anchors: Bool = true) throws(WALError) {
        var r = ByteReader(payload)
        while r.remaining > 0 {
            let rec: WALRecord
            do {
                rec = try WALRecord.decode(&r)
            } catch {
                switch error {
                case .unknownRecord(let t):
                    throw .corruption(path: path, offset: offset, detail: "record type \(t) is unknown to this version (refusing to skip it)")
                case .unknownEntryKind(let k):
                    throw .corruption(path: path, offset: offset, detail: "entry kind \(k) is unknown to this version (refusing to skip it)")
                case .truncated:
                    throw .corruption(path: path, offset: offset, detail: "record cut short inside a checksummed frame")
                }
            }
            do {
                try applyDurable(rec, segment: seg)
            } catch {
                // The oldest surviving segment may start a group's entries after a gap: the entries before it
                // lived in deleted segments, which is allowed only because they were compacted. The compact
                // record saying so can come later in the log; check at the end of recovery that it did.
                guard case .entries(let gid, let ents) = rec, !recovery.anchored.contains(gid),
                      case .gap = error else {
                    throw .corruption(path: path, offset: offset, detail: "\(error)")
                }
                group(gid).rebase(after: ents[0].index - 1)
                recovery.inferredBase[gid] = (ents[0].index - 1, path, offset)
                do { try applyDurable(rec, segment: seg) } catch {
                    throw .corruption(path: path, offset: offset, detail: "\(error)")
                }
            }
            switch rec {
            case .entries(let gid, _):
                recovery.anchored.insert(gid)
            case .compact(let gid, let index, _):
                if anchors { recovery.anchored.insert(gid) }
                recovery.compactedTo[gid] = max(recovery.compactedTo[gid] ?? 0, index)
            case .snapshotInstalled(let gid, let meta):
                if anchors { recovery.anchored.insert(gid) }
                recovery.compactedTo[gid] = max(recovery.compactedTo[gid] ?? 0, meta.index)
            default:
                break
            }
        }
    }

    private func applyDurable(_ rec: WALRecord, segment seg: Segment) throws(GroupLogError) {
        let g = group(rec.group)
        try g.apply(rec)
        if case .entries(let id, let ents) = rec, let last = ents.last {
            seg.maxIndex[id] = max(seg.maxIndex[id] ?? 0, last.index)
        }
    }

    /// `"SUTRAWAL"` · version · the preallocation chunk (0: none), see docs/WAL.md.
    static func segmentHeader(chunk: Int) -> [UInt8] {
        var w = ByteWriter(capacity: WALFormat.segmentHeaderSize)
        w.raw(WALFormat.segmentMagic)
        w.u32(WALFormat.version)
        w.u32(UInt32(chunk))
        return w.bytes
    }

    // MARK: groups

    /// The durable log of group `id` (an empty one if the group has never written anything).
    public func group(_ id: UInt64) -> GroupLog {
        if let g = groups[id] { return g }
        let g = GroupLog(group: id)
        let store = snapshots
        g.openSnapshotImage = { (m) throws(WALError) in try store.openImage(group: id, metadata: m) }
        g.makeSpool = { (m, total) throws(WALError) in try store.spool(group: id, metadata: m, total: total) }
        groups[id] = g
        return g
    }

    /// Ids of every group present in the log, sorted.
    public var groupIDs: [UInt64] { groups.keys.sorted() }

    /// Number of segment files (for tests and metrics).
    public var segmentCount: Int { segments.count }
    /// Bytes in all segment files.
    public var totalBytes: Int { segments.reduce(0) { $0 + $1.size } }

    // MARK: writing

    /// Encodes a batch into one frame (on the caller's thread; cheap). Only one prepared write may be in flight.
    public func prepare(_ batch: WriteBatch) throws(WALError) -> PreparedWrite {
        if let failure { throw failure }
        precondition(!inFlight, "a WAL write is already in flight: complete it first")
        let records = batch.records(group: group)
        var frame = encodeFrame(records, seq: nextSeq)
        let active = segments.last!
        if active.size > WALFormat.segmentHeaderSize && active.size + frame.count > options.segmentSize {
            // Rotate: the new segment starts with a checkpoint of every group's metadata, so no older
            // segment is ever needed for it; then this batch's frame.
            var checkpoint: [WALRecord] = []
            for id in groups.keys.sorted() { checkpoint.append(contentsOf: groups[id]!.checkpointRecords()) }
            var bytes = LogEngine.segmentHeader(chunk: chunk)
            bytes.append(contentsOf: encodeFrame(checkpoint, seq: nextSeq))
            frame = encodeFrame(records, seq: nextSeq + 1)
            bytes.append(contentsOf: frame)
            let id = active.id + 1
            inFlight = true
            return PreparedWrite(file: nil, newSegment: (directory + "/" + fixedHex(id) + ".wal", directory), offset: 0,
                                 bytes: bytes, records: records, snapshotFiles: batch.snapshotFiles,
                                 snapshots: snapshots, frameSeqs: nextSeq...(nextSeq + 1),
                                 allocate: preallocation(dataEnd: bytes.count, allocated: 0))
        }
        inFlight = true
        let end = active.size + frame.count
        return PreparedWrite(file: activeFile, newSegment: nil, offset: active.size, bytes: frame, records: records,
                             snapshotFiles: batch.snapshotFiles, snapshots: snapshots, frameSeqs: nextSeq...nextSeq,
                             allocate: preallocation(dataEnd: end, allocated: active.allocated))
    }

    /// The zeros to write (and make durable) before a write whose data ends at `dataEnd`, when it passes the
    /// allocated end: up to the next whole chunk, so a preallocated segment's size is always whole chunks.
    private func preallocation(dataEnd: Int, allocated: Int) -> Range<Int>? {
        guard chunk > 0, dataEnd > allocated else { return nil }
        return allocated..<roundUp(dataEnd, to: chunk)
    }

    private func encodeFrame(_ records: [WALRecord], seq: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + records.count * 32)
        w.u32(WALFormat.frameMagic)
        w.u32(0)   // payload length, patched below
        w.u32(0)   // checksum, patched below
        w.u64(seq)
        for r in records { r.encode(into: &w) }
        let payloadLength = w.bytes.count - WALFormat.frameHeaderSize
        w.patchU32(UInt32(payloadLength), at: 4)
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[12...])) }
        w.patchU32(crc, at: 8)
        return w.bytes
    }

    /// The write is durable: make it visible through the group views, then delete segments nobody needs.
    public func complete(_ p: PreparedWrite) {
        precondition(inFlight, "complete without prepare")
        inFlight = false
        var seg = segments.last!
        if let newSeg = p.newSegment {
            activeFile.close()
            activeFile = p.createdFile!
            seg = Segment(id: seg.id + 1, path: newSeg.path, size: 0)
            segments.append(seg)
        }
        seg.size += p.bytes.count
        seg.allocated = max(seg.allocated, seg.size, p.allocate?.upperBound ?? 0)
        nextSeq = p.frameSeqs.upperBound + 1
        for r in p.records {
            do { try applyDurable(r, segment: seg) } catch {
                preconditionFailure("WAL: a durable record does not fit group \(r.group): \(error)")
            }
        }
        for f in p.snapshotFiles where f.snapshot.metadata.index > 0 {
            try? snapshots.removeOlder(group: f.group, than: group(f.group).snapshotMetadata.index)
        }
        collectGarbage()
    }

    /// The write failed: the log is in an unknown state until reopened (recovery truncates a torn tail).
    /// Every later `prepare` throws this error.
    public func abandon(_ p: PreparedWrite, error: WALError) {
        inFlight = false
        failure = error
        logger.critical("WAL write failed; refusing further writes until restart: \(error)")
    }

    /// prepare + perform + complete, on the calling thread.
    public func write(_ batch: WriteBatch) throws(WALError) {
        let p = try prepare(batch)
        do {
            try p.perform()
        } catch {
            abandon(p, error: error)
            throw error
        }
        complete(p)
    }

    /// Test hook: prepare and write a batch without fsync, then stop as if the process died.
    func writeWithoutSyncForTesting(_ batch: WriteBatch) throws(WALError) {
        let p = try prepare(batch)
        try p.performWithoutSync()
        inFlight = false
        failure = .io(op: "simulated crash", path: directory, errno: 0)
    }

    private func collectGarbage() {
        while segments.count > 1 {
            let oldest = segments[0]
            let needed = oldest.maxIndex.contains { gid, maxIdx in (groups[gid]?.compactIndex ?? 0) < maxIdx }
            if needed { break }
            do {
                try FS.remove(oldest.path)
            } catch {
                logger.warning("WAL: could not delete \(oldest.path): \(error)")
                break
            }
            segments.removeFirst()
        }
    }

    public func close() { activeFile.close() }
}

/// `n` rounded up to a whole number of `chunk`s.
func roundUp(_ n: Int, to chunk: Int) -> Int { (n + chunk - 1) / chunk * chunk }
