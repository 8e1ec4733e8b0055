/// An acknowledged write that the final read of its key shows was lost.
public struct LostWrite: Codable, Sendable, Equatable {
    public var key: String
    /// The value the acknowledged write wrote.
    public var value: String?
    /// What the final read returned (`nil` = absent).
    public var finalValue: String?
    /// The write (`HistoryOperation.line`).
    public var operation: String
    public var message: String
}

extension HistoryChecks {
    /// Acknowledged (`ok`) puts, cas and deletes (batch items too) whose value is missing from the final read of
    /// their key although nothing could have overwritten them: the final value `F` (from `finals`, key → value,
    /// `nil` = absent) must have been written by some put/cas/delete that did not fail (absent: or be the initial
    /// state); a write is reported lost when the key ended absent and nothing deleted it, when no such writer of
    /// `F` exists, or when it was invoked after every writer of `F` had completed (an `info` writer never
    /// completes, so it excuses every write).
    ///
    /// Guarantees: pure; only definite losses under real-time order — every write reported here also makes
    /// `Linearizability.checkWithFinalReads` fail, which additionally catches losses that only the reads in
    /// between reveal. Keys without a final read are not judged. Results in history order.
    public static func lostWrites(_ operations: [HistoryOperation], finals: [String: String?]) -> [LostWrite] {
        let base = operations.lazy.map(\.invokeTime).min() ?? 0
        // Per key: the latest completion among the writers of the final value (absent: none; .max: an info one).
        var cutoff = [String: Int64]()
        for op in operations where op.isWrite && op.outcome != .fail {
            guard let final = finals[op.key], op.value == final else { continue }
            cutoff[op.key] = max(cutoff[op.key] ?? Int64.min, op.completionTime ?? Int64.max)
        }
        var result = [LostWrite]()
        for op in operations where op.isWrite && op.outcome == .ok {
            guard let final = finals[op.key], op.value != final else { continue }
            let why: String
            if let c = cutoff[op.key] {
                guard op.invokeTime > c else { continue }
                why = "it was invoked after the write of the final value \(quoted(final)) had completed"
            } else if final == nil {
                why = "the final read found the key absent, and nothing deleted it"
            } else {
                why = "the final value \(quoted(final)) was not written by any operation that could have succeeded"
            }
            result.append(LostWrite(key: op.key, value: op.value, finalValue: final, operation: op.line(since: base),
                                    message: "lost write: key \(quoted(op.key)) ended \(quoted(final)) but acknowledged \(KeyCheck.summary(op)) is missing: \(why)"))
        }
        return result
    }
}
