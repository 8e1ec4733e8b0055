import ArgumentParser
import Foundation
import HTTP

/// `sutra node add | drain | remove | replace`: changes of the cluster's membership, sent to any node of the
/// cluster (`--http`, or the local cluster in `--data`) as `POST /v1/admin/nodes…` with the admin token. Each
/// prints the cluster map after the change; `sutra status` shows the replica moves that follow.
enum MembershipCommand {
    /// Sends `path` to the first node that answers; prints the map of its answer, or fails with the refusal.
    static func post(_ target: Target, _ path: String, body: [UInt8] = []) throws {
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
        throw CLIError("no node took the change (tried \(tried.joined(separator: ", ")))")
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node to the cluster map (joining); then start it with --join and its flags.",
            discussion: "The other nodes learn its addresses and link to it. It holds no replica until it replaces a node (sutra node replace).")
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
