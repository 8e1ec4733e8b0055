import Foundation
import HTTP
import XCTest

/// The direct JSON writer: floats read back exactly, strings escape, the text parses as the JSON it claims.
final class JSONWriterTests: XCTestCase {
    private func text(_ f: Float) -> String {
        var out: [UInt8] = []
        ShortestFloat.append(f, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testFloatsReadBackExactlyOverRandomBitPatterns() {
        var rng = SystemRandomNumberGenerator()
        var checked = 0
        var longer = 0
        for _ in 0..<300_000 {
            let f = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            guard f.isFinite else { continue }
            let s = text(f)
            guard let back = Float(s) else { return XCTFail("\(f.bitPattern): '\(s)' does not parse") }
            XCTAssertEqual(back.bitPattern == f.bitPattern || (back == 0 && f == 0), true, "\(f) (bits \(f.bitPattern)) → '\(s)' → \(back)")
            if significantDigits(s) > significantDigits(f.description) { longer += 1 }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 290_000)
        // The safety margin costs a digit where the shortest decimal sits on the interval's very edge (~0.2 %).
        XCTAssertLessThan(longer, checked / 200, "\(longer) of \(checked) outputs are longer than the shortest")
    }

    func testEmbeddingRangeIsShortest() {
        for _ in 0..<100_000 {
            let f = Float.random(in: -1...1)
            let s = text(f)
            XCTAssertEqual(Float(s), f, "'\(s)'")
            XCTAssertLessThanOrEqual(significantDigits(s), significantDigits(f.description), "\(f): '\(s)' vs \(f.description)")
        }
    }

    func testEdgeCases() {
        XCTAssertEqual(text(0), "0")
        XCTAssertEqual(text(-0.0), "-0")
        XCTAssertEqual(text(1), "1")
        XCTAssertEqual(text(0.1), "0.1")
        XCTAssertEqual(text(-2.5), "-2.5")
        XCTAssertEqual(text(100), "100")
        XCTAssertEqual(text(1e-7), "0.0000001")
        XCTAssertEqual(text(.nan), "null")
        XCTAssertEqual(text(.infinity), "null")
        for f: Float in [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                         1e20, 1e21, 123456789, 16777216, 0.3, 1e-8, 3.4028235e38, 9.999999e-6, 9.9999999] {
            let s = text(f)
            XCTAssertEqual(Float(s), f, "\(f) → '\(s)'")
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data("[\(s)]".utf8)), "'\(s)' is not a JSON number")
        }
    }

    func testWriterProducesValidEscapedJSON() throws {
        var w = JSONWriter()
        w.beginObject()
        w.key("s"); w.string("quote \" backslash \\ newline \n tab \t bell \u{7} é ✓")
        w.key("n"); w.uint(UInt64.max)
        w.key("i"); w.int(-42)
        w.key("b"); w.bool(false)
        w.key("v"); w.floats([0.5, -1, 3e-9])
        w.key("o"); w.beginArray(); w.beginObject(); w.key("x"); w.int(0); w.endObject(); w.beginObject(); w.endObject(); w.endArray()
        w.endObject()
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any], String(decoding: w.bytes, as: UTF8.self))
        XCTAssertEqual(parsed["s"] as? String, "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓")
        XCTAssertEqual((parsed["n"] as? NSNumber)?.uint64Value, UInt64.max)
        XCTAssertEqual(parsed["i"] as? Int, -42)
        XCTAssertEqual((parsed["v"] as? [Double])?.map { Float($0) }, [0.5, -1, 3e-9])
        XCTAssertEqual((parsed["o"] as? [Any])?.count, 2)
    }

    private func significantDigits(_ s: String) -> Int {
        let mantissa = s.split(separator: "e").first.map(String.init) ?? s
        let digits = mantissa.filter(\.isNumber).drop(while: { $0 == "0" })
        var d = String(digits)
        while d.count > 1 && d.hasSuffix("0") { d.removeLast() }
        return max(d.count, 1)
    }
}
