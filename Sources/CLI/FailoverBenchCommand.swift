import ArgumentParser
import Foundation
import HTTP
import SutraClient
import UV
#if canImport(Glibc)
import Glibc
#endif

/// `sutra bench-failover`: on a local cluster (`sutra cluster up`), repeatedly kill -9 the leader of a shard
/// while clients write to that shard, and measure the time from the kill to the SDK's first successful write
/// to that shard. The killed node is restarted and caught up before the next round.
struct FailoverBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-failover",
                                                    abstract: "Measure failover: kill -9 a shard leader, time until the SDK's next successful write to that shard.")
    @Option(help: "Data directory of a local cluster started with `sutra cluster up`.") var data = "./sutra-cluster"
    @Option(help: "Bearer token (default: env SUTRA_TOKEN, else <data>/admin.token).") var token: String?
    @Option(help: "Number of leader kills.") var kills = 10
    @Option(help: "Concurrent writers to the shard under test.") var writers = 4
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        let dir = URL(fileURLWithPath: data).standardizedFileURL.path
        var cluster = try LocalCluster.load(dir)
        guard cluster.nodes.count >= 3 else { throw CLIError("failover needs at least 3 nodes") }
        let sdk = try SutraClient(endpoints: cluster.nodes.map { "127.0.0.1:\($0.clientPort)" },
                                  options: .init(token: try CLIToken.resolve(flag: token, dataDir: data)))
        var samples: [Double] = []
        for round in 0..<kills {
            let shard = round % cluster.shards
            try await waitAllReady(cluster)
            guard let leader = try await leaderOf(shard, sdk), let victim = cluster.nodes.firstIndex(where: { $0.id == leader }) else {
                throw CLIError("shard \(shard) has no leader")
            }
            let shards = cluster.shards
            let keys: [ConceptID] = Array((0..<1_000_000).lazy.map { ConceptID(hi: 0xFA11_0000_0000_0000 | UInt64(round), lo: UInt64($0)) }
                .filter { $0.shard(of: shards) == shard }.prefix(writers * 64))
            let stop = Locked(false)
            let firstAfterKill = Locked(FirstSuccess())
            let tasks = (0..<writers).map { w in
                Task { [keys, stop, firstAfterKill, sdk] in
                    var i = 0
                    while !stop.withLock({ $0 }) {
                        let id = keys[(w * 64 + i % 64) % keys.count]
                        i += 1
                        let started = ContinuousClock.now
                        if (try? await sdk.put(NewConcept(id: id, text: "failover \(round)"))) != nil {
                            firstAfterKill.withLock { $0.record(started: started, ended: .now) }
                        }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let killedAt = ContinuousClock.now
            firstAfterKill.withLock { $0.after = killedAt }
            kill(cluster.nodes[victim].pid, SIGKILL)
            var st: Int32 = 0
            waitpid(cluster.nodes[victim].pid, &st, 0)
            let deadline = killedAt + .seconds(10)
            while firstAfterKill.withLock({ $0.first }) == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            stop.withLock { $0 = true }
            for t in tasks { await t.value }
            guard let first = firstAfterKill.withLock({ $0.first }) else { throw CLIError("round \(round): no successful write within 10 s of the kill") }
            let seconds = (first - killedAt).seconds
            samples.append(seconds)
            if !json { FileHandle.standardError.write(Data(String(format: "\rkill %d/%d: shard %d leader node %d → first write after %.0f ms   ", round + 1, kills, shard, leader, seconds * 1000).utf8)) }
            // Restart the victim the same way and let it catch up.
            try cluster.respawn(victim, dir: dir)
        }
        try await waitAllReady(cluster)
        await sdk.close()
        let s = samples.sorted()
        func pct(_ p: Double) -> Double { s[min(s.count - 1, Int(Double(s.count) * p))] * 1000 }
        if json {
            let o: [String: Any] = ["kills": kills, "ms": ["p50": pct(0.5), "p99": pct(0.99), "max": (s.last ?? 0) * 1000, "min": (s.first ?? 0) * 1000],
                                    "samples_ms": samples.map { $0 * 1000 }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            FileHandle.standardError.write(Data("\n".utf8))
            print(String(format: "failover over %d kills: p50 %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms", kills, pct(0.5), pct(0.99), (s.first ?? 0) * 1000, (s.last ?? 0) * 1000))
        }
    }

    private func leaderOf(_ shard: Int, _ sdk: SutraClient) async throws -> UInt32? {
        for _ in 0..<100 {
            if let l = try await sdk.clusterInfo().shards.first(where: { $0.shard == shard })?.leader { return l }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Every node ready and no replica lagging (as seen by each shard's leader).
    private func waitAllReady(_ cluster: LocalCluster) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let ready = cluster.nodes.allSatisfy { BlockingHTTPClient.request("GET", host: "127.0.0.1", port: $0.httpPort, path: "/ready", timeout: 0.5, tls: cluster.clientTLS)?.0 == 200 }
            if ready { try await Task.sleep(for: .milliseconds(500)); return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CLIError("the cluster did not become ready within 30 s")
    }
}

/// The end of the first successful write that started after the kill (`after`). Only such a write counts: one
/// in flight at the kill may have been committed by the old leader just before it died.
struct FirstSuccess {
    var after: ContinuousClock.Instant?
    var first: ContinuousClock.Instant?

    mutating func record(started: ContinuousClock.Instant, ended: ContinuousClock.Instant) {
        if let a = after, started > a, first == nil { first = ended }
    }
}
