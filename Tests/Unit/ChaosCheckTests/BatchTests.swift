@testable import ChaosCheck
import Foundation
import XCTest

/// Batches in the history: the format, the pairing into one write per item, and the checkers on histories of
/// the kind `sutra chaos` records — in particular an acknowledged cross-shard batch whose item is then read as
/// absent (or as its old value) by the process that wrote it, which is what a participant shard answering
/// reads before applying the batch's intent produces.
final class BatchTests: XCTestCase {
    private let items: [BatchItemRecord] = [.put("k1", "a1"), .put("k2", "b1")]

    // MARK: format

    func testBatchLineHasItemsAfterExpected() throws {
        let e = HistoryEvent.batch(process: 4, .invoke, items: [.put("k1", "v\"1"), .delete("k5")], time: 7)
        XCTAssertEqual(e.key, "k1,k5")
        XCTAssertEqual(e.jsonLine, #"{"process":4,"type":"invoke","f":"batch","key":"k1,k5","value":null,"expected":null,"items":[{"f":"put","key":"k1","value":"v\"1"},{"f":"delete","key":"k5","value":null}],"time":7}"#)
        let plain = HistoryEvent(process: 1, type: .ok, f: .delete, key: "k5", time: 8)
        XCTAssertFalse(plain.jsonLine.contains("items"), "items only on batches")
        XCTAssertEqual(try HistoryReader.parse(e.jsonLine + "\n" + plain.jsonLine), [e, plain])
        let data = try JSONEncoder().encode(e)
        XCTAssertEqual(try JSONDecoder().decode(HistoryEvent.self, from: data), e)
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("items"))
    }

    func testFastParserLeavesBatchLinesToTheDecoder() {
        let line = HistoryEvent.batch(process: 1, .ok, items: items, time: 3).jsonLine
        let bytes = Array(line.utf8)
        XCTAssertNil(bytes.withUnsafeBufferPointer { EventLineParser.parse($0, 0..<$0.count) })
        XCTAssertEqual(try HistoryReader.parse(line).first?.items, items)
    }

    // MARK: pairing

