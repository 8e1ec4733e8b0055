/// An in-memory `RaftStorage`: what the application has made durable, kept as an array.
///
/// Used by the simulation (as each node's "disk") and by tests. `entries[0]` is a sentinel holding
/// the index and term of the compaction point, so `term(firstIndex() - 1)` is always answerable.
public final class MemoryStorage: RaftStorage {
    public private(set) var hardState: HardState
    public private(set) var snapshotValue: Snapshot
    /// entries[0] is the sentinel at the compaction point; real entries follow contiguously.
    private var ents: [Entry]

    public init(confState: ConfState = ConfState()) {
        hardState = HardState()
        snapshotValue = Snapshot(metadata: SnapshotMetadata(confState: confState))
        ents = [Entry(term: 0, index: 0)]
    }

    /// The membership is the snapshot's; conf changes logged after it are re-applied when the core replays
    /// the committed entries after a restart.
    public func initialState() -> (HardState, ConfState) { (hardState, snapshotValue.metadata.confState) }

    public func firstIndex() -> LogIndex { ents[0].index + 1 }
    public func lastIndex() -> LogIndex { ents[0].index + LogIndex(ents.count - 1) }

    public func term(_ index: LogIndex) throws(StorageError) -> Term {
        let offset = ents[0].index
        if index < offset { throw .compacted }
        if index - offset >= LogIndex(ents.count) { throw .unavailable }
        return ents[Int(index - offset)].term
    }

    public func entries(_ lo: LogIndex, _ hi: LogIndex, maxBytes: Int) throws(StorageError) -> [Entry] {
        let offset = ents[0].index
        if lo <= offset { throw .compacted }
        if hi > lastIndex() + 1 { throw .unavailable }
        if lo >= hi { return [] }
        var end = Int(lo - offset)
        let stop = Int(hi - offset)
        var size = 0
        let start = end
        while end < stop {
            size += ents[end].byteSize
            if end > start && size > maxBytes { break }
            end += 1
        }
        return Array(ents[start..<end])
    }

    public func snapshot() throws(StorageError) -> Snapshot { snapshotValue }

    // MARK: writes (the application's side)

    public func setHardState(_ hs: HardState) { hardState = hs }

    /// Appends entries, replacing any existing suffix they conflict with. Entries already compacted are ignored.
    public func append(_ entries: [Entry]) {
        guard var first = entries.first else { return }
        var list = entries[...]
        let compactedUpTo = ents[0].index
        if first.index <= compactedUpTo {
            list = list.drop { $0.index <= compactedUpTo }
            guard let f = list.first else { return }
            first = f
        }
        let offset = Int(first.index - ents[0].index)
        precondition(offset <= ents.count, "append leaves a gap: \(first.index) after \(lastIndex())")
        if offset < ents.count { ents.removeSubrange(offset...) }
        ents.append(contentsOf: list)
    }

    /// Replaces the whole log with a snapshot received from the leader.
    public func applySnapshot(_ snap: Snapshot) {
        guard snap.metadata.index > snapshotValue.metadata.index || snapshotValue.isEmpty else { return }
        snapshotValue = snap
        ents = [Entry(term: snap.metadata.term, index: snap.metadata.index)]
    }

    /// Records a snapshot the application took at `index` (≤ applied) without discarding entries.
    public func createSnapshot(index: LogIndex, confState: ConfState, data: [UInt8]) throws(StorageError) {
        if index <= snapshotValue.metadata.index { throw .compacted }
        let t = try term(index)
        snapshotValue = Snapshot(metadata: SnapshotMetadata(index: index, term: t, confState: confState), data: data)
    }

    /// Discards every entry up to and including `index`; `firstIndex()` becomes `index + 1`.
    public func compact(upTo index: LogIndex) throws(StorageError) {
        let offset = ents[0].index
        if index <= offset { throw .compacted }
        if index > lastIndex() { throw .unavailable }
        let i = Int(index - offset)
        let sentinel = Entry(term: ents[i].term, index: ents[i].index)
        ents.removeSubrange(0...i)
        ents.insert(sentinel, at: 0)
    }
}
