@testable import ChaosCheck
import XCTest

/// The linearizability checker on hand-made register histories: each must be judged as commented.
final class LinearizabilityTests: XCTestCase {
    func testEmptyHistoryIsOK() {
        XCTAssertEqual(HistoryBuilder().check().verdict, .ok)
    }

    func testSequentialHistoryIsOK() {
        var h = HistoryBuilder()
        h.get(1, "k", nil, 0, 10)
        h.put(1, "k", "v1", 20, 30)
        h.get(2, "k", "v1", 40, 50)
        h.cas(3, "k", "v1", "v2", .ok, 60, 70)
        h.get(1, "k", "v2", 80, 90)
        h.put(2, "k", "v3", 100, 110)
        h.get(3, "k", "v3", 120, 130)
        let r = h.check()
        XCTAssertEqual(r.verdict, .ok, "\(r.failures.map(\.text))")
        XCTAssertEqual(r.operationsChecked, 7)
    }

    /// Overlapping writes may take effect in either order; reads overlapping a write may see either value.
    func testConcurrentOverlappingHistoryIsOK() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 100)
        h.put(2, "k", "v2", 10, 50)
        h.get(3, "k", nil, 5, 20)       // before either write
        h.get(4, "k", "v2", 30, 60)     // v2 took effect first
        h.get(3, "k", "v1", 70, 120)    // then v1, which was still running
        h.get(4, "k", "v1", 130, 140)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// The same shape, but the last read returns to v2 after v1 was seen: v1's write overtook it for good.
    func testFlipFlopAfterOverlappingWritesIsAViolation() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 100)
        h.put(2, "k", "v2", 10, 50)
        h.get(4, "k", "v2", 30, 60)
        h.get(3, "k", "v1", 70, 120)
        h.get(4, "k", "v2", 130, 140)
        XCTAssertEqual(h.check().verdict, .violation)
    }

    /// A stale read: the newer put completed before the read began, yet the read returns the old value.
    func testStaleReadIsAViolationNamingTheKey() throws {
        var h = HistoryBuilder()
        h.put(1, "good", "g1", 0, 10)
        h.get(2, "good", "g1", 20, 30)
        h.put(1, "stale", "a", 0, 10)
        h.put(2, "stale", "b", 20, 30)
        h.get(3, "stale", "b", 35, 45)
        h.get(1, "stale", "a", 40, 50)   // overlaps the read of b, but b's put had completed at 30
        let r = h.check()
        XCTAssertEqual(r.verdict, .violation)
        XCTAssertEqual(r.keys["good"], .ok)
        XCTAssertEqual(r.keys["stale"], .violation)
        XCTAssertEqual(r.failures.map(\.key), ["stale"])
        let f = try XCTUnwrap(r.failure(forKey: "stale"))
        XCTAssertTrue(f.reason.contains("no order of the operations"), f.reason)
        XCTAssertTrue(f.failedOperation?.contains("get \"stale\"") == true, f.text)
        XCTAssertEqual(f.stateAtFailure, "\"b\"", f.text)
        XCTAssertFalse(f.lastLinearized.isEmpty, f.text)
        XCTAssertTrue(f.text.contains("key \"stale\": violation"), f.text)
    }

    /// A lost write in the history: an acknowledged put, after which reads only ever see the older value.
    func testLostWriteSeenByLaterReadsIsAViolation() {
        var h = HistoryBuilder()
        h.put(1, "k", "old", 0, 10)
        h.put(2, "k", "new", 20, 30)
        h.get(3, "k", "old", 40, 50)
        h.get(1, "k", "old", 60, 70)
        let r = h.check()
        XCTAssertEqual(r.verdict, .violation)
        XCTAssertEqual(r.failures.first?.key, "k")
    }

    func testReadOfANeverWrittenValueIsReported() throws {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.get(2, "k", "ghost", 20, 30)
        h.put(1, "other", "ghost", 0, 10)   // written to another key: still never written to "k"
        let r = h.check()
        XCTAssertEqual(r.verdict, .violation)
        XCTAssertEqual(r.keys["other"], .ok)
        let f = try XCTUnwrap(r.failure(forKey: "k"))
        XCTAssertTrue(f.reason.contains("read of a value never written"), f.reason)
        let reads = HistoryChecks.neverWrittenReads(h.operations)
        XCTAssertEqual(reads.map(\.key), ["k"])
        XCTAssertEqual(reads.first?.value, "ghost")
        XCTAssertTrue(reads.first?.message.hasPrefix("read of a value never written") == true)
    }

    /// Unknown-outcome writes that did land: a later read sees the value, even long after the client gave up.
    func testInfoWriteThatLandedIsOK() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", .info, 20, 30)
        h.get(3, "k", "v1", 40, 50)     // not landed yet
        h.get(3, "k", "v2", 60, 70)     // landed after the client timed out
        h.get(1, "k", "v2", 80, 90)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// Unknown-outcome writes that never landed: nobody ever reads them.
    func testInfoWriteThatDidNotLandIsOK() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", .info, 20, 30)
        h.cas(4, "k", "v1", "v3", .info, 25, 35)
        h.get(3, "k", "v1", 40, 50)
        h.get(3, "k", "v1", 60, 70)
        h.put(1, "k", "v4", 80, 90)
        h.get(3, "k", "v4", 100, 110)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// Once an unknown-outcome write has been read, it cannot un-happen.
    func testInfoWriteCannotBeSeenThenUnseen() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", .info, 20, 30)
        h.get(3, "k", "v2", 40, 50)
        h.get(3, "k", "v1", 60, 70)
        XCTAssertEqual(h.check().verdict, .violation)
    }

    /// An unknown-outcome write cannot take effect before it was invoked.
    func testInfoWriteCannotLandBeforeItsInvoke() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.get(3, "k", "v2", 20, 30)
        h.put(2, "k", "v2", .info, 40, 50)
        XCTAssertEqual(h.check().verdict, .violation)
    }

    func testCasOKWithTheExpectedValueIsOK() {
        var h = HistoryBuilder()
        h.cas(1, "k", nil, "v1", .ok, 0, 10)   // expected absent
        h.cas(2, "k", "v1", "v2", .ok, 20, 30)
        h.get(3, "k", "v2", 40, 50)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// A cas that reported ok although the register did not hold its expected value.
    func testCasOKWithTheWrongExpectedStateIsAViolation() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(1, "k", "v2", 20, 30)
        h.cas(2, "k", "v1", "v3", .ok, 40, 50)  // v1 was already overwritten
        XCTAssertEqual(h.check().verdict, .violation)
    }

    /// A failed cas is dropped, whether it failed on a mismatch or otherwise: it did not take effect.
    func testFailedCasIsDropped() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.cas(2, "k", "nope", "v2", .fail, 20, 30)   // expected mismatch
        h.cas(2, "k", "v1", "v3", .fail, 40, 50)     // would have matched, but reported failed
        h.get(3, "k", "v1", 60, 70)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// Reading the value of a cas that reported fail means it did take effect: a violation.
    func testReadingTheValueOfAFailedCasIsAViolation() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.cas(2, "k", "v1", "v3", .fail, 20, 30)
        h.get(3, "k", "v3", 40, 50)
        let r = h.check()
        XCTAssertEqual(r.verdict, .violation)
        XCTAssertFalse(r.failures[0].reason.contains("never written"), "v3 was written, by a failed cas")
    }

    /// A failed put and an unknown-outcome get constrain nothing.
    func testFailedPutAndInfoGetAreDropped() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.put(2, "k", "v2", .fail, 20, 30)
        h.get(3, "k", nil, .info, 25, 35)
        h.get(3, "k", "v1", 40, 50)
        h.get(4, "k", nil, .fail, 60, 70)
        let r = h.check()
        XCTAssertEqual(r.verdict, .ok)
        XCTAssertEqual(r.operationsChecked, 2)
    }

    /// An unknown-outcome cas lands only if the register held its expected value when it did.
    func testInfoCasLandsOnlyOnItsExpectedValue() {
        var ok = HistoryBuilder()
        ok.put(1, "k", "v1", 0, 10)
        ok.cas(2, "k", "v1", "v2", .info, 20, 30)
        ok.get(3, "k", "v2", 40, 50)
        XCTAssertEqual(ok.check().verdict, .ok)

        var bad = HistoryBuilder()
        bad.put(1, "k", "v1", 0, 10)
        bad.put(1, "k", "v0", 15, 18)
        bad.cas(2, "k", "v1", "v2", .info, 20, 30)  // v1 is gone before the cas was invoked
        bad.get(3, "k", "v2", 40, 50)
        XCTAssertEqual(bad.check().verdict, .violation)
    }

    /// Operations that touch at the same nanosecond count as concurrent.
    func testEqualTimesCountAsConcurrent() {
        var h = HistoryBuilder()
        h.put(1, "k", "v1", 0, 10)
        h.get(2, "k", nil, 10, 20)
        XCTAssertEqual(h.check().verdict, .ok)
    }

    /// The window of a violation lists the operations concurrent with the one that could not be linearized.
    func testViolationWindowListsConcurrentOperations() throws {
        var h = HistoryBuilder()
        h.put(1, "k", "a", 0, 10)
        h.put(2, "k", "b", 20, 30)
        h.put(3, "k", "c", 32, 60)
        h.get(4, "k", "a", 35, 40)   // stale: b completed at 30
        let f = try XCTUnwrap(h.check().failure(forKey: "k"))
        XCTAssertTrue(f.failedOperation?.contains("get \"k\" → \"a\"") == true, f.text)
        XCTAssertTrue(f.concurrent.contains { $0.contains("put \"k\" \"c\"") }, f.text)
        XCTAssertFalse(f.concurrent.contains { $0.contains("put \"k\" \"a\"") }, f.text)
    }
}
