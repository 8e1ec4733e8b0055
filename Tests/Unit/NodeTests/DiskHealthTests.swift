@testable import NodeCore
import Raft
import XCTest

/// Slow-disk detection: when leadership should leave this node, when a peer should not be given it, and that
/// equally slow disks, stale figures and one long write spanning a pause do not move anything.
final class DiskHealthTests: XCTestCase {
    private let ms: UInt64 = 1_000_000
    private let s: UInt64 = 1_000_000_000

    /// Feeds `count` writes of `writeMs` and, for each peer, appends acknowledged after `ackMs[peer]`.
    private func measured(writeMs: Double, ackMs: [NodeID: UInt64], count: Int = 20, start: UInt64 = 100_000_000_000) -> (DiskHealth, UInt64) {
        var h = DiskHealth(slowMs: 50)
        var now = start
        for i in 1...count {
            h.wrote(nanos: UInt64(writeMs * 1e6))
            for (peer, ack) in ackMs.sorted(by: { $0.key < $1.key }) {
                h.sentAppend(to: peer, shard: 0, lastIndex: LogIndex(i), now: now)
                h.acknowledged(by: peer, shard: 0, index: LogIndex(i), now: now + ack * ms)
            }
            now += 10 * ms
        }
        return (h, now + 500 * ms)
    }

    func testASlowLeaderHandsLeadershipToTheFastestPeerThatIsThreeTimesFaster() {
        let (h, now) = measured(writeMs: 200, ackMs: [2: 5, 3: 3])
        XCTAssertEqual(h.ownWriteMs ?? 0, 200, accuracy: 0.01)
        XCTAssertEqual(h.evictionTarget(connected: [2, 3], now: now), 3, "the fastest")
        XCTAssertEqual(h.evictionTarget(connected: [2], now: now), 2, "only connected peers")
        XCTAssertNil(h.evictionTarget(connected: [], now: now))
        XCTAssertNil(h.evictionTarget(connected: [2, 3], now: now + 6 * s), "figures older than 5 s are not trusted")
    }

    func testHealthyOrEquallySlowDisksMoveNothing() {
        let (fast, t1) = measured(writeMs: 3, ackMs: [2: 4, 3: 4])
        XCTAssertNil(fast.evictionTarget(connected: [2, 3], now: t1), "a healthy disk")
        XCTAssertFalse(fast.isSlow(peer: 2, now: t1))
        let (allSlow, t2) = measured(writeMs: 120, ackMs: [2: 130, 3: 110])
        XCTAssertNil(allSlow.evictionTarget(connected: [2, 3], now: t2), "nobody is three times faster")
        XCTAssertFalse(allSlow.isSlow(peer: 2, now: t2), "a peer as slow as this node is not singled out")
        let (off, t3) = { () -> (DiskHealth, UInt64) in
            var h = DiskHealth(slowMs: 0)
            for _ in 0..<20 { h.wrote(nanos: 500 * ms) }
            return (h, 0)
        }()
        XCTAssertNil(off.evictionTarget(connected: [2, 3], now: t3), "0 disables")
    }

    func testASlowPeerIsNotGivenLeadership() {
        let (h, now) = measured(writeMs: 3, ackMs: [2: 4, 3: 300])
        XCTAssertTrue(h.isSlow(peer: 3, now: now))
        XCTAssertFalse(h.isSlow(peer: 2, now: now))
        XCTAssertFalse(h.isSlow(peer: 3, now: now + 6 * s), "stale figures say nothing")
        XCTAssertNil(h.evictionTarget(connected: [2, 3], now: now), "this node's own disk is fine")
    }

    /// One long write (a big snapshot, a write that spanned a SIGSTOP) moves nothing; three slow writes in a
    /// row, or most of the last nine, do.
    func testOneLongWriteMovesNothingButRunsOrMostlySlowWritesDo() {
        var h = DiskHealth(slowMs: 50)
        for _ in 0..<10 { h.wrote(nanos: 2 * ms) }
        h.wrote(nanos: 30 * s)
        XCTAssertEqual(h.ownWriteMs ?? 0, 2, accuracy: 0.01)
        XCTAssertEqual(h.ownSlowness ?? 0, 2, accuracy: 0.01, "one long write")
        h.wrote(nanos: 200 * ms)
        XCTAssertEqual(h.ownSlowness ?? 0, 2, accuracy: 0.01, "two slow in a row")
        h.wrote(nanos: 200 * ms)
        XCTAssertEqual(h.ownSlowness ?? 0, 200, accuracy: 0.01, "three slow in a row")
        XCTAssertEqual(h.ownWriteMs ?? 0, 2, accuracy: 0.01, "the median is still fast")
        for _ in 0..<4 {
            h.wrote(nanos: 2 * ms)
            h.wrote(nanos: 200 * ms)
        }
        XCTAssertEqual(h.ownWriteMs ?? 0, 200, accuracy: 0.01, "mostly slow, never three in a row")
        XCTAssertEqual(h.ownSlowness ?? 0, 200, accuracy: 0.01)
        for _ in 0..<5 { h.wrote(nanos: 2 * ms) }
        XCTAssertEqual(h.ownSlowness ?? 0, 2, accuracy: 0.01, "healthy again")
    }

    func testRecentLatenciesRing() {
        var r = RecentLatencies()
        XCTAssertNil(r.median)
        XCTAssertNil(r.minOfLast(1))
        for v in 1...12 { r.add(Double(v)) }  // holds 4…12, newest 12
        XCTAssertEqual(r.median, 8)
        XCTAssertEqual(r.minOfLast(3), 10)
        XCTAssertEqual(r.minOfLast(9), 4)
        r.add(0)
        XCTAssertEqual(r.minOfLast(1), 0)
        XCTAssertEqual(r.minOfLast(2), 0)
    }

    /// An append never acknowledged (the peer died, or this node stopped leading) counts as one capped sample
    /// when timing starts again, not as the whole gap.
    func testAnAppendLeftUnacknowledgedCountsAsTheCap() {
        var h = DiskHealth(slowMs: 50)
        let t0: UInt64 = 10 * s
        h.sentAppend(to: 2, shard: 1, lastIndex: 5, now: t0)
        h.sentAppend(to: 2, shard: 1, lastIndex: 9, now: t0 + 500 * ms)  // still timing the first
        h.acknowledged(by: 2, shard: 1, index: 4, now: t0 + 600 * ms)      // not far enough
        XCTAssertNil(h.ackMs(2, now: t0 + 600 * ms))
        h.acknowledged(by: 2, shard: 1, index: 9, now: t0 + 700 * ms)
        XCTAssertEqual(h.ackMs(2, now: t0 + 700 * ms) ?? 0, 700, accuracy: 0.5)
        h.sentAppend(to: 2, shard: 1, lastIndex: 12, now: t0 + 1 * s)
        h.sentAppend(to: 2, shard: 1, lastIndex: 20, now: t0 + 60 * s)     // the first was never acknowledged
        XCTAssertEqual(h.ackMs(2, now: t0 + 60 * s) ?? 0, 1000, accuracy: 0.5, "samples 700 and the 1000 cap")
    }
}
