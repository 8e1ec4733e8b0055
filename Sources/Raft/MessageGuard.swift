/// The largest values the core accepts from a peer, and the checks every stepped message passes first.
///
/// Terms and indexes only ever grow by one at a time (an election, an appended entry), so no honest replica
/// comes anywhere near these bounds: 2⁶² elections or entries are far beyond any cluster's life. Keeping every
/// peer-supplied term and index at or below them means `term + 1`, `index + 1` and `index + count` can never
/// overflow and trap, whatever a peer sends.
public enum RaftBounds {
    /// The largest term a message may carry (and the largest this replica campaigns from).
    public static let maxTerm: Term = 1 << 62
    /// The largest log index (or commit index, or hint) a message may carry.
    public static let maxIndex: LogIndex = 1 << 62
    /// The most entries one append may carry.
    public static let maxEntriesPerMessage = 1 << 20
}

/// Why `RaftNode.step` refused a message without looking at it further. A refused message changes nothing.
public enum MessageRejection: String, Sendable, Equatable, CaseIterable {
    /// Its term is above `RaftBounds.maxTerm`.
    case termTooLarge = "term_too_large"
    /// An index, log term, commit index or hint is above its bound (a log term above the message's term too).
    case indexTooLarge = "index_too_large"
    /// An append whose entries are not consecutive from `index + 1`, or whose terms decrease, or exceed the
    /// message's term, or fall below the term of the entry they follow; or too many of them.
    case malformedEntries = "malformed_entries"
    /// A snapshot message without a snapshot, or whose snapshot is of a later term than the message, has no
    /// voters, or sits at index 0.
    case malformedSnapshot = "malformed_snapshot"
    /// A response acknowledging (or rejecting at) an index past the end of this leader's log.
    case beyondLog = "beyond_log"
}

extension RaftNode {
    /// The checks a message must pass on its own, whatever this replica's state: bounds, and the shape of
    /// appends and snapshots. Pure; nil when the message may be stepped.
    public static func validate(_ m: Message) -> MessageRejection? {
        if m.term > RaftBounds.maxTerm { return .termTooLarge }
        if m.index > RaftBounds.maxIndex || m.logTerm > RaftBounds.maxTerm || m.commit > RaftBounds.maxIndex
            || m.rejectHint > RaftBounds.maxIndex { return .indexTooLarge }
        switch m.type {
        case .append:
            if m.logTerm > m.term { return .indexTooLarge }
            guard m.entries.count <= RaftBounds.maxEntriesPerMessage else { return .malformedEntries }
            var expected = m.index + 1
            var lastTerm = m.logTerm
            for e in m.entries {
                guard e.index == expected, e.term >= lastTerm, e.term <= m.term else { return .malformedEntries }
                expected += 1
                lastTerm = e.term
            }
            if m.snapshot != nil { return .malformedSnapshot }
        case .snapshot:
            guard let s = m.snapshot, s.metadata.index > 0, s.metadata.index <= RaftBounds.maxIndex,
                  s.metadata.term > 0, s.metadata.term <= m.term, !s.metadata.confState.voters.isEmpty
            else { return .malformedSnapshot }
            if !m.entries.isEmpty { return .malformedEntries }
        default:
            if !m.entries.isEmpty { return .malformedEntries }
            if m.snapshot != nil { return .malformedSnapshot }
        }
        return nil
    }

    /// The checks that depend on this replica's log: a response of our own term can only speak of indexes
    /// this leader has (its log never shrinks within a term).
    func validateAgainstState(_ m: Message) -> MessageRejection? {
        guard m.type == .appendResponse, m.term == term, role == .leader else { return nil }
        let last = log.lastIndex
        if m.index > last || m.rejectHint > last { return .beyondLog }
        return nil
    }
}
