import ClusterMap
import Codec
@testable import NodeCore
import Raft
import Shard
import XCTest

/// The node-to-node wire format: every frame round-trips; truncation, trailing bytes and unknown values are
/// refused, never guessed.
final class PeerWireTests: XCTestCase {
    var frames: [PeerFrame] { Self.sampleFrames }

    /// One frame of every kind (also the seeds of `PeerWireFuzzTests`).
    static var sampleFrames: [PeerFrame] { [
        .hello(PeerHello(clusterID: "prod", node: 3, clientAddress: "10.0.0.3:7100", httpAddress: "10.0.0.3:7200")),
        .raft([
            ShardMessage(shard: 5, message: Message(type: .append, to: 2, from: 1, term: 7, logTerm: 6, index: 41,
                                                    entries: [Entry(term: 7, index: 42, data: [1, 2, 3]), Entry(term: 7, index: 43, kind: .confChange, data: [])],
                                                    commit: 40, reject: false, rejectHint: 0, context: 9)),
            ShardMessage(shard: 0, message: Message(type: .snapshot, to: 2, from: 1, term: 7,
                                                    snapshot: Snapshot(metadata: SnapshotMetadata(index: 100, term: 6, confState: ConfState(voters: [1, 2, 3], learners: [4])),
                                                                       data: Array(repeating: 7, count: 300)))),
            ShardMessage(shard: 1, message: Message(type: .appendResponse, to: 1, from: 2, term: 7, index: 43, reject: true, rejectHint: 30)),
        ]),
        .forward(incarnation: 0, id: 77, shard: 2, op: .propose(ShardRequest(clientID: 9, sequence: 4, ackedBelow: 2, command: .deleteConcept(ConceptID(hi: 1, lo: 2))))),
        .forward(incarnation: 0x1234_5678_9ABC_DEF0, id: 78, shard: 3, op: .readIndex),
        .forward(incarnation: 5, id: 81, shard: 1, op: .propose(ShardRequest(clientID: 1, sequence: 1, command: .deleteConcept(ConceptID(hi: 3, lo: 4))))),
        .forward(incarnation: 6, id: 82, shard: 1, op: .transaction(ForwardedTransaction(parts: [
            TxnPart(shard: 1, commands: [.putEdge(.outgoing, owner: ConceptID(hi: 1, lo: 1), Edge(other: ConceptID(hi: 2, lo: 2), type: .causal, confidence: 0.5))]),
            TxnPart(shard: 3, commands: [.putEdge(.incoming, owner: ConceptID(hi: 2, lo: 2), Edge(other: ConceptID(hi: 1, lo: 1), type: .causal, confidence: 0.5)),
                                         .deleteConcept(ConceptID(hi: 5, lo: 5))]),
        ], clientID: 9, sequence: 12, ackedBelow: 11))),
        .forward(incarnation: 7, id: 83, shard: 8, op: .mapChange(.setAddresses(node: 2, peer: "10.0.0.2:7300", client: "10.0.0.2:7100", http: "db2.example:7200"))),
        .forward(incarnation: 7, id: 84, shard: 8, op: .mapChange(.beginMove(shard: 3, from: nil, to: 4))),
        .forward(incarnation: 7, id: 85, shard: 2, op: .read(ShardRead(.concept(ConceptID(hi: 9, lo: 9)), .linearizable))),
        .forward(incarnation: 7, id: 86, shard: 2, op: .read(ShardRead(.neighbors(ConceptID(hi: 9, lo: 9), .incoming, .causal), .stale))),
        .forward(incarnation: 7, id: 87, shard: 2, op: .read(ShardRead(.outEdges([ConceptID(hi: 1, lo: 2), ConceptID(hi: 3, lo: 4)]), .linearizable))),
        .forward(incarnation: 7, id: 88, shard: 1, op: .read(ShardRead(.search(vector: [0.5, -1, 2, 0], VectorQuery(k: 10, ef: 64, exact: true, filter: SearchFilter(minStrength: 0.5, associationType: .temporal)), shards: [1, 4]), .linearizable))),
        .forwardReply(incarnation: 7, id: 85, .answer(.concept(Concept(id: ConceptID(hi: 9, lo: 9), content: [1, 2], embedding: [1, 0, 0, 0], strength: 0.5, confidence: 1)))),
        .forwardReply(incarnation: 7, id: 85, .answer(.concept(nil))),
        .forwardReply(incarnation: 7, id: 86, .answer(.neighbors(exists: true, [NeighborEdge(edge: Edge(other: ConceptID(hi: 1, lo: 1), type: .causal, confidence: 0.25), direction: .incoming)]))),
        .forwardReply(incarnation: 7, id: 87, .answer(.outEdges([[], [Edge(other: ConceptID(hi: 5, lo: 5), type: .semantic, confidence: 1)]]))),
        .forward(incarnation: 7, id: 89, shard: 3, op: .read(ShardRead(.digest, .linearizable))),
        .forwardReply(incarnation: 7, id: 89, .answer(.digest(ShardDigest(shard: 3, appliedIndex: 412, concepts: 17, edges: 30, digest: Array(0..<32))))),
        .forwardReply(incarnation: 7, id: 88, .answer(.search([SearchHit(id: ConceptID(hi: 2, lo: 2), distance: 0.125)]))),
        .forwardReply(incarnation: 0, id: 77, .ok(12)),
        .forwardReply(incarnation: 5, id: 78, .failed(.notLeader(leader: 2))),
        .forwardReply(incarnation: 0, id: 79, .failed(.unavailable("no leader"))),
        .forwardReply(incarnation: 0xFFFF_FFFF_FFFF_FFFF, id: 80, .failed(.rejected("concept x not found"))),
        .heartbeats([CoalescedHeartbeat(shard: 0, isResponse: false, term: 4, commit: 99, context: 3),
                     CoalescedHeartbeat(shard: 7, isResponse: true, term: 4, commit: 0, context: 3)]),
        .config(PeerConfig(shardCount: 8, dimension: 768, walFormat: 1, snapshotFormat: 3, entryFormat: 3)),
        .config(PeerConfig(shardCount: 8, dimension: 768, walFormat: 1, snapshotFormat: 3, entryFormat: 3, replication: 3)),
        .draining,
        .snapshotBegin(SnapshotStreamID(shard: 3, index: 120, term: 4),
                       message: { var m = Message(type: .snapshot, to: 2, from: 1, term: 5)
                                  m.snapshot = Snapshot(metadata: SnapshotMetadata(index: 120, term: 4, confState: ConfState(voters: [1, 2, 3])))
                                  return m }(), total: 1 << 33),
        .snapshotChunk(SnapshotStreamID(shard: 3, index: 120, term: 4), offset: 4096, bytes: Array(repeating: 9, count: 100)),
        .snapshotAck(SnapshotStreamID(shard: 3, index: 120, term: 4), received: 4196),
    ] }

