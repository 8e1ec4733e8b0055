import Codec
import Foundation
import Shard

/// Why a backup directory cannot be used: the file at fault and what is wrong with it.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var reason: String
    public init(file: String, _ reason: String) { self.file = file; self.reason = reason }
    public var description: String { "\(file): \(reason)" }
}

/// Reads a backup directory back and checks every byte of it before anything is restored: the manifest's
/// fields, each shard file's size and SHA-256, the snapshot format's own checks (magic, version, CRC32C,
/// bounds), that the image holds data only (no session, transaction or fence), its index, and its content
/// digest against the manifest, then the cluster digest. Any failure is refused naming the file.
public enum BackupReader {
    public static func manifest(in dir: String) throws(BackupError) -> BackupManifest {
        let path = dir + "/" + BackupManifest.fileName
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw BackupError(file: path, "not found: \(dir) is not a finished backup (the manifest is written last)")
        }
        let size = (attrs[.size] as? Int) ?? 0
        guard size <= BackupManifest.maxBytes else { throw BackupError(file: path, "\(size) bytes; a manifest is at most \(BackupManifest.maxBytes)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw BackupError(file: path, "cannot be read") }
        let m: BackupManifest
        do { m = try JSONDecoder().decode(BackupManifest.self, from: data) } catch {
            throw BackupError(file: path, "not a backup manifest: \(error)")
        }
        if let p = m.problem() { throw BackupError(file: path, p) }
        return m
    }

    /// One shard's state from its file, verified against the manifest entry, and its content digest.
    public static func shard(_ entry: BackupManifest.Shard, in dir: String, dimension: Int) throws(BackupError) -> (ShardState, ShardDigest) {
        let path = dir + "/" + entry.file
        guard let data = FileManager.default.contents(atPath: path) else { throw BackupError(file: path, "missing or unreadable") }
        let bytes = [UInt8](data)
        guard bytes.count == entry.bytes else {
            throw BackupError(file: path, "\(bytes.count) bytes, the manifest says \(entry.bytes) (truncated or replaced)")
        }
        let sha = lowerHex(ShardDigest.sha256(bytes))
        guard sha == entry.sha256 else { throw BackupError(file: path, "SHA-256 \(sha), the manifest says \(entry.sha256): the file is damaged") }
        let state: ShardState
        do { state = try ShardBackupFile.read(bytes, dimension: dimension) } catch {
            throw BackupError(file: path, "not a shard backup image: \(error)")
        }
        guard state.lastApplied == entry.appliedIndex else {
            throw BackupError(file: path, "image at index \(state.lastApplied), the manifest says \(entry.appliedIndex)")
        }
        let d = ShardDigest.compute(state.contentImage(shard: entry.shard))
        guard d.hex == entry.digest, d.concepts == entry.concepts, d.edges == entry.edges else {
            throw BackupError(file: path, "content digest \(d.hex) (\(d.concepts) concepts, \(d.edges) edges), the manifest says \(entry.digest) (\(entry.concepts), \(entry.edges))")
        }
        return (state, d)
    }

    /// Every shard, verified; then the cluster digest of them all against the manifest's.
    public static func verifiedShards(of m: BackupManifest, in dir: String, progress: (Int, ShardState) -> Void = { _, _ in }) throws(BackupError) -> [ShardState] {
        var states: [ShardState] = []
        var digests: [ShardDigest] = []
        for e in m.shards {
            let (s, d) = try shard(e, in: dir, dimension: m.dimension)
            digests.append(d)
            progress(e.shard, s)
            states.append(s)
        }
        let all = lowerHex(ShardDigest.cluster(digests))
        guard all == m.digest else {
            throw BackupError(file: dir + "/" + BackupManifest.fileName, "cluster digest of the files is \(all), the manifest says \(m.digest)")
        }
        return states
    }
}
