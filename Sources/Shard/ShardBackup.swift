/// One shard of an online backup as a file: the shard snapshot image (`snapshotData`, the format every replica
/// already reads, checksummed) of the shard's data alone — concepts with their versions and both edge tables at
/// the backup's index, with no client session, no transaction and no fence (a backup is taken at a moment when
/// no cross-shard transaction is open, and a restored cluster has new clients).
///
/// Guarantees: `read(encode(image))` holds exactly the image's data at its index; bytes that fail any check of
/// the snapshot format, or that carry sessions, transactions or fences, are refused with the reason.
extension ShardContentImage {
    /// The backup file of this image. O(n log n) (records are sorted): call it off the loop for a large shard.
    public func backupData() -> [UInt8] {
        precondition(openRecords == 0 && openIntents == 0, "a backup image is taken with no transaction open")
        let s = ShardState(limits: ShardLimits(dimension: dimension))
        s.concepts = concepts
        s.outEdges = outEdges
        s.inEdges = inEdges
        s.lastApplied = appliedIndex
        return s.snapshotData()
    }
}

/// Reading a backup file back (restore, and `sutra digest --backup`).
public enum ShardBackupFile {
    /// The shard state a backup file holds, refused when the bytes are not a clean data-only image.
    public static func read(_ bytes: [UInt8], dimension: Int) throws(ShardSnapshotError) -> ShardState {
        let s = try ShardState.restore(from: bytes, limits: ShardLimits(dimension: dimension))
        if !s.sessions.isEmpty { throw .invalid("\(s.sessions.count) client sessions in a backup image") }
        if !s.txns.records.isEmpty || !s.txns.intents.isEmpty {
            throw .invalid("\(s.txns.records.count) transaction records and \(s.txns.intents.count) intents in a backup image")
        }
        if !s.backupFences.isEmpty { throw .invalid("backup fences in a backup image") }
        return s
    }
}
