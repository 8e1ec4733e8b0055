import ArgumentParser
import Foundation
import HTTP

/// `sutra compact-log`: on every node, a snapshot of every shard and a log that keeps nothing the snapshots
/// cover (`POST /v1/flush?compact=log`). Before downgrading to 0.1 after a backup was taken with 0.2: the
/// backup's fence entries are then in no node's log, so a 0.1 node never meets them (`CHANGELOG.md`). A node
/// with a backup fence raised refuses (the snapshot would hold it); run it again once the backup is over.
struct CompactLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact-log", abstract: "Snapshot every shard on every node and drop the log behind the snapshots (admin).",
        discussion: "Run it on 0.2 before a downgrade to 0.1 if a backup was ever taken. Exit status: 0 when every node compacted; 1 otherwise (the nodes that did not are named).")
    @OptionGroup var target: Target

    func run() throws {
        let auth = try target.authHeaders()
        let tls = try target.tlsContext()
        var failures: [String] = []
        for (h, p) in try target.httpEndpoints() {
            guard let (status, body) = BlockingHTTPClient.request("POST", host: h, port: p, path: "/v1/flush?compact=log", timeout: 600,
                                                                  headers: auth, tls: tls) else {
                failures.append("\(h):\(p): no answer"); continue
            }
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            if status == 200 { print("\(h):\(p): \(text)") } else { failures.append("\(h):\(p): \(status) \(text)") }
        }
        guard failures.isEmpty else { throw CLIError("not compacted: \(failures.joined(separator: "; "))") }
    }
}
