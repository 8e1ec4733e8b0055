/// The outcome of applying one request. Deterministic: every replica computes the same one.
public enum ApplyResult: Sendable, Equatable {
    /// Applied at this log index (the new version of what it wrote).
    case applied(version: UInt64)
    /// Rejected, nothing changed (e.g. an edge whose owner concept does not exist here).
    case rejected(String)
    /// A transaction's record exists and awaits its decision (only `txnBegin` answers this; never remembered).
    case pending(since: UInt64)
}

/// One shard replica's state machine: concepts, the edges stored with them, and per-client de-duplication.
///
/// Pure and deterministic: the same log applied in the same order gives the same state and results on every
/// replica. Every change comes through `apply(_:at:)` with the entry's log index; reads never change state.
/// Invariants: an edge's owner exists on this shard; `lastApplied` only grows.
/// What a shard remembers of one client: the outcomes it may still be asked for again.
/// Invariant: every remembered sequence is at or above `ackedBelow`.
struct ClientSession: Equatable {
    static let maxRemembered = 4096
    var ackedBelow: UInt64 = 0
    var results: [UInt64: ApplyResult] = [:]

    /// The client holds every outcome below `acked`: forget them.
    mutating func acknowledge(below acked: UInt64) {
        guard acked > ackedBelow else { return }
        let from = ackedBelow
        ackedBelow = acked
        guard !results.isEmpty else { return }
        if acked - from <= UInt64(results.count) {
            // The usual step (a few sequences): remove them one by one, no new table.
            for q in from..<acked { results.removeValue(forKey: q) }
        } else {
            results = results.filter { $0.key >= acked }
        }
        assert(results.keys.allSatisfy { $0 >= ackedBelow }, "a remembered outcome below the acknowledged")
    }

    /// Remembers the outcome of `sequence` unless the client already acknowledged it; beyond `maxRemembered`
    /// the oldest is forgotten (and counts as acknowledged: a retry of it is refused as stale).
    mutating func remember(_ result: ApplyResult, sequence: UInt64) {
        guard sequence >= ackedBelow else { return }
        results[sequence] = result
        if results.count > ClientSession.maxRemembered, let oldest = results.keys.min() {
            results[oldest] = nil
            ackedBelow = max(ackedBelow, oldest + 1)
        }
    }
}

public final class ShardState {
    public let limits: ShardLimits
    public internal(set) var concepts: [ConceptID: Concept] = [:]
    var outEdges: [ConceptID: Set<Edge>] = [:]
    var inEdges: [ConceptID: Set<Edge>] = [:]
    /// Per client: the outcomes of its requests that may still be retried (answers retries after a failover).
    var sessions: [UInt64: ClientSession] = [:]
    public internal(set) var lastApplied: UInt64 = 0
    /// Backup fences raised here (id → ticks a leader holds it before lifting it itself). While any is raised,
    /// no cross-shard transaction begins with its record here (`begin` refuses it, and the node holds new ones
    /// back); the ones already begun go on to their end.
    public internal(set) var backupFences: [UInt64: UInt32] = [:]
    /// At most this many fences at once (each backup raises one).
    public static let maxBackupFences = 16
    /// Two-phase commit state: records (on a record shard), intents and their locks (on participants).
    public internal(set) var txns = TxnTables()
    /// Called after a concept is written (with its new value) or deleted (nil), in log order — how the
    /// replica keeps derived indexes (the HNSW vector index) in step with the state.
    public var onConceptChange: ((ConceptID, Concept?) -> Void)?

    public init(limits: ShardLimits) { self.limits = limits }

    public var conceptCount: Int { concepts.count }
    /// Associations whose source lives on this shard (their out-edge records).
    public var associationCount: Int { outEdges.values.reduce(0) { $0 + $1.count } }
    public var edgeCount: Int { outEdges.values.reduce(0) { $0 + $1.count } + inEdges.values.reduce(0) { $0 + $1.count } }

    // MARK: writes

