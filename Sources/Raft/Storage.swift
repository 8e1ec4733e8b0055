/// Why a storage read could not be served.
public enum StorageError: Error, Sendable, Equatable {
    /// The requested index is at or below the compaction point (only a snapshot covers it).
    case compacted
    /// The requested index is beyond the last stored entry.
    case unavailable
    /// A snapshot is being produced; the core will retry later.
    case snapshotTemporarilyUnavailable
}

/// The durable part of a replica's log, as the consensus core reads it.
///
/// The core only *reads* storage. The application writes to it after it has made a `Ready`'s entries,
/// hard state and snapshot durable, and before it calls `RawNode.advance()`. Implementations:
/// `MemoryStorage` (tests and simulation) and the WAL's per-group view (production).
public protocol RaftStorage: AnyObject {
    /// The hard state and membership persisted before the last restart.
    func initialState() -> (HardState, ConfState)
    /// Entries in `[lo, hi)`, at most `maxBytes` in total (but always at least one entry if any exists).
    func entries(_ lo: LogIndex, _ hi: LogIndex, maxBytes: Int) throws(StorageError) -> [Entry]
    /// The term of the entry at `index`; valid for `firstIndex() - 1 ... lastIndex()`.
    func term(_ index: LogIndex) throws(StorageError) -> Term
    /// The index of the first entry still available (snapshot index + 1).
    func firstIndex() -> LogIndex
    /// The index of the last stored entry (the snapshot index when the log is empty).
    func lastIndex() -> LogIndex
    /// The most recent snapshot.
    func snapshot() throws(StorageError) -> Snapshot
}
