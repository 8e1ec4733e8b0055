import Foundation
@testable import VectorIndex
import XCTest

final class HNSWIndexTests: XCTestCase {
    func randomVectors(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
        var x = seed
        func next() -> Float {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return Float(x >> 40) / Float(1 << 24) - 0.5
        }
        return (0..<n).map { _ in (0..<dim).map { _ in next() } }
    }

    func bruteForce(_ data: [[Float]], _ q: [Float], k: Int, cosine: Bool) -> [UInt64] {
        func dist(_ a: [Float], _ b: [Float]) -> Float {
            if cosine {
                var dot: Float = 0, na: Float = 0, nb: Float = 0
                for i in 0..<a.count { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
                return 1 - dot / (na.squareRoot() * nb.squareRoot())
            }
            var s: Float = 0
            for i in 0..<a.count { let d = a[i] - b[i]; s += d * d }
            return s
        }
        return data.indices.map { (UInt64($0), dist(data[$0], q)) }.sorted { $0.1 < $1.1 }.prefix(k).map(\.0)
    }

    func testExactNeighboursOnASmallSet() throws {
        let idx = try HNSWIndex(dimension: 3, metric: .l2, capacity: 4)
        try idx.upsert(label: 10, vector: [0, 0, 0])
        try idx.upsert(label: 11, vector: [1, 0, 0])
        try idx.upsert(label: 12, vector: [5, 5, 5])
        let r = try idx.search([0.9, 0, 0], k: 2)
        XCTAssertEqual(r.map(\.label), [11, 10])
        XCTAssertEqual(r[0].distance, 0.01, accuracy: 1e-5)
        XCTAssertEqual(try idx.search([0, 0, 0], k: 10).count, 3, "k beyond the count returns what exists")
    }

    func testUpsertReplacesRemoveHidesAndErrorsAreClear() throws {
        let idx = try HNSWIndex(dimension: 2, metric: .l2, capacity: 2)
        try idx.upsert(label: 1, vector: [0, 0])
        try idx.upsert(label: 2, vector: [10, 10])
        try idx.upsert(label: 1, vector: [10, 9])   // replaces label 1's vector
        XCTAssertEqual(try idx.search([10, 9], k: 1).first?.label, 1)
        XCTAssertEqual(idx.count, 2)
        try idx.remove(label: 1)
        XCTAssertEqual(try idx.search([10, 9], k: 2).map(\.label), [2], "removed vectors are not returned")
        XCTAssertEqual(idx.liveCount, 1)
        XCTAssertThrowsError(try idx.remove(label: 99)) { XCTAssertTrue("\($0)".contains("Label not found"), "\($0)") }
        XCTAssertThrowsError(try idx.upsert(label: 3, vector: [1, 2, 3])) {
            XCTAssertEqual($0 as? VectorIndexError, VectorIndexError(message: "vector has 3 dimensions; the index has 2"))
        }
        XCTAssertThrowsError(try idx.search([1], k: 1))
        try idx.upsert(label: 1, vector: [0, 0])   // re-adding a removed label brings it back
        XCTAssertEqual(try idx.search([0, 0], k: 1).first?.label, 1)
    }

    func testGrowsBeyondItsInitialCapacity() throws {
        let data = randomVectors(300, 8, seed: 1)
        let idx = try HNSWIndex(dimension: 8, metric: .l2, capacity: 16)
        for (i, v) in data.enumerated() { try idx.upsert(label: UInt64(i), vector: v) }
        XCTAssertEqual(idx.count, 300)
        XCTAssertGreaterThanOrEqual(idx.capacity, 300)
        XCTAssertEqual(try idx.search(data[123], k: 1).first?.label, 123)
    }

    /// recall@10 against brute force on random data (cosine): ≥ 0.95 at ef = 100.
    func testRecallAgainstBruteForce() throws {
        let data = randomVectors(3000, 32, seed: 7)
        let queries = randomVectors(50, 32, seed: 99)
        let idx = try HNSWIndex(dimension: 32, metric: .cosine, capacity: 3000)
        for (i, v) in data.enumerated() { try idx.upsert(label: UInt64(i), vector: v) }
        var hits = 0
        for q in queries {
            let truth = Set(bruteForce(data, q, k: 10, cosine: true))
            hits += try idx.search(q, k: 10, ef: 100).filter { truth.contains($0.label) }.count
        }
        let recall = Double(hits) / Double(queries.count * 10)
        XCTAssertGreaterThanOrEqual(recall, 0.95, "recall@10 = \(recall)")
    }

    /// The exact scan returns brute force's answer (in order), skips removed vectors, and with a filter only
    /// accepted ones — all min(k, accepted) of them.
    func testExactSearchIsBruteForceAndHonoursRemovalsAndFilters() throws {
        let data = randomVectors(2000, 24, seed: 5)
        let idx = try HNSWIndex(dimension: 24, metric: .cosine, capacity: 64)
        for (i, v) in data.enumerated() { try idx.upsert(label: UInt64(i), vector: v) }
        try idx.remove(label: 17)
        for q in randomVectors(20, 24, seed: 8) {
            let truth = bruteForce(data, q, k: 11, cosine: true).filter { $0 != 17 }.prefix(10)
            XCTAssertEqual(try idx.exactSearch(q, k: 10).map(\.label), Array(truth))
            let odd = try idx.exactSearch(q, k: 10, allowing: { $0 % 2 == 1 })
            XCTAssertEqual(odd.count, 10)
            XCTAssertTrue(odd.allSatisfy { $0.label % 2 == 1 && $0.label != 17 })
            XCTAssertEqual(odd.map(\.distance), odd.map(\.distance).sorted(), "nearest first")
        }
        XCTAssertEqual(try idx.exactSearch(data[3], k: 10, allowing: { $0 < 4 }).map(\.label).sorted(), [0, 1, 2, 3],
                       "fewer accepted than k: all of them")
        XCTAssertEqual(try idx.exactSearch(data[3], k: 5, allowing: { _ in false }).count, 0)
        // Among listed labels only (unknown and removed ones skipped), brute force's order.
        let listed: [UInt64] = Array(stride(from: 1, to: 2000, by: 3)) + [17, 999_999]
        for q in randomVectors(5, 24, seed: 12) {
            let truth = bruteForce(data, q, k: 2000, cosine: true).filter { $0 % 3 == 1 && $0 != 17 }.prefix(10)
            XCTAssertEqual(try idx.exactSearch(q, k: 10, among: listed).map(\.label), Array(truth))
        }
        XCTAssertEqual(try idx.exactSearch(data[3], k: 5, among: []).count, 0)
    }

    /// The filtered graph walk keeps only accepted vectors yet finds the true nearest accepted ones (recall ≥ 0.95
    /// at a selectivity of 10%), where searching first and filtering after would leave about one of ten.
    func testFilteredGraphSearchFindsTheNearestAcceptedOnes() throws {
        let data = randomVectors(3000, 32, seed: 7)
        let idx = try HNSWIndex(dimension: 32, metric: .cosine, capacity: 3000)
        for (i, v) in data.enumerated() { try idx.upsert(label: UInt64(i), vector: v) }
        let accepted: (UInt64) -> Bool = { $0 % 10 == 3 }
        var hits = 0, afterwards = 0
        let queries = randomVectors(50, 32, seed: 99)
        for q in queries {
            let truth = Set(bruteForce(data, q, k: 3000, cosine: true).filter(accepted).prefix(10))
            let found = try idx.search(q, k: 10, ef: 100, allowing: accepted)
            XCTAssertTrue(found.allSatisfy { accepted($0.label) })
            XCTAssertEqual(found.count, 10)
            hits += found.filter { truth.contains($0.label) }.count
            afterwards += try idx.search(q, k: 10, ef: 100).filter { accepted($0.label) }.count
        }
        let recall = Double(hits) / Double(queries.count * 10)
        XCTAssertGreaterThanOrEqual(recall, 0.95, "filtered recall@10 = \(recall)")
        XCTAssertLessThan(afterwards, queries.count * 10 / 3, "filtering a plain top-10 afterwards leaves few: \(afterwards)")
        XCTAssertEqual(try idx.search(data[0], k: 10, ef: 50, allowing: { _ in false }).count, 0)
    }

    /// A subnormal vector (norm below ~2.9e-39, where 1/norm overflows a float) normalises like any other: finite
    /// distances, never NaN (found by schemathesis: `"distance": null` in a search answer).
    func testSubnormalVectorsGiveFiniteDistances() throws {
        let idx = try HNSWIndex(dimension: 4, metric: .cosine, capacity: 8)
        try idx.upsert(label: 1, vector: [1e-40, 0, 0, 0])
        try idx.upsert(label: 2, vector: [0, 1, 0, 0])
        for q: [Float] in [[1e-40, 0, 0, 0], [1, 0, 0, 0]] {
            let hits = try idx.search(q, k: 2) + idx.exactSearch(q, k: 2)
            XCTAssertTrue(hits.allSatisfy { $0.distance.isFinite }, "\(hits)")
            XCTAssertEqual(hits.first?.label, 1)
            XCTAssertEqual(hits.first?.distance ?? 1, 0, accuracy: 1e-5)
        }
    }

    func testSaveAndLoadGiveTheSameAnswers() throws {
        let data = randomVectors(500, 16, seed: 3)
        let idx = try HNSWIndex(dimension: 16, metric: .cosine, capacity: 500)
        for (i, v) in data.enumerated() { try idx.upsert(label: UInt64(i) + 1000, vector: v) }
        try idx.remove(label: 1005)
        let path = NSTemporaryDirectory() + "sutra-hnsw-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try idx.save(to: path)
        let loaded = try HNSWIndex.load(path: path, dimension: 16, metric: .cosine)
        XCTAssertEqual(loaded.count, 500)
        for q in randomVectors(10, 16, seed: 11) {
            XCTAssertEqual(try loaded.search(q, k: 5, ef: 50).map(\.label), try idx.search(q, k: 5, ef: 50).map(\.label))
        }
        XCTAssertFalse(try loaded.search(data[5], k: 3).map(\.label).contains(1005), "deletions survive save/load")
        XCTAssertThrowsError(try HNSWIndex.load(path: path + ".missing", dimension: 16, metric: .cosine)) {
            XCTAssertTrue("\($0)".contains(".missing"), "\($0)")
        }
    }
}
