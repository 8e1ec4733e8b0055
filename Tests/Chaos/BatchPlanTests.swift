@testable import ChaosRunner
import Raft
import SutraClient
import XCTest

/// The chaos workload's batches without a cluster: registers spread over the shards, and every batch plan
/// spanning two shards, reading back a participant's item, deleting only registers seen present — the same
/// plans for the same seed.
final class BatchPlanTests: XCTestCase {
    private let keys = (0..<8).map { "k\($0)" }
    private func shard(_ key: String) -> Int { Int(key.dropFirst())! % 4 }

    func testRegistersAreSpreadOverTheShards() {
        for seed: UInt64 in [1, 7, 0xFFFF_FFFF_FFFF] {
            let ids = (0..<20).map { Workload.registerID($0, shards: 4, seed: seed) }
            XCTAssertEqual(Set(ids).count, 20)
            XCTAssertEqual(ids.map { $0.shard(of: 4) }, (0..<20).map { $0 % 4 })
            XCTAssertEqual(Workload.registerID(3, shards: 1, seed: seed).shard(of: 1), 0)
        }
        XCTAssertNotEqual(Workload.registerID(0, shards: 4, seed: 1), Workload.registerID(0, shards: 4, seed: 2))
    }

    private func plans(seed: UInt64, present: Set<String>) -> [BatchPlan] {
        var rng = SplitMix64(seed: seed)
        return (0..<2000).map { _ in
            BatchPlan.draw(&rng, keys: keys, shard: shard, present: { present.contains($0) })!
        }
    }

    func testEveryPlanSpansTwoShardsAndReadsAParticipant() {
        let present: Set<String> = ["k0", "k1", "k2", "k5"]
        let all = plans(seed: 3, present: present)
        var sizes = Set<Int>(), deletes = 0, firsts = Set<String>()
        for p in all {
            let ks = p.items.map(\.key)
            XCTAssertEqual(Set(ks).count, ks.count, "distinct registers")
            XCTAssertTrue((2...3).contains(ks.count))
            XCTAssertNotEqual(shard(ks[0]), shard(ks[1]), "the first two items on different shards")
            XCTAssertTrue(ks.contains(p.readKey))
            XCTAssertNotEqual(shard(p.readKey), shard(ks[0]), "the read goes to a participant shard, not the coordinator's")
            for item in p.items where item.delete { XCTAssertTrue(present.contains(item.key), "deletes only registers seen present") }
            sizes.insert(ks.count)
            deletes += p.items.filter(\.delete).count
            firsts.insert(ks[0])
        }
        XCTAssertEqual(sizes, [2, 3])
        XCTAssertGreaterThan(deletes, 300)
        XCTAssertEqual(firsts.count, keys.count)
        XCTAssertEqual(all, plans(seed: 3, present: present), "seeded")
        XCTAssertNotEqual(all, plans(seed: 4, present: present))
    }

    func testRegistersOnOneShardStillMakeBatchesAndTooFewMakeNone() {
        var rng = SplitMix64(seed: 1)
        let p = BatchPlan.draw(&rng, keys: ["a", "b"], shard: { _ in 0 }, present: { _ in false })
        XCTAssertEqual(Set(p?.items.map(\.key) ?? []), ["a", "b"])
        XCTAssertEqual(p?.items.contains { $0.delete }, false)
        XCTAssertNil(BatchPlan.draw(&rng, keys: ["a"], shard: { _ in 0 }, present: { _ in true }))
    }
}
