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

    /// What every node directory of a restore holds, computed once: each shard's snapshot bytes and index, and
    /// the vector index (nil for dimension 0).
    public struct Prepared {
        let backup: BackupManifest
        let snapshots: [(index: UInt64, data: [UInt8])]
        let vectors: ConceptVectors?

        public init(_ states: [ShardState], backup m: BackupManifest) {
            precondition(states.count == m.shardCount, "every shard")
            backup = m
            snapshots = states.enumerated().map { s, state in
                precondition(state.lastApplied == m.shards[s].appliedIndex && state.lastApplied > 0, "a verified image at its manifest index")
                return (state.lastApplied, state.snapshotData())
            }
            if m.dimension > 0 {
                let v = ConceptVectors(dimension: m.dimension)
                for (s, st) in states.enumerated() { v.rebuild(shard: s, shardCount: states.count, from: st) }
                v.processAll()
                vectors = v
            } else {
                vectors = nil
            }
        }
    }

    public static func write(_ p: Prepared, clusterID: String, voters: [NodeID], node: NodeID, dataDir: String) throws {
        precondition(voters.contains(node), "a node of the new cluster")
        if let refusal = BackupDirectory.refusal(dataDir) { throw refusal }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(dataDir, 0o700)
        let m = p.backup
        try DataIdentityFile.write(DataIdentity(clusterID: clusterID, nodeID: node, shards: m.shardCount, dimension: m.dimension), dataDir: dataDir)
        let engine = try LogEngine(directory: dataDir + "/wal")
        defer { engine.close() }
        var batch = WriteBatch()
        let members = ConfState(voters: voters.sorted())
        for (s, snap) in p.snapshots.enumerated() {
            batch.installSnapshot(group: UInt64(s), Snapshot(metadata: SnapshotMetadata(index: snap.index, term: 1, confState: members), data: snap.data))
            batch.setHardState(group: UInt64(s), HardState(term: 1, vote: noNode, commit: snap.index))
        }
        try engine.write(batch)
        if let vectors = p.vectors {
            var positions: [Int: UInt64] = [:]
            for (s, snap) in p.snapshots.enumerated() { positions[s] = snap.index }
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
