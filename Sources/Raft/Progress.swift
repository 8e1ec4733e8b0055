/// A ring buffer of the last indexes of append messages in flight to one follower: the pipelining window.
struct Inflights {
    private var buffer: [LogIndex]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) { buffer = [LogIndex](repeating: 0, count: capacity) }

    var isFull: Bool { count == buffer.count }

    mutating func add(_ last: LogIndex) {
        precondition(!isFull, "inflights full")
        buffer[(start + count) % buffer.count] = last
        count += 1
    }

    /// Frees every message whose last index is ≤ `to` (acknowledged).
    mutating func freeLE(_ to: LogIndex) {
        while count > 0 && buffer[start] <= to {
            start = (start + 1) % buffer.count
            count -= 1
        }
    }

    mutating func freeFirst() {
        guard count > 0 else { return }
        start = (start + 1) % buffer.count
        count -= 1
    }

    mutating func reset() { start = 0; count = 0 }
}

/// How the leader is currently replicating to one follower.
public enum ProgressState: Sendable, Equatable {
    /// One append at a time until the follower's match point is found.
    case probe
    /// Optimistic pipelining: `next` runs ahead of `match`, bounded by the in-flight window.
    case replicate
    /// A snapshot is on its way; appends wait until the follower reports it installed.
    case snapshot
}

/// The leader's view of one member (itself included).
struct Progress {
    var match: LogIndex = 0
    var next: LogIndex
    var state: ProgressState = .probe
    var pendingSnapshot: LogIndex = 0
    /// Heard from since the last check-quorum round.
    var recentActive = false
    /// In probe state: an append is outstanding, wait for its answer (or a heartbeat response).
    var probeSent = false
    var inflights: Inflights
    var isLearner: Bool
    /// Commit index last sent, so a commit advance is told to every follower exactly once.
    var sentCommit: LogIndex = 0
    /// A heartbeat response showed the follower behind: send an append even if there is nothing new.
    var resendWanted = false
    /// Highest ReadIndex round this member has acknowledged.
    var readAck: UInt64 = 0
    /// The tick the leader sent the newest heartbeat round this member acknowledged at (lease reads).
    var leaseRoundSentTick: UInt64?
    /// The member's last append response said it abstains after losing its state: not counted toward commits.
    var abstaining = false
    /// While `abstaining`: the leader's last index when it first learned so. Every entry ever committed lies at or
    /// below it (a leader's log holds them all), so once `match` reaches it the replica may vote again.
    var rejoinFloor: LogIndex?

    /// The replica abstains and durably holds everything up to `rejoinFloor`: its next append may end that.
    var mayRejoin: Bool { abstaining && rejoinFloor.map { match >= $0 } == true }

    init(next: LogIndex, maxInflight: Int, isLearner: Bool) {
        self.next = next
        self.inflights = Inflights(capacity: maxInflight)
        self.isLearner = isLearner
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            next = max(match + 1, pendingSnapshot + 1)
            pendingSnapshot = 0
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflights.reset()
    }

    mutating func becomeSnapshot(_ index: LogIndex) {
        state = .snapshot
        pendingSnapshot = index
        probeSent = false
        inflights.reset()
    }

    /// The follower acknowledged up to `n`. Returns whether `match` moved.
    mutating func maybeUpdate(_ n: LogIndex) -> Bool {
        var updated = false
        if match < n {
            match = n
            updated = true
            probeSent = false
        }
        next = max(next, n + 1)
        return updated
    }

    /// The follower rejected an append at `rejected`; `matchHint` is where it may match. Returns false if stale.
    mutating func maybeDecrTo(rejected: LogIndex, matchHint: LogIndex) -> Bool {
        if state == .replicate {
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        if next - 1 != rejected { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        probeSent = false
        return true
    }

    /// The follower says its log ends at `held`, below the `match` it acknowledged: it lost its state (a wiped
    /// data directory, RaftNode+LostState.swift). Only a message marked `Message.lostEntriesContext` says so —
    /// a follower sends one only when a heartbeat's commit (never above `match`) lies past its log, which a
    /// follower that kept its log never sees. `match` drops to what it holds, and probing starts from there.
    mutating func followerLostEntries(holds held: LogIndex) {
        guard held < match else { return }
        match = held
        next = held + 1
        state = .probe
        pendingSnapshot = 0
        inflights.reset()
        probeSent = false
    }

    /// Book-keeping after sending entries ending at `last`.
    mutating func sentEntries(last: LogIndex, count: Int) {
        switch state {
        case .replicate:
            if count > 0 {
                next = last + 1
                inflights.add(last)
            }
        case .probe:
            probeSent = true
        case .snapshot:
            preconditionFailure("sending entries in snapshot state")
        }
    }
}
