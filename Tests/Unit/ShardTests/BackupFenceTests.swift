@testable import Shard
import XCTest

/// Backup fences in the state machine: a raised fence refuses new transactions without remembering the refusal,
/// survives a snapshot (format 4, only while raised), and a backup image reads back as the data alone.
final class BackupFenceTests: XCTestCase {
    let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2)
    let t1 = TxnID(client: 7, sequence: 1)
    var index: UInt64 = 0

    func apply(_ s: ShardState, _ cmd: ShardCommand, client: UInt64 = 0, seq: UInt64 = 0) -> ApplyResult {
        index += 1
        return s.apply(ShardRequest(clientID: client, sequence: seq, command: cmd), at: index)
    }

    func begin(_ s: ShardState) -> ApplyResult {
        apply(s, .txnBegin(t1, recordShard: 0, parts: [TxnPart(shard: 0, commands: [.putEdge(.outgoing, owner: a, Edge(other: b, type: .semantic, confidence: 1))]),
                                                       TxnPart(shard: 1, commands: [])]), client: t1.client, seq: t1.sequence)
    }

    func state() -> ShardState {
        let s = ShardState(limits: ShardLimits(dimension: 0))
        _ = apply(s, .putConcept(Concept(id: a, content: Array("v".utf8))))
        return s
    }

    func testAFencedBeginIsRefusedUnrememberedAndBeginsOnceLifted() {
        let s = state()
        XCTAssertEqual(apply(s, .backupFence(id: 9, ttlTicks: 100)), .applied(version: index))
        guard case .rejected(let why) = begin(s) else { return XCTFail("a begin under a fence is refused") }
        XCTAssertTrue(why.hasPrefix(Rejection.conflict + Rejection.backupFence), why)
        XCTAssertTrue(s.txns.records.isEmpty && s.txns.intents.isEmpty, "nothing applied")
        guard case .rejected = begin(s) else { return XCTFail("still refused while the fence stands") }
        XCTAssertEqual(apply(s, .liftBackupFence(id: 9)), .applied(version: index))
        guard case .pending = begin(s) else { return XCTFail("the same transaction begins once the fence is lifted (the refusal was not remembered)") }
    }

    func testFencesAreBoundedAndLiftedOneByOne() {
        let s = state()
        for id in 1...UInt64(ShardState.maxBackupFences) { _ = apply(s, .backupFence(id: id, ttlTicks: 10)) }
        guard case .rejected = apply(s, .backupFence(id: 99, ttlTicks: 10)) else { return XCTFail("one fence too many") }
        XCTAssertEqual(apply(s, .backupFence(id: 1, ttlTicks: 20)), .applied(version: index), "raising a raised fence again is fine")
        for id in 1...UInt64(ShardState.maxBackupFences) { _ = apply(s, .liftBackupFence(id: id)) }
        XCTAssertTrue(s.backupFences.isEmpty)
    }

    func testASnapshotCarriesFencesInFormat4AndOnlyThen() throws {
        let s = state()
        XCTAssertEqual(s.snapshotData()[8], 3, "format 3 without a fence")
        _ = apply(s, .backupFence(id: 5, ttlTicks: 77))
        let fenced = s.snapshotData()
        XCTAssertEqual(fenced[8], 4)
        let back = try ShardState.restore(from: fenced, limits: ShardLimits(dimension: 0))
        XCTAssertEqual(back.backupFences, [5: 77])
        guard case .rejected = apply(back, .txnBegin(t1, recordShard: 0, parts: [TxnPart(shard: 0, commands: [])])) else {
            return XCTFail("a replica restored from the snapshot refuses begins too")
        }
    }

    func testCommandsRoundTrip() throws {
        for c in [ShardCommand.backupFence(id: .max, ttlTicks: .max), .liftBackupFence(id: 3)] {
            let r = ShardRequest(clientID: 0, sequence: 0, command: c)
            XCTAssertEqual(try ShardRequest.decode(r.encode()), r)
        }
        XCTAssertThrowsError(try ShardRequest.decode(ShardRequest(clientID: 0, sequence: 0, command: .batch([.liftBackupFence(id: 1)])).encode()),
                             "no fence inside a batch")
    }

    func testABackupImageReadsBackAsItsDataAlone() throws {
        let s = state()
        _ = apply(s, .putEdge(.outgoing, owner: a, Edge(other: b, type: .semantic, confidence: 0.5)), client: 3, seq: 1)
        let image = s.contentImage(shard: 0)
        let back = try ShardBackupFile.read(image.backupData(), dimension: 0)
        XCTAssertEqual(ShardDigest.compute(back.contentImage(shard: 0)), ShardDigest.compute(image))
        XCTAssertEqual(back.lastApplied, s.lastApplied)
        XCTAssertTrue(back.sessions.isEmpty, "no client session in a backup")
        // A full snapshot (it holds the client's session) is not a backup image.
        XCTAssertThrowsError(try ShardBackupFile.read(s.snapshotData(), dimension: 0)) { e in
            guard case .invalid(let why)? = e as? ShardSnapshotError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("client sessions"), why)
        }
        _ = apply(s, .backupFence(id: 1, ttlTicks: 1))
        XCTAssertThrowsError(try ShardBackupFile.read(s.snapshotData(), dimension: 0), "nor is one with a fence")
    }
}