    func testBatchPairsIntoOneWritePerItemWithTheBatchsIntervalAndOutcome() {
        var h = HistoryBuilder()
        h.put(1, "k1", "a0", 0, 5)
        h.batch(2, [.put("k1", "a1"), .delete("k2")], 10, 20)
        h.batch(3, items, .fail, 12, 22)
        h.batch(2, [.put("k3", "c1"), .put("k4", "d1")], .info, 30, 40)
        let paired = PairedHistory(events: h.events)
        XCTAssertEqual(paired.problems, [])
        let ops = paired.operations
        XCTAssertEqual(ops.map(\.index), Array(0..<7))
        XCTAssertEqual(ops[1], HistoryOperation(index: 1, process: 2, f: .put, key: "k1", value: "a1", expected: nil,
                                                invokeTime: 10, completionTime: 20, outcome: .ok,
                                                batch: BatchMembership(number: 0, item: 0, count: 2)))
        XCTAssertEqual(ops[2], HistoryOperation(index: 2, process: 2, f: .delete, key: "k2", value: nil, expected: nil,
                                                invokeTime: 10, completionTime: 20, outcome: .ok,
                                                batch: BatchMembership(number: 0, item: 1, count: 2)))
        XCTAssertEqual(ops[3...4].map(\.outcome), [.fail, .fail])
        XCTAssertEqual(ops[3...4].map(\.batch?.number), [1, 1])
        XCTAssertEqual(ops[5...6].map(\.outcome), [.info, .info])
        XCTAssertEqual(ops[5...6].map(\.completionTime), [nil, nil])
        XCTAssertTrue(ops.allSatisfy(\.isWrite))
        XCTAssertEqual(ops[2].line(), #"process 2: delete "k2" ok, item 2 of 2 of batch #0 (invoked 0.000000010 s, completed 0.000000020 s)"#)

        let s = HistorySummary(ops)
        XCTAssertEqual(s.operations, 7)
        XCTAssertEqual(s.batches, OutcomeCounts(ok: 1, fail: 1, info: 1))
        XCTAssertEqual(s.batchItems, 6)
        XCTAssertEqual(s.byFunction["put"], OutcomeCounts(ok: 2, fail: 2, info: 2))
        XCTAssertEqual(s.byFunction["delete"], OutcomeCounts(ok: 1, fail: 0, info: 0))
        XCTAssertTrue(s.text.contains("batches: ok 1, fail 1, info 1 (6 items"), s.text)
    }

    func testMalformedBatchesAreProblems() {
        let good = HistoryEvent.batch(process: 1, .invoke, items: items, time: 1)
        var other = HistoryEvent.batch(process: 1, .ok, items: [.put("k1", "a1"), .put("k2", "zz")], time: 2)
        other.key = good.key
        let cases: [[HistoryEvent]] = [
            [good, other],                                                              // items differ
            [.batch(process: 1, .invoke, items: [], time: 1), .batch(process: 1, .ok, items: [], time: 2)],
            [.batch(process: 1, .invoke, items: [BatchItemRecord(f: .cas, key: "k1", value: "x")], time: 1)],
            [HistoryEvent(process: 1, type: .invoke, f: .put, key: "k1", value: "x", items: items, time: 1)],
        ]
        for events in cases {
            let paired = PairedHistory(events: events)
            XCTAssertEqual(paired.problems.count, 1, "\(events.map(\.jsonLine)) → \(paired.problems)")
            XCTAssertFalse(HistoryChecker.check(paired).valid)
        }
        XCTAssertEqual(PairedHistory(events: cases[0]).operations.map(\.outcome), [.info, .info])
    }

    func testBatchWritingOneKeyTwiceIsANote() {
        var h = HistoryBuilder()
        h.batch(1, [.put("k1", "a1"), .put("k1", "a2")], 0, 10)
        let paired = PairedHistory(events: h.events)
        XCTAssertEqual(paired.problems, [])
        XCTAssertTrue(paired.notes.contains { $0.contains("more than once") }, "\(paired.notes)")
    }

    // MARK: read-your-writes after a batch

    /// Hole 1: the batch is acknowledged, then its process reads the participant's item and finds it absent.
    func testAcknowledgedBatchItemReadAsAbsentIsCaught() throws {
        var h = HistoryBuilder()
        h.batch(1, items, 10, 20)
        h.get(1, "k2", nil, 21, 25)
        h.get(2, "k1", "a1", 22, 26)
        let report = HistoryChecker.check(events: h.events)
        XCTAssertFalse(report.valid)
        XCTAssertEqual(report.linearizability.keys["k2"], .violation)
        XCTAssertEqual(report.linearizability.keys["k1"], .ok)
        let f = try XCTUnwrap(report.linearizability.failure(forKey: "k2"))
        XCTAssertTrue(f.failedOperation?.contains(#"get "k2" → absent"#) == true, f.text)
        XCTAssertTrue(f.text.contains("item 2 of 2 of batch #0"), f.text)

        XCTAssertEqual(report.staleReads.count, 1)
        let stale = try XCTUnwrap(report.staleReads.first)
        XCTAssertEqual(stale.key, "k2")
        XCTAssertNil(stale.value)
        XCTAssertTrue(stale.ownWrite)
        XCTAssertEqual(stale.newerWriteBatch, BatchMembership(number: 0, item: 1, count: 2))
        XCTAssertTrue(stale.message.hasPrefix(#"stale read: key "k2" read absent after the reader's own acknowledged put "b1" (ok, item 2 of 2 of batch #0)"#),
                      stale.message)
        XCTAssertTrue(report.text.contains("stale reads: 1 (1 of the reader's own write, 1 after an acknowledged batch item)"), report.text)
    }

    /// The same with a value from before the batch: the old value is as wrong as absent.
    func testAcknowledgedBatchItemReadAsItsOldValueIsCaught() {
        var h = HistoryBuilder()
        h.put(3, "k2", "b0", 0, 5)
        h.batch(1, items, 10, 20)
        h.get(1, "k2", "b0", 21, 25)
        let report = HistoryChecker.check(events: h.events)
        XCTAssertEqual(report.linearizability.keys["k2"], .violation)
        XCTAssertEqual(report.staleReads.map(\.value), ["b0"])
    }

    /// The correct history: the read sees the batch's write; a read overlapping the batch may see either.
    func testAcknowledgedBatchReadBackCorrectlyIsValid() {
        var h = HistoryBuilder()
        h.put(3, "k2", "b0", 0, 5)
        h.get(2, "k2", "b0", 12, 18)      // concurrent with the batch: the old value is fine
        h.batch(1, items, 10, 20)
        h.get(1, "k2", "b1", 21, 25)
        h.get(2, "k1", "a1", 22, 26)
        let report = HistoryChecker.check(events: h.events, finals: ["k1": "a1", "k2": "b1"])
        XCTAssertTrue(report.valid, report.text)
        XCTAssertEqual(report.staleReads, [])
    }

    /// A batch's delete makes the register absent: reading absent after it is right, the old value is stale.
    func testBatchDeleteIsAWriteOfAbsent() {
        var ok = HistoryBuilder()
        ok.put(3, "k1", "a0", 0, 5)
        ok.batch(1, [.delete("k1"), .put("k2", "b1")], 10, 20)
        ok.get(1, "k1", nil, 21, 25)
        ok.put(2, "k1", "a2", 30, 35)
        ok.get(1, "k1", "a2", 40, 45)
        XCTAssertTrue(HistoryChecker.check(events: ok.events, finals: ["k1": "a2", "k2": "b1"]).valid)

        var stale = HistoryBuilder()
        stale.put(3, "k1", "a0", 0, 5)
        stale.batch(1, [.delete("k1"), .put("k2", "b1")], 10, 20)
        stale.get(1, "k1", "a0", 21, 25)
        let report = HistoryChecker.check(events: stale.events)
        XCTAssertEqual(report.linearizability.keys["k1"], .violation)
        XCTAssertEqual(report.staleReads.map(\.key), ["k1"])
        XCTAssertTrue(report.staleReads.first?.message.contains("acknowledged delete (ok, item 1 of 2 of batch #0)") == true,
                      report.staleReads.first?.message ?? "")
    }

    /// Once a register has been deleted, absent has more than one source: absent after a later put is stale only
    /// if that put came after the delete.
    func testAbsentAfterADeleteAndAConcurrentPut() {
        var h = HistoryBuilder()
        h.put(3, "k1", "a0", 0, 5)
        h.put(2, "k1", "a1", 8, 30)
        h.batch(1, [.delete("k1"), .put("k2", "b1")], 10, 20)
        h.get(1, "k1", nil, 21, 25)     // the delete took effect; the put still running lands after this read
        h.get(4, "k1", "a1", 31, 35)    // …as this one shows
        XCTAssertTrue(HistoryChecker.check(events: h.events).valid)
    }

    /// A failed batch changed nothing: its values must not be read, the old state may.
    func testFailedBatchHasNoEffect() {
        var ok = HistoryBuilder()
        ok.batch(1, items, .fail, 10, 20)
        ok.get(1, "k2", nil, 21, 25)
        XCTAssertTrue(HistoryChecker.check(events: ok.events).valid)

        var bad = HistoryBuilder()
        bad.batch(1, items, .fail, 10, 20)
        bad.get(1, "k2", "b1", 21, 25)
        XCTAssertEqual(HistoryChecker.check(events: bad.events).linearizability.keys["k2"], .violation)
    }

    /// An info batch may land late or never — but once its write was seen, it cannot be unseen.
    func testInfoBatchMayLandLateButNotFlipBack() {
        var ok = HistoryBuilder()
        ok.batch(1, items, .info, 10, 20)
        ok.get(2, "k2", nil, 21, 25)
        ok.get(2, "k2", "b1", 30, 35)
        ok.get(2, "k1", "a1", 40, 45)
        XCTAssertTrue(HistoryChecker.check(events: ok.events).valid)

        var bad = ok
        bad.get(2, "k2", nil, 50, 55)
        XCTAssertEqual(HistoryChecker.check(events: bad.events).linearizability.keys["k2"], .violation)
    }

    /// Final reads: an acknowledged batch's write that the final read does not show is lost.
    func testFinalReadMissingABatchItemIsALostWrite() {
        var h = HistoryBuilder()
        h.put(3, "k1", "a0", 0, 5)
        h.batch(1, [.delete("k1"), .put("k2", "b1")], 10, 20)
        var finals: [String: String?] = ["k1": "a0"]
        finals.updateValue(nil, forKey: "k2")
        let report = HistoryChecker.check(events: h.events, finals: finals)
        XCTAssertFalse(report.valid)
        XCTAssertEqual(report.lostWrites.map(\.key), ["k1", "k2"])
        XCTAssertEqual(report.finalReads?.keys["k1"], .violation)
        XCTAssertEqual(report.finalReads?.keys["k2"], .violation)

        var right: [String: String?] = ["k2": "b1"]
        right.updateValue(nil, forKey: "k1")
        XCTAssertTrue(HistoryChecker.check(events: h.events, finals: right).valid)
    }
}
