/// Where the search got furthest before it had to give up on a branch: `depth` operations linearized (the last
/// few are `lastLinearized`, in order), the register holding `state`, and `op` — whose return had come — not
/// linearizable after them.
struct SearchFailure {
    var depth: Int
    var op: Int
    var state: Int32
    var lastLinearized: [Int]
}

/// What the search concluded for one key.
enum SearchResult {
    case linearizable
    case violation(SearchFailure)
    /// The deadline passed; the deepest failure seen so far, if any.
    case timedOut(SearchFailure?)
}

/// The Wing–Gong linearizability search with Lowe's memoization, over one key's register history.
///
/// Entries (an operation's call, and its return unless its outcome is unknown) sit in time order in a doubly
/// linked list (arrays of indices). Walking from the head, a call whose operation can take effect in the current
/// state is tentatively linearized — its call and return are unlinked, the walk restarts — unless the resulting
/// configuration (linearized set, state) was explored before. Reaching a return whose operation is not linearized
/// means the current prefix is wrong: undo the last linearized operation and try the next entry after its call.
/// The history is linearizable once every operation with a known outcome is linearized; `info` operations may
/// remain (they never took effect). Equal times: calls sort before returns, so such operations count as
/// concurrent (the permissive reading).
///
/// Two prunes beyond Lowe's, both about a *single-source* value (one only one write produces; the workload's
/// unique values make every written value one) that some required get/cas still needs:
/// - *stranding*: the register may not move away from such a value — it could never hold it again;
/// - *earliest return*: its write may not be linearized while the pending operation with the earliest return
///   does not need the value and returned before the last operation needing it was invoked — that operation
///   would have to come both after them all (the register is stuck on the value until then) and before the last.
/// Both only cut branches that cannot succeed (the brute-force oracle test checks this). Without them a write
/// pending over a long window — a timed-out write that landed much later — is tentatively placed at every point
/// of that window, times every other such write. Memory: the memo (20 bytes per configuration), the stack and
/// the list.
enum RegisterSearch {
    /// `singleSourcePrune`: apply the single-source prune (fast; off gives the plain search, whose failure point
    /// — the operation that could not be linearized after the longest prefix — is easier to read).
    static func run(_ history: RegisterHistory, deadline: ContinuousClock.Instant,
                    singleSourcePrune: Bool = true) -> SearchResult {
        let ops = history.ops
        let n = ops.count
        guard n > 0 else { return .linearizable }

        // Entries in time order; calls before returns at equal times.
        var order = [(time: Int64, isReturn: Bool, op: Int32)]()
        order.reserveCapacity(2 * n)
        for (i, op) in ops.enumerated() {
            order.append((op.invoke, false, Int32(i)))
            if !op.info { order.append((op.ret, true, Int32(i))) }
        }
        order.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.isReturn != b.isReturn { return !a.isReturn }
            return a.op < b.op
        }
        let m = order.count
        let head = m
        var next = [Int32](repeating: -1, count: m + 1)
        var prev = [Int32](repeating: -1, count: m + 1)
        var entryOp = [Int32](repeating: 0, count: m)
        var isReturn = [Bool](repeating: false, count: m)
        var returnEntry = [Int32](repeating: -1, count: n)
        next[head] = 0
        for k in 0..<m {
            prev[k] = k == 0 ? Int32(head) : Int32(k - 1)
            next[k] = k + 1 < m ? Int32(k + 1) : -1
            entryOp[k] = order[k].op
            isReturn[k] = order[k].isReturn
            if order[k].isReturn { returnEntry[Int(order[k].op)] = Int32(k) }
        }
        order = []

        // Zobrist keys: the linearized set's 128-bit hash is the XOR of its members' keys.
        var keyLow = [UInt64](repeating: 0, count: n)
        var keyHigh = [UInt64](repeating: 0, count: n)
        var seed: UInt64 = 0x5EED_C4A0_5C4E_C4E5
        for i in 0..<n {
            keyLow[i] = splitmix64(&seed)
            keyHigh[i] = splitmix64(&seed)
        }

        var hashLow: UInt64 = 0
        var hashHigh: UInt64 = 0
        var state: Int32 = 0
        var remaining = ops.reduce(0) { $0 + ($1.info ? 0 : 1) }
        var stack = [(entry: Int32, state: Int32)]()
        // Per value: operations with a known outcome, not yet linearized, that need the register to hold it.
        let singleSource = history.singleSource
        var waiting = [Int32](repeating: 0, count: history.values.count)
        // Per value: the latest invoke among the required operations that need it.
        var lastObserverInvoke = [Int64](repeating: .min, count: history.values.count)
        for op in ops where !op.info && op.observes >= 0 {
            waiting[Int(op.observes)] += 1
            lastObserverInvoke[Int(op.observes)] = max(lastObserverInvoke[Int(op.observes)], op.invoke)
        }
        // The first two return entries of the list, found lazily once per walk (-2: not yet; -1: none).
        var firstReturns = (Int(-2), Int(-2))
        var memo = LinearizationMemo(capacity: n)
        var best: SearchFailure?
        var iterations = 0
        var entry = Int(next[head])

