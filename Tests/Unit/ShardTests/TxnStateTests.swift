@testable import Shard
import XCTest

/// The state-machine side of two-phase commit: records, intents, locks, idempotence, conditional puts, and
/// that all of it survives a snapshot.
final class TxnStateTests: XCTestCase {
    let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2), c = ConceptID(hi: 3, lo: 3)
    let t1 = TxnID(client: 7, sequence: 1), t2 = TxnID(client: 7, sequence: 2)
    var index: UInt64 = 0

    func apply(_ s: ShardState, _ cmd: ShardCommand, client: UInt64 = 0, seq: UInt64 = 0) -> ApplyResult {
        index += 1
        return s.apply(ShardRequest(clientID: client, sequence: seq, command: cmd), at: index)
    }

    func withConcepts(_ ids: ConceptID...) -> ShardState {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        for id in ids { _ = apply(s, .putConcept(Concept(id: id, content: Array("v".utf8)))) }
        return s
    }

    func out(_ from: ConceptID, _ to: ConceptID, _ conf: Float = 1) -> ShardCommand {
        .putEdge(.outgoing, owner: from, Edge(other: to, type: .semantic, confidence: conf))
    }

    func begin(_ s: ShardState, _ t: TxnID, _ cmds: [ShardCommand]) -> ApplyResult {
        apply(s, .txnBegin(t, recordShard: 0, parts: [TxnPart(shard: 0, commands: cmds), TxnPart(shard: 1, commands: [])]),
              client: t.client, seq: t.sequence)
    }

    func testBeginDecideCommitAppliesTheOwnPartOnce() {
        let s = withConcepts(a)
        guard case .pending = begin(s, t1, [out(a, b)]) else { return XCTFail("begin should be pending") }
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing), [], "nothing visible before the decision")
        guard case .pending = begin(s, t1, [out(a, b)]) else { return XCTFail("a retried begin is pending too") }
        XCTAssertEqual(s.txns.intents.count, 1)
        guard case .applied(let v) = apply(s, .txnDecide(t1, commit: true, reason: "")) else { return XCTFail() }
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).map(\.other), [b])
        XCTAssertTrue(s.txns.intents.isEmpty)
        // Later decisions (a recovery's abort) change nothing and report the first.
        XCTAssertEqual(apply(s, .txnDecide(t1, commit: false, reason: "late")), .applied(version: v))
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).map(\.other), [b])
        // The client's retry of the same request gets the outcome, even after the record is forgotten.
        _ = apply(s, .txnForget([t1]))
        XCTAssertNil(s.txns.records[t1])
        XCTAssertEqual(begin(s, t1, [out(a, b)]), .applied(version: v))
    }

    func testAbortDiscardsAndFirstDecisionWins() {
        let s = withConcepts(a)
        _ = begin(s, t1, [out(a, b)])
        guard case .rejected(let why) = apply(s, .txnDecide(t1, commit: false, reason: "shard 1 gave up")) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix(Rejection.aborted))
        XCTAssertEqual(apply(s, .txnDecide(t1, commit: true, reason: "")), .rejected(why), "a late commit cannot win")
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing), [])
        XCTAssertTrue(s.txns.intents.isEmpty)
    }

    /// Seed 493 of the cluster simulation: a committed transaction, its record forgotten and its client's
    /// session moved past it, then a lagging leader's intent recovery asks the record shard to abort it. The
    /// shard used to answer (and write down) an abort for a committed transaction.
    func testAForgottenDecisionIsNeverReportedAsAnAbort() {
        let s = withConcepts(a)
        _ = begin(s, t1, [out(a, b)])
        guard case .applied = apply(s, .txnDecide(t1, commit: true, reason: "")) else { return XCTFail() }
        _ = apply(s, .txnForget([t1]))
        // The client's next request acknowledges t1's sequence: the session drops its outcome.
        index += 1
        _ = s.apply(ShardRequest(clientID: t1.client, sequence: 5, ackedBelow: 5,
                                 command: .putConcept(Concept(id: c, content: Array("w".utf8)))), at: index)
        guard case .rejected(let why) = apply(s, .txnDecide(t1, commit: false, reason: "shard 1 gave up waiting")) else {
            return XCTFail("a decide of a forgotten transaction cannot commit anew")
        }
        XCTAssertTrue(why.hasPrefix(Rejection.forgotten), why)
        XCTAssertEqual(s.neighbors(of: a, direction: .outgoing).map(\.other), [b], "the committed part stays")
        // Asking again gives the same answer: nothing was written down in between.
        XCTAssertEqual(apply(s, .txnDecide(t1, commit: false, reason: "again")), .rejected(why))
        // A participant's late abort after its commit keeps the first resolution.
        let p = withConcepts(b)
        _ = apply(p, .txnPrepare(t2, recordShard: 0, commands: [out(b, a)]))
        _ = apply(p, .txnResolve([t2], commit: true))
        let first = p.txns.finished[t2]
        _ = apply(p, .txnResolve([t2], commit: false))
        XCTAssertEqual(p.txns.finished[t2], first)
        XCTAssertEqual(p.neighbors(of: b, direction: .outgoing).map(\.other), [a])
    }

    func testRecoveryAbortOfAnUnknownTransactionRefusesALaterBegin() {
        let s = withConcepts(a)
        guard case .rejected = apply(s, .txnDecide(t1, commit: false, reason: "timed out")) else { return XCTFail() }
        guard case .rejected(let why) = begin(s, t1, [out(a, b)]) else { return XCTFail("begin after abort must be refused") }
        XCTAssertTrue(why.hasPrefix(Rejection.aborted), why)
        XCTAssertNil(s.txns.records[t1])
    }

    func testBeginValidatesItsOwnPart() {
        let s = withConcepts(b)
        guard case .rejected(let why) = begin(s, t1, [out(a, b)]) else { return XCTFail() }
        XCTAssertTrue(why.hasSuffix("not found"), why)
        XCTAssertTrue(s.txns.records.isEmpty)
        XCTAssertTrue(s.txns.intents.isEmpty)
    }

    func testPrepareIsIdempotentAndResolveBlocksLatePrepares() {
        let s = withConcepts(b)
        let inEdge = ShardCommand.putEdge(.incoming, owner: b, Edge(other: a, type: .semantic, confidence: 1))
        guard case .applied(let v) = apply(s, .txnPrepare(t1, recordShard: 0, commands: [inEdge])) else { return XCTFail() }
        XCTAssertEqual(apply(s, .txnPrepare(t1, recordShard: 0, commands: [inEdge])), .applied(version: v))
        XCTAssertEqual(s.txns.intents.count, 1)
        _ = apply(s, .txnResolve([t1], commit: true))
        XCTAssertEqual(s.neighbors(of: b, direction: .incoming).map(\.other), [a])
        _ = apply(s, .txnResolve([t1], commit: true))
        XCTAssertEqual(s.neighbors(of: b, direction: .incoming).count, 1)
        // A duplicated prepare arriving after the resolution must not lock again.
        guard case .rejected = apply(s, .txnPrepare(t1, recordShard: 0, commands: [inEdge])) else { return XCTFail() }
        XCTAssertTrue(s.txns.intents.isEmpty)
        // A resolve that arrives before its prepare (reordered) also blocks that prepare.
        _ = apply(s, .txnResolve([t2], commit: false))
        guard case .rejected = apply(s, .txnPrepare(t2, recordShard: 0, commands: [inEdge])) else { return XCTFail() }
    }

    func testLocksFailConflictingWritesFast() {
        let s = withConcepts(a, b, c)
        _ = begin(s, t1, [out(a, b)])
        // The same edge key by another transaction or a plain write: conflict.
        guard case .rejected(let why) = begin(s, t2, [out(a, b, 2)]) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix(Rejection.conflict), why)
        guard case .rejected(let why2) = apply(s, out(a, b, 3)) else { return XCTFail() }
        XCTAssertTrue(why2.hasPrefix(Rejection.conflict), why2)
        // Deleting a concept an intent relies on: conflict. Another edge of it, or rewriting its content: fine.
        guard case .rejected(let why3) = apply(s, .deleteConcept(a)) else { return XCTFail() }
        XCTAssertTrue(why3.hasPrefix(Rejection.conflict), why3)
        guard case .applied = apply(s, out(a, c)) else { return XCTFail() }
        guard case .applied = apply(s, .putConcept(Concept(id: a, content: [9]))) else { return XCTFail() }
        // After the decision the locks are gone.
        _ = apply(s, .txnDecide(t1, commit: true, reason: ""))
        guard case .applied = apply(s, .deleteConcept(a)) else { return XCTFail() }
    }

    func testAConflictInsideABatchNamesTheConflict() {
        let s = withConcepts(a, b)
        _ = begin(s, t1, [out(a, b)])
        guard case .rejected(let why) = apply(s, .batch([.putConcept(Concept(id: c, content: [])), out(a, b)])) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix(Rejection.conflict), why)
        XCTAssertNil(s.concept(c), "nothing of the batch applied")
    }

    func testConditionalPuts() {
        let s = withConcepts(a)
        let v = s.concept(a)!.updatedAt
        guard case .rejected(let w1) = apply(s, .putConceptIf(Concept(id: a, content: [2]), .absent)) else { return XCTFail() }
        XCTAssertTrue(w1.hasPrefix(Rejection.preconditionFailed))
        guard case .rejected = apply(s, .putConceptIf(Concept(id: a, content: [2]), .content([0]))) else { return XCTFail() }
        guard case .applied = apply(s, .putConceptIf(Concept(id: a, content: [2]), .content(Array("v".utf8)))) else { return XCTFail() }
        guard case .rejected = apply(s, .putConceptIf(Concept(id: a, content: [3]), .version(v))) else { return XCTFail("stale version") }
        guard case .applied = apply(s, .putConceptIf(Concept(id: a, content: [3]), .version(s.concept(a)!.updatedAt))) else { return XCTFail() }
        guard case .applied = apply(s, .putConceptIf(Concept(id: b, content: [1]), .absent)) else { return XCTFail() }
        guard case .rejected = apply(s, .putConceptIf(Concept(id: c, content: [1]), .content([]))) else { return XCTFail("absent concept has no content") }
        XCTAssertEqual(s.concept(a)?.content, [3])
    }

    func testEveryNewCommandRoundTripsThroughTheLogEncoding() throws {
        let cmds: [ShardCommand] = [
            .putConceptIf(Concept(id: a, content: [1, 2]), .absent),
            .putConceptIf(Concept(id: a, content: [1]), .content([4, 5])),
            .putConceptIf(Concept(id: a, content: []), .version(99)),
            .txnBegin(t1, recordShard: 3, parts: [TxnPart(shard: 3, commands: [out(a, b)]), TxnPart(shard: 5, commands: [.deleteConcept(c)])]),
            .txnPrepare(t2, recordShard: 1, commands: [out(b, a, 0.5), .putConcept(Concept(id: c, content: [7]))]),
            .txnDecide(t1, commit: false, reason: "why ✓"),
            .txnResolve([t2], commit: true),
            .txnForget([t1, t2]),
        ]
        for cmd in cmds {
            let req = ShardRequest(clientID: 1, sequence: 2, ackedBelow: 1, command: cmd)
            XCTAssertEqual(try ShardRequest.decode(req.encode()), req)
        }
        // Transaction commands cannot hide inside a batch.
        var bytes = ShardRequest(clientID: 0, sequence: 0, command: .batch([.txnResolve([t1], commit: true)])).encode()
        XCTAssertThrowsError(try ShardRequest.decode(bytes))
        bytes = ShardRequest(clientID: 0, sequence: 0, command: .txnForget([t1])).encode()
        bytes[0] = 4
        XCTAssertThrowsError(try ShardRequest.decode(bytes)) { XCTAssertEqual($0 as? ShardRequest.DecodeError, .unsupportedVersion(4)) }
    }

    func testTransactionTablesSurviveASnapshot() throws {
        let s = withConcepts(a, b)
        _ = begin(s, t1, [out(a, b)])
        _ = apply(s, .txnPrepare(t2, recordShard: 4, commands: [.deleteConcept(b)]))
        _ = apply(s, .txnResolve([TxnID(client: 9, sequence: 9)], commit: false))
        let copy = try ShardState.restore(from: s.snapshotData(), limits: s.limits)
        XCTAssertEqual(copy.txns, s.txns)
        XCTAssertEqual(copy.snapshotData(), s.snapshotData())
        // Locks were rebuilt: the restored state still refuses conflicting writes.
        index += 1
        guard case .rejected(let why) = copy.apply(ShardRequest(clientID: 0, sequence: 0, command: .deleteConcept(a)), at: index) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix(Rejection.conflict))
    }
}
