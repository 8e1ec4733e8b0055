@testable import ChaosCheck
import Foundation
import XCTest

/// The history file format: JSON lines with explicit nulls, read back exactly; malformed lines name their line.
final class HistoryCodingTests: XCTestCase {
    private let events = [
        HistoryEvent(process: 0, type: .invoke, f: .put, key: "k1", value: "v1", expected: nil, time: 1),
        HistoryEvent(process: 0, type: .ok, f: .put, key: "k1", value: "v1", expected: nil, time: 2),
        HistoryEvent(process: 3, type: .invoke, f: .cas, key: "k\"2\n", value: "ü\t\u{1}", expected: nil, time: 3),
        HistoryEvent(process: 3, type: .fail, f: .cas, key: "k\"2\n", value: "ü\t\u{1}", expected: nil, time: 4),
        HistoryEvent(process: 7, type: .invoke, f: .get, key: "k1", value: nil, expected: nil, time: 5),
        HistoryEvent(process: 7, type: .info, f: .get, key: "k1", value: nil, expected: nil, time: 9_000_000_000_000),
    ]

    func testJSONLineHasTheDocumentedFieldsAndExplicitNulls() {
        XCTAssertEqual(events[4].jsonLine,
                       #"{"process":7,"type":"invoke","f":"get","key":"k1","value":null,"expected":null,"time":5}"#)
        XCTAssertEqual(events[2].jsonLine,
                       #"{"process":3,"type":"invoke","f":"cas","key":"k\"2\n","value":"ü\t\u0001","expected":null,"time":3}"#)
    }

    func testJSONLinesRoundTrip() throws {
        let text = events.map(\.jsonLine).joined(separator: "\n") + "\n"
        XCTAssertEqual(try HistoryReader.parse(text), events)
    }

    func testCodableRoundTripEncodesNulls() throws {
        let data = try JSONEncoder().encode(events[0])
        let json = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(json.contains(#""expected":null"#), json)
        XCTAssertEqual(try JSONDecoder().decode(HistoryEvent.self, from: data), events[0])
        XCTAssertEqual(try JSONDecoder().decode([HistoryEvent].self, from: JSONEncoder().encode(events)), events)
    }

    func testMissingValueAndExpectedDecodeAsNull() throws {
        let e = try HistoryReader.parse(#"{"process":1,"type":"invoke","f":"get","key":"a","time":10}"#)
        XCTAssertEqual(e, [HistoryEvent(process: 1, type: .invoke, f: .get, key: "a", time: 10)])
    }

    func testBlankLinesAndCRLFAreAccepted() throws {
        let text = "\n" + events[0].jsonLine + "\r\n  \n" + events[1].jsonLine
        XCTAssertEqual(try HistoryReader.parse(text), Array(events[0...1]))
    }

    func testMalformedLineNamesItsLineNumber() {
        let cases: [(String, String)] = [
            (#"{"process":1,"type":"invoke","f":"put","key":"a","value":"x""#, "invalid"),   // truncated
            (#"{"process":1,"type":"done","f":"put","key":"a","value":"x","expected":null,"time":1}"#, "type"),
            (#"{"process":1,"type":"ok","f":"put","value":"x","expected":null,"time":1}"#, "missing field \"key\""),
            (#"{"process":"one","type":"ok","f":"put","key":"a","value":"x","expected":null,"time":1}"#, "process"),
            ("not json", "invalid"),
        ]
        for (bad, mention) in cases {
            let text = events[0].jsonLine + "\n\n" + bad + "\n" + events[1].jsonLine + "\n"
            XCTAssertThrowsError(try HistoryReader.parse(text), bad) { error in
                guard let e = error as? HistoryReadError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.line, 3, bad)
                XCTAssertTrue(e.description.hasPrefix("history line 3: "), e.description)
                XCTAssertTrue(e.description.contains(mention), e.description)
            }
        }
    }

    func testReadingAMissingFileIsAClearError() {
        XCTAssertThrowsError(try HistoryReader.read(path: "/nonexistent/history.jsonl")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/history.jsonl"), "\(error)")
        }
    }
}
