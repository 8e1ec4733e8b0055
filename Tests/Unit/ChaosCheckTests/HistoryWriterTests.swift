@testable import ChaosCheck
import Foundation
import XCTest

/// The writer: whole lines, nothing lost or interleaved when many threads record at once.
final class HistoryWriterTests: XCTestCase {
    private func recordConcurrently(_ writer: HistoryWriter, threads: Int = 8, each: Int = 2000) {
        DispatchQueue.concurrentPerform(iterations: threads) { p in
            for i in 0..<each {
                let value = "p\(p)-\(i)-\"quoted\"\n"
                writer.record(process: p, .invoke, .put, key: "k\(i % 5)", value: value, time: Int64(2 * i))
                writer.record(process: p, .ok, .put, key: "k\(i % 5)", value: value, time: Int64(2 * i + 1))
            }
        }
    }

    func testInMemoryWriterKeepsEveryEvent() throws {
        let writer = HistoryWriter()
        recordConcurrently(writer)
        XCTAssertEqual(writer.count, 32000)
        let parsed = try HistoryReader.parse(writer.data())
        XCTAssertEqual(parsed, writer.events)
        let paired = PairedHistory(events: parsed)
        XCTAssertEqual(paired.operations.count, 16000)
        XCTAssertEqual(paired.problems, [])
        XCTAssertTrue(paired.operations.allSatisfy { $0.outcome == .ok })
    }

    func testFileWriterWritesWholeLines() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chaoscheck-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try HistoryWriter(path: path, bufferBytes: 1000)
        recordConcurrently(writer)
        try writer.close()
        let parsed = try HistoryReader.read(path: path)
        XCTAssertEqual(parsed.count, 32000)
        XCTAssertEqual(PairedHistory(events: parsed).problems, [])
        XCTAssertEqual(Set(parsed.map(\.process)), Set(0..<8))

        writer.record(process: 0, .invoke, .get, key: "k", time: 1)
        XCTAssertThrowsError(try writer.flush(), "append after close is reported")
    }
}
