/// How linearizable reads are confirmed.
public enum ReadOnlyOption: Sendable, Equatable {
    /// ReadIndex: a quorum confirms the leader is still leader (one heartbeat round, batched). Always safe.
    case safe
    /// Leader lease: the leader answers alone while a quorum has heard from it within
    /// `electionTick - leaseClockDriftTicks` ticks. Needs check-quorum; safe only if clocks drift less than that.
    case leaseBased
}

/// The settings of one replica's consensus core. All times are in ticks (the node decides how long a tick is).
public struct RaftConfig: Sendable {
    /// This replica's id (non-zero).
    public var id: NodeID
    /// Base election timeout; the randomized timeout is drawn from [electionTick, 2·electionTick).
    public var electionTick: Int = 10
    /// Heartbeat interval; must be less than electionTick.
    public var heartbeatTick: Int = 1
    /// The index the application has already applied (after a restart: its snapshot's index or more).
    public var applied: LogIndex = 0
    /// Upper bound on the bytes of entries in one append message.
    public var maxSizePerMsg: Int = 1 << 20
    /// Upper bound on the bytes of committed entries handed out in one Ready.
    public var maxCommittedSizePerReady: Int = 64 << 20
    /// Append messages that may be in flight to one follower (the pipelining window).
    public var maxInflightMsgs: Int = 256
    /// A leader that has not heard from a quorum within an election timeout steps down.
    public var checkQuorum: Bool = true
    /// Campaign only after a pre-vote round shows a quorum would vote (stops partitioned nodes disrupting).
    public var preVote: Bool = true
    public var readOnlyOption: ReadOnlyOption = .safe
    /// With `.leaseBased` reads: the lease is this many ticks shorter than the election timeout.
    public var leaseClockDriftTicks: Int = 2
    /// Seed of this replica's randomness (election timeouts). Same seed, same inputs → same outputs.
    public var seed: UInt64 = 0
    /// What this replica belongs to, for messages that must name it (e.g. "shard 3"); empty for none.
    public var group: String = ""

    public init(id: NodeID, seed: UInt64 = 0) {
        self.id = id
        self.seed = seed
    }

    /// Checks the settings; returns a message naming the bad one, or nil.
    public func validationError() -> String? {
        if id == noNode { return "id must be non-zero" }
        if heartbeatTick <= 0 { return "heartbeatTick must be > 0" }
        if electionTick <= heartbeatTick { return "electionTick must be > heartbeatTick" }
        if maxInflightMsgs <= 0 { return "maxInflightMsgs must be > 0" }
        if maxSizePerMsg <= 0 { return "maxSizePerMsg must be > 0" }
        if readOnlyOption == .leaseBased && !checkQuorum { return "lease-based reads need checkQuorum" }
        if readOnlyOption == .leaseBased && (leaseClockDriftTicks < 1 || leaseClockDriftTicks >= electionTick) {
            return "leaseClockDriftTicks must be in 1..<electionTick"
        }
        return nil
    }
}
