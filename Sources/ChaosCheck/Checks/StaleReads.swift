/// A read that returned a value some acknowledged write had already overwritten for good.
public struct StaleRead: Codable, Sendable, Equatable {
    public var key: String
    /// What the read returned (`nil` = absent).
    public var value: String?
    /// The read (`HistoryOperation.line`).
    public var operation: String
    /// The acknowledged write that completed before the read was invoked and after every write of `value`.
    public var newerWrite: String
    /// The batch `newerWrite` is an item of, if any.
    public var newerWriteBatch: BatchMembership?
    /// Whether `newerWrite` was the reading process's own (read-your-writes broken).
    public var ownWrite: Bool
    /// Always starts with "stale read".
    public var message: String
}

extension HistoryChecks {
    /// Every `ok` get of a key that returned a value `X` although an acknowledged (`ok`) write `W` of that key
    /// had completed before the get was invoked, and every put/cas/delete that did not fail and writes `X` had
    /// completed before `W` was invoked (an `info` one never completes; for absent, the initial state counts as
    /// a write completed at the start). Then every linearization has `W` after all writes of `X` and before the
    /// get, so the get cannot read `X`: the read is stale — e.g. a batch item acknowledged, then read as absent.
    ///
    /// Guarantees: pure; only definite violations under real-time order (equal times count as concurrent) —
    /// every read reported here also makes `Linearizability.check` fail for its key, which catches more (reads
    /// that only other reads prove stale). Reads of a value that no write of the key that did not fail writes
    /// are not judged here (`neverWrittenReads` and the linearizability check judge them). `newerWrite` is the
    /// reading process's own latest such write of the key when there is one, else the one invoked last. Results
    /// in history order. O(n log n).
    public static func staleReads(_ operations: [HistoryOperation]) -> [StaleRead] {
        let base = operations.lazy.map(\.invokeTime).min() ?? 0
        var byKey = [String: [Int]]()
        for (i, op) in operations.enumerated() { byKey[op.key, default: []].append(i) }

        var found = [(index: Int, read: StaleRead)]()
        for (key, indexes) in byKey {
            // Per value written: the latest completion among its writers that did not fail (.max: an info one).
            var lastWriter = [String?: Int64]()
            lastWriter[nil] = Int64.min   // the initial state: absent
            for i in indexes where operations[i].isWrite && operations[i].outcome != .fail {
                let op = operations[i]
                lastWriter[op.value] = max(lastWriter[op.value] ?? Int64.min, op.completionTime ?? Int64.max)
            }
            // Acknowledged writes by completion; running latest invoke among them.
            let acked = indexes.filter { operations[$0].isWrite && operations[$0].outcome == .ok }
                .sorted { operations[$0].completionTime! < operations[$1].completionTime! }
            var latestInvoked = [Int]()   // latestInvoked[j]: among acked[0...j], the one invoked last
            for (j, i) in acked.enumerated() {
                let previous = j > 0 ? latestInvoked[j - 1] : i
                latestInvoked.append(operations[i].invokeTime > operations[previous].invokeTime ? i : previous)
            }
            var ownLast = [Int: Int]()    // process → its latest acknowledged write of this key so far
            for i in indexes {
                let op = operations[i]
                if op.isWrite && op.outcome == .ok { ownLast[op.process] = i }
                guard op.f == .get, op.outcome == .ok, let cutoff = lastWriter[op.value] else { continue }
                // Acknowledged writes completed before the read was invoked: acked[0..<n].
                var lo = 0, hi = acked.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if operations[acked[mid]].completionTime! < op.invokeTime { lo = mid + 1 } else { hi = mid }
                }
                guard lo > 0 else { continue }
                let latest = latestInvoked[lo - 1]
                guard operations[latest].invokeTime > cutoff else { continue }
                var newer = latest
                var own = false
                if let w = ownLast[op.process], operations[w].invokeTime > cutoff,
                   operations[w].completionTime! < op.invokeTime {
                    newer = w
                    own = true
                }
                let write = operations[newer]
                let what = KeyCheck.summary(write)
                found.append((i, StaleRead(
                    key: key, value: op.value, operation: op.line(since: base), newerWrite: write.line(since: base),
                    newerWriteBatch: write.batch, ownWrite: own,
                    message: "stale read: key \(quoted(key)) read \(quoted(op.value)) after "
                        + (own ? "the reader's own" : "process \(write.process)'s")
                        + " acknowledged \(what) had completed, later than every write of \(quoted(op.value)): "
                        + op.line(since: base))))
            }
        }
        return found.sorted { $0.index < $1.index }.map(\.read)
    }
}
