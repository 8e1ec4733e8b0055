import Foundation
@testable import Shard
import XCTest

/// The node's vector index: one graph over every shard, saved beside the snapshots and loaded on restart.
final class ConceptVectorsTests: XCTestCase {
    private func vec(_ i: Int) -> [Float] { [Float(cos(Double(i))), Float(sin(Double(i))), Float(i % 7) / 7, 1] }

    /// Changes are queued and applied in bounded slices; later changes to an id replace queued ones.
    func testQueuedChangesApplyInSlicesAndCoalesce() {
        let v = ConceptVectors(dimension: 4)
        let ids = (0..<300).map { ConceptID(hi: UInt64($0), lo: 9) }
        for (i, id) in ids.enumerated() { v.enqueue(id, shard: 0, embedding: vec(i)) }
        v.enqueue(ids[5], shard: 0, embedding: nil)
        XCTAssertEqual(v.pendingCount, 300, "the removal replaced the queued insert")
        XCTAssertTrue(v.process(until: .now), "a slice with no time left does a few and stops")
        XCTAssertLessThan(v.pendingCount, 300)
        v.processAll()
        XCTAssertEqual(v.pendingCount, 0)
        XCTAssertEqual(v.count, 299)
        XCTAssertEqual(try v.search(vec(42), VectorQuery(k: 1, ef: 64)).hits.first?.id, ids[42])
    }

    func testSaveLoadCoversAndRebuild() throws {
        let dir = NSTemporaryDirectory() + "sutra-vectors-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shards = 4
        let v = ConceptVectors(dimension: 4)
        let ids = (0..<200).map { ConceptID(hi: UInt64($0), lo: 7) }
        for (i, id) in ids.enumerated() { v.set(id, shard: id.shard(of: shards), embedding: vec(i)) }
        v.remove(ids[0], shard: ids[0].shard(of: shards))
        XCTAssertEqual(v.count, 199)
        XCTAssertEqual((0..<shards).map { v.count(shard: $0) }.reduce(0, +), 199)
        let before = try v.search(vec(42), VectorQuery(k: 5, ef: 64)).hits
        XCTAssertEqual(before.first?.id, ids[42])
        try v.save(to: dir, positions: [0: 10, 1: 20, 2: 30, 3: 40], shardCount: shards)

        let w = ConceptVectors(dimension: 4)
        XCTAssertNil(w.load(from: dir, shardCount: shards))
        XCTAssertEqual(w.count, 199)
        XCTAssertEqual(try w.search(vec(42), VectorQuery(k: 5, ef: 64)).hits.map(\.id), before.map(\.id))
        XCTAssertTrue(w.covers(shard: 1, snapshotIndex: 20))
        XCTAssertFalse(w.covers(shard: 1, snapshotIndex: 21), "a newer snapshot than the saved index: rebuild that shard")
        // Rebuilding shard 1 from an empty state drops exactly that shard's vectors.
        let shard1 = w.count(shard: 1)
        w.rebuild(shard: 1, shardCount: shards, from: ShardState(limits: ShardLimits(dimension: 4)))
        XCTAssertEqual(w.pendingCount, shard1, "a rebuild is queued, not applied at once")
        w.processAll()
        XCTAssertEqual(w.count, 199 - shard1)
        XCTAssertFalse(w.covers(shard: 1, snapshotIndex: 0))

        // Mismatches and damage are refused (the caller rebuilds).
        XCTAssertNotNil(ConceptVectors(dimension: 4).load(from: dir, shardCount: 8))
        XCTAssertNotNil(ConceptVectors(dimension: 3).load(from: dir, shardCount: shards))
        var meta = try Data(contentsOf: URL(fileURLWithPath: dir + "/vectors.meta"))
        meta[30] ^= 0x01
        try meta.write(to: URL(fileURLWithPath: dir + "/vectors.meta"))
        let x = ConceptVectors(dimension: 4)
        XCTAssertEqual(x.load(from: dir, shardCount: shards), "\(dir)/vectors.meta: checksum mismatch")
        XCTAssertEqual(x.count, 0, "nothing loaded from a damaged file")
        XCTAssertEqual(ConceptVectors(dimension: 4).load(from: dir + "-missing", shardCount: shards), "no saved vector index")
    }

