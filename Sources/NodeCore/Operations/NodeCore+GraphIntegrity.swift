import Raft
import Shard

/// Deletes that leave no dangling edge: removing one association (both of its edge records at once) and
/// deleting a concept together with every edge that touches it, on every shard, in one transaction.
///
/// Guarantees: a concept delete reads the concept's edges linearizably, then deletes the concept and the twin of
/// every edge it read — on the twins' shards — in one transaction recorded on the concept's shard, whose first
/// command there (`expectEdges`) refuses it if the concept's edges changed in between; once that part holds its
/// intent the concept is locked, so no association to it can commit until the delete is decided. Either the
/// concept and all its edges go, or nothing does.
///
/// While a connected peer runs a release that cannot read these commands (peer wire < 6, a rolling upgrade),
/// a delete removes the concept and the edges stored with it only, and a dissociation needs both ends to
/// exist — as that release did.
extension NodeCore {
    /// Whether the graph-integrity commands may be proposed: no connected peer speaks a wire version without them.
    var peersReadGraphIntegrity: Bool { connectedPeer(below: PeerFrame.graphIntegrityVersion) == nil }

    /// One association's two edge records: one entry on a shared shard, else one transaction recorded on the
    /// source's shard. Removing an association that is not there succeeds (DELETE is idempotent).
    func dissociate(_ source: ConceptID, _ target: ConceptID, _ type: AssociationType, session: ClientSession,
                    _ done: @escaping ClientCompletion) {
        let s1 = shard(of: source), s2 = shard(of: target)
        let lenient = peersReadGraphIntegrity
        let out: ShardCommand = lenient ? .dropEdge(.outgoing, owner: source, other: target, type: type)
                                        : .deleteEdge(.outgoing, owner: source, other: target, type: type)
        let inc: ShardCommand = lenient ? .dropEdge(.incoming, owner: target, other: source, type: type)
                                        : .deleteEdge(.incoming, owner: target, other: source, type: type)
        // `write` and `transaction` route it: here, forwarded, or NOT_LEADER for a client that routes itself.
        if s1 == s2 { write(.batch([out, inc]), shard: s1, session: session, done); return }
        transaction([TxnPart(shard: s1, commands: [out]), TxnPart(shard: s2, commands: [inc])], recordShard: s1,
                    session: session, done)
    }

    /// A delete of a concept of shard `s`, which this node holds no replica of: handed to the shard's leader
    /// (forward op 6), sent again while the leadership is in flux (refused before anything was proposed).
    private func deleteElsewhere(_ id: ConceptID, shard s: Int, session: ClientSession, _ done: @escaping ClientCompletion) {
        let op = ForwardOp.deleteConcept(id, clientID: session.clientID, sequence: session.sequence, ackedBelow: session.ackedBelow)
        untilLeaderSettles({ [unowned self] in self.refusedInFlux($0, shard: s) }, { [unowned self] (tried: @escaping (Result<UInt64, ReplicaError>) -> Void) in
            let leader = self.knownLeader(of: s)
            let v = leader == noNode ? 0 : self.io.wireVersion(of: leader)
            if v > 0, v < PeerFrame.replicationVersion {
                tried(.failure(.unavailable("node \(leader), which leads shard \(s), runs an older release that takes no forwarded delete; send it there")))
                return
            }
            self.metrics.clientRequestsForwarded += 1
            self.forward(op, shard: s) { tried($0.value) }
        }) { [weak self] result in
            guard let self else { return }
            done(result.map { .write(version: $0) }.mapError { self.clientError($0, shard: s, forwarded: true) })
        }
    }

