import ArgumentParser
import Foundation
import SutraClient
import UV
import VectorIndex
import enum Shard.SearchPolicy

/// `sutra bench-vectors`: loads N concepts with D-dimensional embeddings through the SDK (clustered — Gaussian
/// blobs around random centers — or uniform random, seeded; one in ten has strength 0.9, the rest 0.1), then
/// measures k-NN search through the cluster — recall@k against exact brute force, and latency percentiles — at
/// the node's default (`ef` 0), at given `ef` values, with `exact: true`, and with a filter passing one concept
/// in ten (`min_strength` 0.5); and, in the same run, raw hnswlib (this process, the same vectors, M 16,
/// ef_construction 200) at the same `ef` values.
struct VectorBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-vectors", abstract: "Vector search through the cluster: load, recall@k vs brute force, latency; raw hnswlib beside it.")
    @OptionGroup var target: SDKTarget
    @Option(help: "Concepts to load.") var count = 100_000
    @Option(help: "Embedding dimension (must be the cluster's).") var dimension = 768
    @Option(help: "Vectors: clustered or uniform.") var distribution = "clustered"
    @Option(help: "Gaussian clusters in clustered data.") var clusters = 1000
    @Option(help: "Neighbours per query.") var k = 10
    @Option(help: "Queries per row.") var queries = 200
    @Option(help: "ef values to measure, comma-separated (0: the node's default for k).") var ef = "0,64,256"
    @Option(help: "Concepts per batch write while loading.") var batch = 50
    @Option(help: "Concurrent loaders.") var loaders = 4
    @Flag(help: "Skip loading (the data of an earlier run with the same options is there).") var skipLoad = false
    @Flag(help: "Linearizable searches (a ReadIndex round on every shard first); default: stale (the node's replicas).") var linearizable = false
    @Flag(help: "Skip raw hnswlib (building it in this process takes as long as one node's indexing).") var noRaw = false

    func run() async throws {
        guard distribution == "clustered" || distribution == "uniform" else { throw ValidationError("--distribution: clustered or uniform") }
        let efs = ef.split(separator: ",").compactMap { Int($0) }
        let sdk = try SutraClient(endpoints: try target.resolve(), options: try target.options(.init(requestTimeout: .seconds(600), attemptTimeout: .seconds(300))))
        let gen = BlobGenerator(dimension: dimension, clusters: distribution == "uniform" ? 0 : clusters, seed: 42)
        let vectors = (0..<count).map { _ in gen.point() }
        let ids = (0..<count).map { ConceptID(hi: 0x7EC7_0000_0000_0000 | UInt64($0), lo: UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
        let strong: @Sendable (Int) -> Bool = { $0 % 10 == 0 }
        if !skipLoad {
            let started = ContinuousClock.now
            let next = Locked(0)
            let batchSize = batch, total = count
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<loaders {
                    group.addTask {
                        while true {
                            let start = next.withLock { n in defer { n += batchSize }; return n }
                            if start >= total { return }
                            let items = (start..<min(start + batchSize, total)).map { i in
                                BatchItem.put(NewConcept(id: ids[i], text: "vector \(i)", embedding: vectors[i], strength: strong(i) ? 0.9 : 0.1))
                            }
                            _ = try await sdk.batch(items)
                            if (start / batchSize) % 20 == 0 {
                                FileHandle.standardError.write(Data(String(format: "\rloading: %d/%d", start, total).utf8))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let secs = (ContinuousClock.now - started).seconds
            print(String(format: "\nloaded %d × %d-d concepts in %.1f s (%.0f/s acknowledged; the nodes index them in the background)",
                         count, dimension, secs, Double(count) / secs))
            // A linearizable search waits until the receiving node's graph holds every write: ask every node.
            for _ in 0..<12 { _ = try await sdk.search(vector: vectors[0], k: 1, ef: 16, consistency: .linearizable) }
            let indexed = (ContinuousClock.now - started).seconds
            print(String(format: "indexed on every node after %.1f s (%.0f concepts/s)", indexed, Double(count) / indexed))
        }
        // Exact answers (cosine) by brute force, unfiltered and among the strong concepts.
        let norms = vectors.map { v in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let qs = (0..<queries).map { _ in gen.point() }
        var truth: [Set<ConceptID>] = [], strongTruth: [Set<ConceptID>] = []
        for q in qs {
            let qn = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
            var scored: [(Float, Int)] = []
            scored.reserveCapacity(count)
            for (i, v) in vectors.enumerated() {
                var dot: Float = 0
                for j in 0..<dimension { dot += v[j] * q[j] }
                scored.append((1 - dot / (norms[i] * qn), i))
            }
            scored.sort { $0.0 < $1.0 }
            truth.append(Set(scored.prefix(k).map { ids[$0.1] }))
            strongTruth.append(Set(scored.lazy.filter { strong($0.1) }.prefix(k).map { ids[$0.1] }))
        }
        print("\(count) × \(dimension)-d \(distribution) vectors, k=\(k), \(queries) queries per row, one client")
        print("through the cluster (\(linearizable ? "linearizable" : "stale, node-local") reads):")
        func row(_ label: String, _ expected: [Set<ConceptID>], _ search: ([Float]) async throws -> [ConceptID]) async throws {
            var lat: [Double] = []
            var hits = 0
            for (qi, q) in qs.enumerated() {
                let t0 = ContinuousClock.now
                let r = try await search(q)
                lat.append((ContinuousClock.now - t0).seconds * 1000)
                hits += r.filter { expected[qi].contains($0) }.count
            }
            lat.sort()
            print(String(format: "  %@ recall@%d %.3f   latency ms p50 %.2f  p99 %.2f", label.padding(toLength: 32, withPad: " ", startingAt: 0) as NSString, k,
                         Double(hits) / Double(queries * k), lat[lat.count / 2], lat[min(lat.count - 1, Int(Double(lat.count) * 0.99))]))
        }
        let consistency: Consistency = linearizable ? .linearizable : .stale
        // Warm up (connections to every node, caches) so the first row is not charged for it.
        for q in qs.prefix(30) { _ = try await sdk.search(vector: q, k: k, consistency: consistency) }
        for e in efs {
            try await row(e == 0 ? "default" : "ef \(e)", truth) { q in try await sdk.search(vector: q, k: k, ef: e, consistency: consistency).map(\.id) }
        }
        try await row("exact: true", truth) { q in try await sdk.search(vector: q, k: k, exact: true, consistency: consistency).map(\.id) }
        let filter = SearchFilter(minStrength: 0.5)
        try await row("filter (1 in 10), default", strongTruth) { q in try await sdk.search(vector: q, k: k, filter: filter, consistency: consistency).map(\.id) }
        try await row("filter (1 in 10), exact", strongTruth) { q in try await sdk.search(vector: q, k: k, exact: true, filter: filter, consistency: consistency).map(\.id) }
        await sdk.close()
        guard !noRaw else { return }

        // Raw hnswlib on the same vectors, in this process, for the same rows (no network, no server).
        let index = try HNSWIndex(dimension: dimension, metric: .cosine, capacity: count)
        let built = ContinuousClock.now
        for (i, v) in vectors.enumerated() { try index.upsert(label: UInt64(i), vector: v) }
        print(String(format: "raw hnswlib (M 16, ef_construction 200), built here in %.1f s:", (ContinuousClock.now - built).seconds))
        let labelsToIDs: (UInt64) -> ConceptID = { ids[Int($0)] }
        for e in efs {
            let width = e == 0 ? SearchPolicy.defaultEf(k: k) : e
            try await row("ef \(width)\(e == 0 ? " (the default's)" : "")", truth) { q in try index.search(q, k: k, ef: width).map { labelsToIDs($0.label) } }
        }
        try await row("exact scan", truth) { q in try index.exactSearch(q, k: k).map { labelsToIDs($0.label) } }
        try await row("filter, searched then filtered", strongTruth) { q in
            try index.search(q, k: k, ef: SearchPolicy.defaultEf(k: k)).filter { strong(Int($0.label)) }.map { labelsToIDs($0.label) }
        }
    }
}

/// Seeded clustered vectors: a point is a random center plus a sum of four uniforms (≈ Gaussian) per axis.
final class BlobGenerator: @unchecked Sendable {
    private var state: UInt64
    private var centers: [[Float]] = []
    let dimension: Int

    /// `clusters` 0: uniform random points in [-0.5, 0.5)^dimension.
    init(dimension: Int, clusters: Int, seed: UInt64) {
        self.dimension = dimension
        state = seed
        centers = (0..<clusters).map { _ in (0..<dimension).map { _ in self.uniform() } }
    }

    private func uniform() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24) - 0.5
    }

    func point() -> [Float] {
        if centers.isEmpty { return (0..<dimension).map { _ in uniform() } }
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let c = centers[Int((state >> 33) % UInt64(centers.count))]
        return c.map { $0 + 0.15 * (uniform() + uniform() + uniform() + uniform()) }
    }
}
