/// What a register operation does to the state, for the search.
enum RegisterOpKind: UInt8 {
    case put, get, cas
}

/// One operation of one key, reduced for the search: values interned to small integers (0 = absent).
struct RegisterOp {
    var kind: RegisterOpKind
    /// put/cas: the value written; get: the value read.
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
/// the operations it was built from. Dropped, because they cannot constrain any linearization: `fail`
/// operations (definitely not applied); `get`s that did not complete `ok` (nothing observed); `info` writes
/// whose value nobody observed (no `ok` get read it, no `cas` expected it) — leaving such a write out of a
/// linearization, or putting it at the end, is always possible, because the next operation after it could
/// only be a put.
/// Tightened, because unique values make it exact: an `info` write whose value no other write could have
/// written, and which an `ok` get read (or an `ok` cas expected), certainly took effect before the earliest such
/// observer returned — it becomes a required operation with that return time. This keeps timed-out writes that
/// landed from staying pending (and re-tried at every step) for the rest of the search.
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

        var written = Set<String>()        // values any put/cas of this key would write
        var writers = [String: Int]()      // value → how many put/cas that did not fail write it
        var observed = Set<String>()       // values an ok get read or a cas that did not fail expected
        var firstSeen = [String: Int64]()  // value → earliest completion of an ok get/cas that observed it
        func see(_ value: String, _ op: HistoryOperation) {
            observed.insert(value)
            if op.outcome == .ok, let t = op.completionTime { firstSeen[value] = min(firstSeen[value] ?? .max, t) }
        }
        for op in operations {
            switch op.f {
            case .put, .cas:
                if let v = op.value {
                    written.insert(v)
                    if op.outcome != .fail { writers[v, default: 0] += 1 }
                }
                if op.f == .cas, op.outcome != .fail, let e = op.expected { see(e, op) }
            case .get:
                if op.outcome == .ok, let v = op.value { see(v, op) }
            }
        }

        var order = [(op: RegisterOp, source: Int)]()
        order.reserveCapacity(operations.count)
        for (i, op) in operations.enumerated() where op.outcome != .fail {
            var info = op.outcome == .info
            var ret = op.completionTime ?? Int64.max
            switch op.f {
            case .get:
                guard !info else { continue }
                if let v = op.value, !written.contains(v), neverWritten == nil { neverWritten = i }
                order.append((RegisterOp(kind: .get, value: intern(op.value), expected: 0, info: false,
                                         invoke: op.invokeTime, ret: ret), i))
            case .put, .cas:
                if info, let v = op.value {
                    guard observed.contains(v) else { continue }
                    if writers[v] == 1, let seen = firstSeen[v] {
                        // Its value (written by nothing else) was observed by an ok operation: it took effect,
                        // before that operation returned.
                        info = false
                        ret = seen
                    }
                }
                if op.f == .cas, op.outcome == .ok, let e = op.expected, !written.contains(e), neverWritten == nil {
                    neverWritten = i
                }
                let kind: RegisterOpKind = op.f == .put ? .put : .cas
                order.append((RegisterOp(kind: kind, value: intern(op.value), expected: intern(op.expected),
                                         info: info, invoke: op.invokeTime, ret: ret), i))
            }
        }
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
