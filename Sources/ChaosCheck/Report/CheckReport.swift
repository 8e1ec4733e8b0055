import Foundation

/// The checkers' findings on one history, for the terminal and for `--report FILE.json`.
///
/// Guarantees: `valid` is true exactly when the history paired without problems, the linearizability verdict is
/// `ok`, the final-read check (when final reads were given) is `ok`, and no never-written read, stale read or lost
/// write was found; `unknown` (a timeout) is not valid. Encodes as JSON with stable key order (`json()`), and decodes back.
public struct CheckReport: Codable, Sendable, Equatable {
    public var valid: Bool
    public var summary: HistorySummary
    public var linearizability: LinearizabilityResult
    /// `Linearizability.checkWithFinalReads` over the keys that passed `linearizability` (nil: no final reads).
    public var finalReads: LinearizabilityResult?
    public var neverWrittenReads: [NeverWrittenRead]
    /// `HistoryChecks.staleReads`: reads that missed an acknowledged earlier write (each one also fails
    /// `linearizability`; this counts them all, where the search stops at a key's first).
    public var staleReads: [StaleRead]
    public var lostWrites: [LostWrite]
    /// Malformed pairings (`PairedHistory.problems`).
    public var historyProblems: [String]
    /// Tolerated oddities (`PairedHistory.notes`).
    public var historyNotes: [String]

    public init(summary: HistorySummary, linearizability: LinearizabilityResult, finalReads: LinearizabilityResult?,
                neverWrittenReads: [NeverWrittenRead], staleReads: [StaleRead] = [], lostWrites: [LostWrite],
                historyProblems: [String], historyNotes: [String]) {
        self.summary = summary
        self.linearizability = linearizability
        self.finalReads = finalReads
        self.neverWrittenReads = neverWrittenReads
        self.staleReads = staleReads
        self.lostWrites = lostWrites
        self.historyProblems = historyProblems
        self.historyNotes = historyNotes
        valid = historyProblems.isEmpty && linearizability.verdict == .ok && (finalReads?.verdict ?? .ok) == .ok
            && neverWrittenReads.isEmpty && staleReads.isEmpty && lostWrites.isEmpty
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Writes `json()` to `path` (atomically).
    public func write(to path: String) throws {
        try json().write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// A summary for a terminal: counts, each verdict, and every failure with its window of operations.
    public var text: String {
        func verdictLine(_ name: String, _ r: LinearizabilityResult) -> String {
            let bad = r.failures.count
            return "\(name): \(r.verdict.rawValue) (\(r.operationsChecked) operations on \(r.keys.count) keys checked in "
                + String(format: "%.2f s", r.elapsedSeconds) + (bad > 0 ? ", \(bad) keys failed)" : ")")
        }
        var lines = ["history: " + summary.text]
        lines += historyProblems.map { "history problem: \($0)" }
        lines += historyNotes.map { "note: \($0)" }
        lines.append(verdictLine("linearizability", linearizability))
        lines += linearizability.failures.map(\.text)
        if let finalReads {
            lines.append(verdictLine("final reads", finalReads))
            lines += finalReads.failures.map(\.text)
        }
        lines.append("never-written reads: \(neverWrittenReads.isEmpty ? "none" : String(neverWrittenReads.count))")
        lines += neverWrittenReads.prefix(20).map { "  \($0.message)" }
        let own = staleReads.filter(\.ownWrite).count, afterBatch = staleReads.filter { $0.newerWriteBatch != nil }.count
        lines.append("stale reads: " + (staleReads.isEmpty ? "none"
            : "\(staleReads.count) (\(own) of the reader's own write, \(afterBatch) after an acknowledged batch item)"))
        lines += staleReads.prefix(20).map { "  \($0.message)" }
        lines.append("lost writes: \(lostWrites.isEmpty ? "none" : String(lostWrites.count))")
        lines += lostWrites.prefix(20).map { "  \($0.message)" }
        lines.append("valid: \(valid)")
        return lines.joined(separator: "\n")
    }
}
