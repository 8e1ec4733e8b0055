import ClientProto
import Foundation
import SwiftProtobuf
import XCTest

final class FrameDecoderTests: XCTestCase {
    private func payloads(_ events: [FrameDecoder.Event]) -> [[UInt8]] {
        events.compactMap { if case .frame(let p) = $0 { return p } else { return nil } }
    }

    func testFrameIsLittleEndianLengthThenPayload() {
        XCTAssertEqual(frame([]), [0, 0, 0, 0])
        XCTAssertEqual(frame([7, 8, 9]), [3, 0, 0, 0, 7, 8, 9])
        let big = [UInt8](repeating: 1, count: 0x0102_03)
        XCTAssertEqual(Array(frame(big).prefix(4)), [0x03, 0x02, 0x01, 0x00])
    }

    func testEveryByteSplitYieldsTheSameFrames() {
        let frames: [[UInt8]] = [[1, 2, 3], [], Array(0..<200).map { UInt8($0) }, [42]]
        let stream = frames.flatMap { frame($0) }
        // Every two-way split, and byte-at-a-time.
        for cut in 0...stream.count {
            var d = FrameDecoder()
            var got = d.feed(stream[..<cut])
            got += d.feed(stream[cut...])
            XCTAssertEqual(payloads(got), frames, "split at \(cut)")
            XCTAssertEqual(d.bufferedByteCount, 0)
        }
        var d = FrameDecoder()
        var got: [FrameDecoder.Event] = []
        for b in stream { got += d.feed([b]) }
        XCTAssertEqual(payloads(got), frames)
    }

    func testSeveralFramesInOneFeedAndAPartialTail() {
        var d = FrameDecoder()
        let stream = frame([1]) + frame([2, 2]) + frame([3, 3, 3]) + Array(frame([4, 4, 4, 4]).prefix(6))
        XCTAssertEqual(d.feed(stream), [.frame([1]), .frame([2, 2]), .frame([3, 3, 3])])
        XCTAssertEqual(d.bufferedByteCount, 6)
        XCTAssertEqual(d.feed([4, 4]), [.frame([4, 4, 4, 4])])
        XCTAssertEqual(d.bufferedByteCount, 0)
    }

    func testOversizeFrameIsReportedSkippedAndTheNextFrameDecodes() {
        let oversize = [UInt8](repeating: 0xEE, count: 1000)
        let good: [UInt8] = [9, 8, 7]
        let stream = frame([5]) + frame(oversize) + frame(good)

        // All at once.
        var d = FrameDecoder(maxFrameSize: 100)
        XCTAssertEqual(d.feed(stream), [.frame([5]), .tooLarge(1000), .frame(good)])
        XCTAssertFalse(d.isSkipping)

        // In chunks of every size: the oversize payload is never buffered.
        for chunk in [1, 3, 7, 64, 333] {
            var d = FrameDecoder(maxFrameSize: 100)
            var got: [FrameDecoder.Event] = []
            var i = 0
            while i < stream.count {
                got += d.feed(stream[i..<min(i + chunk, stream.count)])
                XCTAssertLessThanOrEqual(d.bufferedByteCount, 100 + 4 + chunk, "chunk \(chunk)")
                i += chunk
            }
            XCTAssertEqual(got, [.frame([5]), .tooLarge(1000), .frame(good)], "chunk \(chunk)")
        }
    }

    func testFrameOfExactlyTheLimitIsAccepted() {
        var d = FrameDecoder(maxFrameSize: 4)
        // The oversize frame's header arrives with the first feed, its payload with the second.
        XCTAssertEqual(d.feed(frame([1, 2, 3, 4]) + [5, 0, 0, 0, 1, 2]), [.frame([1, 2, 3, 4]), .tooLarge(5)])
        XCTAssertTrue(d.isSkipping)
        XCTAssertEqual(d.bufferedByteCount, 0, "skipped bytes are not buffered")
        XCTAssertEqual(d.feed([3, 4, 5] + frame([6])), [.frame([6])])
        XCTAssertFalse(d.isSkipping)
    }

    func testDefaultLimitIs100MiB() {
        XCTAssertEqual(FrameDecoder().maxFrameSize, 100 << 20)
        var d = FrameDecoder()
        XCTAssertEqual(d.feed([0x01, 0x00, 0x40, 0x06]), [.tooLarge(0x0640_0001)])
    }
}

