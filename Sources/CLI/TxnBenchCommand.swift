import ArgumentParser
import Foundation
import HTTP
import SutraClient
import UV
#if canImport(Glibc)
import Glibc
#endif

/// `sutra bench-txn`: single-shard association writes, then cross-shard ones (two-phase commit), in one run
/// with the same clients and keys, and the ratio between them.
struct TxnBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-txn",
                                                    abstract: "Measure cross-shard (2PC) association commits against single-shard association writes.")
    @OptionGroup var target: SDKTarget
    @Option(help: "Seconds per phase.") var duration = 10.0
    @Option(help: "Concurrent clients (closed loop each).") var concurrency = 64
    @Option(help: "Concepts preloaded; associations pick their ends among them.") var keys = 20_000
    @Option(help: "SDK clients the tasks share.") var clients = 1
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        let endpoints = try target.resolve()
        let options = try target.options()
        let sdks = try (0..<clients).map { _ in try SutraClient(endpoints: endpoints, options: options) }
        defer { Task { for c in sdks { await c.close() } } }
        let load = try await BenchLoad.prepare(sdks[0], keys: keys, valueSize: 16, preload: true, quiet: json)
        let same = try await load.run(mix: "assoc-same", sdks: sdks, concurrency: concurrency, duration: duration, quiet: json)
        if !json { same.print(label: "single-shard associations", concurrency: concurrency, valueSize: 0) }
        let cross = try await load.run(mix: "assoc-cross", sdks: sdks, concurrency: concurrency, duration: duration, quiet: json)
        if !json { cross.print(label: "cross-shard associations (2PC)", concurrency: concurrency, valueSize: 0) }
        let ratio = same.rate > 0 ? cross.rate / same.rate : 0
        if json {
            func o(_ r: BenchLoad.Result) -> [String: Any] {
                ["ops": r.ops, "ops_per_s": r.rate, "errors": r.errors, "latency_ms": ["p50": r.p50, "p99": r.p99, "p999": r.p999, "max": r.max]]
            }
            let all: [String: Any] = ["concurrency": concurrency, "single_shard": o(same), "cross_shard": o(cross), "ratio": ratio]
            print(String(decoding: try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "cross-shard / single-shard: %.1f%%", ratio * 100))
        }
    }
}