        func unlink(_ x: Int) {
            let p = Int(prev[x]), q = next[x]
            next[p] = q
            if q >= 0 { prev[Int(q)] = Int32(p) }
        }
        func relink(_ x: Int) {
            let p = Int(prev[x]), q = next[x]
            next[p] = Int32(x)
            if q >= 0 { prev[Int(q)] = Int32(x) }
        }

        /// Whether linearizing write `op` of single-source value `v` now is a dead end: every required operation
        /// needing `v` is still pending (nothing else makes `v`); the register must then hold `v` until the last of
        /// them, invoked at `lastObserverInvoke[v]`, is linearized. The pending operation with the earliest
        /// return, R, if it does not need `v`, must come after all of them — impossible if R returned before the
        /// last of them was invoked.
        func blocksEarliest(_ op: Int, writing v: Int) -> Bool {
            guard singleSource[v], waiting[v] > 0 else { return false }
            if firstReturns.0 == -2 {
                var x = entry
                while x >= 0 && !isReturn[x] { x = Int(next[x]) }
                var y = x >= 0 ? Int(next[x]) : -1
                while y >= 0 && !isReturn[y] { y = Int(next[y]) }
                firstReturns = (x, y)
            }
            let r = Int(entryOp[firstReturns.0]) == op ? firstReturns.1 : firstReturns.0
            guard r >= 0 else { return false }
            let earliest = ops[Int(entryOp[r])]
            return earliest.observes != Int32(v) && earliest.ret < lastObserverInvoke[v]
        }

        while remaining > 0 {
            iterations &+= 1
            if iterations & 1023 == 0 && ContinuousClock.now >= deadline { return .timedOut(best) }

            if entry >= 0 && !isReturn[entry] {
                let op = Int(entryOp[entry])
                let o = ops[op]
                let newState = o.step(state)
                let observes = o.info ? -1 : o.observes
                // Leaving a single-source value while another required operation still needs it is a dead end:
                // the register can never hold that value again.
                let strands = singleSourcePrune && newState != state && singleSource[Int(state)]
                    && waiting[Int(state)] > (observes == state ? 1 : 0)
                if newState >= 0 && !strands
                    && !(singleSourcePrune && o.kind != .get && blocksEarliest(op, writing: Int(newState)))
                    && memo.insert(low: hashLow ^ keyLow[op], high: hashHigh ^ keyHigh[op], state: newState) {
                    hashLow ^= keyLow[op]
                    hashHigh ^= keyHigh[op]
                    stack.append((Int32(entry), state))
                    state = newState
                    if observes >= 0 { waiting[Int(observes)] -= 1 }
                    unlink(entry)
                    if returnEntry[op] >= 0 { unlink(Int(returnEntry[op])) }
                    if !o.info { remaining -= 1 }
                    entry = Int(next[head])
                    firstReturns = (-2, -2)
                    continue
                }
                entry = Int(next[entry])
                continue
            }

            // A return whose operation is not linearized (or, defensively, the end of the list): dead end.
            if entry >= 0 && stack.count > (best?.depth ?? -1) {
                best = SearchFailure(depth: stack.count, op: Int(entryOp[entry]), state: state,
                                     lastLinearized: stack.suffix(8).map { Int(entryOp[Int($0.entry)]) })
            }
            guard let top = stack.popLast() else {
                return .violation(best ?? SearchFailure(depth: 0, op: 0, state: 0, lastLinearized: []))
            }
            let call = Int(top.entry)
            let op = Int(entryOp[call])
            hashLow ^= keyLow[op]
            hashHigh ^= keyHigh[op]
            state = top.state
            if !ops[op].info && ops[op].observes >= 0 { waiting[Int(ops[op].observes)] += 1 }
            if returnEntry[op] >= 0 { relink(Int(returnEntry[op])) }
            relink(call)
            firstReturns = (-2, -2)
            if !ops[op].info { remaining += 1 }
            entry = Int(next[call])
        }
        return .linearizable
    }
}

/// SplitMix64: a fixed-seed stream of well-mixed words (Zobrist keys), so runs are reproducible.
func splitmix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