    /// Applies the request found in the log at `index`. A retried (clientID, sequence) returns the first result
    /// without applying again; a sequence the client has acknowledged (below its `ackedBelow`) is refused as a
    /// stale retry, since its outcome is no longer remembered.
    @discardableResult
    public func apply(_ req: ShardRequest, at index: UInt64) -> ApplyResult {
        precondition(index > lastApplied, "apply at \(index) after \(lastApplied): the log goes forward only")
        lastApplied = index
        if req.clientID != 0, let s = sessions[req.clientID] {
            if req.sequence < s.ackedBelow {
                return .rejected(Rejection.staleRetry + "sequence \(req.sequence) is below the acknowledged \(s.ackedBelow)")
            }
            // A sequence reused for another cross-shard write while the first one's record is kept: refused, never
            // answered with the first one's outcome (that would acknowledge writes never made). Only the answer
            // differs from a retry's; nothing is applied either way.
            if case .txnBegin(let id, _, let parts) = req.command, let r = txns.records[id], r.parts != parts {
                return .rejected("sequence \(id.sequence) of client \(id.client) was already used by another transaction (other writes): a new write needs a new sequence")
            }
            if let first = s.results[req.sequence] { return first }
        }
        switch req.command {
        case .txnBegin(let id, let record, let parts):
            if req.clientID != 0 { acknowledge(req) }
            return begin(id, recordShard: record, parts: parts, at: index)
        case .txnPrepare(let id, let record, let commands):
            return prepare(id, recordShard: record, commands: commands, at: index)
        case .txnDecide(let id, let commit, let reason):
            return decide(id, commit: commit, reason: reason, at: index)
        case .txnResolve(let ids, let commit):
            for id in ids { _ = resolve(id, commit: commit, at: index) }
            return .applied(version: index)
        case .txnForget(let ids):
            for id in ids where txns.records[id]?.status != .pending { txns.records[id] = nil }
            return .applied(version: index)
        case .backupFence(let id, let ttl):
            guard backupFences[id] != nil || backupFences.count < ShardState.maxBackupFences else {
                return .rejected("\(backupFences.count) backup fences are already raised on this shard; the limit is \(ShardState.maxBackupFences)")
            }
            backupFences[id] = ttl
            return .applied(version: index)
        case .liftBackupFence(let id):
            backupFences[id] = nil
            return .applied(version: index)
        default:
            break
        }
        let result: ApplyResult
        if let problem = validate(req.command, topLevel: true) {
            result = .rejected(problem)
        } else {
            execute(req.command, at: index)
            result = .applied(version: index)
        }
        if req.clientID != 0 { remember(result, of: req) }
        return result
    }

    /// Records a client's outcome and forgets the ones the client has acknowledged. A client that never
    /// acknowledges keeps at most `ClientSession.maxRemembered` outcomes; the oldest are forgotten (a retry of
    /// one of those is then refused as stale, never applied twice).
    private func remember(_ result: ApplyResult, of req: ShardRequest) {
        acknowledge(req)
        remember(result, client: req.clientID, sequence: req.sequence)
    }

    /// Forgets the outcomes the client says it holds (below its `ackedBelow`).
    func acknowledge(_ req: ShardRequest) {
        // In place: this runs for every write, and a copy of the session would copy its whole results table.
        sessions[req.clientID, default: ClientSession()].acknowledge(below: req.ackedBelow)
    }

    /// The outcome remembered for a client's write (client, sequence), while it is still kept.
    public func rememberedOutcome(client: UInt64, sequence: UInt64) -> ApplyResult? {
        guard let s = sessions[client] else { return nil }
        // Below the client's acknowledged mark: it said it has the answer; a retry of it is stale (as `apply` says).
        if sequence < s.ackedBelow { return .rejected(Rejection.staleRetry + "sequence \(sequence) is below the acknowledged \(s.ackedBelow)") }
        return s.results[sequence]
    }

