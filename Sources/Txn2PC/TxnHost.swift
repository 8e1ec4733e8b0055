import Raft
import Shard

/// What the two-phase-commit drivers need from the node (or the simulated node) hosting them. Everything
/// here runs on one thread (the node's loop); every completion is called exactly once, later or at once.
public protocol TxnHost: AnyObject {
    /// The number of shards in the cluster.
    var shardCount: Int { get }
    /// This node's replica state of `shard` (every node hosts every shard).
    func state(of shard: Int) -> ShardState
    /// Whether this node currently leads `shard`.
    func isLeader(of shard: Int) -> Bool
    /// Proposes `request` on this node's replica of `shard` (which must lead it) and answers with the state
    /// machine's result, or a failure if the outcome is unknown (leadership lost) or it was not proposed.
    func proposeLocal(shard: Int, _ request: ShardRequest, _ done: @escaping (Result<ApplyResult, ReplicaError>) -> Void)
    /// Proposes `request` at the leader of `shard`, wherever it is; a lost or timed-out message is a failure
    /// (`.unavailable`), after which the step may be retried (every step is idempotent).
    func proposeAnywhere(shard: Int, _ request: ShardRequest, _ done: @escaping (Result<UInt64, ReplicaError>) -> Void)
}

/// How long the drivers wait before retrying and giving up, in ticks of the host's clock.
public struct TxnTimeouts: Sendable, Equatable {
    /// Before a failed prepare or resolve is sent again.
    public var retryTicks: Int = 5
    /// After this long without all prepares succeeding, the coordinator decides abort.
    public var prepareTicks: Int = 100
    /// A participant's intent older than this makes its leader ask the record shard for the decision,
    /// aborting the transaction there if it has none.
    public var intentTicks: Int = 50
    /// Decided records whose participants all resolved are forgotten in batches at most this often.
    public var forgetTicks: Int = 2

    public init() {}
}
