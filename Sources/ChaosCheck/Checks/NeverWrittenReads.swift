/// A read that observed a value no put or cas of that key ever wrote (not even one that failed or timed out).
public struct NeverWrittenRead: Codable, Sendable, Equatable {
    public var key: String
    public var value: String
    /// The reading operation (`HistoryOperation.line`), or "final read" for a final read.
    public var operation: String
    /// Always starts with "read of a value never written".
    public var message: String
}

extension HistoryChecks {
    /// Every `ok` get that read, every `ok` cas that expected, and every final read (`finals`, key → value,
    /// `nil` = absent) that returned a value no put/cas *invoked* on the same key would write.
    ///
    /// Guarantees: pure; absent (`nil`) is never reported (every key starts absent); results in history order,
    /// final reads last (by key).
    public static func neverWrittenReads(_ operations: [HistoryOperation],
                                         finals: [String: String?] = [:]) -> [NeverWrittenRead] {
        var written = [String: Set<String>]()
        for op in operations where op.isWrite {
            if let v = op.value { written[op.key, default: []].insert(v) }
        }
        let base = operations.lazy.map(\.invokeTime).min() ?? 0
        func report(_ key: String, _ value: String, _ operation: String) -> NeverWrittenRead {
            NeverWrittenRead(key: key, value: value, operation: operation,
                             message: "read of a value never written: key \(quoted(key)) read \(quoted(value)): \(operation)")
        }
        var result = [NeverWrittenRead]()
        for op in operations where op.outcome == .ok {
            let seen = op.f == .get ? op.value : op.f == .cas ? op.expected : nil
            if let seen, written[op.key]?.contains(seen) != true {
                result.append(report(op.key, seen, op.line(since: base)))
            }
        }
        for key in finals.keys.sorted() {
            if let value = finals[key] ?? nil, written[key]?.contains(value) != true {
                result.append(report(key, value, "final read"))
            }
        }
        return result
    }
}
