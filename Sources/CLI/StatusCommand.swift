import ArgumentParser
import Foundation
import HTTP
import TLS

/// Where operator commands find the cluster: `--http host:port,…`, else the local cluster in `--data`.
struct Target: ParsableArguments {
    @Option(help: "HTTP endpoints host:port,… (default: env SUTRA_HTTP_ENDPOINTS, else the local cluster in --data).") var http: String?
    @Option(help: "Data directory of a local cluster started with `sutra cluster up`.") var data = "./sutra-cluster"
    @Option(help: "Bearer token (default: env SUTRA_TOKEN, else the local cluster's <data>/admin.token).") var token: String?
    @Option(help: "CA certificate (PEM) to verify the nodes' HTTPS certificates with; HTTPS when given (env SUTRA_CACERT; default: the local cluster's, if it runs client TLS).") var cacert: String?

    /// The client TLS context for HTTPS (nil: plain HTTP): `--cacert`, else SUTRA_CACERT, else the local cluster's CA.
    func tlsContext() throws -> TLSContext? {
        guard let ca = LocalCluster.caCertificate(flag: cacert, data: data, localCluster: givenHTTP == nil) else { return nil }
        return try LocalCluster.clientTLSContext(ca: ca)
    }

    /// The headers that carry the token, if any.
    func authHeaders() throws -> [(String, String)] { CLIToken.headers(try CLIToken.resolve(flag: token, dataDir: data)) }

    /// `--http`, else SUTRA_HTTP_ENDPOINTS (nil: the local cluster in --data).
    var givenHTTP: String? { http ?? CLIEnvironment.value("SUTRA_HTTP_ENDPOINTS") }

    func httpEndpoints() throws -> [(String, Int)] {
        if let given = givenHTTP {
            return try given.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.map { e in
                guard let c = e.lastIndex(of: ":"), let p = Int(e[e.index(after: c)...]) else { throw CLIError("'\(e)' is not host:port") }
                return (String(e[..<c]), p)
            }
        }
        let cluster = try LocalCluster.load(URL(fileURLWithPath: data).standardizedFileURL.path)
        return cluster.nodes.map { ("127.0.0.1", $0.httpPort) }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show every shard's leader, term, indexes and replica lag, and the cross-shard transactions in flight.",
        discussion: "Exit status: 0 when every shard has a leader; 2 when some shard has none (the output names it); 1 when no node answers.")
    @OptionGroup var target: Target
    @Flag(help: "Print the raw JSON of GET /v1/cluster (the same as --output json).") var json = false
    @Option(help: "table or json (the raw JSON of GET /v1/cluster).") var output: OutputFormat = .table

