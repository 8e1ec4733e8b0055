import Foundation

/// A backup directory's table of contents, `manifest.json`, written last (temporary name, fsync, rename), so a
/// directory without one is an unfinished backup. It names the cluster the backup came from, its shape
/// (shard count, dimension), the formats of its files, and per shard the committed index the image was taken
/// at, its counts, its content digest (`ShardDigest`, equal to `sutra digest` of a cluster holding the same
/// data) and the file's size and SHA-256.
public struct BackupManifest: Codable, Equatable, Sendable {
    /// Always `sutra-backup`.
    public var format: String
    /// The layout of the directory and this file; a reader refuses a newer one.
    public var formatVersion: Int
    public var backupID: String
    public var clusterID: String
    public var shardCount: Int
    public var dimension: Int
    /// The release of the node that took the images, and of the CLI that wrote the directory.
    public var nodeRelease: String
    public var cliRelease: String
    /// The shard snapshot format of the files (`ShardState.snapshotVersion`).
    public var snapshotFormat: UInt32
    /// When the taker asked (ISO 8601, UTC), and how long the cluster took to reach a consistent moment.
    public var takenAt: String
    public var consistentAfterMs: Int
    /// The cluster digest of all the data (`sutra digest`'s last line).
    public var digest: String
    public var shards: [Shard]

    public struct Shard: Codable, Equatable, Sendable {
        public var shard: Int
        public var appliedIndex: UInt64
        public var concepts: Int
        public var edges: Int
        public var digest: String
        public var file: String
        public var bytes: Int
        public var sha256: String

        public init(shard: Int, appliedIndex: UInt64, concepts: Int, edges: Int, digest: String, file: String, bytes: Int, sha256: String) {
            self.shard = shard
            self.appliedIndex = appliedIndex
            self.concepts = concepts
            self.edges = edges
            self.digest = digest
            self.file = file
            self.bytes = bytes
            self.sha256 = sha256
        }

        enum CodingKeys: String, CodingKey {
            case shard, concepts, edges, digest, file, bytes, sha256
            case appliedIndex = "applied_index"
        }
    }

    public static let formatName = "sutra-backup"
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"
    /// Largest manifest read (64 shards' entries are a few KiB).
    public static let maxBytes = 1 << 20

    public init(backupID: String, clusterID: String, shardCount: Int, dimension: Int, nodeRelease: String, cliRelease: String,
                snapshotFormat: UInt32, takenAt: String, consistentAfterMs: Int, digest: String, shards: [Shard]) {
        self.format = BackupManifest.formatName
        self.formatVersion = BackupManifest.currentFormatVersion
        self.backupID = backupID
        self.clusterID = clusterID
        self.shardCount = shardCount
        self.dimension = dimension
        self.nodeRelease = nodeRelease
        self.cliRelease = cliRelease
        self.snapshotFormat = snapshotFormat
        self.takenAt = takenAt
        self.consistentAfterMs = consistentAfterMs
        self.digest = digest
        self.shards = shards
    }

    enum CodingKeys: String, CodingKey {
        case format, dimension, digest, shards
        case formatVersion = "format_version"
        case backupID = "backup_id"
        case clusterID = "cluster_id"
        case shardCount = "shard_count"
        case nodeRelease = "node_release"
        case cliRelease = "cli_release"
        case snapshotFormat = "snapshot_format"
        case takenAt = "taken_at"
        case consistentAfterMs = "consistent_after_ms"
    }

    /// The shard file's name in the directory.
    public static func fileName(shard: Int) -> String { String(format: "shard-%03d.snap", shard) }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// Why this manifest cannot describe a backup this build restores (nil: it can). Every field a restore
    /// relies on is checked here, before any file is read.
    public func problem() -> String? {
        if format != BackupManifest.formatName { return "format is '\(format)', not '\(BackupManifest.formatName)'" }
        if formatVersion > BackupManifest.currentFormatVersion {
            return "format version \(formatVersion) is newer than this build's \(BackupManifest.currentFormatVersion) (a newer release wrote it)"
        }
        if formatVersion < 1 { return "format version \(formatVersion)" }
        if !(1...64).contains(shardCount) { return "shard count \(shardCount) is not in 1…64" }
        if !(0...2048).contains(dimension) { return "dimension \(dimension) is not in 0…2048" }
        if shards.map(\.shard) != Array(0..<shardCount) { return "the shards listed are not 0…\(shardCount - 1) in order" }
        for s in shards {
            if s.file != BackupManifest.fileName(shard: s.shard) { return "shard \(s.shard)'s file is '\(s.file)', not \(BackupManifest.fileName(shard: s.shard))" }
            if s.appliedIndex == 0 { return "shard \(s.shard) was taken at index 0" }
            if s.bytes < 0 || s.concepts < 0 || s.edges < 0 { return "shard \(s.shard) has negative counts" }
        }
        return nil
    }
}