    /// Records the outcome of (client, sequence) for retries, unless the client already acknowledged it.
    func remember(_ result: ApplyResult, client: UInt64, sequence: UInt64) {
        if case .pending = result { preconditionFailure("a pending outcome is never remembered") }
        sessions[client, default: ClientSession()].remember(result, sequence: sequence)
    }

    /// Checks a command against the limits and the current state without changing anything. A batch is
    /// validated as a whole, in order (a later command may rely on a concept an earlier one creates).
    func validate(_ c: ShardCommand, topLevel: Bool, txn: TxnID? = nil) -> String? {
        var created = Set<ConceptID>(), deleted = Set<ConceptID>()
        return validate(c, topLevel: topLevel, txn: txn, created: &created, deleted: &deleted)
    }

    /// Validates a transaction part: plain commands, in order, as one unit (no batch-size limit: the node
    /// checked the client's batch; a part may hold both edges of many same-shard associations).
    func validatePart(_ cs: [ShardCommand], txn: TxnID) -> String? {
        var created = Set<ConceptID>(), deleted = Set<ConceptID>()
        for c in cs {
            guard c.isPlain else { return "a transaction part may hold only puts, deletes and edges" }
            if let p = validate(c, topLevel: false, txn: txn, created: &created, deleted: &deleted) { return p }
        }
        return nil
    }

    private func exists(_ id: ConceptID, _ created: Set<ConceptID>, _ deleted: Set<ConceptID>) -> Bool {
        created.contains(id) || (concepts[id] != nil && !deleted.contains(id))
    }

    private func validate(_ c: ShardCommand, topLevel: Bool, txn: TxnID?, created: inout Set<ConceptID>, deleted: inout Set<ConceptID>) -> String? {
        if let conflict = txns.conflict(c, for: txn) { return Rejection.conflict + conflict }
        switch c {
        case .putConceptIf(let k, let condition):
            if created.contains(k.id) || deleted.contains(k.id) {
                return "a conditional put of \(k.id) after another write of it in the same batch"
            }
            if let unmet = PutConditionCheck.unmet(condition, current: concepts[k.id]) {
                return Rejection.preconditionFailed + unmet
            }
            return validate(.putConcept(k), topLevel: false, txn: txn, created: &created, deleted: &deleted)
        case .txnBegin, .txnPrepare, .txnDecide, .txnResolve, .txnForget, .backupFence, .liftBackupFence:
            return "a transaction command inside a batch"
        case .putConcept(let k):
            if k.content.count > limits.maxContentBytes {
                return "content is \(k.content.count) bytes; the limit is \(limits.maxContentBytes)"
            }
            if let e = k.embedding, e.count != limits.dimension {
                return "embedding has \(e.count) dimensions; this cluster's dimension is \(limits.dimension)"
            }
            if let e = k.embedding, e.contains(where: { !$0.isFinite }) { return "embedding contains a non-finite value" }
            if !k.strength.isFinite || !k.confidence.isFinite { return "strength and confidence must be finite" }
            created.insert(k.id)
            deleted.remove(k.id)
            return nil
        case .deleteConcept(let id):
            guard exists(id, created, deleted) else { return "concept \(id) not found" }
            deleted.insert(id)
            created.remove(id)
            return nil
        case .putEdge(_, let owner, let e):
            guard exists(owner, created, deleted) else { return "concept \(owner) not found" }
            if !e.confidence.isFinite { return "confidence must be finite" }
            return nil
        case .deleteEdge(_, let owner, _, _):
            guard exists(owner, created, deleted) else { return "concept \(owner) not found" }
            return nil
        case .dropEdge:
            return nil
        case .patchConcept(let id, let patch, let condition):
            guard topLevel else { return "a partial update inside a batch" }
            guard let current = concepts[id] else { return "concept \(id) not found" }
            if let condition, let unmet = PutConditionCheck.unmet(condition, current: current) {
                return Rejection.preconditionFailed + unmet
            }
            return validate(.putConcept(patch.applied(to: current)), topLevel: false, txn: txn, created: &created, deleted: &deleted)
        case .expectEdges(let owner, let outgoing, let incoming):
            guard exists(owner, created, deleted) else { return "concept \(owner) not found" }
            func refs(_ set: Set<Edge>?) -> Set<EdgeRef> { Set((set ?? []).map { EdgeRef(other: $0.other, type: $0.type) }) }
            guard refs(outEdges[owner]) == Set(outgoing), refs(inEdges[owner]) == Set(incoming),
                  outgoing.count == Set(outgoing).count, incoming.count == Set(incoming).count else {
                return Rejection.conflict + "the associations of concept \(owner) changed since they were read; retry"
            }
            return nil
        case .batch(let cs):
            guard topLevel else { return "nested batch" }
            guard cs.count <= limits.maxBatch else { return "batch of \(cs.count) items; the limit is \(limits.maxBatch)" }
            for (i, sub) in cs.enumerated() {
                if let p = validate(sub, topLevel: false, txn: txn, created: &created, deleted: &deleted) {
                    return p.hasPrefix(Rejection.conflict) || p.hasPrefix(Rejection.preconditionFailed) ? p : "item \(i): \(p)"
                }
            }
            return nil
        }
    }

