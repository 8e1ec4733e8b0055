import ChaosLab
import XCTest

/// The directed links each partition cuts (pure; what `NetworkLab` turns into routes).
final class PartitionTests: XCTestCase {
    private func links(_ pairs: [(Int, Int)]) -> Set<DirectedLink> { Set(pairs.map { DirectedLink(from: $0.0, to: $0.1) }) }

    func testIsolateSplitAndOneWay() {
        let nodes = [1, 2, 3]
        XCTAssertEqual(Partition.isolate(2).blockedLinks(among: nodes), links([(2, 1), (1, 2), (2, 3), (3, 2)]))
        XCTAssertEqual(Partition.split([1], [2, 3]).blockedLinks(among: nodes), links([(1, 2), (2, 1), (1, 3), (3, 1)]))
        XCTAssertEqual(Partition.oneWay(from: [1], to: [2, 3]).blockedLinks(among: nodes), links([(1, 2), (1, 3)]))
        XCTAssertEqual(Partition.oneWay(from: [2, 3], to: [1]).blockedLinks(among: nodes), links([(2, 1), (3, 1)]))
        XCTAssertEqual(Partition.links(links([(1, 2), (1, 9), (3, 3)])).blockedLinks(among: nodes), links([(1, 2)]),
                       "links to unknown nodes and self-links are ignored")
    }

    /// With three nodes the bridge and the majority ring cut exactly the link between the two ends.
    func testBridgeAndRingOfThree() {
        XCTAssertEqual(Partition.bridge(2).blockedLinks(among: [1, 2, 3]), links([(1, 3), (3, 1)]))
        XCTAssertEqual(Partition.majorityRing([3, 1, 2]).blockedLinks(among: [1, 2, 3]), links([(3, 2), (2, 3)]))
    }

    /// On five and seven nodes every node still reaches a majority (itself included), no two the same one, and
    /// the cut is symmetric.
    func testMajorityRingOfFiveAndSeven() {
        for order in [[1, 2, 3, 4, 5], [5, 3, 1, 4, 2], [1, 2, 3, 4, 5, 6, 7]] {
            let cut = Partition.majorityRing(order).blockedLinks(among: order)
            var seen: [Set<Int>] = []
            for n in order {
                let reach = Set(order.filter { $0 == n || !cut.contains(DirectedLink(from: n, to: $0)) })
                XCTAssertGreaterThan(reach.count * 2, order.count, "node \(n) sees a majority")
                XCTAssertLessThan(reach.count, order.count, "node \(n) does not see everyone")
                seen.append(reach)
            }
            XCTAssertEqual(Set(seen).count, order.count, "every node sees a different majority")
            XCTAssertTrue(cut.allSatisfy { cut.contains(DirectedLink(from: $0.to, to: $0.from)) })
        }
    }
}
