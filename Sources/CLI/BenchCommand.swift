import ArgumentParser
import Foundation
import Raft
import SutraClient
import UV

/// `sutra bench`: a closed-loop load generator through the SDK. C tasks each issue one request, wait for its
/// answer, and issue the next, for the given duration; it prints a progress line every second and then
/// ops/s and latency percentiles (p50, p99, p99.9, max) and the error count.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Load-test a cluster through the SDK (closed loop).")
    @OptionGroup var target: SDKTarget
    @Option(help: "Seconds to run.") var duration = 10.0
    @Option(help: "Concurrent clients (closed loop each).") var concurrency = 64
    @Option(help: "Content bytes per write.") var valueSize = 100
    @Option(help: "write | read | mixed (50/50) | assoc-same (associations within a shard) | assoc-cross (across shards: 2PC).") var mix = "write"
    @Option(help: "Distinct keys written and read.") var keys = 100_000
    @Option(help: "SDK clients (each: a loop thread and one connection per node) the tasks share.") var clients = 1
    @Flag(help: "Gateway mode: every request to the first endpoint, which forwards what it does not lead (measures forwarding).") var viaGateway = false
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        guard BenchLoad.mixes.contains(mix) else { throw ValidationError("--mix must be one of \(BenchLoad.mixes.joined(separator: ", "))") }
        guard concurrency >= 1, duration > 0, valueSize >= 0, keys >= 1, clients >= 1 else { throw ValidationError("counts must be positive") }
        let endpoints = try target.resolve()
        var options = try target.options()
        options.viaGateway = viaGateway
        let sdks = try (0..<clients).map { _ in try SutraClient(endpoints: endpoints, options: options) }
        defer { Task { for c in sdks { await c.close() } } }
        let load = try await BenchLoad.prepare(sdks[0], keys: keys, valueSize: valueSize, preload: mix != "write", quiet: json)
        let r = try await load.run(mix: mix, sdks: sdks, concurrency: concurrency, duration: duration, quiet: json)
        report(r)
    }

    func report(_ r: BenchLoad.Result) {
        if json {
            let o: [String: Any] = ["mix": mix, "concurrency": concurrency, "value_size": valueSize, "duration_s": r.elapsed,
                                    "ops": r.ops, "ops_per_s": r.rate, "errors": r.errors,
                                    "latency_ms": ["p50": r.p50, "p99": r.p99, "p999": r.p999, "max": r.max]]
            print(String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data(), as: UTF8.self))
        } else {
            r.print(label: mix, concurrency: concurrency, valueSize: valueSize)
        }
    }
}

/// A prepared closed-loop load: the key space (preloaded when reads or associations need it) and the
/// cluster's shard count (associations pick their targets on the same or another shard).
struct BenchLoad: Sendable {
    static let mixes = ["write", "read", "mixed", "assoc-same", "assoc-cross"]
    let keySpace: [ConceptID]
    let byShard: [[ConceptID]]
    let payload: [UInt8]

    /// The outcome of one timed run.
    struct Result: Sendable {
        var ops: Int, rate: Double, errors: Int, p50: Double, p99: Double, p999: Double, max: Double, elapsed: Double
        var firstError: String?

        func print(label: String, concurrency: Int, valueSize: Int) {
            FileHandle.standardError.write(Data("\n".utf8))
            Swift.print(String(format: "%@: %d ops in %.1f s = %.0f ops/s (concurrency %d, %d-byte values), %d errors",
                               label as NSString, ops, elapsed, rate, concurrency, valueSize, errors))
            Swift.print(String(format: "latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f", p50, p99, p999, max))
            if let e = firstError { Swift.print("first error: \(e)") }
        }
    }

