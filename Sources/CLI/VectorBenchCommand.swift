import ArgumentParser
import Foundation
import SutraClient
import UV

/// `sutra bench-vectors`: loads N concepts with D-dimensional embeddings through the SDK (clustered data:
/// Gaussian blobs around random centers, seeded), then measures k-NN search through the cluster — recall@k
/// against exact brute force, and latency percentiles — for several `ef` values.
struct VectorBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-vectors", abstract: "Vector search through the cluster: load, recall@k vs brute force, latency.")
    @OptionGroup var target: SDKTarget
    @Option(help: "Concepts to load.") var count = 100_000
    @Option(help: "Embedding dimension (must be the cluster's).") var dimension = 768
    @Option(help: "Gaussian clusters in the data.") var clusters = 1000
    @Option(help: "Neighbours per query.") var k = 10
    @Option(help: "Queries per ef value.") var queries = 200
    @Option(help: "ef values to measure, comma-separated.") var ef = "32,64,128,256"
    @Option(help: "Concepts per batch write while loading.") var batch = 50
    @Option(help: "Concurrent loaders.") var loaders = 4
    @Flag(help: "Skip loading (the data of an earlier run with the same options is there).") var skipLoad = false
    @Flag(help: "Linearizable searches (a ReadIndex round on every shard first); default: stale (the node's replicas).") var linearizable = false

    func run() async throws {
        let sdk = try SutraClient(endpoints: try target.resolve(), options: try target.options(.init(requestTimeout: .seconds(600), attemptTimeout: .seconds(300))))
        let gen = BlobGenerator(dimension: dimension, clusters: clusters, seed: 42)
        let vectors = (0..<count).map { _ in gen.point() }
        let ids = (0..<count).map { ConceptID(hi: 0x7EC7_0000_0000_0000 | UInt64($0), lo: UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
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
                                BatchItem.put(NewConcept(id: ids[i], text: "vector \(i)", embedding: vectors[i]))
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
        // Exact answers (cosine) by brute force.
        let norms = vectors.map { v in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let qs = (0..<queries).map { _ in gen.point() }
        let truth: [Set<ConceptID>] = qs.map { q in
            let qn = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
            var scored: [(Float, Int)] = []
            scored.reserveCapacity(count)
            for (i, v) in vectors.enumerated() {
                var dot: Float = 0
                for j in 0..<dimension { dot += v[j] * q[j] }
                scored.append((1 - dot / (norms[i] * qn), i))
            }
            scored.sort { $0.0 < $1.0 }
            return Set(scored.prefix(k).map { ids[$0.1] })
        }
        print("search through the cluster: k=\(k), \(queries) queries, one client, \(linearizable ? "linearizable" : "stale (node-local)") reads")
        for e in ef.split(separator: ",").compactMap({ Int($0) }) {
            var lat: [Double] = []
            var hits = 0
            for (qi, q) in qs.enumerated() {
                let t0 = ContinuousClock.now
                let r = try await sdk.search(vector: q, k: k, ef: e, consistency: linearizable ? .linearizable : .stale)
                lat.append((ContinuousClock.now - t0).seconds * 1000)
                hits += r.filter { truth[qi].contains($0.id) }.count
            }
            lat.sort()
            print(String(format: "  ef %4d: recall@%d %.3f   latency ms p50 %.2f  p99 %.2f  max %.2f", e, k,
                         Double(hits) / Double(queries * k), lat[lat.count / 2], lat[min(lat.count - 1, Int(Double(lat.count) * 0.99))], lat.last!))
        }
        await sdk.close()
    }
}

/// Seeded clustered vectors: a point is a random center plus a sum of four uniforms (≈ Gaussian) per axis.
final class BlobGenerator: @unchecked Sendable {
    private var state: UInt64
    private var centers: [[Float]] = []
    let dimension: Int

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
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let c = centers[Int((state >> 33) % UInt64(centers.count))]
        return c.map { $0 + 0.15 * (uniform() + uniform() + uniform() + uniform()) }
    }
}
