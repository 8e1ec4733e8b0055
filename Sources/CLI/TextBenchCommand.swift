import ArgumentParser
import Foundation
import HTTP
import SutraClient
import UV

/// `sutra bench-text`: text in, vectors inside, measured — concepts written as text (the node embeds each
/// through its `--embedding-service`) and searches by text, through the SDK with C concurrent clients; then the
/// embedding service alone, called directly with one text and with a batch, to say how much of the time is the
/// model's.
struct TextBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-text", abstract: "Text learn and text search through a cluster with an embedding service; the model's share.")
    @OptionGroup var target: SDKTarget
    @Option(help: "Concepts to write as text.") var count = 2000
    @Option(help: "Searches by text.") var searches = 500
    @Option(help: "Concurrent clients.") var concurrency = 16
    @Option(help: "The embedding service the nodes use (host:port), to time it alone.") var service = "127.0.0.1:7400"

    /// A sentence of 8–16 words from a fixed vocabulary, seeded by `i`.
    static func sentence(_ i: Int) -> String {
        let words = ["the", "river", "bank", "raised", "interest", "rates", "planet", "orbit", "garden", "tomato", "compiler",
                     "leader", "election", "log", "storm", "coast", "music", "violin", "market", "bread", "oven", "galaxy",
                     "protein", "cell", "engine", "train", "station", "forest", "wolf", "winter", "snow", "mountain"]
        var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
        let n = 8 + Int(x % 9)
        return (0..<n).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return words[Int(x % UInt64(words.count))]
        }.joined(separator: " ")
    }

    func run() async throws {
        let sdk = try SutraClient(endpoints: try target.resolve(), options: try target.options())
        defer { Task { await sdk.close() } }
        func phase(_ name: String, _ n: Int, _ op: @escaping @Sendable (Int) async throws -> Void) async throws {
            let next = Locked(0)
            let started = ContinuousClock.now
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var lat: [Double] = []
                        while true {
                            let i = next.withLock { v in defer { v += 1 }; return v }
                            if i >= n { return lat }
                            let t0 = ContinuousClock.now
                            try await op(i)
                            lat.append((ContinuousClock.now - t0).seconds * 1000)
                        }
                    }
                }
                var all: [Double] = []
                for try await l in group { all += l }
                return all.sorted()
            }
            let secs = (ContinuousClock.now - started).seconds
            print(String(format: "%@: %d in %.1f s — %.0f/s, latency ms p50 %.2f p99 %.2f", name as NSString, n, secs, Double(n) / secs,
                         latencies[latencies.count / 2], latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]))
        }
        print("\(concurrency) concurrent clients through the SDK; the nodes embed through their embedding service")
        try await phase("learn (text, no embedding)", count) { i in
            try await sdk.put(NewConcept(id: ConceptID(hi: 0x7E47_0000_0000_0000 | UInt64(i), lo: UInt64(i)), text: TextBenchCommand.sentence(i)))
        }
        try await phase("search by text (k 10)", searches) { i in
            _ = try await sdk.search(text: TextBenchCommand.sentence(1_000_000 + i), k: 10, consistency: .stale)
        }
        // The model alone: the service called directly, one text per call and 32 per call, one client.
        let parts = service.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--service host:port") }
        for batch in [1, 32] {
            var lat: [Double] = []
            for round in 0..<max(20, 200 / batch) {
                let input = (0..<batch).map { TextBenchCommand.sentence(2_000_000 + round * batch + $0) }
                let body = try JSONSerialization.data(withJSONObject: ["input": input])
                let t0 = ContinuousClock.now
                guard case .success(let r) = BlockingHTTPClient.call("POST", host: String(parts[0]), port: port, path: "/v1/embeddings",
                                                                     body: Array(body), timeout: 30), r.status == 200 else {
                    throw ValidationError("the embedding service at \(service) did not answer")
                }
                lat.append((ContinuousClock.now - t0).seconds * 1000)
            }
            lat.sort()
            print(String(format: "embedding service alone, %d text(s) per call: p50 %.2f ms per call (%.2f ms per text), %.0f texts/s on one connection",
                         batch, lat[lat.count / 2], lat[lat.count / 2] / Double(batch), Double(batch) * 1000 / lat[lat.count / 2]))
        }
    }
}
