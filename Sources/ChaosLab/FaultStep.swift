import Foundation

/// Whom a fault hits, as planned. Leaders are resolved when the step is injected (they move), falling back to
/// a planned node when no leader is known then.
public enum FaultTarget: Codable, Sendable, Equatable, CustomStringConvertible {
    /// This node.
    case node(Int)
    /// These nodes (a partition's minority side).
    case nodes([Int])
    /// Whichever node leads `shard` at injection time; `fallback` if none does.
    case leaderOf(shard: Int, fallback: Int)
    /// Every node (rolling restart), in the step's `order`.
    case allNodes

    public var description: String {
        switch self {
        case .node(let n): return "node \(n)"
        case .nodes(let ns): return "nodes \(ns)"
        case .leaderOf(let s, let f): return "leader of shard \(s) (else node \(f))"
        case .allNodes: return "every node"
        }
    }
}

/// Which way an asymmetric partition cuts, seen from its target node.
public enum CutDirection: String, Codable, Sendable, Equatable {
    /// The target's packets to the others are dropped (it hears them, they do not hear it).
    case outbound
    /// The others' packets to the target are dropped (they hear it, it does not hear them).
    case inbound
}

/// One planned fault: when it starts (milliseconds after the schedule starts), how long it lasts, what it is
/// and whom it hits.
public struct FaultStep: Codable, Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var startMs: Int
    public var durationMs: Int
    public var kind: FaultKind
    public var target: FaultTarget
    /// A permutation of the node ids: the ring order of `partition-ring` (its middle element is the bridge with
    /// three nodes), the order of `restart-rolling`.
    public var order: [Int]
    /// For `partition-asymmetric` only.
    public var direction: CutDirection?
    /// For `slow-disk` only: how long each of the node's WAL writes sleeps before its fdatasync, milliseconds.
    public var delayMs: Int?
    /// For `replace-node` and `drain-node`: a crash in the middle of the moves — kill -9 of the new node (or, in
    /// a drain, of the node drained when this is 2), restarted 2 s later; the moves must go on from the map.
    public var interruption: Int?

    public init(index: Int, startMs: Int, durationMs: Int, kind: FaultKind, target: FaultTarget, order: [Int], direction: CutDirection? = nil,
                delayMs: Int? = nil, interruption: Int? = nil) {
        self.index = index
        self.startMs = startMs
        self.durationMs = durationMs
        self.kind = kind
        self.target = target
        self.order = order
        self.direction = direction
        self.delayMs = delayMs
        self.interruption = interruption
    }

    public var endMs: Int { startMs + durationMs }

    public var description: String {
        let t = String(format: "%7.2f s", Double(startMs) / 1000)
        let d = String(format: "%5.2f s", Double(durationMs) / 1000)
        var s = "#\(index) at \(t) for \(d): \(kind) — \(target)"
        if let direction { s += " (\(direction.rawValue))" }
        if let delayMs { s += " (fsync +\(delayMs) ms)" }
        if let interruption, interruption > 0 { s += interruption == 2 ? " (the drained node crashes mid-move)" : " (the new node crashes mid-move)" }
        if kind == .partitionRing || kind == .rollingRestart { s += " order \(order)" }
        return s
    }
}
