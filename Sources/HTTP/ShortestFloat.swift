/// Writes a `Float` as the shortest decimal that reads back as the same `Float`, straight into a byte buffer —
/// the JSON number for embeddings, strengths and confidences.
///
/// Why not `Float.description`: it builds a `String` per number, and a 768-d embedding then costs ~55 µs of
/// loop time per answer (and `JSONSerialization` ~2.9 ms); this costs ~20–30 ns a number.
///
/// How: a finite non-zero `f` is read back as itself by any decimal inside its rounding interval (half an ulp
/// either side). The interval's bounds are exact in `Double`; they are shrunk by a margin (10⁻⁶ of the
/// interval) far larger than the rounding error of scaling them by powers of ten in `Double` (a few 10⁻¹⁶
/// relative), so every decimal chosen lies strictly inside the true interval. The first precision (1…9
/// significant digits) whose scaled interval holds an integer gives the digits; among those the one nearest `f`.
/// Guarantees: `Float(String(decoding: out, as: UTF8.self)) == f` for every finite `f` (tested over random bit
/// patterns and edge cases); at most 9 significant digits; the margin makes the output one digit longer than
/// the shortest where that shortest sits exactly on the interval's edge (~0.2 % of bit patterns; none of the
/// random values in -1…1 tested). Non-finite values are written as `null` (JSON has no NaN or infinity).
public enum ShortestFloat {
    /// 10^k for k in -60…60, as `Double` (index k + 60).
    /// Exact up to 10^22; beyond, each is within a few ulps (well inside the margin).
    private static let powers: [Double] = (-60...60).map { k in
        var p = 1.0
        for _ in 0..<abs(k) { p *= 10 }
        return k >= 0 ? p : 1 / p
    }

    @inline(__always)
    private static func pow10(_ k: Int) -> Double { powers[k + 60] }

    /// Appends `f` as a JSON number (or `null`).
    public static func append(_ f: Float, to out: inout [UInt8]) {
        guard f.isFinite else { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]); return }  // null
        if f == 0 {
            if f.sign == .minus { out.append(0x2D) }
            out.append(0x30)
            return
        }
        if f.sign == .minus { out.append(0x2D) }
        let a = f.magnitude
        let d = Double(a)
        let down = Double(a.nextDown)
        let high: Double
        if a == .greatestFiniteMagnitude { high = d + (d - down) / 2 } else { high = (d + Double(a.nextUp)) / 2 }
        let low = (d + down) / 2
        let margin = (high - low) * 1e-6
        let lo = low + margin
        let hi = high - margin
        // Decimal exponent of d: 10^e ≤ d < 10^(e+1).
        var e = Int((Double(d.exponent) * 0.30102999566398120).rounded(.down))
        if d >= pow10(e + 1) { e += 1 } else if d < pow10(e) { e -= 1 }
        // The integers of the scaled interval at precision p (digits = value · 10^(p−1−e)), if any.
        @inline(__always) func candidate(_ p: Int) -> UInt64? {
            let scale = pow10(p - 1 - e)
            let first = (lo * scale).rounded(.up)
            let last = (hi * scale).rounded(.down)
            guard first <= last else { return nil }
            return UInt64(min(max((d * scale).rounded(), first), last))
        }
        // Most embedding values need 7–9 digits, numbers people type 1–3: start in the middle and walk
        // towards the shortest precision that has a candidate (a shorter one exists only if p does).
        var count: Int
        var digits: UInt64
        if let c7 = candidate(7) {
            count = 7
            digits = c7
            var p = 6
            while p >= 1, let c = candidate(p) { count = p; digits = c; p -= 1 }
        } else if let c8 = candidate(8) {
            count = 8
            digits = c8
        } else {
            count = 9
            digits = candidate(9) ?? UInt64((d * pow10(8 - e)).rounded())
        }
        // `digits` may have rounded up to 10^count (e.g. 9.9999 → 10): renormalise.
        if digits >= UInt64(pow10(count)) { digits /= 10; e += 1 }
        while count > 1 && digits % 10 == 0 { digits /= 10; count -= 1 }
        writeDecimal(digits: digits, count: count, exponent: e, to: &out)
    }

    /// Writes digits d₁…d_count × 10^(exponent − count + 1): plain notation for exponents −7…20, else `d.ddde±x`.
    private static func writeDecimal(digits: UInt64, count: Int, exponent e: Int, to out: inout [UInt8]) {
        var buf: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &buf) { b in
            var v = digits
            var i = count - 1
            while i >= 0 {
                b[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
                i -= 1
            }
            let ds = UnsafeRawBufferPointer(rebasing: b[0..<count])
            if e >= -7 && e <= 20 {
                if e < 0 {
                    out.append(0x30); out.append(0x2E)  // "0."
                    for _ in 0..<(-e - 1) { out.append(0x30) }
                    out.append(contentsOf: ds)
                } else if count <= e + 1 {
                    out.append(contentsOf: ds)
                    for _ in 0..<(e + 1 - count) { out.append(0x30) }
                } else {
                    out.append(contentsOf: ds[0...e])
                    out.append(0x2E)
                    out.append(contentsOf: ds[(e + 1)...])
                }
            } else {
                out.append(ds[0])
                if count > 1 {
                    out.append(0x2E)
                    out.append(contentsOf: ds[1...])
                }
                out.append(0x65)  // e
                if e < 0 { out.append(0x2D) }
                var x = abs(e)
                if x >= 10 { out.append(UInt8(x / 10) + 0x30); x %= 10 }
                out.append(UInt8(x) + 0x30)
            }
        }
    }
}
