import Dispatch
import Raft
import Synchronization

/// Runs a range of seeds, spread over `parallelism` threads, and collects the figures and failures.
public enum SeedRunner {
    public struct Outcome: Sendable {
        public var seedsRun = 0
        public var stats = SimStats()
        /// Failures, ordered by seed.
        public var failures: [SimFailure] = []
    }

    /// Each seed builds its own config (`configure`) and simulation; runs are independent and deterministic.
    public static func run(seeds: Range<UInt64>, parallelism: Int = 2,
                           configure: @Sendable (UInt64) -> SimConfig = { SimConfig.standard(seed: $0) },
                           progress: (@Sendable (Int) -> Void)? = nil) -> Outcome {
        let total = seeds.count
        let state = Mutex(Outcome())
        let next = Atomic<Int>(0)
        let workers = max(1, min(parallelism, total))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                if k >= total { break }
                let seed = seeds.lowerBound + UInt64(k)
                let result = Simulation(config: configure(seed)).run()
                let done = state.withLock { o -> Int in
                    o.seedsRun += 1
                    switch result {
                    case .success(let s): o.stats.add(s)
                    case .failure(let f): o.failures.append(f)
                    }
                    return o.seedsRun
                }
                progress?(done)
            }
        }
        var out = state.withLock { $0 }
        out.failures.sort { $0.seed < $1.seed }
        return out
    }
}
