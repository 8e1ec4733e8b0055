@testable import Shard
import XCTest

final class PathSearchTests: XCTestCase {
    func id(_ n: UInt64) -> ConceptID { ConceptID(hi: 0, lo: n) }

    /// A graph as adjacency lists of (target, type).
    func graph(_ edges: [(UInt64, UInt64, AssociationType)]) -> (ConceptID) -> [Edge] {
        var adj: [ConceptID: [Edge]] = [:]
        for (a, b, t) in edges { adj[id(a), default: []].append(Edge(other: id(b), type: t, confidence: 1)) }
        return { adj[$0] ?? [] }
    }

    func testFindsTheShortestPathAndRespectsDepth() throws {
        // 1 → 2 → 3 → 4 and a shortcut 1 → 5 → 4.
        let g = graph([(1, 2, .causal), (2, 3, .causal), (3, 4, .causal), (1, 5, .semantic), (5, 4, .temporal)])
        let p = try PathSearch.shortestPath(from: id(1), to: id(4), maxDepth: 5, neighbors: g)
        XCTAssertEqual(p?.map(\.other), [id(5), id(4)])
        XCTAssertEqual(p?.map(\.type), [.semantic, .temporal])
        XCTAssertNil(try PathSearch.shortestPath(from: id(1), to: id(4), maxDepth: 1, neighbors: g), "2 hops needed")
        XCTAssertEqual(try PathSearch.shortestPath(from: id(1), to: id(1), maxDepth: 1, neighbors: g), [])
        XCTAssertNil(try PathSearch.shortestPath(from: id(4), to: id(1), maxDepth: 20, neighbors: g), "edges are directed")
    }

    func testCyclesTerminateAndTiesAreDeterministic() throws {
        // Two equal-length routes 1→2→9 and 1→3→9, plus a cycle 2→1.
        let g = graph([(1, 3, .causal), (1, 2, .causal), (2, 1, .causal), (2, 9, .causal), (3, 9, .causal)])
        for _ in 0..<3 {
            XCTAssertEqual(try PathSearch.shortestPath(from: id(1), to: id(9), maxDepth: 20, neighbors: g)?.map(\.other), [id(2), id(9)])
        }
        XCTAssertNil(try PathSearch.shortestPath(from: id(1), to: id(7), maxDepth: 20, neighbors: g))
    }

    func testLimitsAreEnforced() {
        let g = graph([(1, 2, .causal)])
        XCTAssertThrowsError(try PathSearch.shortestPath(from: id(1), to: id(2), maxDepth: 21, neighbors: g)) {
            XCTAssertEqual($0 as? PathSearchError, .depthOutOfRange(21))
        }
        XCTAssertThrowsError(try PathSearch.shortestPath(from: id(1), to: id(2), maxDepth: 0, neighbors: g))
        // A wide graph: 1 → 100 children → 100 grandchildren each; the target is unreachable.
        var edges: [(UInt64, UInt64, AssociationType)] = []
        for c in UInt64(2)...101 { edges.append((1, c, .semantic)); for g2 in 0..<100 { edges.append((c, 1000 + c * 100 + UInt64(g2), .semantic)) } }
        let wide = graph(edges)
        XCTAssertThrowsError(try PathSearch.shortestPath(from: id(1), to: id(7_777_777), maxDepth: 3, visitBudget: 50, neighbors: wide)) {
            XCTAssertEqual($0 as? PathSearchError, .budgetExceeded(50))
        }
        XCTAssertNil(try PathSearch.shortestPath(from: id(1), to: id(999_999), maxDepth: 3, neighbors: wide))
    }

    func testLookupErrorsPropagate() {
        struct Down: Error {}
        XCTAssertThrowsError(try PathSearch.shortestPath(from: id(1), to: id(2), maxDepth: 2) { _ in throw Down() }) {
            XCTAssertTrue($0 is Down)
        }
    }
}
