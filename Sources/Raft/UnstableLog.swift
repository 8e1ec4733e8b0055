/// Entries (and possibly a snapshot) the core has accepted but the application has not yet made durable.
/// `entries[0]` has index `offset`; everything before `offset` is in storage (or in `snapshot`).
struct UnstableLog {
    var snapshot: Snapshot?
    var entries: [Entry] = []
    var offset: LogIndex

    init(offset: LogIndex) { self.offset = offset }

    func maybeFirstIndex() -> LogIndex? { snapshot.map { $0.metadata.index + 1 } }

    func maybeLastIndex() -> LogIndex? {
        if !entries.isEmpty { return offset + LogIndex(entries.count) - 1 }
        return snapshot?.metadata.index
    }

    func maybeTerm(_ i: LogIndex) -> Term? {
        if i < offset {
            if let s = snapshot, s.metadata.index == i { return s.metadata.term }
            return nil
        }
        guard let last = maybeLastIndex(), i <= last else { return nil }
        if entries.isEmpty { return nil }
        return entries[Int(i - offset)].term
    }

    /// The application made entries up to (i, t) durable. Ignored if that entry was replaced meanwhile.
    mutating func stableTo(_ i: LogIndex, _ t: Term) {
        guard i >= offset, let gt = maybeTerm(i), gt == t else { return }
        entries.removeFirst(Int(i + 1 - offset))
        offset = i + 1
    }

    mutating func stableSnapTo(_ i: LogIndex) {
        if let s = snapshot, s.metadata.index == i { snapshot = nil }
    }

    mutating func restore(_ s: Snapshot) {
        offset = s.metadata.index + 1
        entries = []
        snapshot = s
    }

    mutating func truncateAndAppend(_ ents: ArraySlice<Entry>) {
        guard let first = ents.first else { return }
        let after = first.index
        if after == offset + LogIndex(entries.count) {
            entries.append(contentsOf: ents)
        } else if after <= offset {
            offset = after
            entries = Array(ents)
        } else {
            entries.removeSubrange(Int(after - offset)...)
            entries.append(contentsOf: ents)
        }
    }

    func slice(_ lo: LogIndex, _ hi: LogIndex) -> ArraySlice<Entry> {
        precondition(lo >= offset && hi <= offset + LogIndex(entries.count) && lo <= hi, "unstable slice out of bounds")
        return entries[Int(lo - offset)..<Int(hi - offset)]
    }
}