    /// The size NodeCore splits frames by is the size encoded.
    func testEncodedSizeOfAMessageIsExact() {
        for f in frames {
            guard case .raft(let msgs) = f else { continue }
            for m in msgs {
                XCTAssertEqual(PeerFrame.raft([m]).encode().count, 9 + PeerFrame.encodedSize(m.message), "\(m.message.type)")
            }
            XCTAssertEqual(f.encode().count, 9 + msgs.map { PeerFrame.encodedSize($0.message) }.reduce(0, +))
        }
    }

    /// Shard count, dimension and the snapshot and entry formats must agree; the WAL format is the node's own.
    func testConfigurationMismatchNamesBothValues() {
        let mine = PeerConfig(shardCount: 8, dimension: 768, walFormat: 1, snapshotFormat: 3, entryFormat: 3)
        XCTAssertNil(mine.mismatch(with: mine))
        var other = mine
        other.walFormat = 2
        XCTAssertNil(mine.mismatch(with: other))
        other.shardCount = 4
        XCTAssertEqual(mine.mismatch(with: other), "shard count 8 here, 4 on the peer")
        other.dimension = 128
        other.entryFormat = 4
        XCTAssertEqual(mine.mismatch(with: other), "shard count 8 here, 4 on the peer; vector dimension 768 here, 128 on the peer; log entry format 3 here, 4 on the peer")
        other = mine
        other.snapshotFormat = 2
        XCTAssertEqual(mine.mismatch(with: other), "snapshot format 3 here, 2 on the peer")
        // The replication factor (wire 9): compared when both ends send it; an older peer's (0) is not.
        var three = mine, five = mine
        three.replication = 3
        five.replication = 5
        XCTAssertEqual(three.mismatch(with: five), "replication factor 3 here, 5 on the peer")
        XCTAssertNil(three.mismatch(with: mine))
        XCTAssertNil(three.mismatch(with: three))
        XCTAssertEqual(three.forLink(version: 8).replication, 0, "a link to an older release does not carry it")
        XCTAssertEqual(three.forLink(version: 9).replication, 3)
    }

