/// The set of search configurations already explored: (set of linearized operations, register state).
///
/// Lowe's memoization: reaching a configuration a second time cannot lead anywhere new, so the search prunes it.
/// A set is represented by its 128-bit Zobrist hash (XOR of two independent random words per member, kept up to
/// date by the search in O(1) per step), not by its bits: memory is 20 bytes per configuration however long the
/// history and however long an operation stays pending. Two different sets share a hash with probability 2⁻¹²⁸
/// per pair (the XOR of the random words of their non-empty symmetric difference); even 10⁹ configurations give
/// a chance below 10⁻²⁰. A collision could only prune a branch wrongly — a false violation, never a false ok.
struct LinearizationMemo {
    private var low: [UInt64]
    private var high: [UInt64]
    private var states: [Int32]   // state + 1; 0 marks an empty slot
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < 2 * capacity { size <<= 1 }
        low = Array(repeating: 0, count: size)
        high = Array(repeating: 0, count: size)
        states = Array(repeating: 0, count: size)
    }

    /// Adds the configuration; returns false when it was already present.
    mutating func insert(low l: UInt64, high h: UInt64, state: Int32) -> Bool {
        if 2 * (count + 1) > states.count { grow() }
        let mask = states.count - 1
        var i = Int(truncatingIfNeeded: Self.mix(l, state)) & mask
        while states[i] != 0 {
            if low[i] == l && high[i] == h && states[i] == state + 1 { return false }
            i = (i + 1) & mask
        }
        low[i] = l
        high[i] = h
        states[i] = state + 1
        count += 1
        return true
    }

    private mutating func grow() {
        let (oldLow, oldHigh, oldStates) = (low, high, states)
        let size = 2 * states.count
        low = Array(repeating: 0, count: size)
        high = Array(repeating: 0, count: size)
        states = Array(repeating: 0, count: size)
        let mask = size - 1
        for j in oldStates.indices where oldStates[j] != 0 {
            var i = Int(truncatingIfNeeded: Self.mix(oldLow[j], oldStates[j] - 1)) & mask
            while states[i] != 0 { i = (i + 1) & mask }
            low[i] = oldLow[j]
            high[i] = oldHigh[j]
            states[i] = oldStates[j]
        }
    }

    @inline(__always)
    private static func mix(_ hash: UInt64, _ state: Int32) -> UInt64 {
        var x = hash ^ (UInt64(UInt32(bitPattern: state)) &* 0x9E37_79B9_7F4A_7C15)
        x ^= x >> 31
        x = x &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 29
        return x
    }
}