final class ClientProtoRoundTripTests: XCTestCase {
    private let idA = Data((0..<16).map { UInt8($0) })
    private let idB = Data((0..<16).map { UInt8(255 - $0) })

    private func concept() -> Sutra_V1_Concept {
        var c = Sutra_V1_Concept()
        c.id = idA
        c.content = Data("hello".utf8)
        c.embedding = [0.5, -1, 2.25]
        c.strength = 0.75
        return c
    }

    private func association() -> Sutra_V1_Association {
        var a = Sutra_V1_Association()
        a.source = idA
        a.target = idB
        a.type = .causal
        a.confidence = 0.5
        return a
    }

    private func everyOp() -> [Sutra_V1_Request.OneOf_Op] {
        var hello = Sutra_V1_Hello()
        hello.minVersion = 1
        hello.maxVersion = 1
        var put = Sutra_V1_PutConcept()
        put.concept = concept()
        var get = Sutra_V1_GetConcept()
        get.id = idA
        var del = Sutra_V1_DeleteConcept()
        del.id = idB
        var assoc = Sutra_V1_Associate()
        assoc.association = association()
        var nb = Sutra_V1_Neighbors()
        nb.id = idA
        nb.direction = .both
        nb.type = .temporal
        var path = Sutra_V1_FindPath()
        path.from = idA
        path.to = idB
        path.maxDepth = 6
        var search = Sutra_V1_Search()
        search.vector = [1, 2, 3]
        search.k = 10
        search.ef = 64
        var batch = Sutra_V1_Batch()
        var i1 = Sutra_V1_BatchItem()
        i1.putConcept = concept()
        var i2 = Sutra_V1_BatchItem()
        i2.deleteConcept = idB
        var i3 = Sutra_V1_BatchItem()
        i3.associate = association()
        batch.items = [i1, i2, i3]
        return [.hello(hello), .putConcept(put), .getConcept(get), .deleteConcept(del), .associate(assoc),
                .neighbors(nb), .findPath(path), .search(search), .batch(batch), .flush(Sutra_V1_Flush()),
                .clusterInfo(Sutra_V1_ClusterInfo())]
    }

    func testEveryRequestOpRoundTripsThroughFraming() throws {
        let ops = everyOp()
        XCTAssertEqual(ops.count, 11, "one request per op of client.proto")
        var sent: [Sutra_V1_Request] = []
        var stream: [UInt8] = []
        for (i, op) in ops.enumerated() {
            var r = Sutra_V1_Request()
            r.id = UInt64(i + 1) << 40
            r.clientID = 0xDEAD_BEEF_0000_0001
            r.sequence = UInt64(i)
            r.consistency = i % 2 == 0 ? .linearizable : .stale
            r.op = op
            sent.append(r)
            stream += frame(try r.serializedBytes())
        }
        var d = FrameDecoder()
        var received: [Sutra_V1_Request] = []
        // Feed in uneven chunks.
        var at = 0, step = 5
        while at < stream.count {
            for case .frame(let p) in d.feed(stream[at..<min(at + step, stream.count)]) {
                received.append(try Sutra_V1_Request(serializedBytes: p))
            }
            at += step
            step = step * 2 + 1
        }
        XCTAssertEqual(received, sent)
        XCTAssertEqual(received.map(\.op), ops)
        // Optional fields keep their presence.
        guard case .neighbors(let nb)? = received[5].op else { return XCTFail("op 5 is not neighbors") }
        XCTAssertTrue(nb.hasType)
        guard case .putConcept(let p)? = received[1].op else { return XCTFail("op 1 is not put") }
        XCTAssertTrue(p.concept.hasStrength)
        XCTAssertFalse(p.concept.hasConfidence)
    }

    func testResponseWithErrorAndLeaderHintRoundTrips() throws {
        var r = Sutra_V1_Response()
        r.id = 99
        r.error.code = .notLeader
        r.error.message = "not the leader of shard 3"
        r.error.leaderNode = 2
        r.error.leaderAddress = "127.0.0.1:7102"
        var d = FrameDecoder()
        let events = d.feed(frame(try r.serializedBytes()))
        guard case .frame(let p)? = events.first, events.count == 1 else { return XCTFail("expected one frame") }
        let back = try Sutra_V1_Response(serializedBytes: p)
        XCTAssertEqual(back, r)
        XCTAssertNil(back.result)
    }
}
