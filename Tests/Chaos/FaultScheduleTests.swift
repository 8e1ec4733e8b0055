import Raft
import ChaosLab
import Foundation
import XCTest

/// Seeded fault schedules: determinism, pacing, fault-list parsing and the generator itself. No processes.
final class FaultScheduleTests: XCTestCase {
    private var options: ScheduleOptions {
        ScheduleOptions(duration: 120, kinds: FaultKind.allCases, nodes: [1, 2, 3], shards: 8)
    }

    /// SplitMix64 gives the reference outputs of Vigna's splitmix64.c for seed 1234567.
    func testSplitMix64MatchesReference() {
        var r = SplitMix64(seed: 1_234_567)
        XCTAssertEqual((0..<5).map { _ in r.next() },
                       [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
                        4_593_380_528_125_082_431, 16_408_922_859_458_223_821])
        var b = SplitMix64(seed: 7)
        for n in [1, 2, 3, 10, 1000] { for _ in 0..<200 { XCTAssertTrue((0..<n).contains(b.below(n))) } }
    }

    /// The same seed gives the identical schedule (also after a JSON round trip); another seed another one.
    func testSameSeedSameScheduleDifferentSeedDifferent() throws {
        let a = FaultSchedule.generate(seed: 42, options: options)
        let b = FaultSchedule.generate(seed: 42, options: options)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.description, b.description)
        XCTAssertEqual(try JSONDecoder().decode(FaultSchedule.self, from: JSONEncoder().encode(a)), a)
        XCTAssertGreaterThan(a.steps.count, 5)
        XCTAssertNotEqual(a.steps, FaultSchedule.generate(seed: 43, options: options).steps)
        let distinct = Set((0..<50).map { FaultSchedule.generate(seed: UInt64($0), options: options).description })
        XCTAssertEqual(distinct.count, 50, "50 seeds, 50 different schedules")
    }

    /// Faults never overlap, respect the lead-in, quiet gaps and tail, use only the listed kinds, and target
    /// real nodes and shards.
    func testSchedulePacingAndTargets() {
        var o = options
        o.kinds = [.kill, .pause, .partitionLeader, .partitionSymmetric, .partitionAsymmetric, .partitionRing, .transfer]
        for seed in 0..<100 as Range<UInt64> {
            let s = FaultSchedule.generate(seed: seed, options: o)
            var previousEnd = -1
            for step in s.steps {
                XCTAssertTrue(o.kinds.contains(step.kind))
                XCTAssertGreaterThanOrEqual(step.startMs, 1000)
                XCTAssertLessThanOrEqual(step.endMs, 118_000)
                XCTAssertGreaterThanOrEqual(step.durationMs, 2000)
                XCTAssertLessThanOrEqual(step.durationMs, 5000)
                if previousEnd >= 0 {
                    XCTAssertGreaterThanOrEqual(step.startMs - previousEnd, 1000, "quiet gap")
                    XCTAssertLessThanOrEqual(step.startMs - previousEnd, 3000, "quiet gap")
                }
                previousEnd = step.endMs
                XCTAssertEqual(step.order.sorted(), [1, 2, 3])
                switch step.target {
                case .node(let n): XCTAssertTrue([1, 2, 3].contains(n))
                case .nodes(let ns): XCTAssertTrue(ns.allSatisfy { [1, 2, 3].contains($0) })
                case .leaderOf(let shard, let fallback): XCTAssertTrue((0..<8).contains(shard) && [1, 2, 3].contains(fallback))
                case .allNodes: XCTFail("no rolling restart was asked for")
                }
                if step.kind == .partitionSymmetric, case .nodes(let minority) = step.target { XCTAssertEqual(minority.count, 1) }
                XCTAssertEqual(step.direction != nil, step.kind == .partitionAsymmetric)
            }
        }
    }

    /// A rolling restart is planned per node and never cut short; no kinds, no faults.
    func testRollingRestartAndEmptyKinds() {
        var o = ScheduleOptions(duration: 40, kinds: [.rollingRestart])
        let s = FaultSchedule.generate(seed: 9, options: o)
        XCTAssertFalse(s.steps.isEmpty)
        XCTAssertTrue(s.steps.allSatisfy { $0.durationMs == 12_000 && $0.target == .allNodes && $0.endMs <= 38_000 })
        o.kinds = []
        XCTAssertEqual(FaultSchedule.generate(seed: 9, options: o).steps, [])
    }

    /// `partition` expands, `all` is everything, unknown names list what is accepted.
    func testFaultListParsing() throws {
        XCTAssertEqual(try FaultKind.parse("kill, partition,kill"),
                       [.kill, .partitionSymmetric, .partitionAsymmetric, .partitionLeader, .partitionRing])
        XCTAssertEqual(try FaultKind.parse("all"), FaultKind.allCases)
        XCTAssertEqual(try FaultKind.parse("transfer,restart-rolling,pause"), [.transfer, .rollingRestart, .pause])
        XCTAssertEqual(try FaultKind.parse("kill,slow-disk"), [.kill, .slowDisk])
        XCTAssertThrowsError(try FaultKind.parse("explode")) { XCTAssertTrue("\($0)".contains("slow-disk")) }
    }

    /// Slow-disk steps carry their fsync delay, drawn from the seed within the configured range; other kinds
    /// carry none, and adding slow disks leaves the other kinds' draws alone.
    func testSlowDiskStepsCarryTheirDelay() throws {
        var o = ScheduleOptions(duration: 120, kinds: [.slowDisk, .kill])
        o.slowDiskDelayMs = 80...90
        let s = FaultSchedule.generate(seed: 21, options: o)
        XCTAssertEqual(s, FaultSchedule.generate(seed: 21, options: o))
        let slow = s.steps.filter { $0.kind == .slowDisk }
        XCTAssertFalse(slow.isEmpty)
        XCTAssertTrue(slow.allSatisfy { (80...90).contains($0.delayMs ?? -1) }, "\(slow)")
        XCTAssertTrue(s.steps.filter { $0.kind != .slowDisk }.allSatisfy { $0.delayMs == nil })
        XCTAssertTrue(slow.allSatisfy { $0.description.contains("fsync +") })
        XCTAssertEqual(try JSONDecoder().decode(FaultSchedule.self, from: JSONEncoder().encode(s)), s)
        XCTAssertTrue(FaultKind.slowDisk.needsFaultInjection && !FaultKind.kill.needsFaultInjection)
    }
}