    func run() throws {
        var reply: [UInt8]?
        var unreachable: [String] = []
        let auth = try target.authHeaders()
        let tls = try target.tlsContext()
        for (h, p) in try target.httpEndpoints() {
            if let (status, body) = BlockingHTTPClient.request("GET", host: h, port: p, path: "/v1/cluster", headers: auth, tls: tls) {
                if status == 200 { reply = body; break }
                if status == 401 || status == 403 {
                    throw CLIError("\(h):\(p) refused: \(String(decoding: body, as: UTF8.self)) (pass --token or SUTRA_TOKEN)")
                }
            }
            unreachable.append("\(h):\(p)")
        }
        guard let reply else { throw CLIError("no node answered (tried \(unreachable.joined(separator: ", ")))") }
        guard let o = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any],
              let nodes = o["nodes"] as? [[String: Any]], let shards = o["shards"] as? [[String: Any]] else {
            throw CLIError("unexpected /v1/cluster answer")
        }
        let leaderless = shards.filter { (($0["leader"] as? NSNumber)?.intValue ?? 0) == 0 }.compactMap { ($0["shard"] as? NSNumber)?.intValue }
        if json || output == .json {
            print(String(decoding: reply, as: UTF8.self))
            if !leaderless.isEmpty { throw ExitCode(2) }
            return
        }
        print("cluster \(o["cluster_id"] ?? "?"): \(nodes.count) nodes, \(o["num_shards"] ?? "?") shards, dimension \(o["dimension"] ?? "?") (as seen by node \(o["node_id"] ?? "?"))")
        // The cluster map (the meta group's state), when the node runs one: node states and shard placement.
        let map = o["map"] as? [String: Any]
        var stateOf: [Int: String] = [:]
        for n in map?["nodes"] as? [[String: Any]] ?? [] {
            if let id = (n["id"] as? NSNumber)?.intValue, let st = n["state"] as? String { stateOf[id] = st }
        }
        var placement: [Int: [String: Any]] = [:]
        for p in map?["shards"] as? [[String: Any]] ?? [] { if let i = (p["shard"] as? NSNumber)?.intValue { placement[i] = p } }
        for n in nodes {
            let id = (n["id"] as? NSNumber)?.intValue ?? 0
            print("  node \(n["id"] ?? "?")  \(stateOf[id] ?? "")\(stateOf[id] == nil ? "" : "  ")sdk \(n["client_address"] ?? "")  http \(n["http_address"] ?? "")  \((n["connected"] as? Bool) == true ? "connected" : "UNREACHABLE")")
        }
        if let map {
            let g = map["meta_group"] as? [String: Any]
            let leader = (g?["leader"] as? NSNumber)?.intValue ?? 0
            print("  cluster map version \(map["version"] ?? "?"), replication \(map["replication"] ?? "?"); meta group \(leader == 0 ? "WITHOUT A LEADER (the map cannot change)" : "led by node \(leader)") (term \(g?["term"] ?? "?"))")
        }
        // Each shard's replica lag is known by its leader: ask the leader's node for the shards it leads.
        var leaderViews: [Int: [String: Any]] = [:]
        var txnLines: [String] = []
        let httpOf = Dictionary(uniqueKeysWithValues: nodes.compactMap { n -> (Int, String)? in
            guard let id = (n["id"] as? NSNumber)?.intValue, let a = n["http_address"] as? String, !a.isEmpty else { return nil }
            return (id, a)
        })
        for (id, addr) in httpOf {
            guard let c = addr.lastIndex(of: ":"), let port = Int(addr[addr.index(after: c)...]),
                  let (st, body) = BlockingHTTPClient.request("GET", host: String(addr[..<c]), port: port, path: "/v1/cluster", headers: auth, tls: tls), st == 200,
                  let view = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let ss = view["shards"] as? [[String: Any]] else { continue }
            if let t = view["transactions"] as? [String: Any] {
                txnLines.append("  node \(id)  pending \(t["pending"] ?? "?")  intents \(t["intents"] ?? "?")  committed \(t["committed"] ?? "?")  aborted \(t["aborted"] ?? "?")  recovered \(t["recovered"] ?? "?")  oldest \(t["oldest_pending_ms"] ?? "?") ms")
            }
            for s in ss where (s["leader"] as? NSNumber)?.intValue == id && (s["role"] as? String) == "leader" {
                leaderViews[(s["shard"] as? NSNumber)?.intValue ?? -1] = s
            }
        }
        var rows: [[String]] = []
        for s in shards {
            let idx = (s["shard"] as? NSNumber)?.intValue ?? -1
            let v = leaderViews[idx] ?? s
            let lag = (v["replicas"] as? [[String: Any]] ?? []).map { "n\($0["node"] ?? "?"):\($0["lag"] ?? "?")" }.joined(separator: " ")
            let leader = (v["leader"] as? NSNumber)?.intValue ?? 0
            rows.append(["\(idx)", leader == 0 ? "NONE" : "\(leader)", "\(v["term"] ?? "?")", "\(v["commit_index"] ?? "?")",
                         "\(v["applied_index"] ?? "?")", "\(v["concepts"] ?? "?")", StatusCommand.replicas(placement[idx]), lag.isEmpty ? "?" : lag])
        }
        let table = renderTable(["shard", "leader", "term", "commit", "applied", "concepts", "replicas", "lag"], rows)
        print(table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        // Snapshots on their way to followers (a replica rebuilt, a follower behind the compacted log).
        var streamLines: [String] = []
        for s in shards {
            let idx = (s["shard"] as? NSNumber)?.intValue ?? -1
            guard let v = leaderViews[idx], let streams = v["snapshot_streams"] as? [[String: Any]] else { continue }
            for st in streams { streamLines.append("  " + StatusCommand.streamLine(shard: idx, leader: v["leader"], st)) }
        }
        if !streamLines.isEmpty {
            print("  snapshots streaming:")
            for line in streamLines { print(line) }
        }
        // Replica moves in flight: where each stands (the snapshot's bytes above; then the log's entries).
        var moveLines: [String] = []
        for s in shards {
            let idx = (s["shard"] as? NSNumber)?.intValue ?? -1
            guard let p = placement[idx], let m = p["move"] as? [String: Any] else { continue }
            moveLines.append("  " + StatusCommand.moveLine(shard: idx, move: m, leaderView: leaderViews[idx]))
        }
        if !moveLines.isEmpty {
            print("  replica moves in flight:")
            for line in moveLines { print(line) }
        }
        print("  transactions (records pending and intents held on the shards each node leads; counters since it started):")
        for line in txnLines.sorted() { print(line) }
        if !leaderless.isEmpty {
            print("NO LEADER for shard(s) \(leaderless.map(String.init).joined(separator: ", ")) (as seen by node \(o["node_id"] ?? "?")): their writes fail until one is elected")
            throw ExitCode(2)
        }
    }

