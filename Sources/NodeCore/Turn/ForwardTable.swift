import Raft

/// Requests this node forwarded to another node (the shard's leader), waiting for their replies.
///
/// Unambiguous across restarts: every forward carries this process's `incarnation` (chosen at start, a new one
/// each time the process starts) and an id, and a reply is matched by (peer, incarnation, id). A reply meant for
/// a previous process — the same ids start again after a restart — or from another peer than the one asked, or
/// for a forward that already timed out, matches nothing: it is dropped and counted (`unmatchedReplies`),
/// never handed to another request.
struct ForwardTable {
    struct Key: Hashable {
        var peer: NodeID
        var incarnation: UInt64
        var id: UInt64
    }

    let incarnation: UInt64
    private var pending: [Key: (deadline: UInt64, done: (ForwardResult) -> Void)] = [:]
    private var nextID: UInt64 = 1
    /// Replies that matched no pending forward (stale process, wrong peer, already expired).
    private(set) var unmatchedReplies: UInt64 = 0

    init(incarnation: UInt64) {
        precondition(incarnation != 0, "incarnation 0 is reserved for peers that do not send one")
        self.incarnation = incarnation
        // Ids start from the incarnation, so even a version-2 peer (which echoes ids only) is unlikely to hand a
        // previous process's reply to this one.
        nextID = incarnation << 32 | 1
    }

    var count: Int { pending.count }

    /// Reserves the id of the next forward (the caller sends it, then `register`s it).
    mutating func nextForwardID() -> UInt64 {
        defer { nextID = nextID &+ 1 == 0 ? 1 : nextID &+ 1 }
        return nextID
    }

    /// Registers a sent forward. `stamp` is the incarnation the frame carried: this process's, or 0 for a peer of
    /// wire version 1 or 2, which echoes only the id (there, a reply meant for a previous process can still match:
    /// the ambiguity ends once both ends run version 3).
    mutating func register(id: UInt64, peer: NodeID, stamp: UInt64, deadline: UInt64, _ done: @escaping (ForwardResult) -> Void) {
        precondition(stamp == incarnation || stamp == 0, "a forward carries this process's incarnation or none")
        let key = Key(peer: peer, incarnation: stamp, id: id)
        precondition(pending[key] == nil, "forward id \(id) to node \(peer) reused")
        pending[key] = (deadline, done)
    }

    /// The completion waiting for this reply, removed; nil (and counted) if nothing waits for it.
    mutating func takeReply(from peer: NodeID, incarnation: UInt64, id: UInt64) -> ((ForwardResult) -> Void)? {
        guard let f = pending.removeValue(forKey: Key(peer: peer, incarnation: incarnation, id: id)) else {
            unmatchedReplies += 1
            return nil
        }
        return f.done
    }

    /// Removes and returns the forwards whose deadline passed, oldest id first.
    mutating func expire(now ticks: UInt64) -> [(peer: NodeID, done: (ForwardResult) -> Void)] {
        take { $0.value.deadline <= ticks }
    }

    /// Removes and returns the forwards waiting on `peer` (its link went down).
    mutating func fail(peer: NodeID) -> [(peer: NodeID, done: (ForwardResult) -> Void)] {
        take { $0.key.peer == peer }
    }

    private mutating func take(_ match: (Dictionary<Key, (deadline: UInt64, done: (ForwardResult) -> Void)>.Element) -> Bool)
        -> [(peer: NodeID, done: (ForwardResult) -> Void)] {
        let hit = pending.filter(match).sorted { $0.key.id < $1.key.id }
        for (k, _) in hit { pending[k] = nil }
        return hit.map { ($0.key.peer, $0.value.done) }
    }
}

/// An observer of forwards, for the simulation: it checks that the answer a forward is given is the answer to
/// *that* request (a reply handed to the wrong request is otherwise invisible whenever both answers look alike).
/// Nil in production, where forwards are not observed.
package protocol ForwardProbe: AnyObject {
    /// A forward of `op` to `leader` is about to leave; the returned token comes back with its answer.
    func willSend(_ op: ForwardOp, shard: Int, to leader: NodeID) -> UInt64
    /// The forward's answer: the leader's reply matched to it, or a local failure (timeout, link down).
    func answered(_ op: ForwardOp, shard: Int, token: UInt64, result: ForwardResult)
}
