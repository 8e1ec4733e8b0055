/// The replica's whole log as the core sees it: durable entries in `storage`, then the unstable tail.
/// Also tracks `committed` (known replicated on a quorum) and `applied` (handed to the state machine).
/// Invariant: applied ≤ committed ≤ lastIndex; committed entries are never replaced.
struct RaftLog {
    let storage: RaftStorage
    var unstable: UnstableLog
    private(set) var committed: LogIndex
    private(set) var applied: LogIndex

    init(storage: RaftStorage, applied: LogIndex) {
        self.storage = storage
        let first = storage.firstIndex()
        let last = storage.lastIndex()
        unstable = UnstableLog(offset: last + 1)
        committed = first - 1
        self.applied = first - 1
        if applied > self.applied { self.applied = applied }
    }

    var firstIndex: LogIndex { unstable.maybeFirstIndex() ?? storage.firstIndex() }
    var lastIndex: LogIndex { unstable.maybeLastIndex() ?? storage.lastIndex() }
    var lastTerm: Term { termOrZero(lastIndex) }

    /// The last index whose entry is durable *and* still part of this log.
    var persistedLastIndex: LogIndex {
        if unstable.snapshot != nil { return 0 }
        return min(storage.lastIndex(), unstable.offset - 1)
    }

    func term(_ i: LogIndex) throws(StorageError) -> Term {
        let dummy = firstIndex - 1
        if i < dummy { throw .compacted }
        if i > lastIndex { throw .unavailable }
        if let t = unstable.maybeTerm(i) { return t }
        return try storage.term(i)
    }

    func termOrZero(_ i: LogIndex) -> Term { (try? term(i)) ?? 0 }

    func matchTerm(_ i: LogIndex, _ t: Term) -> Bool {
        guard let mine = try? term(i) else { return false }
        return mine == t
    }

    /// A log ending at (lasti, lastTerm) is at least as up to date as ours (§5.4.1).
    func isUpToDate(lastIndex lasti: LogIndex, lastTerm t: Term) -> Bool {
        let myTerm = lastTerm
        return t > myTerm || (t == myTerm && lasti >= lastIndex)
    }

    /// The follower's append check: if our entry at `index` has `logTerm`, take `entries` (replacing a
    /// conflicting suffix) and advance commit. Returns the last index now known to match the leader.
    mutating func maybeAppend(index: LogIndex, logTerm: Term, committed leaderCommit: LogIndex,
                              entries: [Entry]) -> LogIndex? {
        guard matchTerm(index, logTerm) else { return nil }
        let lastNew = index + LogIndex(entries.count)
        let ci = findConflict(entries)
        if ci != 0 {
            precondition(ci > committed, "entry \(ci) conflicts with committed entry (committed \(committed))")
            append(entries[Int(ci - index - 1)...])
        }
        commitTo(min(leaderCommit, lastNew))
        return lastNew
    }

    @discardableResult
    mutating func append(_ ents: ArraySlice<Entry>) -> LogIndex {
        guard let first = ents.first else { return lastIndex }
        precondition(first.index > committed, "appending at \(first.index) would overwrite committed \(committed)")
        unstable.truncateAndAppend(ents)
        return lastIndex
    }

    /// The first entry whose term differs from ours (or that we lack); 0 if all match.
    func findConflict(_ ents: [Entry]) -> LogIndex {
        for e in ents where !matchTerm(e.index, e.term) { return e.index }
        return 0
    }

    /// The largest index ≤ `index` whose term is ≤ `term`, with that term: skips a whole divergent term at once.
    func findConflictByTerm(index: LogIndex, term: Term) -> (LogIndex, Term) {
        var i = index
        while i > 0 {
            guard let t = try? self.term(i) else { return (i, 0) }
            if t <= term { return (i, t) }
            i -= 1
        }
        return (0, 0)
    }

    /// Entries in [lo, hi), bounded by `maxBytes` (always at least one).
    func slice(_ lo: LogIndex, _ hi: LogIndex, maxBytes: Int) throws(StorageError) -> [Entry] {
        if lo < firstIndex { throw .compacted }
        precondition(hi <= lastIndex + 1, "slice [\(lo), \(hi)) beyond last index \(lastIndex)")
        if lo >= hi { return [] }
        var result: [Entry] = []
        var size = 0
        if lo < unstable.offset {
            let stored = try storage.entries(lo, min(hi, unstable.offset), maxBytes: maxBytes)
            let wanted = Int(min(hi, unstable.offset) - lo)
            if stored.count < wanted { return stored }
            result = stored
            for e in stored { size += e.byteSize }
        }
        if hi > unstable.offset {
            let tail = unstable.slice(max(lo, unstable.offset), hi)
            if result.isEmpty && tail.count > 0 {
                // Take at least one entry, then up to maxBytes.
                var end = tail.startIndex
                repeat { size += tail[end].byteSize; end += 1 } while end < tail.endIndex && size + tail[end].byteSize <= maxBytes
                result.append(contentsOf: tail[tail.startIndex..<end])
            } else {
                for e in tail {
                    size += e.byteSize
                    if size > maxBytes { break }
                    result.append(e)
                }
            }
        }
        return result
    }

    func entries(from i: LogIndex, maxBytes: Int) throws(StorageError) -> [Entry] {
        if i > lastIndex { return [] }
        return try slice(i, lastIndex + 1, maxBytes: maxBytes)
    }

    func snapshot() throws(StorageError) -> Snapshot {
        if let s = unstable.snapshot { return s }
        return try storage.snapshot()
    }

    var hasNextCommittedEntries: Bool { committed > max(applied, firstIndex - 1) }

    func nextCommittedEntries(maxBytes: Int) -> [Entry] {
        let lo = max(applied + 1, firstIndex)
        guard committed + 1 > lo else { return [] }
        do { return try slice(lo, committed + 1, maxBytes: maxBytes) } catch {
            preconditionFailure("committed entries [\(lo), \(committed)] unavailable: \(error)")
        }
    }

    mutating func commitTo(_ i: LogIndex) {
        guard committed < i else { return }
        precondition(i <= lastIndex, "commit \(i) is beyond last index \(lastIndex)")
        committed = i
    }

    /// Commits `index` if it is past the commit point and carries the leader's current term (figure 8 rule).
    mutating func maybeCommit(_ index: LogIndex, term: Term) -> Bool {
        if index > committed && termOrZero(index) == term {
            commitTo(index)
            return true
        }
        return false
    }

    mutating func appliedTo(_ i: LogIndex) {
        guard i > applied else { return }
        precondition(i <= committed, "applied \(i) beyond committed \(committed)")
        applied = i
    }

    mutating func restore(_ s: Snapshot) {
        committed = s.metadata.index
        unstable.restore(s)
    }

    mutating func stableTo(_ i: LogIndex, _ t: Term) { unstable.stableTo(i, t) }
    mutating func stableSnapTo(_ i: LogIndex) { unstable.stableSnapTo(i) }
}
