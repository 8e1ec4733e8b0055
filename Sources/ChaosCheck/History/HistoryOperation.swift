/// How an operation ended: `ok` took effect, `fail` definitely did not, `info` is unknown (it may take effect
/// at any time after its invocation, or never).
public enum Outcome: String, Codable, Sendable, CaseIterable {
    case ok, fail, info
}

/// One operation of a history: an `invoke` event paired with its completion (see `PairedHistory`).
///
/// Guarantees: `value` is the value written for a `put`/`cas` (from the invoke) and the value read for a `get`
/// that completed `ok` (`nil` = absent); a `get` that did not complete `ok` has `value == nil`.
/// `completionTime` is `nil` exactly when the outcome is `info` (the operation's effect may come at any time
/// after `invokeTime`: its return is +infinity). `index` is the operation's position in invoke order.
public struct HistoryOperation: Codable, Sendable, Hashable {
    public var index: Int
    public var process: Int
    public var f: OpFunction
    public var key: String
    public var value: String?
    public var expected: String?
    public var invokeTime: Int64
    public var completionTime: Int64?
    public var outcome: Outcome

    public init(index: Int, process: Int, f: OpFunction, key: String, value: String?, expected: String?,
                invokeTime: Int64, completionTime: Int64?, outcome: Outcome) {
        self.index = index
        self.process = process
        self.f = f
        self.key = key
        self.value = value
        self.expected = expected
        self.invokeTime = invokeTime
        self.completionTime = outcome == .info ? nil : completionTime
        self.outcome = outcome
    }

    /// Whether this operation writes (`put` or `cas`).
    public var isWrite: Bool { f != .get }

    /// One human-readable line, with times in seconds since `base` (e.g. the history's first event), e.g.
    /// `process 3: cas "k1" "v5" → "v9" ok (invoked 1.234567000 s, completed 1.300000000 s)`.
    public func line(since base: Int64 = 0) -> String {
        var s = "process \(process): \(f.rawValue) \(quoted(key))"
        switch f {
        case .put: s += " \(quoted(value)) \(outcome.rawValue)"
        case .get: s += outcome == .ok ? " → \(quoted(value))" : " \(outcome.rawValue)"
        case .cas: s += " \(quoted(expected)) → \(quoted(value)) \(outcome.rawValue)"
        }
        s += " (invoked \(seconds(invokeTime - base))"
        if let completionTime {
            s += ", completed \(seconds(completionTime - base)))"
        } else {
            s += ", outcome unknown)"
        }
        return s
    }
}

/// A value as written in reports: JSON-style quotes, or `absent` for nil.
func quoted(_ value: String?) -> String {
    guard let value else { return "absent" }
    var s = ""
    appendJSONString(value, to: &s)
    return s
}

/// Nanoseconds as exact decimal seconds, e.g. `12.000345678 s`.
func seconds(_ nanoseconds: Int64) -> String {
    let sign = nanoseconds < 0 ? "-" : ""
    let magnitude = nanoseconds.magnitude
    let fraction = String(magnitude % 1_000_000_000)
    return "\(sign)\(magnitude / 1_000_000_000).\(String(repeating: "0", count: 9 - fraction.count))\(fraction) s"
}
