/// A concept's 16-byte identifier. Written and parsed as 32 lowercase hex digits.
public struct ConceptID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let hi: UInt64
    public let lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// From exactly 16 bytes (big-endian: bytes[0] is the most significant).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = (h << 8) | UInt64(bytes[i]) }
        for i in 8..<16 { l = (l << 8) | UInt64(bytes[i]) }
        hi = h
        lo = l
    }

    /// From 32 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        let u = Array(hex.utf8)
        guard u.count == 32 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, c) in u.enumerated() {
            let v: UInt64
            switch c {
            case 48...57: v = UInt64(c - 48)
            case 97...102: v = UInt64(c - 87)
            case 65...70: v = UInt64(c - 55)
            default: return nil
            }
            if i < 16 { h = (h << 4) | v } else { l = (l << 4) | v }
        }
        hi = h
        lo = l
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { out[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i))) }
        for i in 0..<8 { out[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i))) }
        return out
    }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 32)
        for i in 0..<16 { out[i] = digits[Int((hi >> (60 - 4 * UInt64(i))) & 0xF)] }
        for i in 0..<16 { out[16 + i] = digits[Int((lo >> (60 - 4 * UInt64(i))) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (a: ConceptID, b: ConceptID) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    /// The shard that owns this concept, out of `shardCount`. Part of the on-disk contract: changing this
    /// function moves data, so it must never change for an existing cluster.
    public func shard(of shardCount: Int) -> Int {
        precondition(shardCount > 0, "shardCount must be positive")
        // Each half goes through the SplitMix64 finalizer before they are combined, so structured ids (counters
        // in either half, or halves derived from each other) still spread evenly.
        let z = ConceptID.mix(hi ^ ConceptID.mix(lo &+ 0x9E37_79B9_7F4A_7C15))
        return Int(z % UInt64(shardCount))
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
