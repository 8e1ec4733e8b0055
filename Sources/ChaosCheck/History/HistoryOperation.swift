/// How an operation ended: `ok` took effect, `fail` definitely did not, `info` is unknown (it may take effect
/// at any time after its invocation, or never).
public enum Outcome: String, Codable, Sendable, CaseIterable {
    case ok, fail, info
}

/// Where an operation sits in a batch: item `item` (0-based) of the `count` writes of the history's batch
/// number `number` (0-based, in invoke order).
public struct BatchMembership: Codable, Sendable, Hashable {
    public var number: Int
    public var item: Int
    public var count: Int

    public init(number: Int, item: Int, count: Int) {
        self.number = number
        self.item = item
        self.count = count
    }
}

/// One operation of one key: an `invoke` event paired with its completion (see `PairedHistory`) — or one write
/// of a batch, which pairs into one such operation per item.
///
/// Guarantees: `f` is `put`, `get`, `cas` or `delete`, never `batch`: a batch's items are operations of their
/// own keys with the batch's process, times and outcome, and `batch` saying which batch they belong to (nil for
/// everything else). `value` is the value written for a `put`/`cas` (from the invoke), `nil` for a `delete`
/// (it writes "absent"), and the value read for a `get` that completed `ok` (`nil` = absent); a `get` that did
/// not complete `ok` has `value == nil`. `completionTime` is `nil` exactly when the outcome is `info` (the
/// operation's effect may come at any time after `invokeTime`: its return is +infinity). `index` is the
/// operation's position in invoke order (a batch's items are consecutive, in item order).
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
    /// The batch this operation is an item of, if any.
    public var batch: BatchMembership?

    public init(index: Int, process: Int, f: OpFunction, key: String, value: String?, expected: String?,
                invokeTime: Int64, completionTime: Int64?, outcome: Outcome, batch: BatchMembership? = nil) {
        self.index = index
        self.process = process
        self.f = f
        self.key = key
        self.value = value
        self.expected = expected
        self.invokeTime = invokeTime
        self.completionTime = outcome == .info ? nil : completionTime
        self.outcome = outcome
        self.batch = batch
    }

    /// Whether this operation writes (`put`, `cas` or `delete`).
    public var isWrite: Bool { f == .put || f == .cas || f == .delete }

    /// One human-readable line, with times in seconds since `base` (e.g. the history's first event), e.g.
    /// `process 3: cas "k1" "v5" → "v9" ok (invoked 1.234567000 s, completed 1.300000000 s)`; a batch item says
    /// so: `process 3: put "k1" "v5" ok, item 2 of 2 of batch #7 (invoked …)`.
    public func line(since base: Int64 = 0) -> String {
        var s = "process \(process): \(f.rawValue) \(quoted(key))"
        switch f {
        case .put, .batch: s += " \(quoted(value)) \(outcome.rawValue)"
        case .get: s += outcome == .ok ? " → \(quoted(value))" : " \(outcome.rawValue)"
        case .cas: s += " \(quoted(expected)) → \(quoted(value)) \(outcome.rawValue)"
        case .delete: s += " \(outcome.rawValue)"
        }
        if let batch { s += ", item \(batch.item + 1) of \(batch.count) of batch #\(batch.number)" }
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
