@testable import Shard
import XCTest

/// Content digests: equal for equal data whatever the history, different for any change of the data.
final class ShardDigestTests: XCTestCase {
    let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2), c = ConceptID(hi: 3, lo: 3)

    func state(_ commands: [ShardCommand]) -> ShardState {
        let s = ShardState(limits: ShardLimits(dimension: 2))
        for (i, cmd) in commands.enumerated() {
            if case .rejected(let why) = s.apply(ShardRequest(clientID: 0, sequence: 0, command: cmd), at: UInt64(i + 1)) { XCTFail("\(cmd): \(why)") }
        }
        return s
    }

    func digest(_ s: ShardState) -> [UInt8] { ShardDigest.compute(s.contentImage(shard: 0)).digest }

    func put(_ id: ConceptID, _ text: String, _ e: [Float]? = nil, strength: Float = 1) -> ShardCommand {
        .putConcept(Concept(id: id, content: Array(text.utf8), embedding: e, strength: strength))
    }

    func edge(_ from: ConceptID, _ to: ConceptID, _ conf: Float = 1) -> ShardCommand {
        .putEdge(.outgoing, owner: from, Edge(other: to, type: .causal, confidence: conf))
    }

    func testSameDataSameDigestWhateverTheHistory() {
        let one = state([put(a, "x", [1, 2]), put(b, "y"), edge(a, b)])
        // Another order, other log indexes, a concept written twice and one created then deleted.
        let two = state([put(b, "old"), put(c, "gone"), put(a, "older"), edge(a, b), put(a, "x", [1, 2]), .deleteConcept(c), put(b, "y")])
        XCTAssertNotEqual(one.concepts[b]?.updatedAt, two.concepts[b]?.updatedAt, "the histories differ")
        XCTAssertEqual(digest(one), digest(two))
        let d = ShardDigest.compute(one.contentImage(shard: 0))
        XCTAssertEqual(d.concepts, 2)
        XCTAssertEqual(d.edges, 1)
        XCTAssertEqual(d.hex.count, 64)
    }

    func testAnyChangeOfTheDataChangesTheDigest() {
        let base: [ShardCommand] = [put(a, "x", [1, 2]), put(b, "y"), edge(a, b, 0.5)]
        let reference = digest(state(base))
        let variants: [(String, [ShardCommand])] = [
            ("content", [put(a, "X", [1, 2]), put(b, "y"), edge(a, b, 0.5)]),
            ("embedding", [put(a, "x", [1, 2.0001]), put(b, "y"), edge(a, b, 0.5)]),
            ("no embedding", [put(a, "x"), put(b, "y"), edge(a, b, 0.5)]),
            ("strength", [put(a, "x", [1, 2], strength: 0.9), put(b, "y"), edge(a, b, 0.5)]),
            ("edge confidence", [put(a, "x", [1, 2]), put(b, "y"), edge(a, b, 0.6)]),
            ("edge direction", [put(a, "x", [1, 2]), put(b, "y"), .putEdge(.incoming, owner: a, Edge(other: b, type: .causal, confidence: 0.5))]),
            ("no edge", [put(a, "x", [1, 2]), put(b, "y")]),
            ("one more concept", base + [put(c, "")]),
            ("ids swapped", [put(b, "x", [1, 2]), put(a, "y"), edge(a, b, 0.5)]),
        ]
        var seen: Set<[UInt8]> = [reference]
        for (what, commands) in variants {
            XCTAssertTrue(seen.insert(digest(state(commands))).inserted, "\(what) did not change the digest")
        }
    }

    func testTheClusterDigestDependsOnEveryShardAndItsPlace() {
        let x = ShardDigest.compute(state([put(a, "x")]).contentImage(shard: 0))
        let y = ShardDigest.compute(state([put(b, "y")]).contentImage(shard: 1))
        let xAt1 = ShardDigest.compute(state([put(a, "x")]).contentImage(shard: 1))
        let yAt0 = ShardDigest.compute(state([put(b, "y")]).contentImage(shard: 0))
        XCTAssertEqual(ShardDigest.cluster([x, y]), ShardDigest.cluster([x, y]))
        XCTAssertNotEqual(ShardDigest.cluster([x, y]), ShardDigest.cluster([yAt0, xAt1]), "the same digests on other shards")
        XCTAssertNotEqual(ShardDigest.cluster([x]), ShardDigest.cluster([x, y]))
    }
}
