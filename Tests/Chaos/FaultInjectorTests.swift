import ChaosLab
import Foundation
import XCTest

/// The injector running short schedules against real processes: every step is carried out and recorded with
/// its offsets, and the run ends with the cluster whole (no partition, nothing paused or stopped, every shard
/// led, writes accepted).
final class FaultInjectorTests: ChaosTestCase {
    private func assertWhole(_ c: LabCluster, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(lab?.blockedLinks ?? [], [], file: file, line: line)
        for p in c.processes { XCTAssertEqual(p.state, .running, "node \(p.id)", file: file, line: line) }
        try c.waitReady(timeout: 15)
        XCTAssertEqual(try c.waitForAllLeaders(timeout: 15).count, 4, file: file, line: line)
        let id = ChaosTestSupport.conceptID(UInt64.random(in: 1...UInt64.max))
        XCTAssertTrue(ChaosTestSupport.eventually(10) { ChaosTestSupport.put(c, via: 1, id: id, content: "after") }, file: file, line: line)
    }

    private func check(_ records: [FaultRecord], against schedule: FaultSchedule) {
        XCTAssertEqual(records.map(\.step), schedule.steps.map(\.index))
        for (r, s) in zip(records, schedule.steps) {
            XCTAssertEqual(r.kind, s.kind)
            XCTAssertNil(r.problem, "\(r)")
            XCTAssertFalse(r.nodes.isEmpty, "\(r)")
            let heal = r.heal ?? -1
            XCTAssertGreaterThanOrEqual(r.start, Double(s.startMs) / 1000 - 0.05, "\(r) starts on time")
            XCTAssertGreaterThanOrEqual(heal, r.start + Double(s.durationMs) / 1000 - 0.05, "\(r) held for its duration")
            XCTAssertGreaterThanOrEqual(r.healNanos ?? 0, r.startNanos)
        }
    }

    /// kill, pause and three partition kinds from one seeded schedule, in a lab.
    func testMixedScheduleInLab() throws {
        let c = try startCluster(inLab: true)
        var o = ScheduleOptions(duration: 14, kinds: [.kill, .pause, .partitionLeader, .partitionAsymmetric, .partitionRing], shards: 4)
        o.faultDuration = 1...1.5
        o.quietGap = 0.3...0.6
        o.leadIn = 0.3
        o.tail = 0.3
        let schedule = FaultSchedule.generate(seed: 5, options: o)
        print(schedule)
        XCTAssertGreaterThanOrEqual(schedule.steps.count, 4)
        let injector = FaultInjector(cluster: c, log: { print("chaos: \($0)") })
        let records = injector.run(schedule)
        rememberPIDs()
        check(records, against: schedule)
        for r in records where r.kind.cutsLinks { XCTAssertTrue(r.detail.contains("cut"), r.detail) }
        try assertWhole(c)
    }

    /// A transfer storm (leadership transfers requested over HTTP) and a rolling restart, on loopback: no lab
    /// needed. Partition steps without a lab are recorded as skipped.
    func testTransferStormRollingRestartAndSkippedPartition() throws {
        let c = try startCluster(inLab: false)
        let steps = [
            FaultStep(index: 0, startMs: 0, durationMs: 1500, kind: .transfer, target: .leaderOf(shard: 0, fallback: 1), order: [1, 2, 3]),
            FaultStep(index: 1, startMs: 1500, durationMs: 500, kind: .partitionLeader, target: .leaderOf(shard: 1, fallback: 2), order: [1, 2, 3]),
            FaultStep(index: 2, startMs: 2000, durationMs: 3000, kind: .rollingRestart, target: .allNodes, order: [3, 1, 2]),
        ]
        let schedule = FaultSchedule(seed: 0, options: ScheduleOptions(duration: 5, kinds: [.transfer, .rollingRestart]), steps: steps)
        let injector = FaultInjector(cluster: c, log: { print("chaos: \($0)") })
        let records = injector.run(schedule)
        rememberPIDs()
        XCTAssertEqual(records.count, 3)
        XCTAssertNil(records[0].problem, "\(records[0])")
        XCTAssertTrue(records[0].detail.contains("leadership transfers"), records[0].detail)
        XCTAssertFalse(records[0].detail.hasPrefix("0 "), "some transfers were accepted: \(records[0].detail)")
        XCTAssertTrue(records[1].skipped)
        XCTAssertNil(records[2].problem, "\(records[2])")
        XCTAssertEqual(records[2].nodes, [3, 1, 2])
        XCTAssertEqual(records[2].detail.components(separatedBy: "exited 0").count - 1, 3, "three graceful stops: \(records[2].detail)")
        for p in c.processes { XCTAssertGreaterThanOrEqual(p.exitHistory.count, 1, "node \(p.id) was restarted") }
        try assertWhole(c)
    }

    /// `cancel()` cuts a long fault short and the final heal still leaves the cluster whole.
    func testCancelHealsAtOnce() throws {
        let c = try startCluster(inLab: false)
        let schedule = FaultSchedule(seed: 0, options: ScheduleOptions(duration: 60, kinds: [.pause]), steps: [
            FaultStep(index: 0, startMs: 0, durationMs: 60_000, kind: .pause, target: .node(2), order: [1, 2, 3]),
            FaultStep(index: 1, startMs: 61_000, durationMs: 1000, kind: .kill, target: .node(1), order: [1, 2, 3]),
        ])
        let injector = FaultInjector(cluster: c)
        let done = DispatchSemaphore(value: 0)
        let started = Date()
        Thread {
            injector.run(schedule)
            done.signal()
        }.start()
        XCTAssertTrue(ChaosTestSupport.eventually(5) { (try? c.node(2).state) == .paused })
        injector.cancel()
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertEqual(injector.records.count, 1)
        XCTAssertEqual(try c.node(2).state, .running)
        XCTAssertEqual(try c.node(1).exitHistory, [], "the second step never ran")
        try assertWhole(c)
    }
}
