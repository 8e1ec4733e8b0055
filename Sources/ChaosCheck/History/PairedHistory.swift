/// A history's events paired into operations: each `invoke` with the next completion of the same process.
///
/// Guarantees: `operations` are in invoke order (file order of the invoke events) with `index` = position.
/// A `batch` becomes one operation per item — a `put` or `delete` of the item's key, all with the batch's
/// process, invoke time, completion time and outcome, and `batch` numbering them (batches counted from 0 in
/// invoke order): acknowledged, every item's write took effect; failed, none did; info, unknown. That is the
/// per-key model of an atomic batch (atomicity *across* its keys is not checked).
/// Tolerances (recorded in `notes`, not errors): an invoke left open at the end of the history is an `info`
/// operation (Jepsen's convention); a process that invokes again after an `info` completion is treated as a
/// fresh logical process; a batch writing one key twice has both writes checked as concurrent ones. Malformed
/// input is recorded in `problems` and handled conservatively: a completion with no open invoke is ignored; an
/// invoke while the same process still has one open closes the older one as `info`; a completion whose `f`,
/// `key` or `items` differs from its invoke turns the operation into `info`; a batch without `items`, an item
/// that is neither a put nor a delete, and `items` on any other function are ignored.
public struct PairedHistory: Sendable {
    public var operations: [HistoryOperation]
    /// Malformed pairings: a checker should not certify a history that has any.
    public var problems: [String]
    /// Tolerated oddities, for the report.
    public var notes: [String]

    public init(operations: [HistoryOperation], problems: [String] = [], notes: [String] = []) {
        self.operations = operations
        self.problems = problems
        self.notes = notes
    }

    /// An invoke waiting for its completion: the operations it became (one, or a batch's items).
    private struct Open {
        var range: Range<Int>
        var f: OpFunction
        var key: String
        var items: [BatchItemRecord]?
        var invokeTime: Int64
    }

    /// Pairs `events` (in file order).
    public init(events: [HistoryEvent]) {
        var ops = [HistoryOperation]()
        ops.reserveCapacity(events.count / 2 + 1)
        var open = [Int: Open]()         // process → its open invoke
        var endedInInfo = Set<Int>()     // processes whose last op completed info
        var problems = [String]()
        var reusedAfterInfo = Set<Int>()
        var batches = 0
        var repeatedKeys = 0
        func problem(_ message: String) {
            if problems.count < 100 { problems.append(message) }
            else if problems.count == 100 { problems.append("… more problems not listed") }
        }

        for (position, event) in events.enumerated() {
            let line = position + 1
            switch event.type {
            case .invoke:
                if let previous = open[event.process] {
                    problem("event \(line): process \(event.process) invoked \(event.f.rawValue) while its previous operation was still open; that one is treated as info")
                    for i in previous.range {
                        ops[i].outcome = .info
                        ops[i].completionTime = nil
                    }
                }
                if endedInInfo.remove(event.process) != nil { reusedAfterInfo.insert(event.process) }
                let start = ops.count
                if event.f == .batch {
                    let items = event.items ?? []
                    if items.isEmpty { problem("event \(line): process \(event.process) invoked a batch without items; ignored") }
                    let valid = items.enumerated().filter { $0.element.f == .put || $0.element.f == .delete }
                    for (j, item) in items.enumerated() where item.f != .put && item.f != .delete {
                        problem("event \(line): item \(j + 1) of process \(event.process)'s batch is a \(item.f.rawValue); only puts and deletes can be batch items; ignored")
                    }
                    if Set(valid.map(\.element.key)).count < valid.count { repeatedKeys += 1 }
                    for (n, (_, item)) in valid.enumerated() {
                        ops.append(HistoryOperation(
                            index: ops.count, process: event.process, f: item.f, key: item.key,
                            value: item.f == .put ? item.value : nil, expected: nil, invokeTime: event.time,
                            completionTime: nil, outcome: .info,
                            batch: BatchMembership(number: batches, item: n, count: valid.count)))
                    }
                    batches += 1
                } else {
                    if event.items != nil { problem("event \(line): process \(event.process) invoked \(event.f.rawValue) with batch items; they are ignored") }
                    ops.append(HistoryOperation(
                        index: ops.count, process: event.process, f: event.f, key: event.key,
                        value: event.f == .get || event.f == .delete ? nil : event.value,
                        expected: event.f == .cas ? event.expected : nil,
                        invokeTime: event.time, completionTime: nil, outcome: .info))
                }
                open[event.process] = Open(range: start..<ops.count, f: event.f, key: event.key,
                                           items: event.f == .batch ? event.items : nil, invokeTime: event.time)
            case .ok, .fail, .info:
                guard let o = open.removeValue(forKey: event.process) else {
                    problem("event \(line): process \(event.process) completed \(event.f.rawValue) \(quoted(event.key)) (\(event.type.rawValue)) with no open invoke; ignored")
                    continue
                }
                if o.f != event.f || o.key != event.key {
                    problem("event \(line): process \(event.process) completed \(event.f.rawValue) \(quoted(event.key)) but invoked \(o.f.rawValue) \(quoted(o.key)); treated as info")
                    endedInInfo.insert(event.process)
                    continue
                }
                if o.f == .batch, let items = event.items, items != o.items {
                    problem("event \(line): process \(event.process) completed a batch whose items differ from the invoked ones; treated as info")
                    endedInInfo.insert(event.process)
                    continue
                }
                if event.time < o.invokeTime {
                    problem("event \(line): process \(event.process) completed at \(event.time) before its invoke at \(o.invokeTime)")
                }
                switch event.type {
                case .ok:
                    for i in o.range {
                        ops[i].outcome = .ok
                        ops[i].completionTime = event.time
                    }
                    if event.f == .get, let i = o.range.first { ops[i].value = event.value }
                case .fail:
                    for i in o.range {
                        ops[i].outcome = .fail
                        ops[i].completionTime = event.time
                    }
                default:
                    endedInInfo.insert(event.process)
                }
            }
        }

        var notes = [String]()
        if !open.isEmpty {
            notes.append("\(open.count) operation(s) had no completion at the end of the history; treated as info")
        }
        if !reusedAfterInfo.isEmpty {
            let list = reusedAfterInfo.sorted().prefix(10).map(String.init).joined(separator: ", ")
            notes.append("\(reusedAfterInfo.count) process(es) invoked again after an info completion (treated as fresh logical processes): \(list)\(reusedAfterInfo.count > 10 ? ", …" : "")")
        }
        if repeatedKeys > 0 {
            notes.append("\(repeatedKeys) batch(es) wrote one key more than once; those writes are checked as concurrent ones")
        }
        self.init(operations: ops, problems: problems, notes: notes)
    }
}
