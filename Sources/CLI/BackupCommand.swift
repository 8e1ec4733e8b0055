import ArgumentParser
import Backup
import Codec
import Foundation
import HTTP
import Release
import Shard

/// `sutra backup --to DIR`: an online, consistent backup of a running cluster. One node (the first that
/// answers) raises a backup fence on every shard, waits for a moment with no cross-shard transaction open, and
/// holds every shard's image at that moment; this command fetches the images one shard at a time, checks each
/// against the SHA-256 the node computed, writes them durably, then the manifest (last), then releases the
/// node's images. Single-shard writes never wait; cross-shard ones wait for at most the fence's life.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Take an online, consistent backup of a running cluster into a new directory (admin).",
        discussion: """
        Restore it with `sutra restore --from DIR --data NEWDIR`; check it with `sutra digest --backup DIR`.
        Exit status: 0 when the backup is complete (its manifest written); 1 otherwise (nothing in DIR is a backup without its manifest).
        """)
    @OptionGroup var target: Target
    @Option(help: "Directory to write the backup into (new or empty).") var to: String
    @Option(help: "Longest time cross-shard writes are held back if the node taking the backup dies mid-way (seconds, 1…3600).") var fenceSeconds = 60
    @Option(help: "Longest time to wait for cross-shard transactions begun before the backup to end (seconds, 1…3600).") var waitSeconds = 30
    @Option(help: "table or json (the manifest).") var output: OutputFormat = .table

    func run() throws {
        let dir = URL(fileURLWithPath: to).standardizedFileURL.path
        if let refusal = BackupDirectory.refusal(dir) { throw CLIError("\(refusal)") }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let auth = try target.authHeaders()
        let tls = try target.tlsContext()
        let takenAt = ISO8601DateFormatter().string(from: Date())
        let started = Date()

        // 1. A node takes the images (the first that can).
        var taken: (host: String, port: Int, view: [String: Any])?
        var failures: [String] = []
        for (h, p) in try target.httpEndpoints() {
            let path = "/v1/admin/backup?fence_seconds=\(fenceSeconds)&wait_seconds=\(waitSeconds)"
            guard let (status, body) = BlockingHTTPClient.request("POST", host: h, port: p, path: path, timeout: Double(waitSeconds + 60), headers: auth, tls: tls) else {
                failures.append("\(h):\(p): no answer"); continue
            }
            guard status == 200, let view = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                failures.append("\(h):\(p): \(status) \(String(decoding: body.prefix(400), as: UTF8.self))"); continue
            }
            taken = (h, p, view)
            break
        }
        guard let taken else { throw CLIError("no node took the backup: \(failures.joined(separator: "; "))") }
        let v = taken.view
        guard let id = v["backup_id"] as? String, let clusterID = v["cluster_id"] as? String,
              let shardCount = v["shard_count"] as? Int, let dimension = v["dimension"] as? Int,
              let shards = v["shards"] as? [[String: Any]], shards.count == shardCount, let digest = v["digest"] as? String else {
            throw CLIError("\(taken.host):\(taken.port) answered a backup without its fields: \(v)")
        }
        let consistentAfter = v["consistent_after_ms"] as? Int ?? 0
        FileHandle.standardError.write(Data("backup \(id) of cluster '\(clusterID)' taken by node \(v["node"] ?? "?") (consistent after \(consistentAfter) ms); fetching \(shardCount) shards into \(dir)\n".utf8))
        defer {
            // Release the node's images whatever happens (they also expire after 10 idle minutes).
            _ = BlockingHTTPClient.request("DELETE", host: taken.host, port: taken.port, path: "/v1/admin/backup/\(id)", timeout: 10, headers: auth, tls: tls)
        }

        // 2. Every shard's file, checked against the node's SHA-256, written durably.
        var entries: [BackupManifest.Shard] = []
        var totalBytes = 0
        for (i, s) in shards.enumerated() {
            let t0 = Date()
            guard (s["shard"] as? Int) == i, let index = (s["applied_index"] as? NSNumber)?.uint64Value,
                  let concepts = s["concepts"] as? Int, let edges = s["edges"] as? Int, let shardDigest = s["digest"] as? String else {
                throw CLIError("the node's manifest entry for shard \(i) is malformed: \(s)")
            }
            guard let reply = BlockingHTTPClient.exchange("GET", host: taken.host, port: taken.port, path: "/v1/admin/backup/\(id)/shards/\(i)",
                                                           timeout: 600, headers: auth, tls: tls) else {
                throw CLIError("shard \(i): \(taken.host):\(taken.port) did not answer; the backup in \(dir) is incomplete (no manifest)")
            }
            guard reply.status == 200 else {
                throw CLIError("shard \(i): \(reply.status) \(String(decoding: reply.body.prefix(400), as: UTF8.self)); the backup in \(dir) is incomplete (no manifest)")
            }
            let sha = lowerHex(ShardDigest.sha256(reply.body))
            guard sha == reply.headers["x-sutra-sha256"] else {
                throw CLIError("shard \(i): the file arrived damaged or cut short (\(reply.body.count) bytes, SHA-256 \(sha), the node sent \(reply.headers["x-sutra-sha256"] ?? "none")); retry the backup")
            }
            let name = BackupManifest.fileName(shard: i)
            try BackupDirectory.write(reply.body, dir: dir, name: name)
            totalBytes += reply.body.count
            entries.append(.init(shard: i, appliedIndex: index, concepts: concepts, edges: edges, digest: shardDigest,
                                 file: name, bytes: reply.body.count, sha256: sha))
            let secs = Date().timeIntervalSince(t0)
            FileHandle.standardError.write(Data("  shard \(i + 1)/\(shardCount): \(concepts) concepts, \(edges) edges, \(BackupFiles.size(reply.body.count)) in \(String(format: "%.2f", secs)) s\n".utf8))
        }

        // 3. The manifest, last.
        let manifest = BackupManifest(backupID: id, clusterID: clusterID, shardCount: shardCount, dimension: dimension,
                                      nodeRelease: v["release"] as? String ?? "?", cliRelease: SutraRelease.version,
                                      snapshotFormat: UInt32(v["snapshot_format"] as? Int ?? 0), takenAt: takenAt,
                                      consistentAfterMs: consistentAfter, digest: digest, shards: entries)
        if let p = manifest.problem() { throw CLIError("the backup would not be restorable: \(p)") }
        try BackupDirectory.write([UInt8](try manifest.encoded()), dir: dir, name: BackupManifest.fileName)
        let secs = Date().timeIntervalSince(started)
        if output == .json {
            print(String(decoding: try manifest.encoded(), as: UTF8.self))
        } else {
            let concepts = entries.reduce(0) { $0 + $1.concepts }, edges = entries.reduce(0) { $0 + $1.edges }
            print("backup \(id) of cluster '\(clusterID)' in \(dir): \(concepts) concepts, \(edges) edges, \(shardCount) shards, \(BackupFiles.size(totalBytes)) in \(String(format: "%.1f", secs)) s (\(BackupFiles.size(Int(Double(totalBytes) / max(secs, 0.001))))/s)")
            print("digest \(digest)")
        }
    }
}

/// Sizes as the backup command prints them.
enum BackupFiles {
    static func size(_ n: Int) -> String {
        if n >= 1 << 30 { return String(format: "%.2f GiB", Double(n) / Double(1 << 30)) }
        if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return "\(n) B"
    }
}
