/// The set of search configurations already explored: (set of linearized operations, register state).
///
/// Lowe's memoization: reaching a configuration a second time cannot lead anywhere new, so the search prunes it.
/// Sets are stored compactly as the window of words from the word holding the lowest operation *not* linearized
/// to the word holding the highest one linearized: every operation below the window is linearized, every one above
/// it is not. In a mostly sequential history that window is a word or two, so memory stays proportional to the
/// number of configurations, not to configurations × history length. `hash` is the caller's Zobrist hash of the
/// set (XOR of a random word per member), so the table never rehashes a set.
struct LinearizationMemo {
    private var words: [UInt64] = []      // the stored windows, back to back
    private var windowStart: [Int32] = [] // per entry: first word index of the window in the full set
    private var windowOffset: [Int] = []  // per entry: offset of its window in `words`
    private var windowCount: [Int32] = []
    private var states: [Int32] = []
    private var hashes: [UInt64] = []
    private var chain: [Int32] = []       // next entry in the same bucket, -1 at the end
    private var buckets: [Int32] = Array(repeating: -1, count: 1024)

    /// Number of configurations stored.
    var count: Int { states.count }

    /// Adds the configuration (bits[lowWord...highWord] with everything below linearized, state); returns false
    /// when it was already present.
    mutating func insert(bits: UnsafeBufferPointer<UInt64>, lowWord: Int, highWord: Int, state: Int32,
                         hash: UInt64) -> Bool {
        let key = Self.mix(hash, state)
        let width = highWord - lowWord + 1
        var e = buckets[Int(key & UInt64(buckets.count - 1))]
        while e >= 0 {
            let i = Int(e)
            if hashes[i] == key && states[i] == state && Int(windowStart[i]) == lowWord && Int(windowCount[i]) == width {
                let offset = windowOffset[i]
                var same = true
                for w in 0..<width where words[offset + w] != bits[lowWord + w] {
                    same = false
                    break
                }
                if same { return false }
            }
            e = chain[i]
        }
        if states.count >= buckets.count { grow() }
        let i = states.count
        windowOffset.append(words.count)
        words.append(contentsOf: bits[lowWord...highWord])
        windowStart.append(Int32(lowWord))
        windowCount.append(Int32(width))
        states.append(state)
        hashes.append(key)
        let b = Int(key & UInt64(buckets.count - 1))
        chain.append(buckets[b])
        buckets[b] = Int32(i)
        return true
    }

    private mutating func grow() {
        buckets = Array(repeating: -1, count: buckets.count * 2)
        let mask = UInt64(buckets.count - 1)
        for i in 0..<states.count {
            let b = Int(hashes[i] & mask)
            chain[i] = buckets[b]
            buckets[b] = Int32(i)
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
