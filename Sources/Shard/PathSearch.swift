/// One hop of a path: from the previous concept along `edge` to `edge.other`.
public typealias PathHop = Edge

/// Why a path query could not be answered.
public enum PathSearchError: Error, Equatable, Sendable {
    /// `maxDepth` outside 1...`PathSearch.maxDepthLimit`.
    case depthOutOfRange(Int)
    /// The search would visit more than `visitBudget` concepts; nothing is returned rather than a guess.
    case budgetExceeded(Int)
}

/// Bounded shortest-path search over out-edges, independent of where edges live: the caller supplies
/// `neighbors`, so the node can resolve each hop on whichever shard owns the concept.
///
/// Guarantees: the path returned has the fewest hops (breadth-first), at most `maxDepth`; ties are broken
/// deterministically (neighbours in (id, type) order, first found wins), so every replica and every retry gives
/// the same answer; at most `visitBudget` concepts are expanded.
public enum PathSearch {
    /// The deepest path a client may ask for.
    public static let maxDepthLimit = 20

    /// The hops from `from` to `to` (empty if they are the same concept), or nil if no path of at most
    /// `maxDepth` hops exists.
    public static func shortestPath(from: ConceptID, to: ConceptID, maxDepth: Int, visitBudget: Int = 100_000,
                                    neighbors: (ConceptID) throws -> [Edge]) throws -> [PathHop]? {
        guard (1...maxDepthLimit).contains(maxDepth) else { throw PathSearchError.depthOutOfRange(maxDepth) }
        if from == to { return [] }
        var cameFrom: [ConceptID: (ConceptID, Edge)] = [:]
        var frontier = [from]
        var visited: Set<ConceptID> = [from]
        var expanded = 0
        for _ in 0..<maxDepth {
            var next: [ConceptID] = []
            for node in frontier {
                expanded += 1
                if expanded > visitBudget { throw PathSearchError.budgetExceeded(visitBudget) }
                let edges = try neighbors(node).sorted { ($0.other, $0.type.rawValue) < ($1.other, $1.type.rawValue) }
                for e in edges where !visited.contains(e.other) {
                    visited.insert(e.other)
                    cameFrom[e.other] = (node, e)
                    if e.other == to { return unwind(to: to, from: from, cameFrom) }
                    next.append(e.other)
                }
            }
            if next.isEmpty { return nil }
            frontier = next
        }
        return nil
    }

    private static func unwind(to: ConceptID, from: ConceptID, _ cameFrom: [ConceptID: (ConceptID, Edge)]) -> [PathHop] {
        var hops: [PathHop] = []
        var cur = to
        while cur != from {
            let (prev, edge) = cameFrom[cur]!
            hops.append(edge)
            cur = prev
        }
        return hops.reversed()
    }
}
