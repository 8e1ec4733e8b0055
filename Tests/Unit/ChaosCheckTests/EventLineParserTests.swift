@testable import ChaosCheck
import Foundation
import XCTest

/// The fast line parser must agree with JSONDecoder whenever it answers, and answer for the common shapes.
final class EventLineParserTests: XCTestCase {
    private func fast(_ line: String) -> HistoryEvent? {
        let bytes = Array(line.utf8)
        return bytes.withUnsafeBufferPointer { EventLineParser.parse($0, 0..<$0.count) }
    }

    private func decoded(_ line: String) -> HistoryEvent? {
        try? JSONDecoder().decode(HistoryEvent.self, from: Data(line.utf8))
    }

    private func randomString(_ rng: inout TestRandom) -> String {
        let pieces = ["a", "k", "7", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1f}", "é", "中", "😀", "\u{7f}", "{", "}", ",", ":"]
        return (0..<rng.below(6)).map { _ in pieces[rng.below(pieces.count)] }.joined()
    }

    func testAgreesWithTheDecoderOnWrittenLines() {
        var rng = TestRandom(seed: 9)
        for _ in 0..<3000 {
            let e = HistoryEvent(process: rng.below(1000) - 10, type: EventType.allCases[rng.below(4)],
                                 f: OpFunction.allCases[rng.below(3)], key: randomString(&rng),
                                 value: rng.chance(0.3) ? nil : randomString(&rng),
                                 expected: rng.chance(0.5) ? nil : randomString(&rng),
                                 time: Int64(bitPattern: rng.next()) >> Int64(rng.below(64)))
            XCTAssertEqual(fast(e.jsonLine), e, e.jsonLine)
            XCTAssertEqual(decoded(e.jsonLine), e, e.jsonLine)
        }
    }

    func testAcceptsOtherOrdersSpacingEscapesAndUnknownScalars() {
        let expected = HistoryEvent(process: 2, type: .ok, f: .cas, key: "k/é😀", value: nil, expected: "x\"y", time: -5)
        let lines = [
            #" { "time" : -5 , "expected":"x\"y","value":null,"key":"k\/\u00e9\ud83d\ude00","f":"cas","type":"ok","process":2 } "#,
            #"{"process":2,"type":"ok","f":"cas","key":"k/é😀","expected":"x\u0022y","time":-5,"extra":true,"n":0,"s":"z","u":null}"#,
            "{\"process\":2,\r\n\"type\":\"ok\",\t\"f\":\"cas\",\"key\":\"k/é😀\",\"expected\":\"x\\\"y\",\"time\":-5}",
        ]
        for line in lines {
            XCTAssertEqual(decoded(line), expected, line)
            XCTAssertEqual(fast(line), expected, line)
        }
    }

    /// Unusual or invalid lines: the fast parser declines (nil) whenever it cannot be sure, never disagrees.
    func testDeclinesOrAgreesOnOddLines() {
        let base = #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10}"#
        let odd = [
            #"{"process":1.0,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":1e3}"#,
            #"{"process":01,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10}"#,
            #"{"process":1,"process":2,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10,"x":{"y":[1]}}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":99999999999999999999}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"\ud800","expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"\x","expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10} x"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null,"time":10,}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":"v","expected":null}"#,
            #"{"process":1,"type":"INVOKE","f":"put","key":"a","value":"v","expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":"a","value":nul,"expected":null,"time":10}"#,
            #"{"process":1,"type":"invoke","f":"put","key":null,"value":"v","expected":null,"time":10}"#,
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"put\",\"key\":\"a\tb\",\"value\":\"v\",\"expected\":null,\"time\":10}",
            String(base.dropLast()),
            "[]", "", "{}", "null",
        ]
        for line in odd {
            if let f = fast(line) { XCTAssertEqual(f, decoded(line), line) }
        }
        XCTAssertNil(fast(odd[3]), "duplicate fields are left to the decoder")
        XCTAssertNil(fast(odd[6]), "lone surrogate")
        // Invalid UTF-8 inside a string.
        var bytes = Array(base.utf8)
        bytes[bytes.firstIndex(of: UInt8(ascii: "v"))!] = 0xFF
        XCTAssertNil(bytes.withUnsafeBufferPointer { EventLineParser.parse($0, 0..<$0.count) })
        XCTAssertThrowsError(try HistoryReader.parse(Data(bytes)))
    }
}
