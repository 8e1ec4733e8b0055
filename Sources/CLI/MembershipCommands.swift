import ArgumentParser
import Foundation
import HTTP
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// `sutra node add | drain | remove | replace`: changes of the cluster's membership, sent to any node of the
/// cluster (`--http`, or the local cluster in `--data`) as `POST /v1/admin/nodes…` with the admin token. Each
/// prints the cluster map after the change; `sutra status` shows the replica moves that follow.
enum MembershipCommand {
    /// Sends `path` to the first node that answers; prints the map of its answer, or fails with the refusal.
    /// While every node is unreachable or answers 503 (the meta group electing, a cluster just started), it
    /// tries again for up to `retrySeconds`.
    static func post(_ target: Target, _ path: String, body: [UInt8] = [], retrySeconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(retrySeconds)
        while true {
            do {
                try postOnce(target, path, body: body)
                return
            } catch let e as Unavailable {
                guard Date() < deadline else { throw CLIError("no node took the change (tried \(e.tried.joined(separator: ", ")))") }
                usleep(500_000)
            }
        }
    }

    private struct Unavailable: Error { var tried: [String] }

    private static func postOnce(_ target: Target, _ path: String, body: [UInt8]) throws {
        let auth = try target.authHeaders()
        let tls = try target.tlsContext()
        var tried: [String] = []
        for (h, p) in try target.httpEndpoints() {
            guard let (status, answer) = BlockingHTTPClient.request("POST", host: h, port: p, path: path, body: body, timeout: 30,
                                                                    headers: auth + [("Content-Type", "application/json")], tls: tls) else {
                tried.append("\(h):\(p)")
                continue
            }
            let text = String(decoding: answer, as: UTF8.self)
            guard status == 200 else {
                let message = ((try? JSONSerialization.jsonObject(with: Data(answer))) as? [String: Any]).flatMap { ($0["error"] as? [String: Any])?["message"] as? String } ?? text
                if status == 503 { tried.append("\(h):\(p) (\(message))"); continue }
                throw CLIError("refused by \(h):\(p) (HTTP \(status)): \(message)")
            }
            guard let o = (try? JSONSerialization.jsonObject(with: Data(answer))) as? [String: Any], let map = o["map"] as? [String: Any] else {
                print(text)
                return
            }
            print("cluster map version \(map["version"] ?? "?"):")
            for n in map["nodes"] as? [[String: Any]] ?? [] {
                print("  node \(n["id"] ?? "?")  \(n["state"] ?? "?")  peer \(n["peer_address"] ?? "")  sdk \(n["client_address"] ?? "")  http \(n["http_address"] ?? "")")
            }
            let moving = (map["shards"] as? [[String: Any]] ?? []).filter { $0["move"] != nil }
            for s in moving { print("  shard \(s["shard"] ?? "?"): \(StatusCommand.replicas(s))") }
            print("Replica moves run by themselves; watch them with `sutra status`.")
            return
        }
        throw Unavailable(tried: tried)
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node to the cluster map (joining); then start it with --join and its flags.",
            discussion: "The other nodes learn its addresses and link to it. It holds no replica until it replaces a node (sutra node replace) or `sutra rebalance` activates it and moves replicas onto it.")
        @Argument(help: "The new node's id (never used in this cluster before).") var id: UInt64
        @Option(help: "host:port of its peer port.") var peerAddress: String
        @Option(help: "host:port of its binary client port.") var clientAddress: String
        @Option(help: "host:port of its HTTP port.") var httpAddress: String
        @OptionGroup var target: Target

        func run() throws {
            let body = try JSONSerialization.data(withJSONObject: ["id": id, "peer_address": peerAddress, "client_address": clientAddress, "http_address": httpAddress])
            try MembershipCommand.post(target, "/v1/admin/nodes", body: Array(body))
        }
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drain a node: it takes no new replica, and its replicas move to an active node that lacks them.")
        @Argument(help: "The node's id.") var id: UInt64
        @OptionGroup var target: Target
        func run() throws { try MembershipCommand.post(target, "/v1/admin/nodes/\(id)/drain") }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a drained node that holds no replica from the cluster, for good.")
        @Argument(help: "The node's id.") var id: UInt64
        @OptionGroup var target: Target
        func run() throws { try MembershipCommand.post(target, "/v1/admin/nodes/\(id)/remove") }
    }

    struct Replace: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-create a node's replicas on another node (added first with sutra node add, started with --join).",
            discussion: "The new node becomes active and the old one draining; every shard then moves, one Raft membership change at a time (learner, caught up, voter, old replica removed). Works with the old node dead. Remove it afterwards: sutra node remove ID.")
        @Argument(help: "The node whose replicas move.") var id: UInt64
        @Option(help: "The node that takes them.") var with: UInt64
        @OptionGroup var target: Target
        func run() throws { try MembershipCommand.post(target, "/v1/admin/nodes/\(id)/replace?with=\(with)") }
    }
}

/// `sutra rebalance`: every joining node that announced its addresses (and is linked) becomes active, and replicas
/// move from the most to the least loaded nodes until no two differ by more than one — how a cluster grows onto
/// new machines.
struct RebalanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance",
        abstract: "Activate joining nodes and spread the replicas evenly over the active nodes (admin).",
        discussion: "Add the new nodes first (sutra node add, then start each with --join). The moves run by themselves, one Raft membership change at a time; watch them with `sutra status`.")
    @OptionGroup var target: Target
    func run() throws { try MembershipCommand.post(target, "/v1/admin/rebalance") }
}

