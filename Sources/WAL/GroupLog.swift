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
    /// Reads the snapshot data from its file when the core asks for it.
    var loadSnapshotData: ((SnapshotMetadata) throws(WALError) -> [UInt8])?
    private var cachedSnapshot: Snapshot?

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

    public func snapshot() throws(StorageError) -> Snapshot {
        if let s = cachedSnapshot, s.metadata == snapshotMetadata { return s }
        if snapshotMetadata.index == 0 { return Snapshot(metadata: snapshotMetadata) }
        guard let load = loadSnapshotData, let data = try? load(snapshotMetadata) else {
            throw .snapshotTemporarilyUnavailable
        }
        let s = Snapshot(metadata: snapshotMetadata, data: data)
        cachedSnapshot = s
        return s
    }

    /// Forgets the cached snapshot bytes (they are read from the file again if a follower needs them). The
    /// replica calls it once it has restored its state, so a restart does not hold every shard's image twice.
    public func dropSnapshotCache() { cachedSnapshot = nil }

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
