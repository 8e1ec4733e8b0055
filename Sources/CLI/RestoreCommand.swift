import ArgumentParser
import Backup
import Foundation
import Raft
import Shard
import NodeCore

/// `sutra restore --from DIR --data NEWDIR`: a new cluster's data directories from a backup, after checking
/// every file of it (sizes, SHA-256, the snapshot checks, content digests per shard and of the whole). For a
/// local cluster it writes `NEWDIR/node1…nodeN`, which `sutra cluster up --data NEWDIR` starts; with `--node K`
/// it writes one machine's node directory at NEWDIR itself (run it on every machine with the same backup and
/// the same `--cluster-id`, or none: the default is derived from the backup's id).
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Write a new cluster's data directories from a backup (offline; nothing is running).",
        discussion: "Exit status: 0 when every directory was written; 1 when the backup is refused (the message names the file and what is wrong with it) or a directory could not be written.")
    @Option(help: "The backup directory (written by `sutra backup`).") var from: String
    @Option(help: "Where to write: the local cluster's data directory (node1…nodeN in it), or with --node one node's data directory.") var data: String
    @Option(help: "Number of nodes of the new cluster (1…7): each holds a replica of every shard.") var nodes = 3
    @Option(help: "Write only this node's data directory, at --data itself (one machine of a multi-machine cluster).") var node: Int?
    @Option(help: "The new cluster's id (default: restored-<backup id>; certificates and nodes must use the same).") var clusterID: String?

    func run() throws {
        guard (1...7).contains(nodes) else { throw ValidationError("--nodes is \(nodes); allowed: 1…7") }
        if let node, !(1...nodes).contains(node) { throw ValidationError("--node is \(node); allowed: 1…\(nodes)") }
        let src = URL(fileURLWithPath: from).standardizedFileURL.path
        let dst = URL(fileURLWithPath: data).standardizedFileURL.path
        let started = Date()
        let m: BackupManifest
        let states: [ShardState]
        do {
            m = try BackupReader.manifest(in: src)
            FileHandle.standardError.write(Data("backup \(m.backupID) of cluster '\(m.clusterID)' (taken \(m.takenAt) by release \(m.nodeRelease)): \(m.shardCount) shards, dimension \(m.dimension); verifying\n".utf8))
            states = try BackupReader.verifiedShards(of: m, in: src) { s, st in
                FileHandle.standardError.write(Data("  shard \(s + 1)/\(m.shardCount) verified: \(st.conceptCount) concepts, index \(st.lastApplied)\n".utf8))
            }
        } catch {
            throw CLIError("backup refused: \(error)")
        }
        let cluster = clusterID ?? RestoreWriter.defaultClusterID(m)
        if let problem = NodeConfig.clusterIDProblem(cluster) { throw ValidationError("--cluster-id \(problem)") }
        let voters = (1...nodes).map { NodeID($0) }
        let targets: [(NodeID, String)] = node.map { [(NodeID($0), dst)] } ?? voters.map { ($0, "\(dst)/node\($0)") }
        // Every target checked before any is written.
        if let refusal = targets.lazy.compactMap({ BackupDirectory.refusal($0.1) }).first { throw CLIError("\(refusal)") }
        let prepared = RestoreWriter.Prepared(states, backup: m)
        for (id, dir) in targets {
            do {
                try RestoreWriter.write(prepared, clusterID: cluster, voters: voters, node: id, dataDir: dir)
            } catch {
                throw CLIError("node \(id): \(error)")
            }
            FileHandle.standardError.write(Data("  node \(id): \(dir) written\n".utf8))
        }
        let concepts = states.reduce(0) { $0 + $1.conceptCount }
        print("restored backup \(m.backupID) into \(node == nil ? "\(dst)/node1…node\(nodes)" : dst): cluster id '\(cluster)', \(nodes) nodes, \(m.shardCount) shards, dimension \(m.dimension), \(concepts) concepts in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        if node == nil {
            print("start it: sutra cluster up --data \(data) --nodes \(nodes)    verify: sutra digest --data \(data) (expect \(m.digest))")
        } else {
            print("start the node with --data \(dst) --node-id \(node!) --cluster-id \(cluster) --shards \(m.shardCount) --dimension \(m.dimension), certificates for cluster '\(cluster)', and peers 1…\(nodes) restored from the same backup")
        }
        print("digest \(m.digest)")
    }
}
