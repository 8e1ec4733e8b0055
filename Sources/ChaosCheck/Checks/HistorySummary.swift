/// How many operations ended each way.
public struct OutcomeCounts: Codable, Sendable, Equatable {
    public var ok = 0
    public var fail = 0
    public var info = 0
    public var total: Int { ok + fail + info }

    public init(ok: Int = 0, fail: Int = 0, info: Int = 0) {
        self.ok = ok
        self.fail = fail
        self.info = info
    }

    mutating func add(_ outcome: Outcome) {
        switch outcome {
        case .ok: ok += 1
        case .fail: fail += 1
        case .info: info += 1
        }
    }

    private enum CodingKeys: String, CodingKey { case ok, fail, info, total }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ok = try c.decode(Int.self, forKey: .ok)
        fail = try c.decode(Int.self, forKey: .fail)
        info = try c.decode(Int.self, forKey: .info)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(fail, forKey: .fail)
        try c.encode(info, forKey: .info)
        try c.encode(total, forKey: .total)
    }
}

/// Counts over a paired history: operations (= invokes) by function and outcome, keys and processes.
///
/// Guarantees: `byFunction` has an entry for each of "put", "get", "cas" (zeros included), and their totals
/// sum to `operations`; `outcomes` is their sum.
public struct HistorySummary: Codable, Sendable, Equatable {
    public var operations: Int
    public var outcomes: OutcomeCounts
    public var byFunction: [String: OutcomeCounts]
    public var keys: Int
    public var processes: Int

    public init(_ operations: [HistoryOperation]) {
        var outcomes = OutcomeCounts()
        var byFunction = [String: OutcomeCounts]()
        for f in OpFunction.allCases { byFunction[f.rawValue] = OutcomeCounts() }
        var keys = Set<String>()
        var processes = Set<Int>()
        for op in operations {
            outcomes.add(op.outcome)
            byFunction[op.f.rawValue]!.add(op.outcome)
            keys.insert(op.key)
            processes.insert(op.process)
        }
        self.operations = operations.count
        self.outcomes = outcomes
        self.byFunction = byFunction
        self.keys = keys.count
        self.processes = processes.count
    }

    /// One line per function plus a total, for a terminal.
    public var text: String {
        func row(_ c: OutcomeCounts) -> String { "ok \(c.ok), fail \(c.fail), info \(c.info)" }
        var lines = ["\(operations) operations on \(keys) keys by \(processes) processes: \(row(outcomes))"]
        for f in OpFunction.allCases {
            lines.append("  \(f.rawValue): \(row(byFunction[f.rawValue] ?? OutcomeCounts()))")
        }
        return lines.joined(separator: "\n")
    }
}