    /// A shard read's bounds are checked where it is served: shards of this cluster, a search of its dimension.
    func testAShardReadOutOfBoundsIsNamed() {
        let q = VectorQuery(k: 5)
        XCTAssertNil(ShardRead(.search(vector: [1, 0], q, shards: [0, 1]), .linearizable).problem(shardCount: 2, dimension: 2))
        XCTAssertEqual(ShardRead(.search(vector: [1, 0], q, shards: [2]), .linearizable).problem(shardCount: 2, dimension: 2), "a search of shards [2] (this cluster has 2)")
        XCTAssertEqual(ShardRead(.search(vector: [1, 0], q, shards: [1, 1]), .linearizable).problem(shardCount: 2, dimension: 2), "a search of shards [1, 1] (this cluster has 2)")
        XCTAssertEqual(ShardRead(.search(vector: [1], q, shards: [0]), .linearizable).problem(shardCount: 2, dimension: 2), "a search of 1 dimensions; this cluster's dimension is 2")
        XCTAssertEqual(ShardRead(.search(vector: [1, .nan], q, shards: [0]), .stale).problem(shardCount: 2, dimension: 2), "a search vector with a non-finite value")
        XCTAssertEqual(ShardRead(.outEdges([]), .stale).problem(shardCount: 2, dimension: 2), "an out-edge read of 0 ids (1…4096)")
        // A count the frame cannot hold is refused before anything is reserved.
        var w = ByteWriter(capacity: 64)
        w.u32(0); w.u8(6); w.u64(1); w.u64(1); w.u32(0); w.u8(5); w.u8(0); w.u8(3); w.u32(4000)
        w.patchU32(UInt32(w.bytes.count - 4), at: 0)
        XCTAssertThrowsError(try w.bytes.dropFirst(4).withUnsafeBytes { try PeerFrame.decode($0) }) {
            XCTAssertEqual(($0 as? PeerWireError)?.description, "an out-edge read of 4000 ids", "refused by the count check, not by running out of bytes")
        }
    }

    /// Before a link's handshake is accepted, a frame above the handshake cap is refused from its header alone.
    func testHandshakeCapRefusesAHugeFrameFromItsHeader() {
        var f = LengthPrefixedFrames(maxFrame: 64 << 20)
        f.append([0x00, 0x00, 0x00, 0x40, 1])   // announces 1 GiB
        XCTAssertThrowsError(try f.drain(limit: { PeerFrame.maxHandshakeFrameBytes }) { _ in XCTFail("nothing complete") })
        var g = LengthPrefixedFrames(maxFrame: 64 << 20)
        let hello = PeerFrame.hello(PeerHello(clusterID: "c", node: 1, clientAddress: "a", httpAddress: "b")).encode()
        let big = PeerFrame.raft([ShardMessage(shard: 0, message: Message(type: .append, to: 2, from: 1, term: 1,
                                                                        entries: [Entry(term: 1, index: 1, data: Array(repeating: 1, count: 10_000))]))]).encode()
        g.append(hello + big)
        var established = false, seen = 0
        // The limit rises between two frames of one read once the first (the hello) is accepted.
        XCTAssertNoThrow(try g.drain(limit: { established ? 64 << 20 : PeerFrame.maxHandshakeFrameBytes }) { _ in seen += 1; established = true })
        XCTAssertEqual(seen, 2)
    }

