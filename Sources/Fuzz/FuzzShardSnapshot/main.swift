// Fuzzes the shard snapshot decoder (Shard/ShardSnapshot.swift), fed by the disk and by peers' snapshot
// messages. An input whose first byte is even gets a correct trailing CRC32C, so the fuzzer reaches the body
// decoding past the checksum. Property: refused with a ShardSnapshotError, never a crash; a snapshot that loads
// re-encodes to bytes that load to the same state bytes.
import Codec
import FuzzSupport
import Shard

let seeds: () -> [[UInt8]] = {
    let s = ShardState(limits: ShardLimits(dimension: 4))
    let a = ConceptID(hi: 1, lo: 2), b = ConceptID(hi: 3, lo: 4)
    _ = s.apply(ShardRequest(clientID: 1, sequence: 1, command: .putConcept(Concept(id: a, content: Array("alpha".utf8), embedding: [1, 0, 0, 0]))), at: 1)
    _ = s.apply(ShardRequest(clientID: 1, sequence: 2, command: .putConcept(Concept(id: b, content: Array("beta".utf8)))), at: 2)
    _ = s.apply(ShardRequest(clientID: 2, sequence: 1, command: .putEdge(.outgoing, owner: a, Edge(other: b, type: AssociationType.allCases[0], confidence: 0.5))), at: 3)
    let snap = s.snapshotData()
    return [[0] + snap.dropLast(4), [1] + snap, [1] + ShardState(limits: ShardLimits(dimension: 4)).snapshotData()]
}

runFuzzer(seeds: seeds) { data, size in
    let input = fuzzBytes(data, size)
    guard let mode = input.first else { return 0 }
    var bytes = Array(input.dropFirst())
    if mode & 1 == 0 {
        var w = ByteWriter()
        w.u32(CRC32C.checksum(bytes))
        bytes += w.bytes
    }
    guard let state = try? ShardState.restore(from: bytes, limits: ShardLimits(dimension: 4)) else { return 0 }
    let again = state.snapshotData()
    guard let back = try? ShardState.restore(from: again, limits: ShardLimits(dimension: 4)) else {
        preconditionFailure("a loaded snapshot does not load again after re-encoding")
    }
    precondition(back.snapshotData() == again, "a loaded snapshot re-encodes differently")
    return 0
}
