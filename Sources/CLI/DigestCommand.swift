import ArgumentParser
import Backup
import Foundation
import HTTP

/// `sutra digest`: every node's content digest of its shards (`GET /v1/digest`), a table of the shards, and as
/// the last line the cluster's digest — equal for two clusters holding the same data (same shard count), whatever
/// their releases, histories and log indexes, so a restore or an upgrade can be verified exactly.
struct DigestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest", abstract: "Print a content digest per shard and one of all the data (admin).",
        discussion: "With --backup DIR, the digest of a backup's files (each checked against its manifest). Exit status: 0 when every node answered the same digest (or the backup checks out); 3 when nodes disagree (writes in flight, or a replica that diverged); 1 when no node answered or the backup is refused.")
    @OptionGroup var target: Target
    @Option(help: "table or json.") var output: OutputFormat = .table
    @Option(help: "Digest a backup directory (offline) instead of a live cluster.") var backup: String?

    func run() throws {
        if let backup { try digestBackup(URL(fileURLWithPath: backup).standardizedFileURL.path); return }
        let auth = try target.authHeaders()
        let tls = try target.tlsContext()
        var answers: [(endpoint: String, view: [String: Any])] = []
        var failures: [String] = []
        for (h, p) in try target.httpEndpoints() {
            guard let (status, body) = BlockingHTTPClient.request("GET", host: h, port: p, path: "/v1/digest", timeout: 120, headers: auth, tls: tls) else {
                failures.append("\(h):\(p): no answer"); continue
            }
            guard status == 200, let view = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                failures.append("\(h):\(p): \(status) \(String(decoding: body.prefix(300), as: UTF8.self))"); continue
            }
            answers.append(("\(h):\(p)", view))
        }
        guard let first = answers.first else { throw CLIError("no node answered a digest: \(failures.joined(separator: "; "))") }
        let digests = Set(answers.compactMap { $0.view["digest"] as? String })
        if output == .json {
            let o: [String: Any] = ["nodes": answers.map(\.view), "agree": digests.count == 1, "failures": failures,
                                    "digest": first.view["digest"] ?? ""]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            let shards = first.view["shards"] as? [[String: Any]] ?? []
            print("shards as node \(first.view["node"] ?? "?") holds them (\(first.endpoint)):")
            print(renderTable(["shard", "applied", "concepts", "edges", "digest"], shards.map { s in
                ["\(s["shard"] ?? "?")", "\(s["applied_index"] ?? "?")", "\(s["concepts"] ?? "?")", "\(s["edges"] ?? "?")", "\(s["digest"] ?? "?")"]
            }))
            for a in answers { print("node \(a.view["node"] ?? "?") (\(a.endpoint)): \(a.view["digest"] ?? "?")") }
            for f in failures { print("not asked: \(f)") }
            if digests.count > 1 { print("NODES DISAGREE: writes were in flight, or a replica diverged (compare the shard tables with --output json)") }
            print(first.view["digest"] as? String ?? "?")
        }
        if digests.count > 1 { throw ExitCode(3) }
    }

    /// The backup's digests, recomputed from its files (every check of a restore), in the live command's shape.
    private func digestBackup(_ dir: String) throws {
        let m: BackupManifest
        do {
            m = try BackupReader.manifest(in: dir)
            _ = try BackupReader.verifiedShards(of: m, in: dir)
        } catch {
            throw CLIError("backup refused: \(error)")
        }
        if output == .json {
            let o: [String: Any] = ["backup": dir, "backup_id": m.backupID, "cluster_id": m.clusterID, "digest": m.digest,
                                    "shards": m.shards.map { ["shard": $0.shard, "applied_index": $0.appliedIndex, "concepts": $0.concepts, "edges": $0.edges, "digest": $0.digest] as [String: Any] }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("shards of backup \(m.backupID) of cluster '\(m.clusterID)' (\(dir)), every file checked:")
            print(renderTable(["shard", "applied", "concepts", "edges", "digest"], m.shards.map { s in
                ["\(s.shard)", "\(s.appliedIndex)", "\(s.concepts)", "\(s.edges)", s.digest]
            }))
            print(m.digest)
        }
    }
}
