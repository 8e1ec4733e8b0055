/// A shard's two-phase-commit bookkeeping, part of its replicated state: the transaction records it keeps as a
/// record shard, the intents it holds as a participant, the locks those intents take, and the transactions it
/// resolved recently (so a late or duplicated prepare can never lock again what was already resolved).
///
/// Locks: an intent that puts or deletes a concept holds it exclusively; an intent that writes an edge holds
/// the edge's key exclusively and its owner shared (the owner must go on existing). A write conflicts with a
/// lock another transaction holds: put vs exclusive; delete vs any; edge vs the edge's key or an exclusive
/// owner. Conflicting writes are refused at once (fail fast, retryable), never applied over the intent.
public struct TxnTables: Sendable, Equatable {
    /// Records kept here as the record shard, by transaction.
    public internal(set) var records: [TxnID: TxnRecord] = [:]
    /// Intents held here as a participant (the record shard's own part too, until the decision).
    public internal(set) var intents: [TxnID: TxnIntent] = [:]
    /// Transactions resolved here, with the index of the resolution; the oldest are forgotten past
    /// `finishedCapacity`.
    public internal(set) var finished: [TxnID: UInt64] = [:]
    var exclusive: [ConceptID: TxnID] = [:]
    var edgeKeys: [EdgeKey: TxnID] = [:]
    /// Every transaction with an intent touching a concept (any mode).
    var touching: [ConceptID: Set<TxnID>] = [:]

    /// How many resolved transactions a shard remembers. A prepare arriving after that many later
    /// resolutions is not recognised as late; the coordinator never sends one after its decision, so this only
    /// matters for messages delayed by that many transactions.
    public static let finishedCapacity = 100_000

    public init() {}

    /// The key of one stored edge record.
    struct EdgeKey: Hashable, Sendable {
        var direction: EdgeDirection
        var owner: ConceptID
        var other: ConceptID
        var type: AssociationType
    }

    public var pendingRecords: Int { records.values.filter { $0.status == .pending }.count }

    /// The transactions whose intents touch `id` (a read of its edges waits for them to resolve).
    public func pending(touching id: ConceptID) -> Set<TxnID> { touching[id] ?? [] }

    /// Why `c` may not be applied now by transaction `txn` (nil: a plain write), or nil if no other
    /// transaction's lock stands in its way.
    func conflict(_ c: ShardCommand, for txn: TxnID?) -> String? {
        func other(_ holder: TxnID?) -> TxnID? { holder != nil && holder != txn ? holder : nil }
        switch c {
        case .putConcept(let k), .putConceptIf(let k, _):
            if let t = other(exclusive[k.id]) { return "concept \(k.id) is being written by transaction \(t); retry" }
        case .patchConcept(let id, _, _):
            if let t = other(exclusive[id]) { return "concept \(id) is being written by transaction \(t); retry" }
        case .deleteConcept(let id):
            // The lowest holder, not `first`: a Set's order differs between replicas, and this text is remembered
            // in the replicated session table (the cluster simulation caught replicas diverging on it, seed 958).
            if let t = (touching[id] ?? []).filter({ $0 != txn }).min() {
                return "concept \(id) is locked by transaction \(t); retry"
            }
        case .putEdge(let dir, let owner, let e):
            let key = EdgeKey(direction: dir, owner: owner, other: e.other, type: e.type)
            if let t = other(edgeKeys[key]) ?? other(exclusive[owner]) {
                return "the association \(dir == .outgoing ? "\(owner)→\(e.other)" : "\(e.other)→\(owner)") is locked by transaction \(t); retry"
            }
        case .deleteEdge(let dir, let owner, let otherID, let type), .dropEdge(let dir, let owner, let otherID, let type):
            let key = EdgeKey(direction: dir, owner: owner, other: otherID, type: type)
            if let t = other(edgeKeys[key]) ?? other(exclusive[owner]) {
                return "the association \(dir == .outgoing ? "\(owner)→\(otherID)" : "\(otherID)→\(owner)") is locked by transaction \(t); retry"
            }
        default:
            break
        }
        return nil
    }

