import CLibCrypto
import Codec

/// One shard's data as it stood at `appliedIndex`: concepts and both edge tables (and how many transactions were open), shared copy-on-write with the
/// live state (taking it costs nothing; the state's next write copies what it changes). Sendable, so the digest
/// can be computed off the loop.
public struct ShardContentImage: Sendable {
    public let shard: Int
    public let appliedIndex: UInt64
    let dimension: Int
    let concepts: [ConceptID: Concept]
    let outEdges: [ConceptID: Set<Edge>]
    let inEdges: [ConceptID: Set<Edge>]
    /// Transaction records kept and intents held when the image was taken (an online backup waits for a
    /// moment with none on any shard).
    public let openRecords: Int
    public let openIntents: Int

    public var conceptCount: Int { concepts.count }

    /// One of the image's edge tables, by owner.
    public func edges(_ direction: EdgeDirection) -> [ConceptID: Set<Edge>] { direction == .outgoing ? outEdges : inEdges }
}

extension ShardState {
    /// This replica's data now, for `ShardDigest`.
    public func contentImage(shard: Int) -> ShardContentImage {
        ShardContentImage(shard: shard, appliedIndex: lastApplied, dimension: limits.dimension, concepts: concepts,
                          outEdges: outEdges, inEdges: inEdges, openRecords: txns.records.count, openIntents: txns.intents.count)
    }
}

/// A content digest of a shard's data: SHA-256 over a canonical encoding of every concept (id, content,
/// embedding, strength, confidence) and every edge record (direction, owner, other, type, confidence), sorted by
/// key — and nothing else: no log index, no version, no session or transaction table. Two shards that hold the
/// same data have the same digest whatever their histories, releases or indexes; any difference in the data
/// changes it. `cluster(_:)` combines a cluster's shard digests (in shard order) into one.
public struct ShardDigest: Sendable, Equatable {
    public let shard: Int
    public let appliedIndex: UInt64
    public let concepts: Int
    public let edges: Int
    /// 32 bytes.
    public let digest: [UInt8]

    public init(shard: Int, appliedIndex: UInt64, concepts: Int, edges: Int, digest: [UInt8]) {
        precondition(digest.count == 32, "a SHA-256 digest is 32 bytes")
        self.shard = shard
        self.appliedIndex = appliedIndex
        self.concepts = concepts
        self.edges = edges
        self.digest = digest
    }

    /// The canonical encoding's version, hashed first: a change of encoding can never pass for equal data.
    static let domain = Array("sutra-shard-digest-2".utf8)

    /// Hashes the image: O(n log n) in its size, so call it off the loop for a large shard. The records are the
    /// snapshot image's (`ByteWriter.concept` without versions, `ByteWriter.edges`), fed to the hash in slices.
    public static func compute(_ image: ShardContentImage) -> ShardDigest {
        let h = SHA256Stream()
        h.update(domain)
        var w = ByteWriter(capacity: 80 * 1024)
        func flushIfBig() { if w.bytes.count >= 64 * 1024 { h.update(w.bytes); w.bytes.removeAll(keepingCapacity: true) } }
        w.u32(UInt32(image.dimension))
        w.u64(UInt64(image.concepts.count))
        for key in image.concepts.keys.sorted() {
            w.concept(image.concepts[key]!, versions: false)
            flushIfBig()
        }
        var edges = 0
        for table in [image.outEdges, image.inEdges] {
            w.u64(UInt64(table.count))
            for owner in table.keys.sorted() {
                edges += w.edges(of: owner, table[owner]!)
                flushIfBig()
            }
        }
        h.update(w.bytes)
        return ShardDigest(shard: image.shard, appliedIndex: image.appliedIndex, concepts: image.concepts.count, edges: edges, digest: h.finish())
    }

    /// One digest of a whole cluster's data: SHA-256 over the shard count and every shard's digest in shard
    /// order. `shards` must hold shards 0…n−1 once each.
    public static func cluster(_ shards: [ShardDigest]) -> [UInt8] {
        precondition(shards.map(\.shard) == Array(0..<shards.count), "one digest per shard, in shard order")
        let h = SHA256Stream()
        var w = ByteWriter()
        w.raw(Array("sutra-cluster-digest-1".utf8))
        w.u32(UInt32(shards.count))
        for s in shards { w.raw(s.digest) }
        h.update(w.bytes)
        return h.finish()
    }

    public var hex: String { lowerHex(digest) }

    /// SHA-256 of `bytes` (a backup file's checksum).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        let h = SHA256Stream()
        h.update(bytes)
        return h.finish()
    }
}

/// Streaming SHA-256 through OpenSSL's EVP interface (libcrypto). The context is freed with the stream.
final class SHA256Stream {
    private let ctx: OpaquePointer

    init() {
        guard let c = EVP_MD_CTX_new() else { preconditionFailure("libcrypto: out of memory for a digest context") }
        ctx = c
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "libcrypto: SHA-256 unavailable")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { b in precondition(EVP_DigestUpdate(ctx, b.baseAddress, b.count) == 1) }
    }

    /// The digest of everything given so far; the stream takes no more after it.
    func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &out, &n) == 1 && n == 32)
        return out
    }
}
