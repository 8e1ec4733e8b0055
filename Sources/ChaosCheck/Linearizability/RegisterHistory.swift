/// What a register operation does to the state, for the search (a delete is a put of absent).
enum RegisterOpKind: UInt8 {
    case put, get, cas
}

/// One operation of one key, reduced for the search: values interned to small integers (0 = absent).
struct RegisterOp {
    var kind: RegisterOpKind
    /// put/cas: the value written (0 for a delete); get: the value read.
    var value: Int32
    /// cas: the value compared against.
    var expected: Int32
    /// Outcome unknown: may be linearized anywhere after `invoke`, or left out.
    var info: Bool
    var invoke: Int64
    /// `Int64.max` for `info` operations.
    var ret: Int64

    /// The value this operation needs the register to hold (get: the value read; cas: the expected one), or -1.
    var observes: Int32 {
        switch kind {
        case .put: return -1
        case .get: return value
        case .cas: return expected
        }
    }

    /// The state after applying this operation to `state`, or -1 if it cannot take effect there.
    @inline(__always)
    func step(_ state: Int32) -> Int32 {
        switch kind {
        case .put: return value
        case .get: return state == value ? state : -1
        case .cas: return state == expected ? value : -1
        }
    }
}

/// One key's operations prepared for the linearizability search.
///
/// Guarantees: `ops` are sorted by invoke time (ties: history order); `sources[i]` is the position of `ops[i]` in
/// the operations it was built from; the prepared history is linearizable iff the original is. To get there:
/// - dropped, because they constrain nothing: `fail` operations (definitely not applied) and `get`s that did not
///   complete `ok` (nothing observed);
/// - **required**: an `info` write whose value no other write produces, observed by a required operation (an
///   `ok` get read it, an `ok` or required cas expected it), certainly took effect, and before the earliest such
///   observer returned — it gets that return time and must be linearized like an `ok` one (this propagates down
///   chains of timed-out cas);
/// - **dropped**: an `info` write whose value no remaining operation observes (reads it or expects it) — leaving
///   it out is always possible, because whatever followed it in a linearization could only be a put; dropping
///   one can leave another unobserved, so this runs to a fixed point;
/// - every other `info` write stays optional: it may be linearized after its invoke, or never.
/// Without these, a timed-out write stays pending to the end of the search and is re-tried at every step.
struct RegisterHistory {
    var ops: [RegisterOp] = []
    var sources: [Int] = []
    /// Interned value id → value; id 0 is "absent".
    var values: [String?] = [nil]
    /// An `ok` get that read, or `ok` cas that expected, a value no put/cas on this key ever wrote.
    var neverWritten: Int?
    /// Per value id: whether only one thing can make the register hold it — exactly one operation of `ops`
    /// writes it (for absent: none does, only the initial state). Once the register has moved away from such a
    /// value, it can never hold it again.
    var singleSource: [Bool] = []

    init(_ operations: [HistoryOperation]) {
        var ids: [String: Int32] = [:]
        var values: [String?] = [nil]
        func intern(_ value: String?) -> Int32 {
            guard let value else { return 0 }
            if let id = ids[value] { return id }
            let id = Int32(values.count)
            ids[value] = id
            values.append(value)
            return id
        }

        // Candidates: everything but fail operations and gets without an observed value.
        var candidates = [(op: RegisterOp, source: Int)]()
        candidates.reserveCapacity(operations.count)
        var written = Set<Int32>()   // values any put/cas of this key would write (even a failed one)
        for (i, op) in operations.enumerated() {
            let value = intern(op.value)
            if op.isWrite { written.insert(value) }
            guard op.outcome != .fail, op.f != .get || op.outcome == .ok else { continue }
            let kind: RegisterOpKind
            switch op.f {
            case .get: kind = .get
            case .cas: kind = .cas
            case .put, .delete, .batch: kind = .put   // a delete writes absent (value id 0)
            }
            candidates.append((RegisterOp(kind: kind, value: value, expected: op.f == .cas ? intern(op.expected) : 0,
                                          info: op.outcome == .info, invoke: op.invokeTime,
                                          ret: op.completionTime ?? Int64.max), i))
        }
        for (op, i) in candidates where !op.info && op.observes > 0 && !written.contains(op.observes) {
            neverWritten = min(neverWritten ?? i, i)
        }

        let valueCount = values.count
        var writers = [Int](repeating: 0, count: valueCount)
        var infoWrites = [[Int]](repeating: [], count: valueCount)   // value → candidates that are info writes of it
        var deadline = [Int64](repeating: .max, count: valueCount)    // value → earliest return of a required observer
        for (c, (op, _)) in candidates.enumerated() where op.kind != .get {
            writers[Int(op.value)] += 1
            if op.info { infoWrites[Int(op.value)].append(c) }
        }

        // Required: propagate observation deadlines from ok observers through single-writer info writes.
        var work = [Int32]()
        for (op, _) in candidates where !op.info && op.observes >= 0 {
            let v = Int(op.observes)
            if op.ret < deadline[v] {
                if deadline[v] == .max { work.append(op.observes) }
                deadline[v] = op.ret
            }
        }
        while let v = work.popLast().map(Int.init) {
            guard v != 0, writers[v] == 1, let c = infoWrites[v].first, deadline[v] < candidates[c].op.ret else { continue }
            candidates[c].op.info = false
            candidates[c].op.ret = deadline[v]
            if candidates[c].op.kind == .cas {
                let e = Int(candidates[c].op.expected)
                if deadline[v] < deadline[e] {
                    deadline[e] = deadline[v]
                    work.append(Int32(e))
                }
            }
        }

        // Dropped: info writes nobody left observes, to a fixed point.
        var observers = [Int](repeating: 0, count: valueCount)
        for (op, _) in candidates where op.observes >= 0 { observers[Int(op.observes)] += 1 }
        var dropped = [Bool](repeating: false, count: candidates.count)
        var unobserved = (0..<valueCount).filter { observers[$0] == 0 }
        while let v = unobserved.popLast() {
            for c in infoWrites[v] where candidates[c].op.info && !dropped[c] {
                dropped[c] = true
                if candidates[c].op.kind == .cas {
                    let e = Int(candidates[c].op.expected)
                    observers[e] -= 1
                    if observers[e] == 0 { unobserved.append(e) }
                }
            }
        }

        var order = [(op: RegisterOp, source: Int)]()
        order.reserveCapacity(candidates.count)
        for (c, candidate) in candidates.enumerated() where !dropped[c] { order.append(candidate) }
        order.sort { a, b in a.op.invoke != b.op.invoke ? a.op.invoke < b.op.invoke : a.source < b.source }
        self.ops = order.map(\.op)
        self.sources = order.map(\.source)
        self.values = values
        var writes = [Int](repeating: 0, count: values.count)
        writes[0] = 1
        for op in ops where op.kind != .get { writes[Int(op.value)] += 1 }
        singleSource = writes.map { $0 == 1 }
    }
}
