import Foundation

/// A fast parser for the common shape of a history line: one flat JSON object with the event's fields (any order,
/// any whitespace, unknown fields with scalar values ignored).
///
/// Guarantees: returns an event only when the line is valid JSON and decodes to exactly what `JSONDecoder` would
/// produce for `HistoryEvent`; returns nil for anything else — unusual but possibly valid input (nested values,
/// such as a batch's `items`, fractional or exponent numbers, duplicate fields) as well as invalid input — so the
/// caller falls back to `JSONDecoder` for the result or its precise error. About ten times faster than the
/// decoder per line.
struct EventLineParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var i: Int
    private let end: Int

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> HistoryEvent? {
        var p = EventLineParser(bytes: bytes, i: range.lowerBound, end: range.upperBound)
        return p.event()
    }

    private mutating func event() -> HistoryEvent? {
        var process: Int?, type: EventType?, f: OpFunction?, key: String?, time: Int64?
        var value: String??, expected: String??
        skipSpace()
        guard take(UInt8(ascii: "{")) else { return nil }
        skipSpace()
        if take(UInt8(ascii: "}")) { return nil }
        while true {
            skipSpace()
            guard let name = string() else { return nil }
            skipSpace()
            guard take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            switch name {
            case "process":
                guard process == nil, let n = integer(), let v = Int(exactly: n) else { return nil }
                process = v
            case "time":
                guard time == nil, let n = integer() else { return nil }
                time = n
            case "type":
                guard type == nil, let s = string(), let v = EventType(rawValue: s) else { return nil }
                type = v
            case "f":
                guard f == nil, let s = string(), let v = OpFunction(rawValue: s) else { return nil }
                f = v
            case "key":
                guard key == nil, let s = string() else { return nil }
                key = s
            case "value":
                guard value == nil, let v = nullableString() else { return nil }
                value = v
            case "expected":
                guard expected == nil, let v = nullableString() else { return nil }
                expected = v
            case "items":
                return nil   // a batch's nested items: left to the decoder
            default:
                guard skipScalar() else { return nil }
            }
            skipSpace()
            if take(UInt8(ascii: ",")) { continue }
            guard take(UInt8(ascii: "}")) else { return nil }
            break
        }
        skipSpace()
        guard i == end, let process, let type, let f, let key, let time else { return nil }
        return HistoryEvent(process: process, type: type, f: f, key: key, value: value ?? nil,
                            expected: expected ?? nil, time: time)
    }

    private var current: UInt8? { i < end ? bytes[i] : nil }

    private mutating func take(_ b: UInt8) -> Bool {
        guard current == b else { return false }
        i += 1
        return true
    }

    private mutating func skipSpace() {
        while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
    }

    /// A JSON integer without fraction or exponent that fits in Int64.
    private mutating func integer() -> Int64? {
        let negative = take(UInt8(ascii: "-"))
        guard let first = current, first >= 0x30, first <= 0x39 else { return nil }
        if first == 0x30, i + 1 < end, bytes[i + 1] >= 0x30, bytes[i + 1] <= 0x39 { return nil }  // leading zero
        var n: Int64 = 0
        while let b = current, b >= 0x30, b <= 0x39 {
            let digit = Int64(b - 0x30)
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            n = s
            i += 1
        }
        if let b = current, b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { return nil }
        return n
    }

    private mutating func nullableString() -> String?? {
        if literal("null") { return .some(nil) }
        guard let s = string() else { return nil }
        return .some(s)
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard end - i >= count else { return false }
        let w = word.utf8Start
        for k in 0..<count where bytes[i + k] != w[k] { return false }
        i += count
        return true
    }

    private mutating func skipScalar() -> Bool {
        if current == UInt8(ascii: "\"") { return string() != nil }
        if literal("null") || literal("true") || literal("false") { return true }
        return integer() != nil
    }

    /// A JSON string; nil on anything invalid (control characters, bad escapes, lone surrogates, bad UTF-8).
    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = i
        var plain = true   // no escapes: the bytes themselves
        while let b = current, b != UInt8(ascii: "\"") {
            if b < 0x20 { return nil }
            if b == UInt8(ascii: "\\") {
                plain = false
                break
            }
            i += 1
        }
        if plain {
            guard take(UInt8(ascii: "\"")) else { return nil }
            return utf8(UnsafeBufferPointer(rebasing: bytes[start..<(i - 1)]))
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while let b = current {
            i += 1
            switch b {
            case UInt8(ascii: "\""):
                return out.withUnsafeBufferPointer { utf8($0) }
            case UInt8(ascii: "\\"):
                guard let e = current else { return nil }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var unit = hex4() else { return nil }
                    var scalar: Unicode.Scalar?
                    if unit >= 0xD800 && unit < 0xDC00 {
                        guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(),
                              low >= 0xDC00, low < 0xE000 else { return nil }
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        scalar = Unicode.Scalar(unit)
                    } else {
                        scalar = Unicode.Scalar(unit)   // nil for a lone low surrogate
                    }
                    guard let scalar else { return nil }
                    out.append(contentsOf: UTF8.encode(scalar)!)
                default:
                    return nil
                }
            default:
                if b < 0x20 { return nil }
                out.append(b)
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard end - i >= 4 else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: return nil
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// The bytes as a String, or nil if they are not valid UTF-8.
    private func utf8(_ b: UnsafeBufferPointer<UInt8>) -> String? {
        if b.allSatisfy({ $0 < 0x80 }) { return String(decoding: b, as: UTF8.self) }
        return String(bytes: b, encoding: .utf8)
    }
}
