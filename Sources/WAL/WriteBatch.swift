import Raft

/// A snapshot file a write makes durable before its frame: the image in `snapshot.data`, written out; or, for an
/// image received from a leader and already on disk (`SnapshotSpool`), that file adopted (renamed into place).
public struct SnapshotFileWrite: Sendable {
    public let group: UInt64
    public let snapshot: Snapshot
    /// The received image's file to rename into place (nil: write `snapshot.data`).
    public let adopting: String?
}

/// The changes of one event-loop turn, for any number of groups, made durable together by one frame and one
/// fdatasync (group commit). Build it, then `LogEngine.prepare` → `PreparedWrite.perform` → `LogEngine.complete`.
public struct WriteBatch {
    enum Op {
        case record(WALRecord)
        case compact(group: UInt64, upTo: LogIndex)
    }

    var ops: [Op] = []
    var snapshotFiles: [SnapshotFileWrite] = []

    public init() {}

    public var isEmpty: Bool { ops.isEmpty }

    /// Appends entries to a group, replacing whatever it had from `entries[0].index` on.
    public mutating func append(group: UInt64, entries: [Entry]) {
        guard !entries.isEmpty else { return }
        ops.append(.record(.entries(group: group, entries)))
    }

    public mutating func setHardState(group: UInt64, _ hs: HardState) {
        ops.append(.record(.hardState(group: group, hs)))
    }

    /// Records a new group's initial membership (a snapshot at index 0 without data).
    public mutating func setInitialMembership(group: UInt64, _ cs: ConfState) {
        ops.append(.record(.snapshotSaved(group: group, SnapshotMetadata(index: 0, term: 0, confState: cs))))
    }

    /// A snapshot received from the leader: its file is written (or `image`, received into a file, is adopted),
    /// then it replaces the group's whole log.
    public mutating func installSnapshot(group: UInt64, _ snap: Snapshot, image: SnapshotImage? = nil) {
        if let image {
            precondition(image.group == group && image.metadata == snap.metadata, "group \(group): the image at \(image.metadata.index) is not the snapshot at \(snap.metadata.index)")
            if let path = image.path {
                snapshotFiles.append(SnapshotFileWrite(group: group, snapshot: Snapshot(metadata: snap.metadata), adopting: path))
            } else {
                var s = snap
                s.data = (try? image.readAll()) ?? []   // in memory: cannot fail
                snapshotFiles.append(SnapshotFileWrite(group: group, snapshot: s, adopting: nil))
            }
        } else {
            precondition(snap.isEmpty || !snap.data.isEmpty, "group \(group): a snapshot at \(snap.metadata.index) to install without its image")
            snapshotFiles.append(SnapshotFileWrite(group: group, snapshot: snap, adopting: nil))
        }
        ops.append(.record(.snapshotInstalled(group: group, snap.metadata)))
    }

    /// A snapshot the application took of its own state (entries are kept until `compact`).
    public mutating func saveSnapshot(group: UInt64, _ snap: Snapshot) {
        precondition(!snap.data.isEmpty, "group \(group): a snapshot at \(snap.metadata.index) to save without its image")
        snapshotFiles.append(SnapshotFileWrite(group: group, snapshot: snap, adopting: nil))
        ops.append(.record(.snapshotSaved(group: group, snap.metadata)))
    }

    /// Drops the group's entries up to and including `index` (which must be covered by a snapshot).
    public mutating func compact(group: UInt64, upTo index: LogIndex) {
        ops.append(.compact(group: group, upTo: index))
    }

    /// The part of this batch for the groups `selected` admits, and the rest, in their order: a node that keeps
    /// some groups in a log of their own writes each part to its log.
    public func split(_ selected: (UInt64) -> Bool) -> (selected: WriteBatch, rest: WriteBatch) {
        var a = WriteBatch(), b = WriteBatch()
        for op in ops {
            let g: UInt64
            switch op {
            case .compact(let group, _): g = group
            case .record(.entries(let group, _)), .record(.hardState(let group, _)), .record(.snapshotSaved(let group, _)),
                 .record(.snapshotInstalled(let group, _)), .record(.compact(let group, _, _)): g = group
            }
            if selected(g) { a.ops.append(op) } else { b.ops.append(op) }
        }
        for f in snapshotFiles { if selected(f.group) { a.snapshotFiles.append(f) } else { b.snapshotFiles.append(f) } }
        return (a, b)
    }

    /// The records this batch writes, with each compaction resolved against the groups as they are now: clamped
    /// to the group's last index and carrying that entry's term; a compaction that moves nothing is dropped.
    func records(group: (UInt64) -> GroupLog) -> [WALRecord] {
        var records: [WALRecord] = []
        records.reserveCapacity(ops.count)
        for op in ops {
            switch op {
            case .record(let r):
                records.append(r)
            case .compact(let gid, let upTo):
                let g = group(gid)
                let index = min(upTo, g.lastIndex())
                guard index > g.compactIndex, let term = try? g.term(index) else { continue }
                records.append(.compact(group: gid, index: index, term: term))
            }
        }
        return records
    }

