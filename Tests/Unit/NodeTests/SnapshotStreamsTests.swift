@testable import NodeCore
import Raft
import WAL
import XCTest

private func memorySpool(_ m: SnapshotMetadata, _ total: UInt64) throws(WALError) -> SnapshotSpool {
    SnapshotSpool.inMemory(group: 0, metadata: m, total: total)
}

private func image(of m: Message) -> SnapshotImage {
    SnapshotImage(group: 0, metadata: m.snapshot!.metadata, bytes: m.snapshot!.data)
}

extension SnapshotAssembler.Outcome {
    /// The bytes an `.ack` answers (nil: another outcome).
    var acked: UInt64? { if case .ack(let n) = self { return n } else { return nil } }
    var isUnknown: Bool { if case .unknown = self { return true } else { return false } }
}

/// Streamed snapshots: the sender and the assembler, joined by a seeded channel that drops, duplicates and
/// reorders frames and sometimes cuts the link or restarts the receiver, always end with the receiver holding
/// the very image sent — and never more than a window of chunks unacknowledged, never more than the image held.
final class SnapshotStreamsTests: XCTestCase {
    private func snapshotMessage(bytes: Int, index: LogIndex = 40, seed: UInt64 = 1) -> Message {
        var rng = SplitMix64(seed: seed)
        let data = (0..<bytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var m = Message(type: .snapshot, to: 2, from: 1, term: 3)
        m.snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: 3, confState: ConfState(voters: [1, 2, 3])), data: data)
        return m
    }

    /// Runs one stream from node 1 to node 2 over a faulty channel; returns the message the receiver completed
    /// and the ticks it took (nil if it did not complete in `maxTicks`).
    private func run(_ m: Message, chunk: Int, seed: UInt64, drop: Double, dup: Double, reorder: Double, cut: Double,
                     restart: Double, maxTicks: UInt64 = 20_000) -> (Message?, UInt64, resumed: Int) {
        var rng = SplitMix64(seed: seed)
        func chance(_ p: Double) -> Bool { Double(rng.next() % 1_000_000) / 1_000_000 < p }
        var sender = SnapshotSender(chunkBytes: chunk)
        var receiver = SnapshotAssembler(maxBytes: 1 << 30)
        XCTAssertTrue(sender.shouldStream(size: UInt64(m.snapshot!.data.count)))
        _ = sender.start(m, image: image(of: m), shard: 0, to: 2, now: 0)
        var toReceiver: [PeerFrame] = []
        var toSender: [PeerFrame] = []
        var completed: Message?
        var resumed = 0
        for tick in UInt64(0)..<maxTicks {
            if chance(cut) {
                // The link goes down: both directions lose what was in flight; the sender starts again (as Raft would).
                toReceiver = []; toSender = []
                XCTAssertEqual(sender.cancel(peer: 2), [0])
                _ = sender.start(m, image: image(of: m), shard: 0, to: 2, now: tick)
            }
            if chance(restart) { receiver = SnapshotAssembler(maxBytes: 1 << 30) }
            for (peer, f) in sender.due(now: tick).frames {
                XCTAssertEqual(peer, 2)
                if chance(drop) { continue }
                toReceiver.append(f)
                if chance(dup) { toReceiver.append(f) }
            }
            if toReceiver.count > 1, chance(reorder) { toReceiver.swapAt(0, toReceiver.count - 1) }
            for f in toReceiver {
                let outcome: SnapshotAssembler.Outcome
                switch f {
                case .snapshotBegin(let id, let header, let total):
                    XCTAssertEqual(header.snapshot?.data, [], "a begin carries no image")
                    outcome = receiver.begin(id, message: header, total: total, from: 1, now: tick, spool: memorySpool)
                    if case .ack(let n) = outcome, n > 0, n < total { resumed += 1 }
                case .snapshotChunk(let id, let offset, let bytes):
                    XCTAssertLessThanOrEqual(bytes.count, chunk)
                    outcome = receiver.chunk(id, offset: offset, bytes: bytes, from: 1, now: tick)
                default:
                    XCTFail("unexpected frame \(f)"); continue
                }
                XCTAssertLessThanOrEqual(receiver.bytesReceived, UInt64(m.snapshot!.data.count))
                switch outcome {
                case .ack(let n):
                    if case .snapshotBegin(let id, _, _) = f { toSender.append(.snapshotAck(id, received: n)) }
                    if case .snapshotChunk(let id, _, _) = f { toSender.append(.snapshotAck(id, received: n)) }
                case .complete(let header, let image):
                    XCTAssertEqual(header.snapshot?.data, [], "the image stays in its spool")
                    var whole = header
                    whole.snapshot!.data = (try? image.readAll()) ?? []
                    if completed == nil { completed = whole }
                    if case .snapshotChunk(let id, _, _) = f { toSender.append(.snapshotAck(id, received: image.size)) }
                case .unknown: break
                case .refused(let why): XCTFail("refused an honest stream: \(why)")
                case .failedHere(let why): XCTFail("a memory spool failed: \(why)")
                }
            }
            toReceiver = []
            for f in toSender where !chance(drop) {
                guard case .snapshotAck(let id, let n) = f else { continue }
                if sender.ack(id, received: n, from: 2, now: tick) == .complete {
                    XCTAssertNotNil(completed, "the sender finished before the receiver held the image")
                    return (completed, tick, resumed)
                }
            }
            toSender = []
            _ = sender.expire(now: tick)
            if sender.count == 0 { _ = sender.start(m, image: image(of: m), shard: 0, to: 2, now: tick) }   // abandoned: Raft sends it again
        }
        return (nil, maxTicks, resumed)
    }

    func testAPerfectChannelDeliversTheImageAWindowPerRoundTrip() {
        let m = snapshotMessage(bytes: 100_000)
        let (got, ticks, _) = run(m, chunk: 4096, seed: 1, drop: 0, dup: 0, reorder: 0, cut: 0, restart: 0)
        XCTAssertEqual(got, m)
        // 25 chunks, 4 a round trip (one tick each here), plus the begin's.
        XCTAssertLessThanOrEqual(ticks, 10)
    }

    func testLossDuplicationReorderCutsAndRestartsStillDeliverTheExactImage() {
        var resumedSomewhere = 0
        for seed in UInt64(1)...60 {
            let m = snapshotMessage(bytes: 3_000 + Int(seed) * 517, seed: seed)
            let (got, _, resumed) = run(m, chunk: 97 + Int(seed % 5) * 64, seed: seed, drop: 0.1, dup: 0.05, reorder: 0.2,
                                        cut: 0.01, restart: 0.002)
            XCTAssertEqual(got, m, "seed \(seed)")
            resumedSomewhere += resumed
        }
        XCTAssertGreaterThan(resumedSomewhere, 0, "a begin after a cut resumed a partly received image")
    }

    func testTheWindowBoundsUnacknowledgedChunks() {
        var sender = SnapshotSender(chunkBytes: 1000)
        let m = snapshotMessage(bytes: 50_000)
        _ = sender.start(m, image: image(of: m), shard: 0, to: 2, now: 0)
        guard case .snapshotBegin(let id, _, let total) = sender.due(now: 0).frames.first?.frame else { return XCTFail("no begin") }
        XCTAssertEqual(total, 50_000)
        XCTAssertEqual(sender.due(now: 1).frames.count, 0, "nothing before the begin is answered")
        XCTAssertEqual(sender.ack(id, received: 0, from: 2, now: 1), .progress)
        XCTAssertEqual(sender.due(now: 1).frames.count, sender.windowChunks)
        XCTAssertEqual(sender.due(now: 1).frames.count, 0, "the window is full until an ack")
        XCTAssertEqual(sender.ack(id, received: 2000, from: 2, now: 2), .progress)
        XCTAssertEqual(sender.progress(), [SnapshotSender.Progress(peer: 2, shard: 0, acknowledged: 2000, total: 50_000, startedAt: 0)],
                       "what `sutra status` shows")
        let next = sender.due(now: 2).frames
        XCTAssertEqual(next.count, 2)
        if case .snapshotChunk(_, let offset, _) = next.first?.frame { XCTAssertEqual(offset, 4000) } else { XCTFail() }
        XCTAssertEqual(sender.ack(id, received: 1000, from: 2, now: 3), .progress, "an old ack changes nothing")
        XCTAssertEqual(sender.ack(SnapshotStreamID(shard: 0, index: 39, term: 3), received: 1, from: 2, now: 3), .stale)
        XCTAssertEqual(sender.ack(id, received: 60_000, from: 2, now: 3), .stale, "more than the image")
        XCTAssertEqual(sender.ack(id, received: 2000, from: 3, now: 3), .stale, "another peer")
        // No progress for the resend period: the begin again, to learn where the receiver stands.
        let again = sender.due(now: 2 + SnapshotSender.resendTicks).frames
        guard case .snapshotBegin = again.first?.frame else { return XCTFail("no begin again: \(again)") }
        XCTAssertEqual(sender.expire(now: 2 + SnapshotSender.giveUpTicks - 1).count, 0)
        XCTAssertEqual(sender.expire(now: 2 + SnapshotSender.giveUpTicks).map(\.shard), [0])
        XCTAssertEqual(sender.count, 0)
    }

    func testTheAssemblerRefusesWhatNoHonestSenderSends() {
        let m = snapshotMessage(bytes: 10_000)
        var header = m
        header.snapshot!.data = []
        let id = SnapshotStreamID(shard: 1, index: 40, term: 3)
        var a = SnapshotAssembler(maxBytes: 8_000)
        guard case .refused(let why) = a.begin(id, message: header, total: 10_000, from: 1, now: 0, spool: memorySpool) else { return XCTFail() }
        XCTAssertTrue(why.contains("over the limit of 8000"), why)
        guard case .refused(let empty) = a.begin(id, message: header, total: 0, from: 1, now: 0, spool: memorySpool) else { return XCTFail() }
        XCTAssertEqual(empty, "an empty snapshot image streamed")
        guard case .refused = a.begin(SnapshotStreamID(shard: 1, index: 41, term: 3), message: header, total: 5_000, from: 1, now: 0, spool: memorySpool) else {
            return XCTFail("a begin naming another snapshot than its message's")
        }
        a = SnapshotAssembler(maxBytes: 1 << 20)
        XCTAssertEqual(a.begin(id, message: header, total: 5_000, from: 1, now: 0, spool: memorySpool).acked, 0)
        XCTAssertTrue(a.chunk(id, offset: 0, bytes: Array(repeating: 1, count: 3_000), from: 2, now: 1).isUnknown, "another peer's chunk")
        XCTAssertEqual(a.chunk(id, offset: 100, bytes: [1], from: 1, now: 1).acked, 0, "out of place: where it stands")
        XCTAssertEqual(a.chunk(id, offset: 0, bytes: Array(repeating: 1, count: 3_000), from: 1, now: 1).acked, 3_000)
        XCTAssertEqual(a.bytesReceived, 3_000)
        guard case .refused = a.chunk(id, offset: 3_000, bytes: Array(repeating: 1, count: 2_001), from: 1, now: 2) else {
            return XCTFail("a chunk past the image's end")
        }
        XCTAssertEqual(a.bytesReceived, 0, "the image is dropped")
        XCTAssertTrue(a.chunk(id, offset: 0, bytes: [1], from: 1, now: 2).isUnknown)
        // An image not added to for the keep period is forgotten.
        XCTAssertEqual(a.begin(id, message: header, total: 5_000, from: 1, now: 10, spool: memorySpool).acked, 0)
        XCTAssertEqual(a.chunk(id, offset: 0, bytes: [1, 2], from: 1, now: 11).acked, 2)
        XCTAssertEqual(a.expire(now: 11 + SnapshotAssembler.keepTicks - 1), [])
        XCTAssertEqual(a.expire(now: 11 + SnapshotAssembler.keepTicks), [id])
        XCTAssertEqual(a.bytesReceived, 0)
    }

    func testWireFramesRoundTripAndABeginMustNameItsSnapshot() throws {
        let m = snapshotMessage(bytes: 0)
        let id = SnapshotStreamID(shard: 2, index: 40, term: 3)
        for f: PeerFrame in [.snapshotBegin(id, message: m, total: 123_456), .snapshotChunk(id, offset: 77, bytes: [1, 2, 3]),
                             .snapshotAck(id, received: 99)] {
            let bytes = f.encode()
            let back = try bytes.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
            XCTAssertEqual(back, f)
        }
        let other = SnapshotStreamID(shard: 2, index: 41, term: 3)
        let lying = PeerFrame.snapshotBegin(other, message: m, total: 10).encode()
        XCTAssertThrowsError(try lying.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) })
        var withImage = m
        withImage.snapshot!.data = [1]
        let carrying = PeerFrame.snapshotBegin(id, message: withImage, total: 10).encode()
        XCTAssertThrowsError(try carrying.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) })
    }
}