    mutating func lock(_ id: TxnID, _ commands: [ShardCommand]) {
        for c in commands {
            switch c {
            case .putConcept(let k), .putConceptIf(let k, _):
                exclusive[k.id] = id
                touching[k.id, default: []].insert(id)
            case .deleteConcept(let cid):
                exclusive[cid] = id
                touching[cid, default: []].insert(id)
            case .putEdge(let dir, let owner, let e):
                edgeKeys[EdgeKey(direction: dir, owner: owner, other: e.other, type: e.type)] = id
                touching[owner, default: []].insert(id)
            case .deleteEdge(let dir, let owner, let otherID, let type), .dropEdge(let dir, let owner, let otherID, let type):
                edgeKeys[EdgeKey(direction: dir, owner: owner, other: otherID, type: type)] = id
                touching[owner, default: []].insert(id)
            case .expectEdges:
                break   // a guard checked when the intent is taken; the part's delete of the owner locks it
            default:
                preconditionFailure("only plain commands take locks")
            }
        }
    }

    mutating func unlock(_ id: TxnID, _ commands: [ShardCommand]) {
        func release(_ cid: ConceptID) {
            touching[cid]?.remove(id)
            if touching[cid]?.isEmpty == true { touching[cid] = nil }
        }
        for c in commands {
            switch c {
            case .putConcept(let k), .putConceptIf(let k, _):
                if exclusive[k.id] == id { exclusive[k.id] = nil }
                release(k.id)
            case .deleteConcept(let cid):
                if exclusive[cid] == id { exclusive[cid] = nil }
                release(cid)
            case .putEdge(let dir, let owner, let e):
                let key = EdgeKey(direction: dir, owner: owner, other: e.other, type: e.type)
                if edgeKeys[key] == id { edgeKeys[key] = nil }
                release(owner)
            case .deleteEdge(let dir, let owner, let otherID, let type), .dropEdge(let dir, let owner, let otherID, let type):
                let key = EdgeKey(direction: dir, owner: owner, other: otherID, type: type)
                if edgeKeys[key] == id { edgeKeys[key] = nil }
                release(owner)
            default:
                break
            }
        }
    }

    mutating func addIntent(_ id: TxnID, _ intent: TxnIntent) {
        precondition(intents[id] == nil, "transaction \(id) already holds an intent here")
        intents[id] = intent
        lock(id, intent.commands)
    }

    mutating func removeIntent(_ id: TxnID, at index: UInt64) -> TxnIntent? {
        let intent = intents.removeValue(forKey: id)
        if let intent { unlock(id, intent.commands) }
        if finished[id] == nil { finished[id] = index }  // the first resolution is the one; a late one is a no-op
        if finished.count > TxnTables.finishedCapacity + TxnTables.finishedCapacity / 4 {
            // Forget the oldest quarter in one go (deterministic: by resolution index, then id).
            let keep = finished.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.prefix(TxnTables.finishedCapacity)
            finished = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        return intent
    }

    /// Rebuilds the lock tables from the intents (after a snapshot restore).
    mutating func relock() {
        exclusive = [:]
        edgeKeys = [:]
        touching = [:]
        for (id, intent) in intents { lock(id, intent.commands) }
    }
}

/// Evaluates a conditional put's condition against a concept's current value.
enum PutConditionCheck {
    static func unmet(_ condition: PutCondition, current: Concept?) -> String? {
        switch condition {
        case .absent:
            if let c = current { return "concept \(c.id) exists (version \(c.updatedAt))" }
        case .content(let expected):
            guard let c = current else { return "the concept does not exist" }
            if c.content != expected { return "the content of \(c.id) differs from the expected content" }
        case .version(let v):
            guard let c = current else { return "the concept does not exist" }
            if c.updatedAt != v { return "concept \(c.id) is at version \(c.updatedAt), not \(v)" }
        }
        return nil
    }
}
