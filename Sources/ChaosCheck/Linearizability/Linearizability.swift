import Dispatch

/// The linearizability checker for a history of per-key registers (put / get / compare-and-set / delete, and
/// batches of puts and deletes — each item a write of its key over the batch's interval, see `PairedHistory`),
/// as issue 5 specifies: Wing–Gong search with Lowe's memoization (Porcupine-style), each key checked on its own
/// (a register history is linearizable iff every key's is), keys in parallel on every core. Synchronous and
/// CPU-bound: it blocks the calling thread until done.
///
/// Guarantees: `ok` only if every key's history has a linearization — a total order of its operations that
/// respects real time (an operation that completed before another was invoked comes first; equal timestamps count
/// as concurrent), in which every `get` reads the latest value written and every `ok` cas found its expected
/// value. `fail` operations are taken as not applied; `info` ones may take effect at any time after their invoke,
/// or never. `violation` only with a counterexample (`KeyFailure`), up to a 2⁻¹²⁸-per-pair hash collision in the
/// memo (`LinearizationMemo`). Exact for any values; unique written values (the workload's contract) are what
/// make the prunes bite (`RegisterHistory`, `RegisterSearch`). The time limit is shared by all keys; a key whose
/// search passes it is `unknown` (a key needing at most ~1000 search steps is still decided after it). Never
/// hangs, never traps on well-formed input. Cost: about linear in the operations for the histories a store
/// produces; it grows with how many operations of one key are pending at once (concurrency, plus timed-out writes
/// that land late), and adversarial histories are exponential — hence the limit.
public enum Linearizability {
    /// Checks `operations` (any keys, any order).
    public static func check(_ operations: [HistoryOperation], timeLimit: Duration = .seconds(60)) -> LinearizabilityResult {
        run(operations, syntheticFrom: Int.max, extraKeys: [], reasonPrefix: nil, timeLimit: timeLimit)
    }

    /// Checks `operations` followed by the final reads taken after the cluster healed: for every key of `finals`,
    /// an `ok` get of that value (`nil` = absent), invoked after every operation of the history has been invoked
    /// and completed, by a synthetic process of its own. A violation then means an acknowledged write was lost or
    /// a value appeared that no linearization allows; its reason starts with "lost or phantom write".
    /// (Build `finals` with `updateValue(nil, forKey:)` or a literal for absent keys: assigning `nil` removes.)
    public static func checkWithFinalReads(_ operations: [HistoryOperation], finals: [String: String?],
                                           timeLimit: Duration = .seconds(60)) -> LinearizabilityResult {
        let reads = finalReadOperations(after: operations, finals: finals)
        return run(operations + reads, syntheticFrom: reads.first?.index ?? Int.max, extraKeys: Array(finals.keys),
                   reasonPrefix: "lost or phantom write", timeLimit: timeLimit)
    }

    /// The synthetic final reads `checkWithFinalReads` appends: process = highest process + 1, indexes from the
    /// highest index + 1, one get per key (sorted by key), each invoked and completed after everything before it.
    public static func finalReadOperations(after operations: [HistoryOperation],
                                           finals: [String: String?]) -> [HistoryOperation] {
        var end: Int64 = 0
        var process = 0
        var index = 0
        for op in operations {
            end = max(end, op.invokeTime, op.completionTime ?? op.invokeTime)
            process = max(process, op.process + 1)
            index = max(index, op.index + 1)
        }
        var result = [HistoryOperation]()
        for (i, key) in finals.keys.sorted().enumerated() {
            let t = end + 1 + 2 * Int64(i)
            result.append(HistoryOperation(index: index + i, process: process, f: .get, key: key,
                                           value: finals[key] ?? nil, expected: nil, invokeTime: t,
                                           completionTime: t + 1, outcome: .ok))
        }
        return result
    }

    private static func run(_ operations: [HistoryOperation], syntheticFrom: Int, extraKeys: [String],
                            reasonPrefix: String?, timeLimit: Duration) -> LinearizabilityResult {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: timeLimit)
        let base = operations.lazy.map(\.invokeTime).min() ?? 0

        var byKey = [String: [HistoryOperation]]()
        for key in extraKeys { byKey[key] = [] }
        for op in operations { byKey[op.key, default: []].append(op) }
        // Biggest keys first, so the parallel loop does not end on one long key.
        let keys = byKey.keys.sorted { (byKey[$0]!.count, $1) > (byKey[$1]!.count, $0) }
        let groups = keys.map { byKey[$0]! }

        let results = Guarded([KeyCheck?](repeating: nil, count: keys.count))
        DispatchQueue.concurrentPerform(iterations: keys.count) { i in
            let r = KeyCheck(key: keys[i], operations: groups[i], deadline: deadline, base: base,
                             syntheticFrom: syntheticFrom, reasonPrefix: reasonPrefix)
            results.withLock { $0[i] = r }
        }
        let checks = results.withLock { $0 }.compactMap { $0 }

        var verdicts = [String: Verdict]()
        var failures = [KeyFailure]()
        var checked = 0
        for c in checks {
            verdicts[c.key] = c.verdict
            checked += c.operationsChecked
            if let f = c.failure { failures.append(f) }
        }
        failures.sort { $0.key < $1.key }
        let elapsed = start.duration(to: clock.now)
        return LinearizabilityResult(verdict: Verdict.combine(verdicts.values), keys: verdicts,
                                     operationsChecked: checked, elapsedSeconds: elapsed.seconds, failures: failures)
    }
}

extension Duration {
    /// This duration in (fractional) seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