/// `sutra move-replica SHARD --from A --to B`: one replica moved by hand — a Raft membership change of the shard
/// (B a learner, caught up from a streamed snapshot and the log, promoted; leadership handed off A if it leads;
/// A removed). For taking load off a node, or placing a shard near its users; `sutra rebalance` evens out after.
struct MoveReplicaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-replica",
        abstract: "Move one shard's replica from one node to another (admin).",
        discussion: "The target must be an active node that holds none of the shard and that the node asked can reach; one move at a time per shard. The shard keeps serving reads and writes throughout; watch the move with `sutra status`. The automatic balancing (after drains and `sutra rebalance`) may later move a replica again to keep nodes within one replica of each other.")
    @Argument(help: "The shard (0-based).") var shard: Int
    @Option(help: "The node whose replica moves.") var from: Int
    @Option(help: "The node it moves to.") var to: Int
    @OptionGroup var target: Target
    func run() throws {
        guard shard >= 0, from >= 1, to >= 1 else { throw CLIError("shard is 0 or more, node ids 1 or more") }
        try MembershipCommand.post(target, "/v1/admin/shards/\(shard)/move?from=\(from)&to=\(to)")
    }
}

extension MembershipCommand {
    /// `sutra node join ID --data DIR`: a new node for a local cluster (`sutra cluster up`) — its certificate from
    /// the cluster's CA, its addresses added to the cluster map, and its process started with `--join` on the
    /// next free ports of the local cluster's scheme, recorded so `cluster down` stops it. It holds nothing until
    /// it replaces a node (`sutra node replace N --with ID`).
    struct Join: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new node to a local cluster: certificate, cluster map, process started with --join.",
            discussion: "It holds no replica until it replaces a node (sutra node replace N --with ID --data DIR) or `sutra rebalance --data DIR` moves replicas onto it.")
        @Argument(help: "The new node's id (never used in this cluster before).") var id: Int
        @Option(help: "Data directory given to `cluster up`.") var data = "./sutra-cluster"
        @Option(help: "Seconds to wait for it to answer /health.") var timeout = 30.0

        func run() throws {
            let dir = URL(fileURLWithPath: data).standardizedFileURL.path
            var cluster = try LocalCluster.load(dir)
            guard id >= 1, !cluster.nodes.contains(where: { $0.id == id }) else { throw CLIError("node \(id) is already in \(LocalCluster.path(dir))") }
            guard let first = cluster.nodes.first, let binary = first.binary, let template = first.args else {
                throw CLIError("\(LocalCluster.path(dir)) records no command line to start a node from")
            }
            // The local cluster's port scheme: node i at base+i, base+100+i, base+200+i.
            let base = first.clientPort - first.id
            let ports = LocalCluster.Node.ports(base: base, node: id)
            for (what, port) in ports where !portIsFree(port) { throw CLIError("port \(port) (node \(id)'s \(what) port) is in use") }
            let (client, http, peer) = (ports[0].port, ports[1].port, ports[2].port)
            var set = ["--node-id", "\(id)", "--data", "\(dir)/node\(id)", "--client-port", "\(client)", "--http-port", "\(http)", "--peer-port", "\(peer)"]
            if let i = template.firstIndex(of: "--peers"), i + 1 < template.count {
                set += ["--peers", template[i + 1] + ",\(id)=127.0.0.1:\(peer)"]
            }
            if template.contains("--tls-cert") {
                let certs = ClusterCertificates(directory: dir + "/certs")
                var clusterID = "sutra"
                if let i = template.firstIndex(of: "--cluster-id"), i + 1 < template.count { clusterID = template[i + 1] }
                if access(certs.nodeCertificate(UInt64(id)), F_OK) != 0 {
                    do { try certs.addNode(clusterID: clusterID, id: UInt64(id)) } catch { throw CLIError("certificate of node \(id): \(error)") }
                }
                set += ["--tls-cert", certs.nodeCertificate(UInt64(id)), "--tls-key", certs.nodeKey(UInt64(id))]
                for flag in ["--client-tls-cert", "--client-tls-key"] where template.contains(flag) {
                    set += [flag, flag == "--client-tls-cert" ? certs.nodeCertificate(UInt64(id)) : certs.nodeKey(UInt64(id))]
                }
            }
            var args = NodeOpsCommand.edit(template, drop: ["--join"], set: set)
            args.append("--join")
            // The map first: the others link to it once they know its address.
            let target = try Target.parse(["--data", dir])
            let body = try JSONSerialization.data(withJSONObject: ["id": id, "peer_address": "127.0.0.1:\(peer)",
                                                                   "client_address": "127.0.0.1:\(client)", "http_address": "127.0.0.1:\(http)"])
            try MembershipCommand.post(target, "/v1/admin/nodes", body: Array(body))
            let log = "\(dir)/node\(id).log"
            let pid = try spawnDetached(binary, args, log: log)
            cluster.nodes.append(LocalCluster.Node(id: id, pid: pid, clientPort: client, httpPort: http, peerPort: peer,
                                                   data: "\(dir)/node\(id)", log: log, binary: binary, args: args))
            try cluster.save(dir)
            let deadline = Date().addingTimeInterval(timeout)
            while BlockingHTTPClient.request("GET", host: "127.0.0.1", port: http, path: "/health", timeout: 0.5, tls: cluster.clientTLS)?.0 != 200 {
                guard Date() < deadline else { throw CLIError("node \(id) (pid \(pid)) does not answer /health after \(timeout) s; see \(log)") }
                usleep(100_000)
            }
            print("node \(id) started with --join: pid \(pid), sdk 127.0.0.1:\(client), http 127.0.0.1:\(http), log \(log)")
            print("It holds nothing yet: sutra node replace N --with \(id) --data \(dir)")
        }
    }
}
