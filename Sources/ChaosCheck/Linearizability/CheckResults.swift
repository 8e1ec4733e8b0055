/// A checker's conclusion: `ok` (verified), `violation` (a counterexample was found), `unknown` (the check ran
/// out of time before deciding, or could not run).
public enum Verdict: String, Codable, Sendable {
    case ok, violation, unknown

    /// The combined verdict of several checks: any violation wins, then any unknown.
    public static func combine(_ verdicts: some Sequence<Verdict>) -> Verdict {
        var result = Verdict.ok
        for v in verdicts {
            if v == .violation { return .violation }
            if v == .unknown { result = .unknown }
        }
        return result
    }
}

/// Why one key was not judged linearizable, in a form a person can act on.
///
/// Guarantees: `reason` is one sentence (for a never-written read it contains "read of a value never written";
/// from `checkWithFinalReads` it starts with "lost or phantom write"). For a violation found by the search,
/// `failedOperation` is the operation that could not be linearized after the longest linearizable prefix the
/// search found (`linearizedPrefix` operations long, ending with `lastLinearized`, leaving the register at
/// `stateAtFailure`), and `concurrent` lists the operations whose intervals overlap it (at most 12, nearest
/// first by invoke time) — the window to look at. Lines come from `HistoryOperation.line(since:)`.
public struct KeyFailure: Codable, Sendable, Equatable {
    public var key: String
    public var verdict: Verdict
    public var reason: String
    public var failedOperation: String?
    public var linearizedPrefix: Int
    public var stateAtFailure: String?
    public var lastLinearized: [String]
    public var concurrent: [String]

    public init(key: String, verdict: Verdict, reason: String, failedOperation: String? = nil,
                linearizedPrefix: Int = 0, stateAtFailure: String? = nil, lastLinearized: [String] = [],
                concurrent: [String] = []) {
        self.key = key
        self.verdict = verdict
        self.reason = reason
        self.failedOperation = failedOperation
        self.linearizedPrefix = linearizedPrefix
        self.stateAtFailure = stateAtFailure
        self.lastLinearized = lastLinearized
        self.concurrent = concurrent
    }

    /// The failure as indented text for a terminal.
    public var text: String {
        var lines = ["key \(quoted(key)): \(verdict.rawValue): \(reason)"]
        if let failedOperation { lines.append("  cannot linearize: \(failedOperation)") }
        if let stateAtFailure {
            let ops = linearizedPrefix == 1 ? "1 operation" : "\(linearizedPrefix) operations"
            lines.append("  after the longest linearizable prefix found (\(ops)) the value is \(stateAtFailure)")
        }
        if !lastLinearized.isEmpty {
            lines.append("  last operations of that prefix:")
            lines += lastLinearized.map { "    \($0)" }
        }
        if !concurrent.isEmpty {
            lines.append("  operations concurrent with it:")
            lines += concurrent.map { "    \($0)" }
        }
        return lines.joined(separator: "\n")
    }
}

/// The linearizability verdict of a whole history, key by key.
///
/// Guarantees: `verdict` is `Verdict.combine` of the per-key verdicts in `keys` (every key of the history, plus
/// every final-read key for `checkWithFinalReads`); `failures` has one entry per key whose verdict is not `ok`,
/// sorted by key.
public struct LinearizabilityResult: Codable, Sendable, Equatable {
    public var verdict: Verdict
    public var keys: [String: Verdict]
    public var operationsChecked: Int
    public var elapsedSeconds: Double
    public var failures: [KeyFailure]

    public init(verdict: Verdict, keys: [String: Verdict], operationsChecked: Int, elapsedSeconds: Double,
                failures: [KeyFailure]) {
        self.verdict = verdict
        self.keys = keys
        self.operationsChecked = operationsChecked
        self.elapsedSeconds = elapsedSeconds
        self.failures = failures
    }

    /// The failure recorded for `key`, if any.
    public func failure(forKey key: String) -> KeyFailure? { failures.first { $0.key == key } }
}
