// Fuzzes the peer protocol's decoders (NodeCore/Wire/PeerWire.swift): the length-prefixed stream splitter and
// every frame kind. Property: hostile bytes are refused (a thrown PeerWireError), never a crash, and a frame
// that decodes re-encodes to bytes that decode to the same frame.
import FuzzSupport
import NodeCore
import Raft
import Shard

let seeds: () -> [[UInt8]] = {
    let frames: [PeerFrame] = [
        .hello(PeerHello(clusterID: "prod", node: 3, clientAddress: "10.0.0.3:7100", httpAddress: "10.0.0.3:7200")),
        .raft([ShardMessage(shard: 5, message: Message(type: .append, to: 2, from: 1, term: 7, logTerm: 6, index: 41,
                                                       entries: [Entry(term: 7, index: 42, data: [1, 2, 3])], commit: 40, context: 9)),
               ShardMessage(shard: 0, message: Message(type: .snapshot, to: 2, from: 1, term: 7,
                                                       snapshot: Snapshot(metadata: SnapshotMetadata(index: 100, term: 6, confState: ConfState(voters: [1, 2, 3], learners: [4])), data: [7, 7, 7])))]),
        .forward(incarnation: 5, id: 77, shard: 2, op: .propose(ShardRequest(clientID: 9, sequence: 4, ackedBelow: 2, command: .deleteConcept(ConceptID(hi: 1, lo: 2))))),
        .forward(incarnation: 5, id: 78, shard: 3, op: .readIndex),
        .forwardReply(incarnation: 5, id: 78, .failed(.notLeader(leader: 2))),
        .heartbeats([CoalescedHeartbeat(shard: 0, isResponse: false, term: 4, commit: 99, context: 3)]),
    ]
    return frames.map { $0.encode() } + [frames.flatMap { $0.encode() }]
}

runFuzzer(seeds: seeds) { data, size in
    let bytes = fuzzBytes(data, size)
    var stream = LengthPrefixedFrames(maxFrame: 1 << 20)
    // Split the stream at a point the input chooses, as a socket might.
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    stream.append(Array(bytes[0..<cut]))
    for part in [Array(bytes[cut...]), []] {
        stream.append(part)
        do {
            try stream.drain { body in
                guard let frame = try? PeerFrame.decode(body) else { return }
                let again = frame.encode()
                let back = try again.withUnsafeBytes { try PeerFrame.decode(UnsafeRawBufferPointer(rebasing: $0[4...])) }
                precondition(back == frame, "a decoded peer frame does not survive re-encoding")
            }
        } catch {}
    }
    return 0
}