    static func prepare(_ sdk: SutraClient, keys: Int, valueSize: Int, preload: Bool, quiet: Bool) async throws -> BenchLoad {
        let payload = [UInt8](repeating: UInt8(ascii: "v"), count: valueSize)
        let keySpace = (0..<keys).map { ConceptID(hi: 0x5EED_0000_0000_0000 | UInt64($0), lo: UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
        if preload {
            if !quiet { print("preloading \(keys) keys …") }
            for start in stride(from: 0, to: keys, by: 1000) {
                let items = keySpace[start..<min(start + 1000, keys)].map { BatchItem.put(NewConcept(id: $0, content: payload)) }
                _ = try await sdk.batch(items)
            }
        }
        let shards = try await sdk.clusterInfo().numShards
        var byShard = Array(repeating: [ConceptID](), count: shards)
        for k in keySpace { byShard[k.shard(of: shards)].append(k) }
        return BenchLoad(keySpace: keySpace, byShard: byShard, payload: payload)
    }

    func run(mix: String, sdks: [SutraClient], concurrency: Int, duration: Double, quiet json: Bool) async throws -> Result {
        let keySpace = self.keySpace, byShard = self.byShard, payload = self.payload
        let stats = Locked(BenchStats())
        let started = ContinuousClock.now
        let end = started + .milliseconds(Int(duration * 1000))
        let progress = Task {
            var last = 0
            while !Task.isCancelled && ContinuousClock.now < end {
                try? await Task.sleep(for: .seconds(1))
                let (ops, errs) = stats.withLock { ($0.done, $0.errors) }
                if !json {
                    let t = (ContinuousClock.now - started).seconds
                    FileHandle.standardError.write(Data(String(format: "\r%5.1fs  %8d ops/s  %9d ops  %6d errors", t, ops - last, ops, errs).utf8))
                }
                last = ops
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                let sdk = sdks[worker % sdks.count]
                group.addTask {
                    // A cheap per-task generator: the system one is a syscall per call (measurable at these rates).
                    var rng = BenchRNG(seed: UInt64(worker) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                    var local: [UInt64] = []
                    local.reserveCapacity(100_000)
                    var n = 0
                    while ContinuousClock.now < end {
                        let key = keySpace[Int.random(in: 0..<keySpace.count, using: &rng)]
                        let write = mix == "write" || (mix == "mixed" && n % 2 == 0)
                        n += 1
                        let t0 = ContinuousClock.now
                        do {
                            if mix == "assoc-same" || mix == "assoc-cross" {
                                let s = key.shard(of: byShard.count)
                                let ts = mix == "assoc-same" || byShard.count == 1 ? s : (s + 1 + Int.random(in: 0..<(byShard.count - 1), using: &rng)) % byShard.count
                                var target = byShard[ts][Int.random(in: 0..<byShard[ts].count, using: &rng)]
                                if target == key { target = byShard[ts][(byShard[ts].firstIndex(of: key)! + 1) % byShard[ts].count] }
                                try await sdk.associate(source: key, target: target, type: .semantic, confidence: 0.5)
                            } else if write {
                                _ = try await sdk.put(NewConcept(id: key, content: payload))
                            } else {
                                _ = try await sdk.get(key)
                            }
                            local.append((ContinuousClock.now - t0).nanoseconds)
                            if local.count % 256 == 0 { stats.withLock { $0.done += 256 } }
                        } catch {
                            stats.withLock { $0.noteError("\(error)") }
                        }
                    }
                    stats.withLock { $0.latencies += local }
                }
            }
            try await group.waitForAll()
        }
        progress.cancel()
        let elapsed = (ContinuousClock.now - started).seconds
        let r = stats.withLock { $0.result(elapsed: elapsed) }
        return Result(ops: r.ops, rate: r.rate, errors: r.errors, p50: r.p50, p99: r.p99, p999: r.p999, max: r.max, elapsed: elapsed,
                      firstError: stats.withLock { $0.firstError })
    }
}

/// The workers' latencies and errors (shared under a lock: `Locked<BenchStats>`).
struct BenchStats {
    var latencies: [UInt64] = []
    var errors = 0
    var done = 0
    var firstError: String?

    mutating func noteError(_ e: String) {
        errors += 1
        if firstError == nil { firstError = e }
    }

    func result(elapsed: Double) -> (ops: Int, rate: Double, errors: Int, p50: Double, p99: Double, p999: Double, max: Double) {
        let s = latencies.sorted()
        func pct(_ p: Double) -> Double {
            guard !s.isEmpty else { return 0 }
            return Double(s[min(s.count - 1, Int(Double(s.count) * p))]) / 1e6
        }
        return (s.count, Double(s.count) / elapsed, errors, pct(0.5), pct(0.99), pct(0.999), Double(s.last ?? 0) / 1e6)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: UInt64 { UInt64(components.seconds) * 1_000_000_000 + UInt64(components.attoseconds / 1_000_000_000) }
}

/// Where SDK commands connect: `--endpoints host:port,…` (binary client ports), else the local cluster in `--data`.
struct SDKTarget: ParsableArguments {
    @Option(help: "Client endpoints host:port,… (default: env SUTRA_ENDPOINTS, else the local cluster in --data).") var endpoints: String?
    @Option(help: "Data directory of a local cluster started with `sutra cluster up`.") var data = "./sutra-cluster"
    @Option(help: "Bearer token (default: env SUTRA_TOKEN, else the local cluster's <data>/admin.token).") var token: String?
    @Option(help: "CA certificate (PEM) to verify the nodes' client TLS certificates with; TLS on when given (env SUTRA_CACERT; default: the local cluster's, if it runs client TLS).") var cacert: String?

    /// The SDK options carrying the token (`CLIToken`).
    func options(_ base: SutraClient.Options = .init()) throws -> SutraClient.Options {
        var o = base
        o.token = try CLIToken.resolve(flag: token, dataDir: data)
        if let ca = LocalCluster.caCertificate(flag: cacert, data: data, localCluster: givenEndpoints == nil) {
            o.tls = TLSOptions(caFile: ca)
        }
        return o
    }

    /// `--endpoints`, else SUTRA_ENDPOINTS (nil: the local cluster in --data).
    var givenEndpoints: String? { endpoints ?? CLIEnvironment.value("SUTRA_ENDPOINTS") }

    func resolve() throws -> [String] {
        if let given = givenEndpoints { return given.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let cluster = try LocalCluster.load(URL(fileURLWithPath: data).standardizedFileURL.path)
        return cluster.nodes.map { "127.0.0.1:\($0.clientPort)" }
    }
}

/// The bench's per-worker generator: the project's SplitMix64, seeded through one draw of another. SplitMix64's
/// state advances by a constant, so seeds that differ by a multiple of it (worker × constant) would give every
/// worker the same stream shifted by one draw — concurrent workers colliding on the same keys.
struct BenchRNG: RandomNumberGenerator {
    private var inner: SplitMix64
    init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        inner = SplitMix64(seed: mixer.next())
    }
    mutating func next() -> UInt64 { inner.next() }
}
