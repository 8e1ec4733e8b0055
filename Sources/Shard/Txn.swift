/// Identifies one cross-shard transaction: the client request that started it. A retried request names the
/// same transaction, so a retry can never start a second one.
public struct TxnID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var client: UInt64
    public var sequence: UInt64

    public init(client: UInt64, sequence: UInt64) {
        precondition(client != 0, "a transaction needs a client identity (the node assigns one to anonymous requests)")
        self.client = client
        self.sequence = sequence
    }

    public static func < (a: TxnID, b: TxnID) -> Bool { (a.client, a.sequence) < (b.client, b.sequence) }
    public var description: String { "\(String(client, radix: 16)):\(sequence)" }
}

/// One participant's share of a transaction: the commands it applies, all or nothing, when it commits.
public struct TxnPart: Sendable, Equatable {
    public var shard: Int
    /// Plain commands only (puts, deletes, edges; no batches, no transaction commands).
    public var commands: [ShardCommand]

    public init(shard: Int, commands: [ShardCommand]) {
        self.shard = shard
        self.commands = commands
    }
}

/// Where a transaction stands. `pending` changes once, to `committed` or `aborted`, and never again.
public enum TxnStatus: UInt8, Sendable, Equatable {
    case pending = 0, committed = 1, aborted = 2
}

/// The transaction record, kept in the Raft state of the record shard (the shard of the first association's
/// source). It holds every part so that any later leader of that shard can finish the transaction.
public struct TxnRecord: Sendable, Equatable {
    public var status: TxnStatus
    public var parts: [TxnPart]
    /// Log index of the entry that created the record.
    public var createdAt: UInt64
    /// Log index of the decision (0 while pending); a committed transaction's version.
    public var decidedAt: UInt64
    /// Why it aborted (empty otherwise).
    public var reason: String

    public var participants: [Int] { parts.map(\.shard) }
}

/// A participant's prepared share: its commands validated and its concepts locked until the decision arrives.
public struct TxnIntent: Sendable, Equatable {
    public var recordShard: Int
    public var commands: [ShardCommand]
    /// Log index of the prepare.
    public var preparedAt: UInt64
}

/// What a conditional put compares against the concept's current state before writing.
public enum PutCondition: Sendable, Equatable {
    /// The concept must not exist.
    case absent
    /// The concept must exist with exactly this content.
    case content([UInt8])
    /// The concept must exist with this version (`updatedAt`, the log index of its latest write).
    case version(UInt64)
}

/// The text a shard puts at the start of a rejection so the node can tell its kind apart.
public enum Rejection {
    /// A write touched something a pending transaction holds; retrying later may succeed.
    public static let conflict = "conflict: "
    /// A conditional put's condition did not hold; nothing changed.
    public static let preconditionFailed = "precondition failed: "
    /// The transaction was aborted (its decision was abort).
    public static let aborted = "transaction aborted: "
    /// The transaction was decided here long enough ago that its record is forgotten (every participant had
    /// applied the decision first) and the client's session no longer holds the outcome. Not a claim about
    /// the decision: the shard no longer knows it, and says so rather than guess.
    public static let forgotten = "transaction forgotten: "
    /// A transaction's begin met a raised backup fence on its record shard: nothing was applied, nothing
    /// remembered; the node holds the transaction back and begins it again once the fence is lifted.
    public static let backupFence = "backup fence: "
    /// A retry of a write the client has since acknowledged having the answer to (its sequence is below the
    /// session's acknowledged mark): its outcome is no longer kept. Not a claim about the write.
    public static let staleRetry = "stale retry: "
}
