/// A history's events paired into operations: each `invoke` with the next completion of the same process.
///
/// Guarantees: `operations` are in invoke order (file order of the invoke events) with `index` = position.
/// Tolerances (recorded in `notes`, not errors): an invoke left open at the end of the history is an `info`
/// operation (Jepsen's convention); a process that invokes again after an `info` completion is treated as a
/// fresh logical process. Malformed input is recorded in `problems` and handled conservatively: a completion
/// with no open invoke is ignored; an invoke while the same process still has one open closes the older one as
/// `info`; a completion whose `f` or `key` differs from its invoke turns the operation into `info`.
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

    /// Pairs `events` (in file order).
    public init(events: [HistoryEvent]) {
        var ops = [HistoryOperation]()
        ops.reserveCapacity(events.count / 2 + 1)
        var open = [Int: Int]()          // process → index in ops of its open invoke
        var endedInInfo = Set<Int>()     // processes whose last op completed info
        var problems = [String]()
        var reusedAfterInfo = Set<Int>()
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
                    ops[previous].outcome = .info
                    ops[previous].completionTime = nil
                }
                if endedInInfo.remove(event.process) != nil { reusedAfterInfo.insert(event.process) }
                open[event.process] = ops.count
                ops.append(HistoryOperation(
                    index: ops.count, process: event.process, f: event.f, key: event.key,
                    value: event.f == .get ? nil : event.value, expected: event.f == .cas ? event.expected : nil,
                    invokeTime: event.time, completionTime: nil, outcome: .info))
            case .ok, .fail, .info:
                guard let i = open.removeValue(forKey: event.process) else {
                    problem("event \(line): process \(event.process) completed \(event.f.rawValue) \(quoted(event.key)) (\(event.type.rawValue)) with no open invoke; ignored")
                    continue
                }
                if ops[i].f != event.f || ops[i].key != event.key {
                    problem("event \(line): process \(event.process) completed \(event.f.rawValue) \(quoted(event.key)) but invoked \(ops[i].f.rawValue) \(quoted(ops[i].key)); treated as info")
                    endedInInfo.insert(event.process)
                    continue
                }
                if event.time < ops[i].invokeTime {
                    problem("event \(line): process \(event.process) completed at \(event.time) before its invoke at \(ops[i].invokeTime)")
                }
                switch event.type {
                case .ok:
                    ops[i].outcome = .ok
                    ops[i].completionTime = event.time
                    if event.f == .get { ops[i].value = event.value }
                case .fail:
                    ops[i].outcome = .fail
                    ops[i].completionTime = event.time
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
        self.init(operations: ops, problems: problems, notes: notes)
    }
}
