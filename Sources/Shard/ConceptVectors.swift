import VectorIndex

/// The k-nearest-neighbour index over the embeddings of every shard replica a node hosts: ONE HNSW graph
/// (hnswlib, cosine distance) shared by the replicas, since a concept id lives in exactly one shard.
///
/// One graph over all of a node's shards answers a search with one walk instead of one per shard and a merge —
/// measured 8 × 12.5K-vector walks at 2.7 ms p50 versus one 100K walk (see docs/ARCHITECTURE.md). Derived
/// state: rebuilt from the replicated embeddings whenever needed, never replicated itself. Labels (hnswlib's
/// u64 keys) are handed out in the order concepts are first indexed on this node. Guarantees: a search returns
/// only concepts whose current embedding is indexed, nearest first. Not thread-safe: loop thread only.
public final class ConceptVectors {
    public let dimension: Int
    var index: HNSWIndex?
    var labelOf: [ConceptID: UInt64] = [:]
    var idOf: [UInt64: ConceptID] = [:]
    var nextLabel: UInt64 = 0
    var perShard: [Int: Int] = [:]
    /// Per shard, the applied index the index was saved at (set by `load`): a shard whose snapshot is not newer
    /// keeps what was loaded instead of being rebuilt.
    var loadedPositions: [Int: UInt64] = [:]

    /// `dimension` 0: the cluster stores no embeddings and every search returns nothing.
    public init(dimension: Int) {
        self.dimension = dimension
    }

    /// Number of indexed embeddings, in all shards.
    public var count: Int { labelOf.count }

    /// Number of indexed embeddings of one shard.
    public func count(shard: Int) -> Int { perShard[shard] ?? 0 }

    /// Indexes (or re-indexes) `id`'s embedding, or drops it when `embedding` is nil.
    public func set(_ id: ConceptID, shard: Int, embedding: [Float]?) {
        guard dimension > 0 else { return }
        guard let embedding else { remove(id, shard: shard); return }
        do {
            if index == nil { index = try HNSWIndex(dimension: dimension, metric: .cosine, capacity: 1024) }
            let label: UInt64
            if let l = labelOf[id] {
                label = l
            } else {
                label = nextLabel
                nextLabel += 1
                labelOf[id] = label
                idOf[label] = id
                perShard[shard, default: 0] += 1
            }
            try index!.upsert(label: label, vector: embedding)
        } catch {
            // The state machine validated the dimension and finiteness; hnswlib failing here means memory
            // exhaustion. The concept stays stored; it is just not findable by vector until a rebuild.
            remove(id, shard: shard)
        }
    }

    public func remove(_ id: ConceptID, shard: Int) {
        guard let label = labelOf.removeValue(forKey: id) else { return }
        idOf[label] = nil
        perShard[shard, default: 1] -= 1
        try? index?.remove(label: label)
    }

    /// The `k` nearest concepts to `query` by cosine distance, nearest first.
    public func search(_ query: [Float], k: Int, ef: Int) throws(VectorIndexError) -> [(id: ConceptID, distance: Float)] {
        guard let index, !labelOf.isEmpty else { return [] }
        return try index.search(query, k: min(k, labelOf.count), ef: max(ef, k)).compactMap { hit in
            idOf[hit.label].map { (id: $0, distance: hit.distance) }
        }
    }

    /// Whether the loaded index already reflects shard `shard` at its snapshot `index` or later (the log tail
    /// after the snapshot is replayed on top of it; replays are idempotent upserts and removals).
    public func covers(shard: Int, snapshotIndex: UInt64) -> Bool {
        guard let p = loadedPositions[shard] else { return false }
        return p >= snapshotIndex
    }

    /// Replaces one shard's embeddings with those of `state` (after a restart or an installed snapshot).
    public func rebuild(shard: Int, shardCount: Int, from state: ShardState) {
        loadedPositions[shard] = nil
        guard dimension > 0 else { return }
        for id in labelOf.keys where id.shard(of: shardCount) == shard && state.concepts[id]?.embedding == nil {
            remove(id, shard: shard)
        }
        for id in state.concepts.keys.sorted() {
            if let e = state.concepts[id]?.embedding { set(id, shard: shard, embedding: e) }
        }
    }
}
