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
        var walk = try PathWalk(from: from, to: to, maxDepth: maxDepth, visitBudget: visitBudget)
        while true {
            let level = walk.frontier
            var edges: [ConceptID: [Edge]] = [:]
            for id in level { edges[id] = try neighbors(id) }
            switch try walk.expand(edges) {
            case .found(let hops): return hops
            case .absent: return nil
            case .next: continue
            }
        }
    }

    static func unwind(to: ConceptID, from: ConceptID, _ cameFrom: [ConceptID: (ConceptID, Edge)]) -> [PathHop] {
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

/// `PathSearch.shortestPath` one level at a time, for a caller that fetches a level's edges asynchronously (from
/// other nodes): `frontier` names the concepts whose out-edges the next `expand` needs. Gives exactly the answer
/// `shortestPath` gives (it is built on this), with the same budget.
public struct PathWalk: Sendable {
    public enum Step: Equatable, Sendable {
        case found([PathHop])
        /// No path of at most `maxDepth` hops.
        case absent
        /// Fetch the out-edges of `frontier` and expand again.
        case next
    }

    public let from: ConceptID
    public let to: ConceptID
    public let maxDepth: Int
    public let visitBudget: Int
    /// The concepts whose out-edges the next level needs, in the order they are expanded.
    public private(set) var frontier: [ConceptID]
    /// Concepts expanded so far.
    public private(set) var expanded = 0
    private var depth = 0
    private var visited: Set<ConceptID>
    private var cameFrom: [ConceptID: (ConceptID, Edge)] = [:]

    public init(from: ConceptID, to: ConceptID, maxDepth: Int, visitBudget: Int = 100_000) throws(PathSearchError) {
        guard (1...PathSearch.maxDepthLimit).contains(maxDepth) else { throw .depthOutOfRange(maxDepth) }
        self.from = from
        self.to = to
        self.maxDepth = maxDepth
        self.visitBudget = visitBudget
        frontier = from == to ? [] : [from]
        visited = [from]
    }

    /// The frontier's out-edges are `edges` (every frontier concept's, an absent one counting as none): the next
    /// level, or the outcome. The walk is over once it returns `.found` or `.absent`.
    public mutating func expand(_ edges: [ConceptID: [Edge]]) throws(PathSearchError) -> Step {
        if from == to { return .found([]) }
        precondition(!frontier.isEmpty && depth < maxDepth, "the walk is over")
        var next: [ConceptID] = []
        for node in frontier {
            expanded += 1
            if expanded > visitBudget { throw .budgetExceeded(visitBudget) }
            let sorted = (edges[node] ?? []).sorted { ($0.other, $0.type.rawValue) < ($1.other, $1.type.rawValue) }
            for e in sorted where !visited.contains(e.other) {
                visited.insert(e.other)
                cameFrom[e.other] = (node, e)
                if e.other == to { frontier = []; return .found(PathSearch.unwind(to: to, from: from, cameFrom)) }
                next.append(e.other)
            }
        }
        depth += 1
        frontier = depth < maxDepth ? next : []
        return frontier.isEmpty ? .absent : .next
    }

    /// The frontier concepts the next `expand` can reach within the budget (those past it are never expanded).
    public var frontierWithinBudget: ArraySlice<ConceptID> { frontier.prefix(max(0, visitBudget - expanded + 1)) }
}
