/// Applying the two-phase-commit commands. Each is idempotent and deterministic: the same log gives every
/// replica the same records, intents and outcomes, however often a step was retried.
extension ShardState {
    /// Creates the pending record and prepares the record shard's own part. Answers `.pending` while the
    /// record awaits its decision (also for a retried begin), the decision once there is one, or a rejection
    /// if the own part is invalid (then no record is kept and the client's outcome is that rejection).
    func begin(_ id: TxnID, recordShard: Int, parts: [TxnPart], at index: UInt64) -> ApplyResult {
        if let r = txns.records[id] {
            // The same id with other writes is not a retry: the client reused a sequence. Answering the first
            // transaction's outcome would acknowledge writes that were never made.
            guard r.parts == parts else {
                return .rejected("sequence \(id.sequence) of client \(id.client) was already used by another transaction (other writes): a new write needs a new sequence")
            }
            return outcome(of: r)
        }
        if txns.finished[id] != nil { return forgottenAnswer(id) }
        if let fence = backupFences.keys.min() {
            // Not remembered: nothing was applied, and a retry after the fence is lifted must be able to begin.
            return .rejected(Rejection.conflict + Rejection.backupFence + "a backup is being taken (fence \(fence)): no cross-shard transaction begins on this shard until it ends; retry")
        }
        let own = parts.first { $0.shard == recordShard }?.commands ?? []
        if let problem = validatePart(own, txn: id) {
            let result = ApplyResult.rejected(problem)
            remember(result, client: id.client, sequence: id.sequence)
            return result
        }
        txns.records[id] = TxnRecord(status: .pending, parts: parts, createdAt: index, decidedAt: 0, reason: "")
        txns.addIntent(id, TxnIntent(recordShard: recordShard, commands: own, preparedAt: index))
        return .pending(since: index)
    }

    /// Holds a participant's part as an intent after validating it against the state and the locks.
    func prepare(_ id: TxnID, recordShard: Int, commands: [ShardCommand], at index: UInt64) -> ApplyResult {
        if let intent = txns.intents[id] { return .applied(version: intent.preparedAt) }
        if txns.finished[id] != nil {
            return .rejected(Rejection.aborted + "transaction \(id) was already resolved here")
        }
        if let problem = validatePart(commands, txn: id) { return .rejected(problem) }
        txns.addIntent(id, TxnIntent(recordShard: recordShard, commands: commands, preparedAt: index))
        return .applied(version: index)
    }

    /// Decides a pending transaction (the first decision wins) and resolves the record shard's own part with
    /// it; reports an existing decision unchanged. With no record, the client's remembered outcome is the
    /// decision. Failing that: if the transaction was decided here and its record forgotten (its own part is
    /// among the resolved ones), the answer says so — never a guess, never written down; if it was never begun
    /// here, the decision is an abort, written down so that a begin arriving later is refused.
    func decide(_ id: TxnID, commit: Bool, reason: String, at index: UInt64) -> ApplyResult {
        if var r = txns.records[id] {
            guard r.status == .pending else { return outcome(of: r) }
            r.status = commit ? .committed : .aborted
            r.decidedAt = index
            r.reason = commit ? "" : reason
            txns.records[id] = r
            _ = resolve(id, commit: commit, at: index)
            let result = outcome(of: r)
            remember(result, client: id.client, sequence: id.sequence)
            return result
        }
        if let s = sessions[id.client], let known = s.results[id.sequence] { return known }
        if txns.finished[id] != nil { return forgottenAnswer(id) }
        let result = ApplyResult.rejected(Rejection.aborted + (reason.isEmpty ? "no record of transaction \(id)" : reason))
        remember(result, client: id.client, sequence: id.sequence)
        return result
    }

    /// Applies (commit) or discards (abort) this shard's intent and releases its locks. Without an intent the
    /// transaction is still marked resolved, so a prepare that arrives late cannot lock anything.
    func resolve(_ id: TxnID, commit: Bool, at index: UInt64) -> ApplyResult {
        if let intent = txns.removeIntent(id, at: index), commit {
            for c in intent.commands { execute(c, at: index) }
        }
        return .applied(version: index)
    }

    /// The answer for a transaction decided here whose record and client outcome are both gone. Only a
    /// message delayed past the coordinator's whole run (a lagging leader's intent recovery, a retry after
    /// the session forgot the sequence) can ask.
    private func forgottenAnswer(_ id: TxnID) -> ApplyResult {
        .rejected(Rejection.forgotten + "transaction \(id) was decided and resolved at every participant; its outcome is no longer kept")
    }

    private func outcome(of r: TxnRecord) -> ApplyResult {
        switch r.status {
        case .pending: return .pending(since: r.createdAt)
        case .committed: return .applied(version: r.decidedAt)
        case .aborted: return .rejected(Rejection.aborted + r.reason)
        }
    }
}