    /// Everything a Raft `Ready` asks to persist, in the required order: snapshot, entries, hard state. `image`:
    /// the received image of the Ready's snapshot, when its message came streamed (without data).
    public mutating func add(_ rd: Ready, group: UInt64, image: SnapshotImage? = nil) {
        if let s = rd.snapshot { installSnapshot(group: group, s, image: s.data.isEmpty ? image : nil) }
        append(group: group, entries: rd.entries)
        if let hs = rd.hardState { setHardState(group: group, hs) }
    }
}

/// An encoded write waiting to be made durable. `perform()` is the only blocking step (snapshot files, then
/// pwrite + fdatasync of one frame, after creating the next segment if rotating); it may run on any thread,
/// e.g. libuv's thread pool, while the engine is not touched. Exactly one is in flight per engine.
public final class PreparedWrite: @unchecked Sendable {
    let file: RawFile?
    let newSegment: (path: String, directory: String)?
    let offset: Int
    let bytes: [UInt8]
    let records: [WALRecord]
    let snapshotFiles: [SnapshotFileWrite]
    let snapshots: SnapshotStore
    let frameSeqs: ClosedRange<UInt64>
    /// Preallocation: zeros written and made durable here *before* the data, if set (docs/WAL.md).
    let allocate: Range<Int>?
    var createdFile: RawFile?
    /// A rotation's segment file was created by an earlier attempt of `perform` (which then failed).
    private var attemptedSegment = false

    init(file: RawFile?, newSegment: (path: String, directory: String)?, offset: Int, bytes: [UInt8],
         records: [WALRecord], snapshotFiles: [SnapshotFileWrite], snapshots: SnapshotStore,
         frameSeqs: ClosedRange<UInt64>, allocate: Range<Int>? = nil) {
        self.allocate = allocate
        self.file = file
        self.newSegment = newSegment
        self.offset = offset
        self.bytes = bytes
        self.records = records
        self.snapshotFiles = snapshotFiles
        self.snapshots = snapshots
        self.frameSeqs = frameSeqs
    }

    /// Number of bytes this write appends to the log.
    public var byteCount: Int { bytes.count }

    /// Makes the write durable. Returns only after fdatasync: this is the acknowledgement point.
    ///
    /// After it throws an out-of-space error (`WALError.isOutOfSpace`) it may be called again, unchanged, as often
    /// as needed: every attempt writes the same bytes at the same offsets (snapshot files are replaced whole, a
    /// new segment left half-made by the failed attempt is removed first), so a partial earlier attempt is
    /// overwritten and nothing is acknowledged before one attempt's fdatasync succeeds. Any other error leaves
    /// the log in an unknown state: the engine must be abandoned (`LogEngine.abandon`).
    public func perform() throws(WALError) {
        for f in snapshotFiles where f.snapshot.metadata.index > 0 {
            if let received = f.adopting {
                try snapshots.adopt(received, group: f.group, metadata: f.snapshot.metadata)
            } else {
                try snapshots.write(group: f.group, metadata: f.snapshot.metadata, data: f.snapshot.data)
            }
        }
        if let seg = newSegment {
            if attemptedSegment {
                // A failed earlier attempt of this very write may have left the new segment behind: it holds
                // nothing acknowledged (the engine still counts the previous segment as the active one).
                try FS.remove(seg.path)
            }
            attemptedSegment = true
            let f = try RawFile(path: seg.path, create: true)
            if allocate != nil {
                // The header and the whole allocation first, durably; then the data.
                try f.pwriteAll(Array(bytes[0..<WALFormat.segmentHeaderSize]), at: 0)
                try preallocate(f, from: WALFormat.segmentHeaderSize)
                try FS.syncDirectory(seg.directory)
                try f.pwriteAll(bytes, at: 0)
                try f.datasync()
            } else {
                try f.pwriteAll(bytes, at: 0)
                try f.sync()
                try FS.syncDirectory(seg.directory)
            }
            createdFile = f
        } else {
            try preallocate(file!, from: nil)
            try file!.pwriteAll(bytes, at: offset)
            try file!.datasync()
        }
    }

    /// Preallocation: zeros over `allocate`, made durable (size included) *before* the data is written there.
    /// So a crash can leave a partly extended file (zeros after the data: the end of the log) or a torn frame
    /// inside the allocated space, but never a file that ends inside a frame — which is how recovery tells a
    /// cut segment from a torn write. Costs one extra fdatasync per chunk of log.
    private func preallocate(_ f: RawFile, from start: Int?) throws(WALError) {
        guard let range = allocate else { return }
        let lower = max(range.lowerBound, start ?? range.lowerBound)
        guard range.upperBound > lower else { return }
        try f.pwriteAll([UInt8](repeating: 0, count: range.upperBound - lower), at: lower)
        try f.datasync()
    }

    /// Test hook: writes the bytes without syncing (a crash between write and fsync); the preallocation before
    /// them is durable, as in `perform`.
    func performWithoutSync() throws(WALError) {
        precondition(newSegment == nil, "test hook does not rotate")
        try preallocate(file!, from: nil)
        try file!.pwriteAll(bytes, at: offset)
    }
}