    /// The policy that makes the default right: small indexes (and few filtered candidates) are scanned exactly,
    /// larger ones walk the graph with a beam that grows with k.
    func testSearchPolicyChoosesExactBelowTheThresholdAndTiesEfToK() {
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 20_000, dimension: 128, passing: nil), .exact, "20K × 128-d: a 10 MiB scan")
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 100_000, dimension: 768, passing: nil), .graph)
        XCTAssertEqual(SearchPolicy.method(exact: true, live: 100_000, dimension: 768, passing: nil), .exact, "asked for")
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 100_000, dimension: 768, passing: 2_000), .exact, "a filter passing few")
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 100_000, dimension: 768, passing: 50_000), .filteredGraph)
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 100_000, dimension: 768, passing: 10_000, ef: 256), .exact,
                       "a walk holding 256 of 1-in-10 would read more vectors than the 10,000 passing")
        XCTAssertEqual(SearchPolicy.method(exact: false, live: 1_000_000, dimension: 768, passing: 200_000, ef: 256), .filteredGraph)
        XCTAssertEqual(SearchPolicy.method(exact: false, live: Int.max / 2, dimension: 2048, passing: nil), .graph, "no overflow")
        XCTAssertEqual(SearchPolicy.defaultEf(k: 10), SearchPolicy.defaultEfFloor)
        XCTAssertEqual(SearchPolicy.defaultEf(k: 1000), 1000 * SearchPolicy.defaultEfPerAnswer)
    }

    /// A filtered search answers only admitted concepts and all k of them when k pass, nearest first; the
    /// estimate of how many pass is close.
    func testFilteredSearchAnswersKAdmittedConcepts() throws {
        let v = ConceptVectors(dimension: 4)
        let ids = (0..<1000).map { ConceptID(hi: UInt64($0) + 1, lo: 3) }
        for (i, id) in ids.enumerated() { v.set(id, shard: 0, embedding: vec(i)) }
        let admitted = Set(ids.enumerated().filter { $0.offset % 50 == 7 }.map(\.element))
        let (hits, method) = try v.search(vec(7), VectorQuery(k: 10), admits: { admitted.contains($0) })
        XCTAssertEqual(method, .exact)
        XCTAssertEqual(hits.count, 10)
        XCTAssertTrue(hits.allSatisfy { admitted.contains($0.id) })
        XCTAssertEqual(hits.first?.id, ids[7])
        XCTAssertEqual(hits.map(\.distance), hits.map(\.distance).sorted())
        XCTAssertEqual(try v.search(vec(7), VectorQuery(k: 50), admits: { admitted.contains($0) }).hits.count, 20, "all 20 that pass")
        XCTAssertEqual(try v.search(vec(7), VectorQuery(k: 5), admits: { _ in false }).hits.count, 0)
        XCTAssertEqual(v.passing(SearchFilter(minStrength: 0.5), { admitted.contains($0) }).count, 20, "unknown attributes: asked")
        // Unfiltered at this size: exact, so the answer is brute force's.
        let (all, m) = try v.search(vec(500), VectorQuery(k: 3))
        XCTAssertEqual(m, .exact)
        XCTAssertEqual(all.first?.id, ids[500])
    }

    /// Strength and confidence thresholds are read from the attributes indexed with each vector (the
    /// authoritative test runs only for what they cannot say: an association type, or unknown attributes), and
    /// the answers are the same either way.
    func testThresholdsAreReadFromTheIndexedAttributes() throws {
        let v = ConceptVectors(dimension: 4)
        let ids = (0..<400).map { ConceptID(hi: UInt64($0) + 1, lo: 5) }
        for (i, id) in ids.enumerated() {
            v.enqueue(id, shard: 0, embedding: vec(i), attributes: FilterAttributes(strength: i % 4 == 0 ? 0.9 : 0.1, confidence: 1))
        }
        v.processAll()
        var lookups = 0
        let strong = Set(ids.enumerated().filter { $0.offset % 4 == 0 }.map(\.element))
        let filter = SearchFilter(minStrength: 0.5)
        let hits = try v.search(vec(8), VectorQuery(k: 10, filter: filter), admits: { lookups += 1; return strong.contains($0) }).hits
        XCTAssertEqual(hits.count, 10)
        XCTAssertTrue(hits.allSatisfy { strong.contains($0.id) })
        XCTAssertEqual(hits.first?.id, ids[8])
        XCTAssertEqual(lookups, 0, "thresholds alone: answered from the attributes")
        let typed = try v.search(vec(8), VectorQuery(k: 10, filter: SearchFilter(minStrength: 0.5, associationType: .causal)),
                                 admits: { lookups += 1; return strong.contains($0) }).hits
        XCTAssertEqual(typed.map(\.id), hits.map(\.id))
        XCTAssertEqual(lookups, 100, "looked up only past the thresholds: \(lookups) of 400")
    }
}
