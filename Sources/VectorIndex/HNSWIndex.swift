import CHNSW

/// How vector distance is measured.
public enum VectorMetric: Int32, Sendable {
    /// Squared Euclidean distance.
    case l2 = 0
    /// 1 − cosine similarity (vectors are normalized inside the index).
    case cosine = 1
}

/// The NUL-terminated message the C API wrote into `buffer`.
func text(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// A failure reported by hnswlib (its C++ exception message) or a misuse caught before calling it.
public struct VectorIndexError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "vector index: \(message)" }
}

/// Approximate k-nearest-neighbour search (HNSW, hnswlib) over vectors labelled with 64-bit ids.
///
/// Guarantees: `search` returns at most k labels of live (not removed) vectors, nearest first; `upsert` replaces
/// a label's vector; the index grows itself (doubling) when full; `save`/`load` round-trip it. Not thread-safe:
/// use one index from one thread (a shard's loop).
public final class HNSWIndex {
    public let dimension: Int
    public let metric: VectorMetric
    private let handle: OpaquePointer

    public init(dimension: Int, metric: VectorMetric = .cosine, capacity: Int = 1024, m: Int = 16,
                efConstruction: Int = 200, seed: UInt64 = 100) throws(VectorIndexError) {
        guard dimension > 0, capacity > 0 else { throw VectorIndexError(message: "dimension and capacity must be positive") }
        self.dimension = dimension
        self.metric = metric
        var err = [CChar](repeating: 0, count: 256)
        guard let h = sutra_hnsw_new(Int32(dimension), metric.rawValue, capacity, m, efConstruction, seed, &err, err.count) else {
            throw VectorIndexError(message: text(err))
        }
        handle = h
    }

    private init(handle: OpaquePointer, dimension: Int, metric: VectorMetric) {
        self.handle = handle
        self.dimension = dimension
        self.metric = metric
    }

    /// Loads an index written by `save`; `capacity` 0 keeps the saved capacity.
    public static func load(path: String, dimension: Int, metric: VectorMetric, capacity: Int = 0) throws(VectorIndexError) -> HNSWIndex {
        var err = [CChar](repeating: 0, count: 256)
        guard let h = sutra_hnsw_load(path, Int32(dimension), metric.rawValue, capacity, &err, err.count) else {
            throw VectorIndexError(message: "loading \(path): \(text(err))")
        }
        return HNSWIndex(handle: h, dimension: dimension, metric: metric)
    }

    deinit { sutra_hnsw_free(handle) }

    /// Vectors ever added, removed ones included (hnswlib keeps their slots).
    public var count: Int { sutra_hnsw_count(handle) }
    public var removedCount: Int { sutra_hnsw_deleted(handle) }
    public var liveCount: Int { count - removedCount }
    public var capacity: Int { sutra_hnsw_capacity(handle) }

    private func check(_ v: [Float], _ what: String) throws(VectorIndexError) {
        guard v.count == dimension else {
            throw VectorIndexError(message: "\(what) has \(v.count) dimensions; the index has \(dimension)")
        }
    }

    /// Inserts or replaces the vector of `label`.
    public func upsert(label: UInt64, vector: [Float]) throws(VectorIndexError) {
        try check(vector, "vector")
        if count >= capacity { try resize(to: capacity * 2) }
        var err = [CChar](repeating: 0, count: 256)
        let rc = vector.withUnsafeBufferPointer { sutra_hnsw_upsert(handle, label, $0.baseAddress, &err, err.count) }
        if rc != 0 { throw VectorIndexError(message: text(err)) }
    }

    /// Removes `label` from search results. Unknown labels are an error.
    public func remove(label: UInt64) throws(VectorIndexError) {
        var err = [CChar](repeating: 0, count: 256)
        if sutra_hnsw_delete(handle, label, &err, err.count) != 0 {
            throw VectorIndexError(message: "remove \(label): \(text(err))")
        }
    }

    /// The k nearest live vectors to `query`, nearest first. `ef` (≥ k) trades speed for recall.
    public func search(_ query: [Float], k: Int, ef: Int = 64) throws(VectorIndexError) -> [(label: UInt64, distance: Float)] {
        try check(query, "query")
        guard k > 0 else { return [] }
        var labels = [UInt64](repeating: 0, count: k)
        var dists = [Float](repeating: 0, count: k)
        var found = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = query.withUnsafeBufferPointer { q in
            labels.withUnsafeMutableBufferPointer { l in
                dists.withUnsafeMutableBufferPointer { d in
                    sutra_hnsw_search(handle, q.baseAddress, k, max(ef, k), l.baseAddress, d.baseAddress, &found, &err, err.count)
                }
            }
        }
        if rc != 0 { throw VectorIndexError(message: text(err)) }
        return (0..<found).map { (labels[$0], dists[$0]) }
    }