/// `sutra bench-txn-recovery`: on a local cluster, run cross-shard associations coordinated by one shard's
/// leader, kill -9 that node, and time until no intent and no undecided record is left anywhere (the new
/// leaders adopt the records; participants ask about their intents). The node is restarted between rounds.
struct TxnRecoveryBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-txn-recovery",
                                                    abstract: "Measure intent resolution after kill -9 of a transaction coordinator's node.")
    @Option(help: "Data directory of a local cluster started with `sutra cluster up`.") var data = "./sutra-cluster"
    @Option(help: "Bearer token (default: env SUTRA_TOKEN, else <data>/admin.token).") var token: String?
    @Option(help: "Number of coordinator kills.") var kills = 10
    @Option(help: "Concurrent writers of cross-shard associations.") var writers = 32
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        let dir = URL(fileURLWithPath: data).standardizedFileURL.path
        var cluster = try LocalCluster.load(dir)
        guard cluster.nodes.count >= 3, cluster.shards >= 2 else { throw CLIError("needs at least 3 nodes and 2 shards") }
        let sdk = try SutraClient(endpoints: cluster.nodes.map { "127.0.0.1:\($0.clientPort)" },
                                  options: .init(token: try CLIToken.resolve(flag: token, dataDir: data)))
        let load = try await BenchLoad.prepare(sdk, keys: 4_000, valueSize: 8, preload: true, quiet: json)
        var samples: [Double] = [], pendingAtKill: [Int] = []
        for round in 0..<kills {
            let shard = round % cluster.shards
            try await waitQuiet(cluster)
            guard let leader = try await sdk.clusterInfo().shards.first(where: { $0.shard == shard })?.leader,
                  let victim = cluster.nodes.firstIndex(where: { $0.id == leader }) else { throw CLIError("shard \(shard) has no leader") }
            let stop = Locked(false)
            let sources = load.byShard[shard]
            let others = load.byShard.enumerated().filter { $0.offset != shard }.flatMap(\.element)
            let tasks = (0..<writers).map { w in
                Task { [sdk, stop] in
                    var rng = BenchRNG(seed: UInt64(round * 1000 + w + 1))
                    while !stop.withLock({ $0 }) {
                        let s = sources[Int.random(in: 0..<sources.count, using: &rng)]
                        let t = others[Int.random(in: 0..<others.count, using: &rng)]
                        _ = try? await sdk.associate(source: s, target: t, type: .causal, confidence: 1)
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(700))
            let before = unresolved(cluster, excluding: nil)
            stop.withLock { $0 = true }
            kill(cluster.nodes[victim].pid, SIGKILL)
            let killedAt = ContinuousClock.now
            var st: Int32 = 0
            waitpid(cluster.nodes[victim].pid, &st, 0)
            // Resolved: every shard led by a surviving node, and none of them holds an intent or a pending record.
            var resolvedAt: ContinuousClock.Instant?
            while resolvedAt == nil && ContinuousClock.now < killedAt + .seconds(30) {
                if let n = unresolved(cluster, excluding: victim), n == 0 { resolvedAt = .now } else { try await Task.sleep(for: .milliseconds(10)) }
            }
            for t in tasks { await t.value }
            guard let r = resolvedAt else { throw CLIError("round \(round): intents still unresolved 30 s after the kill") }
            let seconds = (r - killedAt).seconds
            samples.append(seconds)
            pendingAtKill.append(before ?? -1)
            if !json {
                FileHandle.standardError.write(Data(String(format: "\rkill %d/%d: coordinator of shard %d (node %d), %d in flight → all resolved after %.0f ms   ",
                                                           round + 1, kills, shard, leader, before ?? -1, seconds * 1000).utf8))
            }
            try cluster.respawn(victim, dir: dir)
        }
        try await waitQuiet(cluster)
        await sdk.close()
        let s = samples.sorted()
        func pct(_ p: Double) -> Double { s[min(s.count - 1, Int(Double(s.count) * p))] * 1000 }
        if json {
            let o: [String: Any] = ["kills": kills, "ms": ["p50": pct(0.5), "p99": pct(0.99), "max": (s.last ?? 0) * 1000, "min": (s.first ?? 0) * 1000],
                                    "samples_ms": samples.map { $0 * 1000 }, "unresolved_at_kill": pendingAtKill]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            FileHandle.standardError.write(Data("\n".utf8))
            print(String(format: "intent resolution after a coordinator kill, %d kills: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms",
                         kills, pct(0.5), pct(0.99), (s.first ?? 0) * 1000, (s.last ?? 0) * 1000))
        }
    }

    /// Intents plus pending records over the shards the running nodes lead; nil unless every shard is led by
    /// one of them (a shard between leaders reports nothing and must not count as resolved).
    private func unresolved(_ cluster: LocalCluster, excluding victim: Int?) -> Int? {
        var total = 0
        var led = Set<Int>()
        for (i, n) in cluster.nodes.enumerated() where i != victim {
            guard let (status, body) = BlockingHTTPClient.request("GET", host: "127.0.0.1", port: n.httpPort, path: "/v1/cluster", timeout: 1, tls: cluster.clientTLS),
                  status == 200, let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let t = o["transactions"] as? [String: Any], let shards = o["shards"] as? [[String: Any]] else { return nil }
            total += ((t["intents"] as? NSNumber)?.intValue ?? 0) + ((t["pending"] as? NSNumber)?.intValue ?? 0)
            for s in shards where s["role"] as? String == "leader" { led.insert((s["shard"] as? NSNumber)?.intValue ?? -1) }
        }
        return led.count == cluster.shards ? total : nil
    }

    private func waitQuiet(_ cluster: LocalCluster) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let ready = cluster.nodes.allSatisfy { BlockingHTTPClient.request("GET", host: "127.0.0.1", port: $0.httpPort, path: "/ready", timeout: 0.5, tls: cluster.clientTLS)?.0 == 200 }
            if ready, unresolved(cluster, excluding: nil) == 0 { try await Task.sleep(for: .milliseconds(300)); return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CLIError("the cluster did not become ready and quiet within 30 s")
    }
}
