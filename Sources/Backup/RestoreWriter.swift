import Foundation
import Node
import Raft
import Shard
import WAL

/// Writes a new cluster's node data directory from a verified backup: the identity (new cluster id, this
/// node, the backup's shard count and dimension), a WAL in which every shard's log is its backup image as an
/// installed snapshot at the image's index (term 1, the new cluster's nodes as voters, committed), and the
/// vector index built from the images. The node then starts as if it had been a follower that received those
/// snapshots: every node of the new cluster holds the same state, and elections start at term 2.
///
/// Guarantees: refuses a directory that exists and is not empty (a restore never mixes with other data); the
/// WAL and identity are written durably (fsync) before it returns; a restore interrupted part-way leaves a
/// directory without its vector index or WAL, which the next attempt refuses as not empty (remove it first).
public enum RestoreWriter {
    /// Where a restored cluster's cluster id comes from when the operator names none: the backup's id, so that
    /// every machine restoring the same backup agrees without being told.
    public static func defaultClusterID(_ m: BackupManifest) -> String { "restored-" + String(m.backupID.prefix(12)) }

    /// The index built once from the images (nil for dimension 0), shared by every node directory written.
    public static func vectorIndex(_ states: [ShardState], dimension: Int) -> ConceptVectors? {
        guard dimension > 0 else { return nil }
        let v = ConceptVectors(dimension: dimension)
        for (s, st) in states.enumerated() { v.rebuild(shard: s, shardCount: states.count, from: st) }
        v.processAll()
        return v
    }

    public static func write(_ states: [ShardState], backup m: BackupManifest, clusterID: String, voters: [NodeID],
                             node: NodeID, dataDir: String, vectors: ConceptVectors?) throws {
        precondition(states.count == m.shardCount && voters.contains(node), "a node of the new cluster, every shard")
        let fm = FileManager.default
        if fm.fileExists(atPath: dataDir) {
            let entries = (try? fm.contentsOfDirectory(atPath: dataDir)) ?? ["?"]
            guard entries.isEmpty else {
                throw BackupError(file: dataDir, "exists and is not empty (\(entries.count) entries): a restore writes only into a new or empty directory")
            }
        }
        try fm.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(dataDir, 0o700)
        try DataIdentityFile.write(DataIdentity(clusterID: clusterID, nodeID: node, shards: m.shardCount, dimension: m.dimension), dataDir: dataDir)
        let engine = try LogEngine(directory: dataDir + "/wal")
        defer { engine.close() }
        var batch = WriteBatch()
        let members = ConfState(voters: voters.sorted())
        for (s, state) in states.enumerated() {
            let index = state.lastApplied
            precondition(index == m.shards[s].appliedIndex && index > 0, "a verified image at its manifest index")
            let snap = Snapshot(metadata: SnapshotMetadata(index: index, term: 1, confState: members), data: state.snapshotData())
            batch.installSnapshot(group: UInt64(s), snap)
            batch.setHardState(group: UInt64(s), HardState(term: 1, vote: noNode, commit: index))
        }
        try engine.write(batch)
        if let vectors {
            var positions: [Int: UInt64] = [:]
            for (s, st) in states.enumerated() { positions[s] = st.lastApplied }
            try vectors.save(to: dataDir + "/vectors", positions: positions, shardCount: m.shardCount)
        }
    }
}

/// What a node data directory was created for, as `sutra cluster up` needs it to start a restored cluster with
/// the identity its directories record (cluster id, shard count, dimension).
public struct RecordedIdentity: Equatable, Sendable {
    public var clusterID: String
    public var nodeID: UInt64
    public var shards: Int
    public var dimension: Int

    /// The identity recorded in `dataDir`; nil when it has none (a new directory). Throws on a damaged file.
    public static func of(dataDir: String) throws -> RecordedIdentity? {
        guard let id = try DataIdentityFile.read(dataDir: dataDir) else { return nil }
        return RecordedIdentity(clusterID: id.clusterID, nodeID: id.nodeID, shards: id.shards, dimension: id.dimension)
    }
}
