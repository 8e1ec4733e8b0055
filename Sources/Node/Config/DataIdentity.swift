import Codec
import NodeCore
import Shard
import WAL

/// What a data directory was created for: the cluster, the node, the shard count, the dimension, and the format
/// versions of what it holds. Recorded once, when the directory is created (`DATA/identity`), and compared with
/// the flags at every start, so a node started with the wrong `--shards`, `--dimension`, `--cluster-id` or
/// `--node-id` refuses to start instead of hiding or destroying data.
///
/// Pure: encoding, bounds-checked decoding and the comparison; the file itself is `DataIdentityFile`.
/// Guarantees: `decode(encode(x)) == x`; any other bytes (truncated, flipped, oversized, another version) are
/// refused with the offset and reason, never half-read.
public struct DataIdentity: Equatable, Sendable {
    public var clusterID: String
    public var nodeID: UInt64
    public var shards: Int
    public var dimension: Int
    /// The formats of the files this directory holds, as of the build that last opened it.
    public var walFormat: UInt32
    public var snapshotFormat: UInt32
    public var commandFormat: UInt32

    public init(clusterID: String, nodeID: UInt64, shards: Int, dimension: Int,
                walFormat: UInt32 = WALFormat.version, snapshotFormat: UInt32 = ShardState.snapshotVersion,
                commandFormat: UInt32 = UInt32(ShardRequest.version)) {
        self.clusterID = clusterID
        self.nodeID = nodeID
        self.shards = shards
        self.dimension = dimension
        self.walFormat = walFormat
        self.snapshotFormat = snapshotFormat
        self.commandFormat = commandFormat
    }

    /// The identity a node configured like this would record (with this build's format versions).
    public static func of(_ config: NodeConfig) -> DataIdentity {
        DataIdentity(clusterID: config.clusterID, nodeID: config.nodeID, shards: config.numShards, dimension: config.dimension)
    }

    static let magic: [UInt8] = Array("SUTRAIDN".utf8)
    static let fileVersion: UInt32 = 1
    /// A cluster id longer than this is refused when reading (flags are validated far below it).
    static let maxClusterIDBytes = 1024
    /// Largest identity file read at all.
    public static let maxFileBytes = 4096

    /// `"SUTRAIDN"` · file version u32 · node id u64 · shards u32 · dimension u32 · WAL format u32 · snapshot
    /// format u32 · command format u32 · cluster id length u32 · cluster id (UTF-8) · CRC32C of all before it u32.
    public func encode() -> [UInt8] {
        let cid = Array(clusterID.utf8)
        var w = ByteWriter(capacity: 48 + cid.count)
        w.raw(DataIdentity.magic)
        w.u32(DataIdentity.fileVersion)
        w.u64(nodeID)
        w.u32(UInt32(shards))
        w.u32(UInt32(dimension))
        w.u32(walFormat)
        w.u32(snapshotFormat)
        w.u32(commandFormat)
        w.u32(UInt32(cid.count))
        w.raw(cid)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Why bytes are not an identity file: the byte offset where reading stopped and the reason.
    public struct DecodeError: Error, Equatable, Sendable {
        public var offset: Int
        public var reason: String
    }

    public static func decode(_ bytes: [UInt8]) -> Result<DataIdentity, DecodeError> {
        guard bytes.count <= maxFileBytes else {
            return .failure(DecodeError(offset: maxFileBytes, reason: "file is \(bytes.count) bytes; an identity file is at most \(maxFileBytes)"))
        }
        return bytes.withUnsafeBytes { buf -> Result<DataIdentity, DecodeError> in
            var r = ByteReader(buf)
            func fail(_ why: String) -> Result<DataIdentity, DecodeError> { .failure(DecodeError(offset: r.offset, reason: why)) }
            do {
                guard try r.bytes(8) == magic else { r.offset = 0; return fail("not a Sutra identity file (bad magic)") }
                let v = try r.u32()
                guard v == fileVersion else { r.offset -= 4; return fail("identity file version \(v); this build reads version \(fileVersion)") }
                let node = try r.u64(), shards = try r.u32(), dim = try r.u32()
                let wal = try r.u32(), snap = try r.u32(), cmd = try r.u32()
                let n = Int(try r.u32())
                guard n <= maxClusterIDBytes else { r.offset -= 4; return fail("cluster id length \(n) exceeds \(maxClusterIDBytes)") }
                let cid = try r.bytes(n)
                let end = r.offset
                let crc = try r.u32()
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<end])) == crc else { r.offset = end; return fail("checksum mismatch") }
                guard r.remaining == 0 else { return fail("\(r.remaining) unexpected bytes after the checksum") }
                guard let clusterID = String(validating: cid, as: UTF8.self) else { r.offset = end - n; return fail("cluster id is not UTF-8") }
                return .success(DataIdentity(clusterID: clusterID, nodeID: node, shards: Int(shards), dimension: Int(dim),
                                             walFormat: wal, snapshotFormat: snap, commandFormat: cmd))
            } catch {
                return fail("file ends early (\(bytes.count) bytes)")
            }
        }
    }

    /// The first disagreement between this recorded identity and the flags (`wanted`), as one line naming both
    /// values; nil if the node may start. A directory written by newer formats than this build reads is refused
    /// too; older recorded formats are not a disagreement (this build reads them and the record is updated).
    public func refusal(against wanted: DataIdentity, directory: String) -> String? {
        if wanted.clusterID != clusterID {
            return "--cluster-id '\(wanted.clusterID)' but data directory \(directory) was created for cluster '\(clusterID)'"
        }
        if wanted.nodeID != nodeID {
            return "--node-id \(wanted.nodeID) but data directory \(directory) belongs to node \(nodeID)"
        }
        if wanted.shards != shards {
            return "--shards \(wanted.shards) but data directory \(directory) was created with \(shards) shards"
        }
        if wanted.dimension != dimension {
            return "--dimension \(wanted.dimension) but data directory \(directory) was created with dimension \(dimension)"
        }
        for (name, mine, theirs) in [("WAL", wanted.walFormat, walFormat), ("shard snapshot", wanted.snapshotFormat, snapshotFormat),
                                     ("shard command", wanted.commandFormat, commandFormat)] where theirs > mine {
            return "data directory \(directory) holds \(name) format \(theirs), newer than this build's \(mine) (a newer release wrote it)"
        }
        return nil
    }
}

/// The node refuses to start because its configuration disagrees with its data, or its data is damaged. The
/// process exits with `NodeExit.configurationRefused` (78) after printing `line`, which the systemd unit does
/// not restart (restarting cannot help; an operator must act).
public struct ConfigurationRefusal: Error, CustomStringConvertible {
    public var line: String
    public init(_ line: String) { self.line = line }
    public var description: String { "refusing to start: \(line)" }
}

/// Exit codes of `sutra-node` (docs/OPERATIONS.md).
public enum NodeExit {
    /// A configuration refusal (EX_CONFIG from sysexits.h): a bad flag value, flags that disagree with the data
    /// directory, a damaged identity file or a damaged WAL. Restarting does not help.
    public static let configurationRefused: Int32 = 78
    /// A failed fsync or WAL write: the node stopped rather than acknowledge anything.
    public static let storageFailed: Int32 = 70
}
