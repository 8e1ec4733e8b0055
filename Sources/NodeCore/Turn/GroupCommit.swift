import Raft
import WAL

/// The group-commit plan: from every shard's `Ready` of a turn, what must be durable before what is sent,
/// applied or answered, gathered into ONE `WriteBatch` (one fsync for every shard).
///
/// Rules it keeps:
/// - a Ready with entries, a snapshot, or a new term or vote is *synced*: its messages go out and its entries
///   apply only after the write holding it is durable (persist before send);
/// - a Ready whose only change is the commit index is finished at once and its hard state rides with the next
///   write (etcd's `MustSync`): a commit index recovered lower after a crash is re-learned from the leader;
/// - snapshots taken this turn are saved by the next write, with the log compacted `compactMargin` behind them,
///   and that write always carries the pending hard states, so a compaction point never passes the persisted
///   commit index;
/// - exactly one write is in flight; the next turn's Readies wait for it.
struct GroupCommit {
    private(set) var writeInFlight = false
    /// Hard states whose only change was the commit index, written with the next WAL write.
    private var lazyHardStates: [Int: HardState] = [:]
    /// The term and vote last handed to the WAL per shard.
    private var persistedVotes: [Int: (term: Term, vote: NodeID)] = [:]
    /// Snapshots taken this turn, saved (and the log compacted behind them) by the next write.
    private var snapshotsToSave: [(shard: Int, snapshot: Snapshot, keepNoMargin: Bool)] = []
    /// Compactions asked for without a new snapshot (`flush?compact=log` on a shard with nothing new), each up to
    /// a snapshot already saved.
    private var compactionsToWrite: [(shard: Int, upTo: LogIndex)] = []
    private var afterNextWrite: [() -> Void] = []
    /// What waits for the write in flight.
    private var waiting: (readies: [(shard: Int, ready: Ready)], callbacks: [() -> Void], snapshots: Int) = ([], [], 0)
    let compactMargin: LogIndex

    init(compactMargin: LogIndex) { self.compactMargin = compactMargin }

    /// What one turn's planning decided.
    struct Plan {
        /// Readies to finish now (nothing of them needs an fsync).
        var finishNow: [(shard: Int, ready: Ready)] = []
        /// Callbacks to run now (no write was needed).
        var callbacksNow: [() -> Void] = []
        /// The write to start, if any.
        var batch: WriteBatch?
        /// Snapshots the write saves.
        var snapshots = 0
    }

    /// `keepNoMargin`: compact the log up to the snapshot itself, not `compactMargin` behind it.
    mutating func saveSnapshot(shard: Int, _ snapshot: Snapshot, keepNoMargin: Bool = false) {
        snapshotsToSave.append((shard, snapshot, keepNoMargin))
    }

    /// Drops shard `shard`'s log entries up to `upTo`, which a saved snapshot covers, with the next write.
    mutating func compactFully(shard: Int, upTo: LogIndex) {
        compactionsToWrite.append((shard, upTo))
    }

    var hasSnapshotsToSave: Bool { !snapshotsToSave.isEmpty || !compactionsToWrite.isEmpty }

    /// Runs `done` after the next write is durable (or at once with the next plan if nothing needs writing).
    mutating func afterNextDurableWrite(_ done: @escaping () -> Void) {
        afterNextWrite.append(done)
    }

    /// Plans the turn's write from `readies` (each shard's, taken this turn). `log(shard)` is the shard's durable
    /// log (for its persisted hard state and compaction point); `image(shard, snapshot)` the received image of a
    /// snapshot to install that came streamed (its message without data), whose file the write adopts.
    mutating func plan(_ readies: [(shard: Int, ready: Ready)], log: (Int) -> GroupLog,
                       image: (Int, Snapshot) -> SnapshotImage) -> Plan {
        precondition(!writeInFlight, "a group-commit write is already in flight")
        var plan = Plan()
        var synced: [(shard: Int, ready: Ready)] = []
        for (s, rd) in readies {
            if needsSync(rd, shard: s, log: log(s)) {
                synced.append((s, rd))
            } else {
                if let hs = rd.hardState { lazyHardStates[s] = hs }
                plan.finishNow.append((s, rd))
            }
        }
        let callbacks = afterNextWrite
        afterNextWrite = []
        guard !synced.isEmpty || !snapshotsToSave.isEmpty || !compactionsToWrite.isEmpty else {
            plan.callbacksNow = callbacks
            return plan
        }
        var batch = WriteBatch()
        for (s, hs) in lazyHardStates.sorted(by: { $0.key < $1.key }) { batch.setHardState(group: UInt64(s), hs) }
        lazyHardStates = [:]
        for (s, rd) in synced {
            let streamed = rd.snapshot.flatMap { $0.isEmpty || !$0.data.isEmpty ? nil : image(s, $0) }
            batch.add(rd, group: UInt64(s), image: streamed)
            if let hs = rd.hardState { persistedVotes[s] = (hs.term, hs.vote) }
        }
        for (s, snap, keepNoMargin) in snapshotsToSave {
            batch.saveSnapshot(group: UInt64(s), snap)
            let margin = keepNoMargin ? 0 : compactMargin
            let upTo = snap.metadata.index > margin ? snap.metadata.index - margin : 0
            if upTo > log(s).compactIndex { batch.compact(group: UInt64(s), upTo: upTo) }
        }
        for (s, wanted) in compactionsToWrite {
            // Never past the snapshot already durable (one taken since may still be in flight).
            let upTo = min(wanted, log(s).snapshotMetadata.index)
            if upTo > log(s).compactIndex { batch.compact(group: UInt64(s), upTo: upTo) }
        }
        plan.snapshots = snapshotsToSave.count
        snapshotsToSave = []
        compactionsToWrite = []
        if batch.isEmpty {
            // Only compactions that turned out to move nothing: no write.
            plan.callbacksNow = callbacks
            return plan
        }
        plan.batch = batch
        writeInFlight = true
        waiting = (synced, callbacks, plan.snapshots)
        return plan
    }

    /// The write in flight is durable: what waited for it.
    mutating func completed() -> (readies: [(shard: Int, ready: Ready)], callbacks: [() -> Void], snapshots: Int) {
        precondition(writeInFlight, "completed without a write in flight")
        writeInFlight = false
        let w = waiting
        waiting = ([], [], 0)
        return w
    }

    /// Whether a Ready must be fsynced before its messages go out and its entries apply: new entries, a
    /// snapshot, or a new term or vote.
    private func needsSync(_ rd: Ready, shard: Int, log: GroupLog) -> Bool {
        if !rd.entries.isEmpty || rd.snapshot != nil { return true }
        guard let hs = rd.hardState else { return false }
        let persisted = persistedVotes[shard] ?? (log.hardState.term, log.hardState.vote)
        return hs.term != persisted.term || hs.vote != persisted.vote
    }
}
