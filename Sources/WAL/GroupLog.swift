import Raft

/// One Raft group's durable log as recovered from and kept in step with the WAL: hard state, newest snapshot
/// metadata, and the entries after the compaction point. The consensus core reads it as its `RaftStorage`.
///
/// It changes only when a WAL write has been made durable (`LogEngine.complete`) or during recovery, so
/// everything it returns is on disk. Semantics match `MemoryStorage` exactly: a sentinel at the compaction
/// point answers `term(firstIndex - 1)`; `.compacted` / `.unavailable` outside the stored range.
public final class GroupLog: RaftStorage {
    public let group: UInt64
    public private(set) var hardState = HardState()
    /// The newest snapshot's metadata (index 0: none yet; its conf state is the group's initial membership).
    public private(set) var snapshotMetadata = SnapshotMetadata()
    /// Index and term of the last compacted entry.
    public private(set) var compactIndex: LogIndex = 0
    public private(set) var compactTerm: Term = 0
    private var entries: [Entry] = []
    /// Opens the saved snapshot image (its file, or the memory store's bytes) for reads by range.
    var openSnapshotImage: ((SnapshotMetadata) throws(WALError) -> SnapshotImage)?
    /// Starts receiving an image from a leader (a file in `snap/incoming/`, or memory).
    var makeSpool: ((SnapshotMetadata, UInt64) throws(WALError) -> SnapshotSpool)?
    /// The snapshot whose file was last found sound (header and size), so `snapshot()` opens it once.
    private var checkedImage: SnapshotMetadata?

    init(group: UInt64) { self.group = group }

    // MARK: RaftStorage

    public func initialState() -> (HardState, ConfState) { (hardState, snapshotMetadata.confState) }
    public func firstIndex() -> LogIndex { compactIndex + 1 }
    public func lastIndex() -> LogIndex { compactIndex + LogIndex(entries.count) }

    public func term(_ index: LogIndex) throws(StorageError) -> Term {
        if index < compactIndex { throw .compacted }
        if index == compactIndex { return compactTerm }
        if index > lastIndex() { throw .unavailable }
        return entries[Int(index - compactIndex - 1)].term
    }

    public func entries(_ lo: LogIndex, _ hi: LogIndex, maxBytes: Int) throws(StorageError) -> [Entry] {
        if lo <= compactIndex { throw .compacted }
        if hi > lastIndex() + 1 { throw .unavailable }
        if lo >= hi { return [] }
        let start = Int(lo - compactIndex - 1), stop = Int(hi - compactIndex - 1)
        var end = start, size = 0
        while end < stop {
            size += entries[end].byteSize
            if end > start && size > maxBytes { break }
            end += 1
        }
        return Array(entries[start..<end])
    }

    /// The newest snapshot's metadata, WITHOUT its image: the image stays in its file and is read by range when a
    /// follower needs it (`snapshotImage`), so no shard's image is ever held in memory for the consensus core. A
    /// snapshot message the core builds from it carries no data; the node fills it in or streams it. Throws
    /// `.snapshotTemporarilyUnavailable` while the file is missing or its header is unsound.
    public func snapshot() throws(StorageError) -> Snapshot {
        if snapshotMetadata.index == 0 || checkedImage == snapshotMetadata { return Snapshot(metadata: snapshotMetadata) }
        guard (try? snapshotImage()) != nil else { throw .snapshotTemporarilyUnavailable }
        checkedImage = snapshotMetadata
        return Snapshot(metadata: snapshotMetadata)
    }

    /// The newest snapshot's image, opened for reads by range (nil: no snapshot yet).
    public func snapshotImage() throws(WALError) -> SnapshotImage? {
        guard snapshotMetadata.index > 0 else { return nil }
        guard let open = openSnapshotImage else { preconditionFailure("group \(group) has no snapshot store") }
        return try open(snapshotMetadata)
    }

    /// The newest snapshot with its whole image, checked against its checksum (opening a replica, tests).
    public func snapshotWithData() throws(WALError) -> Snapshot {
        guard let image = try snapshotImage() else { return Snapshot(metadata: snapshotMetadata) }
        return Snapshot(metadata: snapshotMetadata, data: try image.readAll())
    }

    /// A spool for an image of `total` bytes at `metadata` being received from a leader.
    public func receiveImage(_ metadata: SnapshotMetadata, total: UInt64) throws(WALError) -> SnapshotSpool {
        guard let make = makeSpool else { preconditionFailure("group \(group) has no snapshot store") }
        return try make(metadata, total)
    }

    /// Every entry currently held (for inspection and tests).
    public var allEntries: [Entry] { entries }

    // MARK: applying durable records (engine only)

    func apply(_ record: WALRecord) throws(GroupLogError) {
        switch record {
        case .entries(_, let ents):
            guard let first = ents.first else { return }
            if first.index > lastIndex() + 1 {
                throw .gap(expected: lastIndex() + 1, got: first.index)
            }
            var list = ents[...]
            if first.index <= compactIndex {
                list = list.drop { $0.index <= compactIndex }
                guard let f = list.first else { return }
                let cut = Int(f.index - compactIndex - 1)
                entries.removeSubrange(cut...)
            } else {
                entries.removeSubrange(Int(first.index - compactIndex - 1)...)
            }
            entries.append(contentsOf: list)
        case .hardState(_, let hs):
            hardState = hs
        case .snapshotSaved(_, let m):
            if m.index >= snapshotMetadata.index { snapshotMetadata = m }
        case .snapshotInstalled(_, let m):
            snapshotMetadata = m
            entries = []
            compactIndex = m.index
            compactTerm = m.term
        case .compact(_, let index, let term):
            // A rebased group (recovery inferred its compaction point from a gap) learns the term here.
            if index == compactIndex && compactTerm == 0 { compactTerm = term }
            guard index > compactIndex else { return }
            if index >= lastIndex() {
                entries = []
            } else {
                entries.removeFirst(Int(index - compactIndex))
            }
            compactIndex = index
            compactTerm = term
        }
    }

    /// Recovery only: the group's entries before `index` were in segments already deleted (they were
    /// compacted); start the log after them. A later compact record must confirm this (checked by the engine).
    func rebase(after index: LogIndex) {
        entries = []
        compactIndex = index
        compactTerm = 0
    }

    /// The records that restate this group's metadata at the start of a new segment.
    func checkpointRecords() -> [WALRecord] {
        var out: [WALRecord] = [.snapshotSaved(group: group, snapshotMetadata)]
        if compactIndex > 0 { out.append(.compact(group: group, index: compactIndex, term: compactTerm)) }
        if !hardState.isEmpty { out.append(.hardState(group: group, hardState)) }
        return out
    }
}

enum GroupLogError: Error { case gap(expected: LogIndex, got: LogIndex) }
