import Raft

/// The simulated network: a time-ordered queue of messages with seeded drops, duplicates, delays
/// (hence reordering) and directed link cuts (symmetric and asymmetric partitions).
struct SimNetwork {
    private var queue = SimQueue<Message>()
    /// Directed links that are cut: (from, to).
    var blocked: Set<Link> = []
    var dropRate = 0.0
    var duplicateRate = 0.0
    var maxDelay: UInt64 = 5

    struct Link: Hashable { var from: NodeID; var to: NodeID }

    func isBlocked(_ from: NodeID, _ to: NodeID) -> Bool { blocked.contains(Link(from: from, to: to)) }

    mutating func push(_ m: Message, at: UInt64) { queue.push(m, at: at) }

    /// The next message due at or before `now`, in (time, send order).
    mutating func pop(dueBy now: UInt64) -> Message? { queue.pop(dueBy: now) }
}