    /// Deletes concept `id` and every edge touching it (see the type's comment).
    func deleteConcept(_ id: ConceptID, session: ClientSession, _ done: @escaping ClientCompletion) {
        let s = shard(of: id)
        guard peersReadGraphIntegrity else { write(.deleteConcept(id), shard: s, session: session, done); return }
        guard replicas[s].isLeader || session.mayForward else { done(.failure(notLeader(s))); return }
        if !holds(s) { deleteElsewhere(id, shard: s, session: session, done); return }
        readBarrier(shard: s) { [weak self] confirmed in
            guard let self else { return }
            if case .failure(let e) = confirmed {
                done(.failure(self.clientError(e, shard: s, forwarded: !self.replicas[s].isLeader)))
                return
            }
            // Transactions already holding intents on it resolve first: their edges are then in what we read.
            self.waitForIntents(shard: s, self.replicas[s].state.txns.pending(touching: id)) { [weak self] settled in
                guard let self else { return }
                if case .failure(let e) = settled { done(.failure(e)); return }
                // A retry (same client and sequence) must get the first attempt's outcome, whatever the state
                // now: a transaction it began is replayed from its record; a forgotten one cannot be told; a
                // concept already gone is a plain delete, which the shard answers from the session it remembers
                // (or "not found").
                let state = self.replicas[s].state
                if session.clientID != 0 {
                    let txn = TxnID(client: session.clientID, sequence: session.sequence)
                    if let record = state.txns.records[txn] {
                        self.transaction(record.parts, recordShard: s, session: session, done)
                        return
                    }
                    if state.txns.finished[txn] != nil {
                        // Its record is forgotten, but the record shard still remembers the client's outcome (as
                        // it does for every write it applied) until the client acknowledges it: answer that.
                        switch state.rememberedOutcome(client: txn.client, sequence: txn.sequence) {
                        case .applied(let v)?: done(.success(.write(version: v)))
                        case .rejected(let why)?: done(.failure(self.txnError(why)))
                        case .pending?, nil:
                            done(.failure(ClientError(.internal, "the delete of \(id) (transaction \(txn)) was decided long ago; its outcome can no longer be told")))
                        }
                        return
                    }
                }
                if state.concept(id) == nil {
                    self.write(.deleteConcept(id), shard: s, session: session, done)
                    return
                }
                switch self.cascade(deleting: id) {
                case .failure(let e): done(.failure(e))
                case .success(let parts) where parts.count == 1:
                    self.write(.batch(parts[0].commands), shard: s, session: session, done)
                case .success(let parts):
                    self.transaction(parts, recordShard: s, session: session, done)
                }
            }
        }
    }

    /// The parts of the transaction that deletes `id` and its edges, from this replica's state (read after a
    /// barrier): the concept's own shard first holds the guard, the twins it stores, and the delete.
    func cascade(deleting id: ConceptID) -> Result<[TxnPart], ClientError> {
        let s = shard(of: id)
        let state = replicas[s].state
        guard state.concept(id) != nil else { return .failure(ClientError(.notFound, "concept \(id) not found")) }
        let outs = state.neighbors(of: id, direction: .outgoing), ins = state.neighbors(of: id, direction: .incoming)
        guard outs.count + ins.count + 2 <= limits.maxBatch else {
            return .failure(ClientError(.tooLarge, "concept \(id) has \(outs.count + ins.count) associations; a delete removes at most \(limits.maxBatch - 2) with it — remove some first (DELETE /v1/associations)"))
        }
        var parts: [Int: [ShardCommand]] = [s: [.expectEdges(owner: id, outgoing: outs.map { EdgeRef(other: $0.other, type: $0.type) },
                                                               incoming: ins.map { EdgeRef(other: $0.other, type: $0.type) })]]
        for e in outs { parts[shard(of: e.other), default: []].append(.dropEdge(.incoming, owner: e.other, other: id, type: e.type)) }
        for e in ins { parts[shard(of: e.other), default: []].append(.dropEdge(.outgoing, owner: e.other, other: id, type: e.type)) }
        parts[s]!.append(.deleteConcept(id))
        // The record shard's part first, then the others by shard: the same request always builds the same parts.
        let order = [s] + parts.keys.filter { $0 != s }.sorted()
        return .success(order.map { TxnPart(shard: $0, commands: parts[$0]!) })
    }
}
