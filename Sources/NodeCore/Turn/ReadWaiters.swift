import Raft
import Shard

/// Reads parked until this node's state is far enough along to answer them linearizably:
/// - *applied* waiters: a forwarded ReadIndex answered with an index this replica has not applied yet;
/// - *intent* waiters: a read that must not show half of a cross-shard transaction waits until the intents of
///   the named transactions are gone from this replica (their decision applied here), or fails at its deadline;
/// - *vector* waiters: a linearizable search waits until the vector index holds every change applied so far.
/// Each completion runs exactly once. Owns only its lists; the core tells it what changed. The `wake`/`expire`
/// calls return the completions due instead of calling them, so a completion may park another read at once
/// (calling it while this struct is being mutated would be an exclusive-access violation).
struct ReadWaiters {
    private var applied: [[(index: LogIndex, done: (Result<Void, ReplicaError>) -> Void)]] = []
    private var intents: [[(ids: Set<TxnID>, deadline: UInt64, done: (Result<Void, ClientError>) -> Void)]] = []
    private var vectors: [() -> Void] = []

    /// Parked reads: applied waiters per shard (their indexes), intent waiters, vector waiters (diagnostics).
    var summary: String {
        "applied \(applied.enumerated().filter { !$0.element.isEmpty }.map { "\($0.offset):\($0.element.map(\.index))" }), intents \(intents.map(\.count).reduce(0, +)), vectors \(vectors.count)"
    }

    init(shards: Int) {
        applied = Array(repeating: [], count: shards)
        intents = Array(repeating: [], count: shards)
    }

    mutating func waitApplied(shard: Int, index: LogIndex, _ done: @escaping (Result<Void, ReplicaError>) -> Void) {
        applied[shard].append((index, done))
    }

    mutating func wakeAppliedWaiters(shard: Int, applied index: LogIndex) -> [(Result<Void, ReplicaError>) -> Void] {
        guard !applied[shard].isEmpty else { return [] }
        var keep: [(index: LogIndex, done: (Result<Void, ReplicaError>) -> Void)] = []
        var ready: [(Result<Void, ReplicaError>) -> Void] = []
        for w in applied[shard] { if w.index <= index { ready.append(w.done) } else { keep.append(w) } }
        applied[shard] = keep
        return ready
    }

    /// Shards with applied waiters.
    var shardsWithAppliedWaiters: [Int] { applied.indices.filter { !applied[$0].isEmpty } }

    /// Every applied waiter of `shard`, removed: its replica will apply nothing more here (it moved away).
    mutating func takeAppliedWaiters(shard: Int) -> [(Result<Void, ReplicaError>) -> Void] {
        defer { applied[shard] = [] }
        return applied[shard].map(\.done)
    }

    /// Parks `done` until none of `ids` holds an intent in `current` (the caller checked some still do).
    /// Whether any read waits on intents of `shard` (checked before the caller gathers the shard's intents).
    func hasIntentWaiters(shard: Int) -> Bool { !intents[shard].isEmpty }

    mutating func waitIntents(shard: Int, _ ids: Set<TxnID>, deadline: UInt64, _ done: @escaping (Result<Void, ClientError>) -> Void) {
        precondition(!ids.isEmpty, "nothing to wait for")
        intents[shard].append((ids, deadline, done))
    }

    mutating func wakeIntentWaiters(shard: Int, intents current: [TxnID: TxnIntent]) -> [(Result<Void, ClientError>) -> Void] {
        guard !intents[shard].isEmpty else { return [] }
        var keep: [(ids: Set<TxnID>, deadline: UInt64, done: (Result<Void, ClientError>) -> Void)] = []
        var ready: [(Result<Void, ClientError>) -> Void] = []
        for var w in intents[shard] {
            w.ids = w.ids.filter { current[$0] != nil }
            if w.ids.isEmpty { ready.append(w.done) } else { keep.append(w) }
        }
        intents[shard] = keep
        return ready
    }

    /// The intent waiters whose deadline passed, removed, with the shard each waited on.
    mutating func expireIntentWaiters(ticks: UInt64) -> [(shard: Int, done: (Result<Void, ClientError>) -> Void)] {
        var out: [(shard: Int, done: (Result<Void, ClientError>) -> Void)] = []
        for s in intents.indices where !intents[s].isEmpty {
            for w in intents[s] where w.deadline <= ticks { out.append((s, w.done)) }
            intents[s].removeAll { $0.deadline <= ticks }
        }
        return out
    }

    mutating func waitVectors(_ done: @escaping () -> Void) { vectors.append(done) }

    mutating func wakeVectorWaiters() -> [() -> Void] {
        defer { vectors = [] }
        return vectors
    }
}
