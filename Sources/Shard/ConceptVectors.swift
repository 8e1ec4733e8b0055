import VectorIndex

/// The k-nearest-neighbour index over the embeddings of every shard replica a node hosts: ONE HNSW graph
/// (hnswlib, cosine distance) shared by the replicas, since a concept id lives in exactly one shard.
///
/// One graph over all of a node's shards answers a search with one walk instead of one per shard and a merge —
/// measured 8 × 12.5K-vector walks at 2.7 ms p50 versus one 100K walk (see docs/ARCHITECTURE.md). Derived
/// state: rebuilt from the replicated embeddings whenever needed, never replicated itself. Labels (hnswlib's
/// u64 keys) are handed out in the order concepts are first indexed on this node. Guarantees: a search returns
/// only concepts whose current embedding is indexed, nearest first. Not thread-safe: loop thread only.
///
/// Changes from the state machine are queued (`enqueue`) and applied in bounded slices (`process(until:)`):
/// an HNSW insert of a 768-d vector costs ~1 ms, so a 1,000-item batch applied at once would stall the loop —
/// and its heartbeats — for a second. Linearizable searches wait until the queue is empty (the node defers
/// them); stale ones see the graph as it is.
public final class ConceptVectors {
    public let dimension: Int
    var index: HNSWIndex?
    var labelOf: [ConceptID: UInt64] = [:]
    var idOf: [UInt64: ConceptID] = [:]
    var nextLabel: UInt64 = 0 {
        didSet { if attributes.count < Int(nextLabel) { attributes += Array(repeating: .unknown, count: Int(nextLabel) - attributes.count) } }
    }
    var perShard: [Int: Int] = [:]
    /// Per label, the strength and confidence of its concept as last indexed: a search filter reads them here,
    /// by array index, instead of looking the concept up (which cost ~0.35 µs a candidate).
    var attributes: [FilterAttributes] = []
    private var pending: [ConceptID: (shard: Int, embedding: [Float]?, attributes: FilterAttributes)] = [:]
    private var order: [ConceptID] = []
    private var orderHead = 0
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

    /// Queues a change: `id`'s embedding is (re)indexed, or dropped when nil. Later changes to the same id replace
    /// queued ones (only the latest matters).
    public func enqueue(_ id: ConceptID, shard: Int, embedding: [Float]?, attributes: FilterAttributes = .unknown) {
        guard dimension > 0 else { return }
        if pending.updateValue((shard, embedding, attributes), forKey: id) == nil { order.append(id) }
    }

    /// Changes queued and not yet in the graph.
    public var pendingCount: Int { pending.count }

    /// Applies queued changes, in order, until `deadline` passes; returns whether some remain.
    @discardableResult
    public func process(until deadline: ContinuousClock.Instant) -> Bool {
        var n = 0
        while orderHead < order.count {
            let id = order[orderHead]
            orderHead += 1
            guard let change = pending.removeValue(forKey: id) else { continue }
            set(id, shard: change.shard, embedding: change.embedding, attributes: change.attributes)
            n += 1
            // Checked after every insert: one costs ~1 ms optimised and far more in a debug build, so a batch of
            // eight between checks could hold the loop past an election timeout.
            if ContinuousClock.now >= deadline { break }
        }
        if orderHead == order.count {
            order.removeAll(keepingCapacity: true)
            orderHead = 0
        }
        return !pending.isEmpty
    }

    /// Applies every queued change (before a save, and in tests).
    public func processAll() {
        while process(until: .now + .seconds(3600)) {}
    }

    /// Indexes (or re-indexes) `id`'s embedding at once, or drops it when `embedding` is nil.
    public func set(_ id: ConceptID, shard: Int, embedding: [Float]?, attributes: FilterAttributes = .unknown) {
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
            self.attributes[Int(label)] = attributes
        } catch {
            // The state machine validated the dimension and finiteness; hnswlib failing here means memory
            // exhaustion. The concept stays stored; it is just not findable by vector until a rebuild.
            remove(id, shard: shard)
        }
    }

    public func remove(_ id: ConceptID, shard: Int) {
        guard let label = labelOf.removeValue(forKey: id) else { return }
        idOf[label] = nil
        attributes[Int(label)] = .unknown
        perShard[shard, default: 1] -= 1
        try? index?.remove(label: label)
    }

    /// Whether the loaded index already reflects shard `shard` at its snapshot `index` or later (the log tail
    /// after the snapshot is replayed on top of it; replays are idempotent upserts and removals).
    public func covers(shard: Int, snapshotIndex: UInt64) -> Bool {
        guard let p = loadedPositions[shard] else { return false }
        return p >= snapshotIndex
    }

    /// Sets the filter attributes of shard `shard`'s indexed concepts from `state`: after a saved index was
    /// loaded (its files hold the vectors, not the attributes) and the shard was not rebuilt.
    public func refreshAttributes(shard: Int, from state: ShardState) {
        for (id, c) in state.concepts where c.embedding != nil {
            if let label = labelOf[id] { attributes[Int(label)] = FilterAttributes(c) }
        }
    }

    /// Replaces one shard's embeddings with those of `state` (after a restart or an installed snapshot).
    /// Queued like every other change, so it never stalls the loop.
    public func rebuild(shard: Int, shardCount: Int, from state: ShardState) {
        loadedPositions[shard] = nil
        guard dimension > 0 else { return }
        let stale = Array(labelOf.keys) + Array(pending.keys)
        for id in stale where id.shard(of: shardCount) == shard && state.concepts[id]?.embedding == nil {
            enqueue(id, shard: shard, embedding: nil)
        }
        for id in state.concepts.keys.sorted() {
            if let c = state.concepts[id], let e = c.embedding { enqueue(id, shard: shard, embedding: e, attributes: FilterAttributes(c)) }
        }
    }
}

/// What a search filter reads of an indexed concept without looking it up: its strength and confidence as
/// last indexed. `unknown` (a vector set without them): the filter looks the concept up instead.
public struct FilterAttributes: Sendable, Equatable {
    public var strength: Float
    public var confidence: Float
    public var known: Bool

    public static let unknown = FilterAttributes(strength: 0, confidence: 0, known: false)

    public init(strength: Float, confidence: Float, known: Bool = true) {
        self.strength = strength
        self.confidence = confidence
        self.known = known
    }

    public init(_ c: Concept) { self.init(strength: c.strength, confidence: c.confidence) }
}
