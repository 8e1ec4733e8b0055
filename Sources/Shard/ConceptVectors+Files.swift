import Codec
import VectorIndex
#if canImport(Glibc)
import Glibc
#endif

/// Saving the node's vector index beside the shard snapshots, so a restart loads the HNSW graph instead of
/// re-inserting every embedding (hnswlib inserts ~1,000 768-d vectors/s per core; a load is a file read).
///
/// Files in `dir`: `vectors.hnsw` (hnswlib's own format) and `vectors.meta`: `"SUTRAVEC"`, version u32,
/// dimension u32, shard count u32, per shard (applied index u64), next label u64, then (id, label) pairs sorted
/// by label, and a CRC32C of everything before it. Both are written to temporary names, fsynced, renamed into
/// place (meta last), and the directory fsynced. A missing, damaged or mismatched pair is ignored and the index
/// rebuilt from the snapshots: the files are a cache of replicated state, never a source of truth.
extension ConceptVectors {
    static let metaMagic: [UInt8] = Array("SUTRAVEC".utf8)
    static let metaVersion: UInt32 = 1

    /// Saves the index, recording `positions` (each shard's applied index now). Applies the queued changes
    /// first; blocks while writing.
    public func save(to dir: String, positions: [Int: UInt64], shardCount: Int) throws {
        guard dimension > 0 else { return }
        processAll()
        mkdir(dir, 0o700)
        let graph = dir + "/vectors.hnsw", meta = dir + "/vectors.meta"
        let hasGraph = index != nil
        if let index {
            // hnswlib writes through an ofstream (mode 0666 less the umask): create the file owner-only first,
            // which the ofstream keeps, and make sure of it afterwards.
            try ConceptVectors.writeFile(graph + ".tmp", [])
            try index.save(to: graph + ".tmp")
            guard chmod(graph + ".tmp", 0o600) == 0 else { throw VectorFileError("chmod \(graph).tmp: errno \(errno)") }
            try ConceptVectors.fsyncFile(graph + ".tmp")
        }
        var w = ByteWriter(capacity: 64 + labelOf.count * 24)
        w.raw(ConceptVectors.metaMagic)
        w.u32(ConceptVectors.metaVersion)
        w.u32(UInt32(dimension))
        w.u32(UInt32(shardCount))
        for s in 0..<shardCount { w.u64(positions[s] ?? 0) }
        w.u8(hasGraph ? 1 : 0)
        w.u64(nextLabel)
        w.u64(UInt64(labelOf.count))
        for (label, id) in idOf.sorted(by: { $0.key < $1.key }) { w.conceptID(id); w.u64(label) }
        w.u32(CRC32C.checksum(w.bytes))
        try ConceptVectors.writeFile(meta + ".tmp", w.bytes)
        if hasGraph { try ConceptVectors.renameOrThrow(graph + ".tmp", graph) }
        try ConceptVectors.renameOrThrow(meta + ".tmp", meta)
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Loads a saved index if it matches this node (dimension, shard count) and passes its checks; returns a
    /// reason when it does not (the caller logs it and rebuilds).
    public func load(from dir: String, shardCount: Int) -> String? {
        guard dimension > 0 else { return nil }
        let graph = dir + "/vectors.hnsw", meta = dir + "/vectors.meta"
        guard let bytes = ConceptVectors.readFile(meta) else { return "no saved vector index" }
        guard bytes.count >= 12, Array(bytes[0..<8]) == ConceptVectors.metaMagic else { return "\(meta) is not a vector index" }
        let ok: String? = bytes.withUnsafeBytes { buf -> String? in
            let stored = UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: buf.count - 4, as: UInt32.self))
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<(buf.count - 4)])) == stored else { return "\(meta): checksum mismatch" }
            var r = ByteReader(buf, from: 8, to: buf.count - 4)
            do {
                guard try r.u32() == ConceptVectors.metaVersion else { return "\(meta): unknown version" }
                guard Int(try r.u32()) == dimension else { return "\(meta): saved for another dimension" }
                guard Int(try r.u32()) == shardCount else { return "\(meta): saved for another shard count" }
                var positions: [Int: UInt64] = [:]
                for s in 0..<shardCount { positions[s] = try r.u64() }
                let hasGraph = try r.u8() == 1
                let next = try r.u64()
                let n = try r.u64()
                var labels: [ConceptID: UInt64] = [:], ids: [UInt64: ConceptID] = [:], counts: [Int: Int] = [:]
                labels.reserveCapacity(Int(n))
                for _ in 0..<n {
                    let id = try r.conceptID()
                    let label = try r.u64()
                    labels[id] = label
                    ids[label] = id
                    counts[id.shard(of: shardCount), default: 0] += 1
                }
                var loaded: HNSWIndex?
                if hasGraph {
                    do { loaded = try HNSWIndex.load(path: graph, dimension: dimension, metric: .cosine) } catch { return "\(graph): \(error)" }
                }
                index = loaded
                labelOf = labels
                idOf = ids
                nextLabel = next
                perShard = counts
                loadedPositions = positions
                return nil
            } catch {
                return "\(meta): truncated"
            }
        }
        return ok
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    private static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw VectorFileError("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw VectorFileError("writing \(path): errno \(errno)") }
            off += n
        }
        guard fsync(fd) == 0 else { throw VectorFileError("fsync \(path): errno \(errno)") }
    }

    private static func fsyncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw VectorFileError("cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw VectorFileError("fsync \(path): errno \(errno)") }
    }

    private static func renameOrThrow(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw VectorFileError("rename \(from): errno \(errno)") }
    }
}

/// A vector index file could not be written.
public struct VectorFileError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
