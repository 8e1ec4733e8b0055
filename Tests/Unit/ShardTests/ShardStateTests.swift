@testable import Shard
import Raft
import XCTest

final class ShardStateTests: XCTestCase {
    let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2), c = ConceptID(hi: 3, lo: 3)

    func concept(_ id: ConceptID, _ text: String = "x", dim: Int? = nil) -> Concept {
        Concept(id: id, content: Array(text.utf8), embedding: dim.map { [Float](repeating: 0.5, count: $0) }, strength: 0.9, confidence: 0.8)
    }

    func req(_ c: ShardCommand, client: UInt64 = 0, seq: UInt64 = 0) -> ShardRequest {
        ShardRequest(clientID: client, sequence: seq, command: c)
    }

    func testConceptIDHexRoundTripAndStableSharding() {
        let id = ConceptID(hex: "00112233445566778899AABBCCDDEEFF")!
        XCTAssertEqual(id.description, "00112233445566778899aabbccddeeff")
        XCTAssertEqual(ConceptID(bytes: id.bytes), id)
        XCTAssertNil(ConceptID(hex: "0011"))
        XCTAssertNil(ConceptID(hex: "zz112233445566778899aabbccddeeff"))
        XCTAssertNil(ConceptID(bytes: [1, 2, 3]))
        // The shard function is part of the on-disk contract: these values must never change
        // (computed independently, in Python, with the same SplitMix64 finalizer).
        XCTAssertEqual([a, b, c].map { $0.shard(of: 8) }, [1, 4, 6])
        XCTAssertEqual(id.shard(of: 8), 6)
        XCTAssertEqual(id.shard(of: 64), 14)
        // Structured ids spread evenly too — including halves derived from each other, which sent every id
        // of a load test to one shard under the first version of this function.
        let patterns: [(String, (UInt64) -> ConceptID)] = [
            ("hi = 7919·i, lo = i", { ConceptID(hi: $0 &* 7919, lo: $0) }),
            ("hi = golden·i, lo = i", { ConceptID(hi: $0 &* 0x9E37_79B9_7F4A_7C15, lo: $0) }),
            ("hi = 0, lo = i", { ConceptID(hi: 0, lo: $0) }),
            ("hi = i, lo = 0", { ConceptID(hi: $0, lo: 0) }),
            ("hi = lo = i", { ConceptID(hi: $0, lo: $0) }),
        ]
        for (name, make) in patterns {
            var counts = [Int](repeating: 0, count: 8)
            for i in UInt64(0)..<8000 { counts[make(i).shard(of: 8)] += 1 }
            XCTAssertTrue(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "\(name): ids spread evenly: \(counts)")
        }
    }

    func testCodecRoundTripsEveryCommand() throws {
        let commands: [ShardCommand] = [
            .putConcept(concept(a, "hello", dim: 4)),
            .putConcept(concept(b)),
            .deleteConcept(c),
            .putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 0.7)),
            .deleteEdge(.incoming, owner: b, other: a, type: .temporal),
            .batch([.putConcept(concept(c)), .putEdge(.incoming, owner: c, Edge(other: a, type: .semantic, confidence: 1))]),
            .expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .causal)], incoming: []),
            .dropEdge(.outgoing, owner: b, other: c, type: .hierarchical),
            .patchConcept(a, ConceptPatch(strength: 0.5), nil),
            .patchConcept(b, ConceptPatch(content: [1, 2], embedding: [], confidence: 0), .version(7)),
            .patchConcept(c, ConceptPatch(embedding: [1, 2, 3, 4], strength: 1), .content([9])),
            .batch([.expectEdges(owner: a, outgoing: [], incoming: [EdgeRef(other: c, type: .semantic)]), .deleteConcept(a)]),
        ]
        for cmd in commands {
            let r = ShardRequest(clientID: 77, sequence: 9, command: cmd)
            XCTAssertEqual(try ShardRequest.decode(r.encode()), r)
        }
    }

    func testDecoderRefusesUnknownVersionsValuesAndTruncation() {
        let good = ShardRequest(clientID: 1, sequence: 2, command: .putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 1))).encode()
        var v1 = good; v1[0] = 1
        XCTAssertThrowsError(try ShardRequest.decode(v1)) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unsupportedVersion(1)) }
        // version, client, sequence, ackedBelow: the command tag is at byte 25.
        var cmd = good; cmd[25] = 99
        XCTAssertThrowsError(try ShardRequest.decode(cmd)) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unknownCommand(99)) }
        var type = good; type[25 + 1 + 1 + 32] = 42
        XCTAssertThrowsError(try ShardRequest.decode(type)) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unknownValue("association type 42")) }
        for cut in 0..<good.count {
            XCTAssertThrowsError(try ShardRequest.decode(Array(good[..<cut])), "prefix \(cut)")
        }
        XCTAssertThrowsError(try ShardRequest.decode(good + [0])) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .trailingBytes(1)) }
        let nested = ShardRequest(clientID: 0, sequence: 0, command: .batch([.batch([])])).encode()
        XCTAssertThrowsError(try ShardRequest.decode(nested)) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unknownCommand(5)) }
        // A conditional put's put is a plain put: a condition inside a condition is refused at once (a hostile
        // entry of 200,000 repeated tag-6 bytes used to recurse until the stack overflowed — FuzzShardCommand).
        let header = Array(good[..<25])
        XCTAssertThrowsError(try ShardRequest.decode(header + [6, 6, 1])) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unknownCommand(6)) }
        XCTAssertThrowsError(try ShardRequest.decode(header + [UInt8](repeating: 6, count: 200_000))) {
            XCTAssertEqual($0 as? ShardRequest.DecodeError, .unknownCommand(6))
        }
    }

    func testPutGetVersionsAndDelete() {
        let s = ShardState(limits: ShardLimits(dimension: 4))
        XCTAssertEqual(s.apply(req(.putConcept(concept(a, "v1", dim: 4))), at: 5), .applied(version: 5))
        XCTAssertEqual(s.apply(req(.putConcept(concept(a, "v2"))), at: 9), .applied(version: 9))
        let got = s.concept(a)!
        XCTAssertEqual(got.content, Array("v2".utf8))
        XCTAssertEqual(got.createdAt, 5)
        XCTAssertEqual(got.updatedAt, 9)
        XCTAssertEqual(s.apply(req(.deleteConcept(a)), at: 10), .applied(version: 10))
        XCTAssertNil(s.concept(a))
        XCTAssertEqual(s.apply(req(.deleteConcept(a)), at: 11), .rejected("concept \(a) not found"))
    }

    /// `expectEdges` passes only while the owner's edges are exactly the ones named (either direction, any
    /// order) and changes nothing; `dropEdge` removes an edge record, and is never refused for one that is not
    /// there or whose owner is gone (a twin left dangling can still be removed).
    func testEdgeGuardAndLenientEdgeRemoval() {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        s.apply(req(.putConcept(concept(a))), at: 1)
        s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 1))), at: 2)
        s.apply(req(.putEdge(.incoming, owner: a, Edge(other: c, type: .semantic, confidence: 0.5))), at: 3)
        let seen = ShardCommand.expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .causal)], incoming: [EdgeRef(other: c, type: .semantic)])
        XCTAssertEqual(s.apply(req(.batch([seen, .deleteConcept(a)])), at: 4), .applied(version: 4))
        XCTAssertNil(s.concept(a))
        XCTAssertTrue(s.neighbors(of: a, direction: .outgoing).isEmpty)

        s.apply(req(.putConcept(concept(a))), at: 5)
        s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 1))), at: 6)
        var at: UInt64 = 6
        for stale in [ShardCommand.expectEdges(owner: a, outgoing: [], incoming: []),                                    // one appeared
                      .expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .temporal)], incoming: []),              // another type
                      .expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .causal)], incoming: [EdgeRef(other: c, type: .semantic)]), // one vanished
                      .expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .causal), EdgeRef(other: b, type: .causal)], incoming: [])] {
            at += 1
            guard case .rejected(let why) = s.apply(req(.batch([stale, .deleteConcept(a)])), at: at) else { return XCTFail("\(stale) passed") }
            XCTAssertTrue(why.hasPrefix(Rejection.conflict), why)
            XCTAssertNotNil(s.concept(a), "nothing of the batch applied")
        }
        guard case .rejected = s.apply(req(.expectEdges(owner: b, outgoing: [], incoming: [])), at: 20) else { return XCTFail("no owner b") }

        // dropEdge: the edge goes; a missing edge or owner is no refusal.
        XCTAssertEqual(s.apply(req(.dropEdge(.outgoing, owner: a, other: b, type: .causal)), at: 21), .applied(version: 21))
        XCTAssertTrue(s.neighbors(of: a, direction: .outgoing).isEmpty)
        XCTAssertEqual(s.apply(req(.dropEdge(.outgoing, owner: a, other: b, type: .causal)), at: 22), .applied(version: 22))
        XCTAssertEqual(s.apply(req(.dropEdge(.incoming, owner: b, other: a, type: .causal)), at: 23), .applied(version: 23))
        XCTAssertEqual(s.apply(req(.deleteEdge(.incoming, owner: b, other: a, type: .causal)), at: 24), .rejected("concept \(b) not found"))
    }

    /// A partial update changes only its fields, under its condition, and only an existing concept; what it
    /// would make must be a valid concept; it never goes inside a batch.
    func testPatchChangesOnlyItsFields() {
        let s = ShardState(limits: ShardLimits(dimension: 4))
        s.apply(req(.putConcept(Concept(id: a, content: [1], embedding: [1, 2, 3, 4], strength: 0.5, confidence: 0.25))), at: 1)
        XCTAssertEqual(s.apply(req(.patchConcept(a, ConceptPatch(strength: 0.75), nil)), at: 2), .applied(version: 2))
        var got = s.concept(a)!
        XCTAssertEqual([got.content, got.embedding.map { $0.map { UInt8($0) } }], [[1], [1, 2, 3, 4]])
        XCTAssertEqual([got.strength, got.confidence], [0.75, 0.25])
        XCTAssertEqual([got.createdAt, got.updatedAt], [1, 2])
        guard case .rejected(let why) = s.apply(req(.patchConcept(a, ConceptPatch(content: [2]), .version(1))), at: 3) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix(Rejection.preconditionFailed), why)
        XCTAssertEqual(s.apply(req(.patchConcept(a, ConceptPatch(content: [2], embedding: []), .content([1]))), at: 4), .applied(version: 4))
        got = s.concept(a)!
        XCTAssertEqual(got.content, [2])
        XCTAssertNil(got.embedding, "an empty embedding removes it")
        XCTAssertEqual(s.apply(req(.patchConcept(b, ConceptPatch(strength: 1), nil)), at: 5), .rejected("concept \(b) not found"))
        guard case .rejected = s.apply(req(.patchConcept(a, ConceptPatch(embedding: [1, 2]), nil)), at: 6) else { return XCTFail("another dimension") }
        guard case .rejected = s.apply(req(.batch([.patchConcept(a, ConceptPatch(strength: 1), nil)])), at: 7) else { return XCTFail("inside a batch") }
        XCTAssertEqual(s.concept(a)!.updatedAt, 4)
    }

    func testEdgesNeedTheirOwnerAndAreListedDeterministically() {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        XCTAssertEqual(s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 1))), at: 1),
                       .rejected("concept \(a) not found"))
        s.apply(req(.putConcept(concept(a))), at: 2)
        for (i, other) in [c, b].enumerated() {
            s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: other, type: .semantic, confidence: 0.5))), at: UInt64(3 + i))
        }
        s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 0.4))), at: 5)
        s.apply(req(.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 0.9))), at: 6)   // replaces
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).map(\.other), [b, b, c])
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing, type: .causal), [Edge(other: b, type: .causal, confidence: 0.9)])
        XCTAssertTrue(s.neighbors(of: a, direction: .incoming).isEmpty)
        s.apply(req(.deleteEdge(.outgoing, owner: a, other: c, type: .semantic)), at: 7)
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).map(\.other), [b, b])
        s.apply(req(.deleteConcept(a)), at: 8)
        XCTAssertTrue(s.neighbors(of: a, direction: .outgoing).isEmpty, "a deleted concept's edges go with it")
        XCTAssertEqual(s.edgeCount, 0)
    }

    func testLimitsAreEnforced() {
        var limits = ShardLimits(dimension: 3)
        limits.maxContentBytes = 10
        limits.maxBatch = 2
        let s = ShardState(limits: limits)
        XCTAssertEqual(s.apply(req(.putConcept(concept(a, String(repeating: "x", count: 11)))), at: 1),
                       .rejected("content is 11 bytes; the limit is 10"))
        XCTAssertEqual(s.apply(req(.putConcept(concept(a, dim: 4))), at: 2),
                       .rejected("embedding has 4 dimensions; this cluster's dimension is 3"))
        var nan = concept(a, dim: 3); nan.embedding![1] = .nan
        XCTAssertEqual(s.apply(req(.putConcept(nan)), at: 3), .rejected("embedding contains a non-finite value"))
        XCTAssertEqual(s.apply(req(.batch([.putConcept(concept(a)), .putConcept(concept(b)), .putConcept(concept(c))])), at: 4),
                       .rejected("batch of 3 items; the limit is 2"))
        XCTAssertEqual(s.conceptCount, 0, "nothing from a rejected request was applied")
    }

    func testBatchIsAllOrNothingAndSeesItsOwnEarlierItems() {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        let ok: ShardCommand = .batch([.putConcept(concept(a)), .putEdge(.outgoing, owner: a, Edge(other: b, type: .semantic, confidence: 1))])
        XCTAssertEqual(s.apply(req(ok), at: 1), .applied(version: 1))
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).count, 1)
        let bad: ShardCommand = .batch([.putConcept(concept(c)), .putEdge(.outgoing, owner: b, Edge(other: a, type: .semantic, confidence: 1))])
        XCTAssertEqual(s.apply(req(bad), at: 2), .rejected("item 1: concept \(b) not found"))
        XCTAssertNil(s.concept(c), "the first item of a rejected batch was not applied")
        let deleteThenUse: ShardCommand = .batch([.deleteConcept(a), .putEdge(.outgoing, owner: a, Edge(other: c, type: .causal, confidence: 1))])
        XCTAssertEqual(s.apply(req(deleteThenUse), at: 3), .rejected("item 1: concept \(a) not found"))
        XCTAssertNotNil(s.concept(a))
    }

    /// A write retried after a failover (same client and sequence, at a later log index) applies once and
    /// returns the first result.
    /// `check` (the peer-message check before an entry enters the log) must refuse exactly what `decode` refuses,
    /// with the same error: for every command kind, every prefix and a few thousand seeded byte mutations.
    func testCheckRefusesExactlyWhatDecodeRefuses() {
        let txn = TxnID(client: 3, sequence: 4)
        let commands: [ShardCommand] = [
            .putConcept(concept(a, "hello", dim: 4)),
            .deleteConcept(c),
            .putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 0.7)),
            .deleteEdge(.incoming, owner: b, other: a, type: .temporal),
            .batch([.putConcept(concept(c, "in a batch", dim: 2)), .deleteConcept(a)]),
            .putConceptIf(concept(b, "cas"), .content(Array("before".utf8))),
            .putConceptIf(concept(b), .version(9)),
            .txnBegin(txn, recordShard: 1, parts: [TxnPart(shard: 2, commands: [.putConcept(concept(a, "t", dim: 3))])]),
            .txnPrepare(txn, recordShard: 1, commands: [.putConcept(concept(b, "p"))]),
            .txnDecide(txn, commit: false, reason: "a reason"),
            .txnResolve([txn], commit: true),
            .txnForget([txn]),
            .expectEdges(owner: a, outgoing: [EdgeRef(other: b, type: .causal), EdgeRef(other: c, type: .temporal)], incoming: [EdgeRef(other: c, type: .semantic)]),
            .dropEdge(.incoming, owner: c, other: a, type: .compositional),
            .patchConcept(b, ConceptPatch(content: Array("patched".utf8), embedding: [0.5, 1], strength: 0.25, confidence: 0.75), .content(Array("was".utf8))),
            .patchConcept(a, ConceptPatch(embedding: []), .version(3)),
        ]
        func outcome(_ bytes: [UInt8]) -> (decode: ShardRequest.DecodeError?, check: ShardRequest.DecodeError?) {
            var d: ShardRequest.DecodeError?, k: ShardRequest.DecodeError?
            do { _ = try ShardRequest.decode(bytes) } catch { d = error }
            do { try ShardRequest.check(bytes) } catch { k = error }
            return (d, k)
        }
        var rng = SplitMix64(seed: 11)
        var refused = 0
        for cmd in commands {
            let good = ShardRequest(clientID: 5, sequence: 6, ackedBelow: 2, command: cmd).encode()
            XCTAssertNoThrow(try ShardRequest.check(good), "\(cmd)")
            for cut in 0..<good.count {
                let o = outcome(Array(good[..<cut]))
                XCTAssertNotNil(o.check, "prefix \(cut) of \(cmd)")
                XCTAssertEqual(o.check, o.decode, "prefix \(cut) of \(cmd)")
            }
            for _ in 0..<300 {
                var bad = good
                bad[rng.below(bad.count)] = UInt8(truncatingIfNeeded: rng.next())
                let o = outcome(bad)
                XCTAssertEqual(o.check, o.decode, "a mutation of \(cmd)")
                if o.decode != nil { refused += 1 }
            }
        }
        XCTAssertGreaterThan(refused, 100, "the mutations reach the refusals")
    }

    /// Acknowledgements forget outcomes in place: a step of a few sequences removes just those, a jump past
    /// everything empties the table, and what stays is exactly what is at or above the acknowledged sequence.
    func testAcknowledgementsForgetExactlyTheAcknowledgedOutcomes() {
        var session = ClientSession()
        for q in UInt64(1)...10 { session.remember(.applied(version: q * 100), sequence: q) }
        session.acknowledge(below: 4)
        XCTAssertEqual(session.results.keys.sorted(), Array(4...10))
        session.acknowledge(below: 3)
        XCTAssertEqual(session.ackedBelow, 4, "an older acknowledgement changes nothing")
        session.remember(.applied(version: 1), sequence: 2)
        XCTAssertNil(session.results[2], "an acknowledged sequence is not remembered again")
        session.acknowledge(below: 7)
        XCTAssertEqual(session.results.keys.sorted(), Array(7...10))
        session.acknowledge(below: 1_000_000)
        XCTAssertTrue(session.results.isEmpty)
        XCTAssertEqual(session.ackedBelow, 1_000_000)
        // A client that never acknowledges keeps at most maxRemembered outcomes; the oldest counts as acknowledged.
        var greedy = ClientSession()
        for q in UInt64(0)...UInt64(ClientSession.maxRemembered) { greedy.remember(.applied(version: q), sequence: q) }
        XCTAssertEqual(greedy.results.count, ClientSession.maxRemembered)
        XCTAssertEqual(greedy.ackedBelow, 1)
        XCTAssertNil(greedy.results[0])
    }

    func testRetriedRequestsApplyOnce() {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        let first = s.apply(req(.putConcept(concept(a, "first")), client: 5, seq: 1), at: 10)
        XCTAssertEqual(first, .applied(version: 10))
        s.apply(req(.putConcept(concept(a, "other writer")), client: 6, seq: 1), at: 11)
        let retry = s.apply(req(.putConcept(concept(a, "first")), client: 5, seq: 1), at: 12)
        XCTAssertEqual(retry, first)
        XCTAssertEqual(s.concept(a)!.content, Array("other writer".utf8), "the retry did not overwrite the later write")
        XCTAssertEqual(s.apply(req(.deleteConcept(a), client: 5, seq: 2), at: 14), .applied(version: 14))
    }

    /// One client with many requests in flight: sequences may apply out of order, each applies once, and
    /// outcomes the client has acknowledged are forgotten (a late duplicate of one is refused, not re-applied).
    func testConcurrentSequencesFromOneClient() {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        let b = ConceptID(hi: 9, lo: 9)
        XCTAssertEqual(s.apply(ShardRequest(clientID: 7, sequence: 5, command: .putConcept(concept(a, "five"))), at: 1), .applied(version: 1))
        XCTAssertEqual(s.apply(ShardRequest(clientID: 7, sequence: 3, command: .putConcept(concept(b, "three"))), at: 2), .applied(version: 2),
                       "a lower sequence that was never applied is not a stale retry")
        XCTAssertEqual(s.apply(ShardRequest(clientID: 7, sequence: 5, command: .putConcept(concept(a, "five"))), at: 3), .applied(version: 1))
        // The client has answers for everything below 6 now.
        XCTAssertEqual(s.apply(ShardRequest(clientID: 7, sequence: 6, ackedBelow: 6, command: .deleteConcept(b)), at: 4), .applied(version: 4))
        XCTAssertEqual(s.sessions[7]?.results.count, 1, "acknowledged outcomes are forgotten")
        XCTAssertEqual(s.apply(ShardRequest(clientID: 7, sequence: 3, command: .putConcept(concept(b, "three"))), at: 5),
                       .rejected("stale retry: sequence 3 is below the acknowledged 6"))
        XCTAssertNil(s.concept(b), "the late duplicate did not resurrect the deleted concept")
        // The windowed sessions survive a snapshot.
        let restored = try! ShardState.restore(from: s.snapshotData(), limits: s.limits)
        XCTAssertEqual(restored.sessions, s.sessions)
    }

    /// Replicas applying the same log reach the same state.
    func testSameLogSameState() {
        var rng = SystemRandomNumberGenerator()
        var log: [ShardRequest] = []
        let ids = (0..<20).map { ConceptID(hi: UInt64($0), lo: 0) }
        for k in 0..<500 {
            let x = ids.randomElement(using: &rng)!, y = ids.randomElement(using: &rng)!
            let cmd: ShardCommand
            switch Int.random(in: 0..<5, using: &rng) {
            case 0, 1: cmd = .putConcept(concept(x, "k\(k)"))
            case 2: cmd = .deleteConcept(x)
            case 3: cmd = .putEdge(.outgoing, owner: x, Edge(other: y, type: AssociationType.allCases.randomElement(using: &rng)!, confidence: 0.5))
            default: cmd = .deleteEdge(.outgoing, owner: x, other: y, type: .semantic)
            }
            log.append(req(cmd, client: UInt64(k % 3 + 1), seq: UInt64(k)))
        }
        let r1 = ShardState(limits: ShardLimits(dimension: 0)), r2 = ShardState(limits: ShardLimits(dimension: 0))
        let out1 = log.enumerated().map { r1.apply(try! ShardRequest.decode($0.element.encode()), at: UInt64($0.offset + 1)) }
        let out2 = log.enumerated().map { r2.apply($0.element, at: UInt64($0.offset + 1)) }
        XCTAssertEqual(out1, out2)
        XCTAssertEqual(r1.concepts, r2.concepts)
        for id in ids { XCTAssertEqual(r1.neighbors(of: id, direction: .outgoing), r2.neighbors(of: id, direction: .outgoing)) }
    }
}

