import CLibCrypto

/// One shard's data as it stood at `appliedIndex`: concepts and both edge tables, shared copy-on-write with the
/// live state (taking it costs nothing; the state's next write copies what it changes). Sendable, so the digest
/// can be computed off the loop.
public struct ShardContentImage: Sendable {
    public let shard: Int
    public let appliedIndex: UInt64
    let concepts: [ConceptID: Concept]
    let outEdges: [ConceptID: Set<Edge>]
    let inEdges: [ConceptID: Set<Edge>]
}

extension ShardState {
    /// This replica's data now, for `ShardDigest`.
    public func contentImage(shard: Int) -> ShardContentImage {
        ShardContentImage(shard: shard, appliedIndex: lastApplied, concepts: concepts, outEdges: outEdges, inEdges: inEdges)
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

    /// The canonical encoding's version, hashed first: a change of encoding can never pass for equal data.
    static let domain = Array("sutra-shard-digest-1".utf8)

    /// Hashes the image: O(n log n) in its size, so call it off the loop for a large shard.
    public static func compute(_ image: ShardContentImage) -> ShardDigest {
        var h = SHA256Stream()
        h.update(domain)
        var buf: [UInt8] = []
        buf.reserveCapacity(4096)
        func flushIfBig() { if buf.count >= 64 * 1024 { h.update(buf); buf.removeAll(keepingCapacity: true) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buf.append(contentsOf: $0) } }
        func id(_ c: ConceptID) { withUnsafeBytes(of: c.hi.littleEndian) { buf.append(contentsOf: $0) }; withUnsafeBytes(of: c.lo.littleEndian) { buf.append(contentsOf: $0) } }
        u32(UInt32(image.concepts.count))
        for key in image.concepts.keys.sorted() {
            let c = image.concepts[key]!
            id(key)
            u32(UInt32(c.content.count)); buf.append(contentsOf: c.content)
            if let e = c.embedding {
                buf.append(1); u32(UInt32(e.count))
                for f in e { u32(f.bitPattern) }
            } else {
                buf.append(0)
            }
            u32(c.strength.bitPattern); u32(c.confidence.bitPattern)
            flushIfBig()
        }
        var edges = 0
        for (tag, table) in [(UInt8(1), image.outEdges), (UInt8(2), image.inEdges)] {
            buf.append(tag)
            u32(UInt32(table.count))
            for owner in table.keys.sorted() {
                let set = table[owner]!.sorted { ($0.other, $0.type.rawValue) < ($1.other, $1.type.rawValue) }
                id(owner); u32(UInt32(set.count))
                for e in set { id(e.other); buf.append(e.type.rawValue); u32(e.confidence.bitPattern) }
                edges += set.count
                flushIfBig()
            }
        }
        h.update(buf)
        return ShardDigest(shard: image.shard, appliedIndex: image.appliedIndex, concepts: image.concepts.count, edges: edges, digest: h.finish())
    }

    /// One digest of a whole cluster's data: SHA-256 over the shard count and every shard's digest in shard
    /// order. `shards` must hold shards 0…n−1 once each.
    public static func cluster(_ shards: [ShardDigest]) -> [UInt8] {
        precondition(shards.map(\.shard) == Array(0..<shards.count), "one digest per shard, in shard order")
        var h = SHA256Stream()
        h.update(Array("sutra-cluster-digest-1".utf8))
        withUnsafeBytes(of: UInt32(shards.count).littleEndian) { h.update(Array($0)) }
        for s in shards { h.update(s.digest) }
        return h.finish()
    }

    public var hex: String { ShardDigest.hex(digest) }
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Streaming SHA-256 through OpenSSL's EVP interface (libcrypto).
struct SHA256Stream {
    private let ctx: OpaquePointer

    init() {
        guard let c = EVP_MD_CTX_new() else { preconditionFailure("libcrypto: out of memory for a digest context") }
        ctx = c
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "libcrypto: SHA-256 unavailable")
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { b in precondition(EVP_DigestUpdate(ctx, b.baseAddress, b.count) == 1) }
    }

    /// The digest; the stream is spent (its context freed).
    mutating func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &out, &n) == 1 && n == 32)
        EVP_MD_CTX_free(ctx)
        return out
    }
}
