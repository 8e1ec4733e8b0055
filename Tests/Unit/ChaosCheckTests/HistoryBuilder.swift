@testable import ChaosCheck

/// Hand-made histories for the tests: each `op` appends an invoke and its completion.
struct HistoryBuilder {
    var events: [HistoryEvent] = []

    /// A whole operation by `process` over [from, to]. For `put`/`cas` `value` is written; for `get` it is the
    /// value read (on an `ok` completion). `.info` completions are recorded at `to`.
    @discardableResult
    mutating func op(_ process: Int, _ f: OpFunction, _ key: String, _ value: String?, expected: String? = nil,
                     _ type: EventType = .ok, from: Int64, to: Int64) -> HistoryBuilder {
        events.append(HistoryEvent(process: process, type: .invoke, f: f, key: key,
                                   value: f == .get ? nil : value, expected: expected, time: from))
        events.append(HistoryEvent(process: process, type: type, f: f, key: key,
                                   value: f == .get && type != .ok ? nil : value, expected: expected, time: to))
        return self
    }

    mutating func put(_ p: Int, _ key: String, _ value: String, _ type: EventType, _ from: Int64, _ to: Int64) {
        op(p, .put, key, value, type, from: from, to: to)
    }

    mutating func put(_ p: Int, _ key: String, _ value: String, _ from: Int64, _ to: Int64) {
        put(p, key, value, .ok, from, to)
    }

    mutating func get(_ p: Int, _ key: String, _ value: String?, _ type: EventType, _ from: Int64, _ to: Int64) {
        op(p, .get, key, value, type, from: from, to: to)
    }

    mutating func get(_ p: Int, _ key: String, _ value: String?, _ from: Int64, _ to: Int64) {
        get(p, key, value, .ok, from, to)
    }

    mutating func cas(_ p: Int, _ key: String, _ expected: String?, _ value: String, _ type: EventType,
                      _ from: Int64, _ to: Int64) {
        op(p, .cas, key, value, expected: expected, type, from: from, to: to)
    }

    /// A batch of `items` by `process` over [from, to] (`.info` completions recorded at `to`).
    mutating func batch(_ p: Int, _ items: [BatchItemRecord], _ type: EventType, _ from: Int64, _ to: Int64) {
        events.append(.batch(process: p, .invoke, items: items, time: from))
        events.append(.batch(process: p, type, items: items, time: to))
    }

    mutating func batch(_ p: Int, _ items: [BatchItemRecord], _ from: Int64, _ to: Int64) {
        batch(p, items, .ok, from, to)
    }

    var operations: [HistoryOperation] { PairedHistory(events: events).operations }

    func check(timeLimit: Duration = .seconds(10)) -> LinearizabilityResult {
        Linearizability.check(operations, timeLimit: timeLimit)
    }
}
