import VectorIndex

/// A shard's k-nearest-neighbour index over its concepts' embeddings (HNSW through hnswlib, cosine distance).
///
/// Derived state: rebuilt from the concepts whenever needed, never replicated. Labels (hnswlib's u64 keys)
/// are handed out in the order concepts are first indexed on this replica and mapped back to concept ids
/// here. Guarantees: a search returns only concepts whose current embedding is indexed, nearest first.
/// Not thread-safe: used from the node's loop thread only.
public final class ShardVectors {
    public let dimension: Int
    private var index: HNSWIndex?
    private var labelOf: [ConceptID: UInt64] = [:]
    private var idOf: [UInt64: ConceptID] = [:]
    private var nextLabel: UInt64 = 0

    /// `dimension` 0: the cluster stores no embeddings and every search is refused.
    public init(dimension: Int) {
        self.dimension = dimension
    }

    /// Number of concepts with an indexed embedding.
    public var count: Int { labelOf.count }

    /// Indexes (or re-indexes) `id`'s embedding, or drops it when `embedding` is nil.
    public func set(_ id: ConceptID, embedding: [Float]?) {
        guard dimension > 0 else { return }
        guard let embedding else { remove(id); return }
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
            }
            try index!.upsert(label: label, vector: embedding)
        } catch {
            // The state machine validated the dimension and finiteness; hnswlib failing here means memory
            // exhaustion. The concept stays stored; it is just not findable by vector until a rebuild.
            remove(id)
        }
    }

    public func remove(_ id: ConceptID) {
        guard let label = labelOf.removeValue(forKey: id) else { return }
        idOf[label] = nil
        try? index?.remove(label: label)
    }

    /// The `k` nearest concepts to `query` by cosine distance, nearest first.
    public func search(_ query: [Float], k: Int, ef: Int) throws(VectorIndexError) -> [(id: ConceptID, distance: Float)] {
        guard let index, !labelOf.isEmpty else { return [] }
        return try index.search(query, k: min(k, labelOf.count), ef: max(ef, k)).compactMap { hit in
            idOf[hit.label].map { (id: $0, distance: hit.distance) }
        }
    }

    /// Rebuilds the index from a whole state (after a restart or an installed snapshot), in id order.
    public func rebuild(from state: ShardState) {
        index = nil
        labelOf = [:]
        idOf = [:]
        nextLabel = 0
        guard dimension > 0 else { return }
        for id in state.concepts.keys.sorted() {
            if let e = state.concepts[id]?.embedding { set(id, embedding: e) }
        }
    }
}