    func execute(_ c: ShardCommand, at index: UInt64) {
        switch c {
        case .putConceptIf(let k, _):
            execute(.putConcept(k), at: index)
        case .txnBegin, .txnPrepare, .txnDecide, .txnResolve, .txnForget, .backupFence, .liftBackupFence:
            preconditionFailure("transaction commands are applied by apply(_:at:), never executed as data")
        case .putConcept(var k):
            k.createdAt = concepts[k.id]?.createdAt ?? index
            k.updatedAt = index
            concepts[k.id] = k
            onConceptChange?(k.id, k)
        case .deleteConcept(let id):
            concepts[id] = nil
            outEdges[id] = nil
            inEdges[id] = nil
            onConceptChange?(id, nil)
        case .putEdge(let dir, let owner, let e):
            update(dir, owner) { set in
                if let old = set.first(where: { $0.other == e.other && $0.type == e.type }) { set.remove(old) }
                set.insert(e)
            }
        case .deleteEdge(let dir, let owner, let other, let type), .dropEdge(let dir, let owner, let other, let type):
            update(dir, owner) { set in
                if let old = set.first(where: { $0.other == other && $0.type == type }) { set.remove(old) }
            }
        case .expectEdges:
            break
        case .patchConcept(let id, let patch, _):
            guard let current = concepts[id] else { preconditionFailure("a patch of \(id) passed validation without the concept") }
            execute(.putConcept(patch.applied(to: current)), at: index)
        case .batch(let cs):
            for sub in cs { execute(sub, at: index) }
        }
    }

    private func update(_ dir: EdgeDirection, _ owner: ConceptID, _ body: (inout Set<Edge>) -> Void) {
        switch dir {
        case .outgoing:
            var s = outEdges[owner] ?? []
            body(&s)
            outEdges[owner] = s.isEmpty ? nil : s
        case .incoming:
            var s = inEdges[owner] ?? []
            body(&s)
            inEdges[owner] = s.isEmpty ? nil : s
        }
    }

    // MARK: reads

    public func concept(_ id: ConceptID) -> Concept? { concepts[id] }

    /// Whether `id` has an association of `type` in either direction (a search filter's test: no sorting, no copy).
    public func hasAssociation(_ id: ConceptID, type: AssociationType) -> Bool {
        outEdges[id]?.contains { $0.type == type } == true || inEdges[id]?.contains { $0.type == type } == true
    }

    /// The edges stored with `id` in one direction, optionally of one type, sorted by (other, type) so every
    /// replica answers identically.
    public func neighbors(of id: ConceptID, direction: EdgeDirection, type: AssociationType? = nil) -> [Edge] {
        let set = (direction == .outgoing ? outEdges[id] : inEdges[id]) ?? []
        return set.filter { type == nil || $0.type == type! }
            .sorted { ($0.other, $0.type.rawValue) < ($1.other, $1.type.rawValue) }
    }
}
