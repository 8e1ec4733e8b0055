import ArgumentParser
import Dispatch
import VectorIndex

/// `sutra-bench vectors`: the HNSW index alone — build rate, recall@k against exact brute force, and query
/// latency percentiles for several `ef` values. Data: uniform random vectors (a hard case for ANN; real
/// embeddings are clustered), seeded.
struct VectorBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vectors", abstract: "HNSW index: build rate, recall@k, latency.")

    @Option(help: "Vectors in the index.") var count: Int = 100_000
    @Option(help: "Dimensions.") var dim: Int = 768
    @Option(help: "Neighbours per query.") var k: Int = 10
    @Option(help: "Queries (recall is checked against brute force for each).") var queries: Int = 200
    @Option(help: "ef values to try, comma-separated.") var ef: String = "64,128,256,512"
    @Option(help: "HNSW M.") var m: Int = 16
    @Option(help: "HNSW ef_construction.") var efConstruction: Int = 200
    @Option(help: "clustered or uniform.") var data: String = "clustered"
    @Option(help: "Clusters for clustered data.") var clusters: Int = 1000

    func run() throws {
        var rng = UInt64(42)
        func next() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(rng >> 40) / Float(1 << 24) - 0.5
        }
        guard self.data == "clustered" || self.data == "uniform" else { throw ValidationError("--data: clustered or uniform") }
        let clustered = self.data == "clustered"
        print("HNSW (hnswlib), cosine, \(count) × \(dim)-d \(clustered ? "clustered (\(clusters) Gaussian clusters)" : "uniform random") vectors, M=\(m), efConstruction=\(efConstruction), k=\(k), \(queries) queries")
        var centers: [[Float]] = []
        if clustered { for _ in 0..<clusters { centers.append((0..<dim).map { _ in next() }) } }
        // Sum of 4 uniforms ≈ Gaussian noise around a random center.
        func point() -> [Float] {
            guard clustered else { return (0..<dim).map { _ in next() } }
            let c = centers[Int(UInt64(bitPattern: Int64(rng >> 1)) % UInt64(clusters))]
            return c.map { $0 + 0.15 * (next() + next() + next() + next()) }
        }
        var data = [Float](); data.reserveCapacity(count * dim)
        for _ in 0..<count { data.append(contentsOf: point()) }
        let idx = try HNSWIndex(dimension: dim, metric: .cosine, capacity: count, m: m, efConstruction: efConstruction)
        var t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<count { try idx.upsert(label: UInt64(i), vector: Array(data[(i * dim)..<((i + 1) * dim)])) }
        let buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        print("build: \(Int(Double(count) / buildSeconds)) inserts/s (\(String(format: "%.1f", buildSeconds)) s)")

        // Exact answers by brute force (cosine), for recall.
        var norms = [Float](repeating: 0, count: count)
        for i in 0..<count { var s: Float = 0; for j in 0..<dim { let x = data[i * dim + j]; s += x * x }; norms[i] = s.squareRoot() }
        var qs: [[Float]] = []
        for _ in 0..<queries { qs.append(point()) }
        t0 = DispatchTime.now().uptimeNanoseconds
        var truth: [Set<UInt64>] = []
        for q in qs {
            var qn: Float = 0; for x in q { qn += x * x }; qn = qn.squareRoot()
            var scored: [(Float, Int)] = []
            scored.reserveCapacity(count)
            data.withUnsafeBufferPointer { d in
                for i in 0..<count {
                    var dot: Float = 0
                    let base = i * dim
                    for j in 0..<dim { dot += d[base + j] * q[j] }
                    scored.append((1 - dot / (norms[i] * qn), i))
                }
            }
            scored.sort { $0.0 < $1.0 }
            truth.append(Set(scored.prefix(k).map { UInt64($0.1) }))
        }
        let exactMs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(queries)
        print("exact brute force: \(String(format: "%.1f", exactMs)) ms/query")
        print("ef     recall@\(k)   p50 ms   p99 ms")
        for e in ef.split(separator: ",").compactMap({ Int($0) }) {
            var lat: [Double] = []
            var hits = 0
            for (qi, q) in qs.enumerated() {
                let s = DispatchTime.now().uptimeNanoseconds
                let r = try idx.search(q, k: k, ef: e)
                lat.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6)
                hits += r.filter { truth[qi].contains($0.label) }.count
            }
            lat.sort()
            let recall = Double(hits) / Double(queries * k)
            print("\(BenchFormat.pad(e, 6)) \(String(format: "%.3f", recall))       \(String(format: "%.3f", lat[lat.count / 2]))    \(String(format: "%.3f", lat[min(lat.count - 1, lat.count * 99 / 100)]))")
        }
    }
}
