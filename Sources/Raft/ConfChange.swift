/// A single membership change. Sutra changes membership one node at a time; the core enforces
/// that at most one change is pending and that a new leader first commits an entry of its own term
/// (the fix for the one-at-a-time pitfall found after the Raft paper).
public enum ConfChange: Sendable, Equatable {
    /// Add a non-voting member that receives the log (a node being added starts here).
    case addLearner(NodeID)
    /// Make a member (normally a caught-up learner) a voter.
    case addVoter(NodeID)
    /// Remove a voter or learner.
    case remove(NodeID)

    public var node: NodeID {
        switch self {
        case .addLearner(let n), .addVoter(let n), .remove(let n): return n
        }
    }

    /// 9-byte encoding stored in a `.confChange` entry: one tag byte, then the node id (little endian).
    public func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 9)
        switch self {
        case .addLearner: out[0] = 1
        case .addVoter: out[0] = 2
        case .remove: out[0] = 3
        }
        var id = node
        for i in 1...8 { out[i] = UInt8(truncatingIfNeeded: id); id >>= 8 }
        return out
    }

    /// Decodes `encode()`'s output; nil for anything else (the caller must refuse, never skip, such an entry).
    public static func decode(_ bytes: [UInt8]) -> ConfChange? {
        guard bytes.count == 9 else { return nil }
        var id: UInt64 = 0
        for i in stride(from: 8, through: 1, by: -1) { id = (id << 8) | UInt64(bytes[i]) }
        guard id != noNode else { return nil }
        switch bytes[0] {
        case 1: return .addLearner(id)
        case 2: return .addVoter(id)
        case 3: return .remove(id)
        default: return nil
        }
    }

    /// The membership after applying this change to `conf`.
    public func applied(to conf: ConfState) -> ConfState {
        var voters = conf.voters, learners = conf.learners
        switch self {
        case .addLearner(let n):
            voters.removeAll { $0 == n }
            if !learners.contains(n) { learners.append(n) }
        case .addVoter(let n):
            learners.removeAll { $0 == n }
            if !voters.contains(n) { voters.append(n) }
        case .remove(let n):
            voters.removeAll { $0 == n }
            learners.removeAll { $0 == n }
        }
        return ConfState(voters: voters, learners: learners)
    }
}