    /// The k nearest live vectors to `query` by comparing every one of them (exact), nearest first; with
    /// `allowing`, only among the labels it accepts.
    public func exactSearch(_ query: [Float], k: Int, allowing: ((UInt64) -> Bool)? = nil) throws(VectorIndexError) -> [(label: UInt64, distance: Float)] {
        try check(query, "query")
        return try run(k: k, allowing: allowing) { l, d, found, err, filter, ctx in
            query.withUnsafeBufferPointer { q in
                sutra_hnsw_search_exact(handle, q.baseAddress, k, filter, ctx, l, d, found, err, 256)
            }
        }
    }

    /// The k nearest live vectors to `query` among `candidates` (labels; unknown or removed ones skipped), by
    /// comparing each of them (exact): reads only those vectors.
    public func exactSearch(_ query: [Float], k: Int, among candidates: [UInt64]) throws(VectorIndexError) -> [(label: UInt64, distance: Float)] {
        try check(query, "query")
        return try run(k: k, allowing: nil) { l, d, found, err, _, _ in
            query.withUnsafeBufferPointer { q in
                candidates.withUnsafeBufferPointer { c in
                    sutra_hnsw_search_labels(handle, q.baseAddress, k, c.baseAddress, c.count, l, d, found, err, 256)
                }
            }
        }
    }

    /// The k nearest live vectors to `query` among those `allowing` accepts, walking the graph through every
    /// vector but keeping only accepted ones as results (the filter is applied inside the search, so a selective
    /// filter does not leave fewer than k of a top-k that happened to hold rejected vectors). May return fewer
    /// than k when few are accepted; `ef` (≥ k) counts accepted results held during the walk.
    public func search(_ query: [Float], k: Int, ef: Int, allowing: @escaping (UInt64) -> Bool) throws(VectorIndexError) -> [(label: UInt64, distance: Float)] {
        try check(query, "query")
        return try run(k: k, allowing: allowing) { l, d, found, err, filter, ctx in
            query.withUnsafeBufferPointer { q in
                sutra_hnsw_search_filtered(handle, q.baseAddress, k, max(ef, k), filter, ctx, l, d, found, err, 256)
            }
        }
    }

    /// Calls `body` with result buffers for k hits and, when `allowing` is set, a C filter that asks it.
    private func run(k: Int, allowing: ((UInt64) -> Bool)?,
                     _ body: (UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>?,
                              sutra_hnsw_filter?, UnsafeMutableRawPointer?) -> Int32) throws(VectorIndexError) -> [(label: UInt64, distance: Float)] {
        guard k > 0 else { return [] }
        var labels = [UInt64](repeating: 0, count: k)
        var dists = [Float](repeating: 0, count: k)
        var found = 0
        var err = [CChar](repeating: 0, count: 256)
        let box = allowing.map(FilterBox.init)
        let ctx = box.map { Unmanaged.passUnretained($0).toOpaque() }
        let filter: sutra_hnsw_filter? = box == nil ? nil : { ctx, label in
            Unmanaged<FilterBox>.fromOpaque(ctx!).takeUnretainedValue().allow(label) ? 1 : 0
        }
        let rc = labels.withUnsafeMutableBufferPointer { l in
            dists.withUnsafeMutableBufferPointer { d in
                err.withUnsafeMutableBufferPointer { e in
                    withExtendedLifetime(box) { body(l.baseAddress, d.baseAddress, &found, e.baseAddress, filter, ctx) }
                }
            }
        }
        if rc != 0 { throw VectorIndexError(message: text(err)) }
        precondition(found <= k, "hnswlib returned \(found) hits for k = \(k)")
        return (0..<found).map { (labels[$0], dists[$0]) }
    }

    public func resize(to newCapacity: Int) throws(VectorIndexError) {
        var err = [CChar](repeating: 0, count: 256)
        if sutra_hnsw_resize(handle, newCapacity, &err, err.count) != 0 { throw VectorIndexError(message: text(err)) }
    }

    public func save(to path: String) throws(VectorIndexError) {
        var err = [CChar](repeating: 0, count: 256)
        if sutra_hnsw_save(handle, path, &err, err.count) != 0 {
            throw VectorIndexError(message: "saving \(path): \(text(err))")
        }
    }
}

/// A Swift filter handed to C as an opaque context pointer (alive for the call only).
private final class FilterBox {
    let allow: (UInt64) -> Bool
    init(_ allow: @escaping (UInt64) -> Bool) { self.allow = allow }
}
