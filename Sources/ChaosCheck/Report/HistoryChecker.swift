/// Runs every history checker of issue 5 on one history and assembles the `CheckReport`: pairing, summary,
/// linearizability, stale reads, then (with final reads) the final-read linearizability check, never-written
/// reads and lost writes.
///
/// Guarantees: pure apart from the clock; `timeLimit` bounds the two searches together (the final-read check gets
/// what the first one left); keys that failed the first search are not searched again with their final reads
/// (they are listed as `unknown` there, with that reason).
public enum HistoryChecker {
    /// Pairs `events` and checks them. `finals`: key → value read after the cluster healed (`nil` = absent),
    /// or nil when the run took no final reads.
    public static func check(events: [HistoryEvent], finals: [String: String?]? = nil,
                             timeLimit: Duration = .seconds(60)) -> CheckReport {
        check(PairedHistory(events: events), finals: finals, timeLimit: timeLimit)
    }

    /// Checks an already paired history.
    public static func check(_ history: PairedHistory, finals: [String: String?]? = nil,
                             timeLimit: Duration = .seconds(60)) -> CheckReport {
        let clock = ContinuousClock()
        let start = clock.now
        let ops = history.operations
        let linearizability = Linearizability.check(ops, timeLimit: timeLimit)

        var finalResult: LinearizabilityResult?
        if let finals {
            let passed = Set(linearizability.keys.filter { $0.value == .ok }.map(\.key))
            let checkable = finals.filter { linearizability.keys[$0.key] == nil || passed.contains($0.key) }
            let remaining = timeLimit - start.duration(to: clock.now)
            var r = Linearizability.checkWithFinalReads(ops.filter { checkable[$0.key] != nil }, finals: checkable,
                                                        timeLimit: max(remaining, .zero))
            for key in finals.keys.sorted() where checkable[key] == nil {
                r.keys[key] = .unknown
                r.failures.append(KeyFailure(key: key, verdict: .unknown,
                                             reason: "lost or phantom write: not checked, because the key's history already failed the linearizability check"))
            }
            r.failures.sort { $0.key < $1.key }
            r.verdict = Verdict.combine(r.keys.values)
            finalResult = r
        }

        return CheckReport(
            summary: HistorySummary(ops), linearizability: linearizability, finalReads: finalResult,
            neverWrittenReads: HistoryChecks.neverWrittenReads(ops, finals: finals ?? [:]),
            staleReads: HistoryChecks.staleReads(ops),
            lostWrites: finals.map { HistoryChecks.lostWrites(ops, finals: $0) } ?? [],
            historyProblems: history.problems, historyNotes: history.notes)
    }
}
