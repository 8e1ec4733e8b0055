@testable import NodeCore
import Raft
import Shard
import XCTest

/// Every byte string a peer can send is refused or decodes to a frame that is really valid: it re-encodes to
/// the same bytes. Seeded truncations, bit flips, byte mutations and random bodies of every frame kind; the
/// decoded Raft messages also pass through the node's content check and the Raft core's bounds check (neither
/// may trap on anything the decoder lets through).
final class PeerWireFuzzTests: XCTestCase {
    private struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    }

    private var samples: [PeerFrame] {
        let concept = Concept(id: ConceptID(hi: 7, lo: 8), content: Array("hello".utf8), embedding: [0.5, -1, 2, 0],
                              strength: 1, confidence: 0.5, createdAt: 1, updatedAt: 2)
        let put = ShardRequest(clientID: 3, sequence: 9, ackedBelow: 1, command: .putConcept(concept)).encode()
        let state = ShardState(limits: ShardLimits(dimension: 4))
        _ = state.apply(try! ShardRequest.decode(put), at: 1)
        let image = state.snapshotData()
        return PeerWireTests.sampleFrames + [
            .raft([ShardMessage(shard: 1, message: Message(type: .append, to: 2, from: 1, term: 3, logTerm: 2, index: 4,
                                                           entries: [Entry(term: 3, index: 5, data: put),
                                                                     Entry(term: 3, index: 6, kind: .confChange, data: ConfChange.addLearner(4).encode())],
                                                           commit: 4))]),
            .raft([ShardMessage(shard: 0, message: Message(type: .snapshot, to: 2, from: 1, term: 3,
                                                           snapshot: Snapshot(metadata: SnapshotMetadata(index: 9, term: 3, confState: ConfState(voters: [1, 2, 3])), data: image)))]),
        ]
    }

    /// Decodes `body` (a frame without its length prefix). Returns whether it was accepted; fails the test if an
    /// accepted frame does not re-encode to the same bytes.
    @discardableResult
    private func probe(_ body: [UInt8], _ what: @autoclosure () -> String) -> Bool {
        let frame: PeerFrame
        do {
            frame = try body.withUnsafeBytes { try PeerFrame.decode($0) }
        } catch {
            XCTAssertFalse((error as? PeerWireError)?.description.isEmpty ?? true, "refusals say why")
            return false
        }
        let again = frame.encode()
        if Array(again.dropFirst(4)) != body {
            // Only a forwarded command, or a shard read's answer carrying concepts and edges, may have another
            // encoding of the same value (ShardRequest's own codec).
            var viaCommandCodec = false
            if case .forward = frame { viaCommandCodec = true }
            if case .forwardReply(_, _, .answer) = frame { viaCommandCodec = true }
            if viaCommandCodec {
                XCTAssertEqual(try? again.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }, frame, what())
            } else {
                XCTFail("\(what()): decoded to a frame that re-encodes to other bytes")
            }
        }
        if case .raft(let msgs) = frame {
            for m in msgs {
                _ = PeerMessageCheck.check(m.message, limits: ShardLimits(dimension: 4))
                _ = RaftNode.validate(m.message)
            }
        }
        return true
    }

    func testTruncationsOfEveryFrameAreRefused() {
        for (n, f) in samples.enumerated() {
            let body = Array(f.encode().dropFirst(4))
            XCTAssertTrue(probe(body, "whole sample \(n)"))
            for cut in 0..<body.count { XCTAssertFalse(probe(Array(body[..<cut]), "sample \(n) cut at \(cut)")) }
        }
    }

    func testEveryBitFlipIsRefusedOrValid() {
        var accepted = 0, total = 0
        for (n, f) in samples.enumerated() {
            let body = Array(f.encode().dropFirst(4))
            // Every bit of frames up to 1 KiB; a seeded sample of the bits of larger ones.
            var rng = Rng(state: UInt64(body.count))
            let bits = body.count <= 1024 ? Array(0..<(body.count * 8)) : (0..<4096).map { _ in rng.below(body.count * 8) }
            for bit in bits {
                var b = body
                b[bit / 8] ^= 1 << UInt8(bit % 8)
                total += 1
                if probe(b, "sample \(n) bit \(bit)") { accepted += 1 }
            }
        }
        print("peer wire bit flips: \(total) tried, \(accepted) decoded to another valid frame, the rest refused")
    }

    func testSeededMutationsAndRandomBodiesOfEveryKind() {
        var rng = Rng(state: 12)
        let bodies = samples.map { Array($0.encode().dropFirst(4)) }
        var accepted = 0
        for i in 0..<20_000 {
            var b = bodies[rng.below(bodies.count)]
            switch rng.below(4) {
            case 0:   // a few random bytes overwritten
                for _ in 0..<(1 + rng.below(4)) { b[rng.below(b.count)] = rng.byte() }
            case 1:   // a random u32 planted (counts and lengths)
                let at = rng.below(max(1, b.count - 4))
                let v = [UInt32.max, 0x7FFF_FFFF, UInt32(b.count), UInt32(rng.below(1 << 20))][rng.below(4)]
                for k in 0..<min(4, b.count - at) { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            case 2:   // a random slice spliced out
                let lo = rng.below(b.count), hi = lo + rng.below(b.count - lo + 1)
                b.removeSubrange(lo..<hi)
            default:  // random bytes after a real kind byte
                b = [UInt8(1 + rng.below(8))] + (0..<rng.below(200)).map { _ in rng.byte() }
            }
            if probe(b, "mutation \(i)") { accepted += 1 }
        }
        print("peer wire mutations: 20000 tried, \(accepted) decoded to a valid frame, the rest refused")
    }

    /// The content check a follower runs before stepping: undecodable entries and snapshots are named.
    func testUndecodableEntriesAndSnapshotsAreRefusedBeforeRaft() {
        let limits = ShardLimits(dimension: 4)
        let good = samples
        guard case .raft(let a) = good[good.count - 2], case .raft(let s) = good[good.count - 1] else { return XCTFail() }
        XCTAssertNil(PeerMessageCheck.check(a[0].message, limits: limits))
        XCTAssertNil(PeerMessageCheck.check(s[0].message, limits: limits))
        var bad = a[0].message
        bad.entries[0].data = [0xFF, 1, 2, 3]
        XCTAssertEqual(PeerMessageCheck.check(bad, limits: limits), .undecodableEntry(index: 5))
        bad = a[0].message
        bad.entries[1].data = [9, 9]
        XCTAssertEqual(PeerMessageCheck.check(bad, limits: limits), .undecodableConfChange(index: 6))
        var snap = s[0].message
        snap.snapshot!.data = Array(repeating: 0xAB, count: 500)
        XCTAssertEqual(PeerMessageCheck.check(snap, limits: limits), .undecodableSnapshot(index: 9))
        snap.snapshot!.data[snap.snapshot!.data.count / 2] ^= 1
        XCTAssertEqual(PeerMessageCheck.check(snap, limits: limits), .undecodableSnapshot(index: 9))
        // Another cluster's dimension: the image does not restore here either.
        XCTAssertEqual(PeerMessageCheck.check(s[0].message, limits: ShardLimits(dimension: 8)), .undecodableSnapshot(index: 9))
    }

    func testRefusalLogIsRateLimitedPerPeer() {
        var log = PeerRejectionLog(intervalNanos: 1_000)
        XCTAssertTrue(log.shouldLog(peer: 2, now: 0).log)
        XCTAssertFalse(log.shouldLog(peer: 2, now: 10).log)
        XCTAssertFalse(log.shouldLog(peer: 2, now: 999).log)
        XCTAssertTrue(log.shouldLog(peer: 3, now: 999).log)
        let next = log.shouldLog(peer: 2, now: 1_000)
        XCTAssertTrue(next.log)
        XCTAssertEqual(next.suppressed, 2)
    }

    /// The refused-connection log: `lines` per window whatever they say, the rest counted and said once.
    func testLogLineBudgetHoldsBackBeyondItsLinesAndSaysHowMany() {
        var budget = LogLineBudget(lines: 2, windowMs: 100)
        XCTAssertEqual(budget.admit(now: 5).log, true)
        XCTAssertEqual(budget.admit(now: 6).log, true)
        for t in UInt64(7)..<10 { XCTAssertEqual(budget.admit(now: t).log, false, "line \(t) is held back") }
        let next = budget.admit(now: 105)
        XCTAssertTrue(next.log, "a new window opens")
        XCTAssertEqual(next.heldBack, 3, "and says how many the last one held back")
        XCTAssertEqual(budget.admit(now: 106).heldBack, 0, "said once")
    }
}