    /// A shard's replicas as the map places them: voters, learners marked `+N (learner)`, a move in flight
    /// (`2,3,4 (moving 1→4: catching_up)`); `?` when the node runs no map.
    static func replicas(_ p: [String: Any]?) -> String {
        guard let p else { return "?" }
        let ids = { (k: String) in ((p[k] as? [Any]) ?? []).map { "\($0)" } }
        var text = (ids("voters") + ids("learners").map { "+\($0)" }).joined(separator: ",")
        if let m = p["move"] as? [String: Any] {
            text += " (moving \(m["from"].map { "\($0)" } ?? "new")→\(m["to"] ?? "?"): \(m["phase"] ?? "?"))"
        }
        return text
    }

    /// One replica move as a line: `shard 1  node 3 → node 4  catching_up  snapshot 41% (28.6 of 70.1 MB)` or
    /// `… log 1,204 entries behind` — from the map's move and what the shard's leader knows of the target.
    static func moveLine(shard: Int, move m: [String: Any], leaderView v: [String: Any]?) -> String {
        let to = (m["to"] as? NSNumber)?.intValue ?? 0
        var text = "shard \(shard)  \(m["from"].map { "node \($0)" } ?? "new replica") → node \(to)  \(m["phase"] ?? "?")"
        guard let v else { return text + "  (its leader did not answer)" }
        if let st = (v["snapshot_streams"] as? [[String: Any]])?.first(where: { ($0["node"] as? NSNumber)?.intValue == to }) {
            let done = (st["bytes_acknowledged"] as? NSNumber)?.doubleValue ?? 0
            let total = max((st["bytes_total"] as? NSNumber)?.doubleValue ?? 0, 1)
            return text + String(format: "  snapshot %.0f%% (%.1f of %.1f MB)", min(done / total, 1) * 100, done / 1e6, total / 1e6)
        }
        if let r = (v["replicas"] as? [[String: Any]])?.first(where: { ($0["node"] as? NSNumber)?.intValue == to }),
           let lag = (r["lag"] as? NSNumber)?.intValue {
            text += lag == 0 ? "  log caught up" : "  log \(lag) entries behind"
        } else {
            text += "  not yet a replica of the leader's group"
        }
        return text
    }

    /// One snapshot stream as a line: `shard 2  node 1 → node 3  [########------------]  41%  28.6 of 70.1 MB  27.0 MB/s  1.5 s left`.
    static func streamLine(shard: Int, leader: Any?, _ st: [String: Any]) -> String {
        let done = (st["bytes_acknowledged"] as? NSNumber)?.doubleValue ?? 0
        let total = max((st["bytes_total"] as? NSNumber)?.doubleValue ?? 0, 1)
        let rate = (st["bytes_per_second"] as? NSNumber)?.doubleValue ?? 0
        let fraction = min(done / total, 1)
        let filled = Int((fraction * 20).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled)
        let left = rate > 0 ? String(format: "%.1f s left", (total - done) / rate) : "starting"
        let figures = String(format: "%3.0f%%  %.1f of %.1f MB  %.1f MB/s", fraction * 100, done / 1e6, total / 1e6, rate / 1e6)
        return "shard \(shard)  node \(leader ?? "?") → node \(st["node"] ?? "?")  [\(bar)]  \(figures)  \(left)"
    }
}
