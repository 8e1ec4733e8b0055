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

/// Counts over a paired history: operations by function and outcome, batches, keys and processes.
///
/// Guarantees: `operations` counts per-key operations — a batch once per item, its items under "put" and
/// "delete" — and `byFunction` has an entry for each of "put", "get", "cas", "delete" (zeros included) whose
/// totals sum to `operations`; `outcomes` is their sum. `batches` counts each batch once (by its outcome) and
/// `batchItems` their items.
public struct HistorySummary: Codable, Sendable, Equatable {
    public var operations: Int
    public var outcomes: OutcomeCounts
    public var byFunction: [String: OutcomeCounts]
    public var batches: OutcomeCounts
    public var batchItems: Int
    public var keys: Int
    public var processes: Int

    /// The functions of per-key operations, in report order.
    static let functions: [OpFunction] = [.put, .get, .cas, .delete]

    public init(_ operations: [HistoryOperation]) {
        var outcomes = OutcomeCounts()
        var byFunction = [String: OutcomeCounts]()
        for f in Self.functions { byFunction[f.rawValue] = OutcomeCounts() }
        var batches = OutcomeCounts()
        var batchItems = 0
        var keys = Set<String>()
        var processes = Set<Int>()
        for op in operations {
            outcomes.add(op.outcome)
            byFunction[op.f.rawValue, default: OutcomeCounts()].add(op.outcome)
            if let b = op.batch {
                batchItems += 1
                if b.item == 0 { batches.add(op.outcome) }
            }
            keys.insert(op.key)
            processes.insert(op.process)
        }
        self.operations = operations.count
        self.outcomes = outcomes
        self.byFunction = byFunction
        self.batches = batches
        self.batchItems = batchItems
        self.keys = keys.count
        self.processes = processes.count
    }

    /// One line per function plus a total, and one for batches, for a terminal.
    public var text: String {
        func row(_ c: OutcomeCounts) -> String { "ok \(c.ok), fail \(c.fail), info \(c.info)" }
        var lines = ["\(operations) operations on \(keys) keys by \(processes) processes: \(row(outcomes))"]
        for f in Self.functions {
            lines.append("  \(f.rawValue): \(row(byFunction[f.rawValue] ?? OutcomeCounts()))")
        }
        lines.append("  batches: \(row(batches)) (\(batchItems) items, counted above as puts and deletes)")
        return lines.joined(separator: "\n")
    }
}
