/// The linearizability check of one key: prepare its register history, search, and turn a failure into a
/// `KeyFailure` with the window of operations around it.
struct KeyCheck {
    let key: String
    var verdict: Verdict = .ok
    var failure: KeyFailure?
    var operationsChecked = 0

    /// `operations` are this key's; those with `index >= syntheticFrom` are the synthetic final reads of
    /// `checkWithFinalReads` (described as such).
    init(key: String, operations: [HistoryOperation], deadline: ContinuousClock.Instant, base: Int64,
         syntheticFrom: Int, reasonPrefix: String?) {
        self.key = key
        let history = RegisterHistory(operations)
        operationsChecked = history.ops.count
        func describe(_ op: HistoryOperation) -> String {
            op.index >= syntheticFrom ? "final read of \(quoted(op.key)) → \(quoted(op.value))" : op.line(since: base)
        }
        func reason(_ text: String) -> String {
            reasonPrefix.map { "\($0): \(text)" } ?? text
        }

        if let i = history.neverWritten {
            let op = operations[i]
            verdict = .violation
            let what = op.f == .get ? "read" : "cas expected"
            failure = KeyFailure(key: key, verdict: .violation,
                                 reason: reason("read of a value never written: \(what) \(quoted(op.f == .get ? op.value : op.expected)), which no put or cas of this key wrote"),
                                 failedOperation: describe(op))
            return
        }

        var result = RegisterSearch.run(history, deadline: deadline)
        if case .violation = result {
            // Re-run without the single-source prune, if it finishes in time: its failure point is the clearer one
            // for a person (the stale read itself, not the write the prune would not let past it), and it is the
            // reference search — were it to find a linearization, the prune was wrong and the key is ok.
            let budget = min(deadline, ContinuousClock.now.advanced(by: Self.diagnosisBudget))
            switch RegisterSearch.run(history, deadline: budget, singleSourcePrune: false) {
            case .violation(let f): result = .violation(f)
            case .linearizable: result = .linearizable
            case .timedOut: break
            }
        }

        switch result {
        case .linearizable:
            return
        case .violation(let f):
            verdict = .violation
            let op = operations[history.sources[f.op]]
            let text = op.index >= syntheticFrom
                ? "the final read of \(quoted(op.key)) returned \(quoted(op.value)), which no order of the history's operations allows"
                : "no order of the operations that respects real time explains \(Self.summary(op))"
            failure = window(f, history, operations, reason: reason(text), verdict: .violation, describe: describe)
        case .timedOut(let f):
            verdict = .unknown
            let text = "timed out: the search did not finish within the time limit"
            if let f {
                failure = window(f, history, operations, reason: reason(text) + " (deepest point reached shown)",
                                 verdict: .unknown, describe: describe)
            } else {
                failure = KeyFailure(key: key, verdict: .unknown, reason: reason(text))
            }
        }
    }

    /// At most this long is spent re-running a violated key's search without the prune, for its report.
    static let diagnosisBudget = Duration.seconds(5)

    private func window(_ f: SearchFailure, _ history: RegisterHistory, _ operations: [HistoryOperation],
                        reason: String, verdict: Verdict, describe: (HistoryOperation) -> String) -> KeyFailure {
        let stuck = history.ops[f.op]
        var overlapping = [Int]()
        for (i, op) in history.ops.enumerated() where i != f.op && op.invoke <= stuck.ret && stuck.invoke <= op.ret {
            overlapping.append(i)
        }
        let nearest = overlapping
            .sorted { abs(history.ops[$0].invoke - stuck.invoke) < abs(history.ops[$1].invoke - stuck.invoke) }
            .prefix(12)
            .sorted()
        return KeyFailure(
            key: key, verdict: verdict, reason: reason,
            failedOperation: describe(operations[history.sources[f.op]]),
            linearizedPrefix: f.depth,
            stateAtFailure: quoted(history.values[Int(f.state)]),
            lastLinearized: f.lastLinearized.map { describe(operations[history.sources[$0]]) },
            concurrent: nearest.map { describe(operations[history.sources[$0]]) })
    }

    /// A short description of what an operation claims, e.g. `get → "v3"`.
    static func summary(_ op: HistoryOperation) -> String {
        switch op.f {
        case .get: return "get → \(quoted(op.value))"
        case .put, .batch: return "put \(quoted(op.value)) (\(op.outcome.rawValue)\(Self.batchNote(op)))"
        case .cas: return "cas \(quoted(op.expected)) → \(quoted(op.value)) (\(op.outcome.rawValue))"
        case .delete: return "delete (\(op.outcome.rawValue)\(Self.batchNote(op)))"
        }
    }

    /// `, item 1 of 2 of batch #7` for a batch item, else nothing.
    static func batchNote(_ op: HistoryOperation) -> String {
        op.batch.map { ", item \($0.item + 1) of \($0.count) of batch #\($0.number)" } ?? ""
    }
}
