import Raft
import Shard
import Txn2PC

/// The node as host of the two-phase-commit drivers, and the client-facing side of cross-shard writes.
extension NodeCore: TxnHost {
    package var shardCount: Int { config.numShards }
    package func state(of shard: Int) -> ShardState { replicas[shard].state }
    package func isLeader(of shard: Int) -> Bool { replicas[shard].isLeader }

    package func proposeLocal(shard: Int, _ request: ShardRequest, _ done: @escaping (Result<ApplyResult, ReplicaError>) -> Void) {
        replicas[shard].proposeForResult(request, done)
    }

    /// The outcome of a cross-shard write as the record shard's leader gives it: the version, or why not (a
    /// rejection's text is the abort's reason, told to clients by `txnError`). It crosses the peer link as is.
    typealias TxnCompletion = (Result<UInt64, ReplicaError>) -> Void

    /// A client's cross-shard write: coordinated by the record shard's leader — this node, or the leader's
    /// node, to which the whole transaction is forwarded (unless the client routes itself: then NOT_LEADER).
    /// Refused while the record shard's leadership is in flux (its begin never proposed), it is sent again
    /// (`untilLeaderSettles`) — unless the client routes itself, which is told NOT_LEADER at once.
    func transaction(_ parts: [TxnPart], recordShard: Int, session: ClientSession, _ done: @escaping ClientCompletion) {
        precondition(parts.count >= 2 && parts.contains { $0.shard == recordShard }, "a transaction spans its record shard and another")
        var forwarded = false
        let retryable: (ReplicaError) -> Bool = { [unowned self] e in session.mayForward && self.refusedInFlux(e, shard: recordShard) }
        untilLeaderSettles(retryable, { [unowned self] (tried: @escaping TxnCompletion) in
            forwarded = !self.replicas[recordShard].isLeader && session.mayForward
            if !forwarded {
                self.coordinate(parts, recordShard: recordShard, session: session, tried)
            } else {
                self.metrics.clientRequestsForwarded += 1
                self.forwardTransaction(parts, recordShard: recordShard, session: session, tried)
            }
        }) { [weak self] result in
            guard let self else { return }
            done(result.map { .write(version: $0) }.mapError { self.clientError($0, shard: recordShard, forwarded: forwarded) })
        }
    }

    /// Runs one cross-shard transaction coordinated here (this node must lead `recordShard`). Anonymous
    /// requests (no client id) get a transaction id from the node's own client identity.
    func coordinate(_ parts: [TxnPart], recordShard: Int, session: ClientSession, _ done: @escaping TxnCompletion) {
        guard replicas[recordShard].isLeader else { done(.failure(.notLeader(leader: replicas[recordShard].raft.leader))); return }
        if !replicas[recordShard].state.backupFences.isEmpty {
            hold(parts, recordShard: recordShard, session: session, done)
            return
        }
        let id: TxnID
        var acked = session.ackedBelow
        if session.clientID == 0 {
            nextTxnSequence += 1
            id = TxnID(client: txnClientID, sequence: nextTxnSequence)
            acked = 0
        } else {
            id = TxnID(client: session.clientID, sequence: session.sequence)
        }
        let started = now
        coordinator.start(id, recordShard: recordShard, parts: parts, ackedBelow: acked) { [weak self] outcome in
            guard let self else { return }
            self.metrics.recordTxn(nanos: self.now - started)
            switch outcome {
            case .committed(let v): done(.success(v))
            case .aborted(let why) where why.contains(Rejection.backupFence):
                // The fence was raised between the check above and the begin: nothing was applied or
                // remembered, so the same transaction begins again once the fence is lifted.
                self.hold(parts, recordShard: recordShard, session: session, done)
            case .aborted(let why): done(.failure(.rejected(why)))
            case .unknown(let e): done(.failure(e))
            }
        }
    }

    /// The client error for an aborted transaction, by what aborted it.
    func txnError(_ why: String) -> ClientError {
        if why.contains(Rejection.conflict) { return ClientError(.conflict, why) }
        if why.contains(Rejection.preconditionFailed) { return ClientError(.preconditionFailed, why) }
        if why.hasSuffix("not found") { return ClientError(.notFound, why) }
        if why.hasPrefix(Rejection.forgotten) {
            // A retry that came after the outcome stopped being kept (or a sequence reused for other writes, which
            // cannot be told apart any more): the outcome is unknown — never called a failure, which a retry
            // whose first attempt committed would make a lie.
            return ClientError(.internal, why + "; the outcome of this request can no longer be told (read to see whether it applied; a new write needs a new sequence)")
        }
        if why.hasPrefix(Rejection.aborted) {
            return ClientError(.conflict, why + "; nothing was applied, retry")
        }
        return ClientError(.invalidArgument, why)
    }

    // MARK: reads meet intents

    /// Runs `done` once none of `ids` holds an intent on this node's replica of `shard` any more (their
    /// decisions applied here), or fails after `txnReadWaitTicks`: a read never answers with half a
    /// transaction.
    func waitForIntents(shard: Int, _ ids: Set<TxnID>, _ done: @escaping (Result<Void, ClientError>) -> Void) {
        let left = ids.filter { replicas[shard].state.txns.intents[$0] != nil }
        if left.isEmpty { done(.success(())); return }
        waiters.waitIntents(shard: shard, left, deadline: ticks + NodeCore.txnReadWaitTicks, done)
    }
}