    private func decode(_ bytes: [UInt8]) throws -> PeerFrame {
        try bytes.withUnsafeBytes { b in try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: b[4...])) }
    }

    func testEveryFrameRoundTrips() throws {
        for f in frames {
            let bytes = f.encode()
            let len = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
            XCTAssertEqual(len, bytes.count - 4, "the prefix counts the bytes after it")
            XCTAssertEqual(try decode(bytes), f)
        }
    }

    func testTruncationTrailingBytesAndUnknownKindsAreRefused() {
        for f in frames {
            let bytes = f.encode()
            for cut in 5..<bytes.count {
                XCTAssertThrowsError(try decode(Array(bytes[..<cut])), "\(f) cut at \(cut)")
            }
            XCTAssertThrowsError(try decode(bytes + [0]), "\(f) with a trailing byte")
        }
        XCTAssertThrowsError(try decode([1, 0, 0, 0, 14])) { XCTAssertEqual(($0 as? PeerWireError)?.description, "unknown frame kind 14") }
        var badHeartbeat = PeerFrame.heartbeats([CoalescedHeartbeat(shard: 0, isResponse: false, term: 1, commit: 1, context: 0)]).encode()
        badHeartbeat[13] = 2
        XCTAssertThrowsError(try decode(badHeartbeat)) { XCTAssertEqual(($0 as? PeerWireError)?.description, "unknown heartbeat kind 2") }
    }

    /// A version-3 forward or reply must name a real process: incarnation 0 is the legacy kinds' marker.
    func testVersion3ForwardsWithIncarnationZeroAreRefused() {
        for f in [PeerFrame.forward(incarnation: 5, id: 1, shard: 0, op: .readIndex), .forwardReply(incarnation: 5, id: 1, .ok(3))] {
            var bytes = f.encode()
            XCTAssertNoThrow(try decode(bytes))
            for k in 5..<13 { bytes[k] = 0 }
            XCTAssertThrowsError(try decode(bytes), "\(f) with incarnation 0")
        }
    }

    /// Only plain heartbeats and their responses take the compact path; the compact form rebuilds the message.
    func testCoalescedHeartbeatsCarryExactlyPlainHeartbeats() {
        let hb = Message(type: .heartbeat, to: 2, from: 1, term: 5, commit: 10, context: 4)
        XCTAssertEqual(CoalescedHeartbeat(shard: 3, hb)?.message(from: 1, to: 2), hb)
        let resp = Message(type: .heartbeatResponse, to: 1, from: 2, term: 5, context: 4)
        XCTAssertEqual(CoalescedHeartbeat(shard: 3, resp)?.message(from: 2, to: 1), resp)
        XCTAssertNil(CoalescedHeartbeat(shard: 3, Message(type: .append, to: 2, from: 1, term: 5)))
        XCTAssertNil(CoalescedHeartbeat(shard: 3, Message(type: .heartbeatResponse, to: 1, from: 2, term: 5, reject: true)))
    }

    func testLengthPrefixedFramesSplitAStreamAnywhere() throws {
        let stream = frames.flatMap { $0.encode() }
        for chunk in [1, 3, 17, 4096] {
            var splitter = LengthPrefixedFrames(maxFrame: 1 << 20)
            var got: [PeerFrame] = []
            var i = 0
            while i < stream.count {
                splitter.append(Array(stream[i..<min(i + chunk, stream.count)]))
                try splitter.drain { got.append(try PeerFrame.decode($0)) }
                i += chunk
            }
            XCTAssertEqual(got, frames, "chunks of \(chunk)")
        }
        var small = LengthPrefixedFrames(maxFrame: 10)
        small.append(frames[1].encode())
        XCTAssertThrowsError(try small.drain { _ in })
    }

    /// A forwarded transaction is coordinated only when it is one an honest node builds: two or more parts on
    /// distinct shards of the cluster, one of them the record shard, plain commands, within the command limit.
    func testForwardedTransactionsAreCheckedBeforeTheyAreCoordinated() {
        let a = ConceptID(hi: 1, lo: 1), b = ConceptID(hi: 2, lo: 2)
        let out = ShardCommand.putEdge(.outgoing, owner: a, Edge(other: b, type: .causal, confidence: 1))
        let inc = ShardCommand.putEdge(.incoming, owner: b, Edge(other: a, type: .causal, confidence: 1))
        func t(_ parts: [TxnPart]) -> ForwardedTransaction { ForwardedTransaction(parts: parts, clientID: 1, sequence: 1, ackedBelow: 0) }
        let good = t([TxnPart(shard: 0, commands: [out]), TxnPart(shard: 2, commands: [inc])])
        XCTAssertNil(good.problem(recordShard: 0, shardCount: 4, maxCommands: 10))
        XCTAssertNotNil(good.problem(recordShard: 1, shardCount: 4, maxCommands: 10), "the record shard has no part")
        XCTAssertNotNil(good.problem(recordShard: 0, shardCount: 2, maxCommands: 10), "shard 2 of a 2-shard cluster")
        XCTAssertNotNil(good.problem(recordShard: 0, shardCount: 4, maxCommands: 1), "over the command limit")
        XCTAssertNotNil(t([TxnPart(shard: 0, commands: [out])]).problem(recordShard: 0, shardCount: 4, maxCommands: 10), "one part")
        XCTAssertNotNil(t([TxnPart(shard: 0, commands: [out]), TxnPart(shard: 0, commands: [inc])]).problem(recordShard: 0, shardCount: 4, maxCommands: 10), "one shard twice")
        XCTAssertNotNil(t([TxnPart(shard: 0, commands: [out]), TxnPart(shard: 1, commands: [])]).problem(recordShard: 0, shardCount: 4, maxCommands: 10), "an empty part")
        XCTAssertNotNil(t([TxnPart(shard: 0, commands: [out]), TxnPart(shard: 1, commands: [.txnForget([])])]).problem(recordShard: 0, shardCount: 4, maxCommands: 10), "a transaction step")
        XCTAssertNotNil(t([TxnPart(shard: -1, commands: [out]), TxnPart(shard: 0, commands: [inc])]).problem(recordShard: 0, shardCount: 4, maxCommands: 10), "a negative shard")
    }
}
