// Fuzzes the shard command (log entry) decoder (Shard/Command.swift) and applies what decodes to a shard
// state — a decodable entry in a committed log is applied, so applying must refuse, never crash. Property:
// decode∘encode is stable on whatever decodes.
import FuzzSupport
import Shard

let seeds: () -> [[UInt8]] = {
    let a = ConceptID(hi: 1, lo: 2), b = ConceptID(hi: 3, lo: 4)
    let commands: [ShardCommand] = [
        .putConcept(Concept(id: a, content: Array("alpha".utf8), embedding: [1, 0, 0, 0])),
        .deleteConcept(b),
        .batch([.putConcept(Concept(id: b, content: [1])), .deleteConcept(a)]),
    ]
    return commands.enumerated().map { ShardRequest(clientID: 1, sequence: UInt64($0.offset + 1), command: $0.element).encode() }
}

runFuzzer(seeds: seeds) { data, size in
    let bytes = fuzzBytes(data, size)
    guard let req = try? ShardRequest.decode(bytes) else { return 0 }
    let encoded = req.encode()
    guard let again = try? ShardRequest.decode(encoded) else { preconditionFailure("a decoded command does not decode after re-encoding") }
    precondition(again.encode() == encoded, "a decoded command re-encodes differently")
    let state = ShardState(limits: ShardLimits(dimension: 4))
    _ = state.apply(ShardRequest(clientID: 9, sequence: 1, command: .putConcept(Concept(id: ConceptID(hi: 1, lo: 2), content: [1]))), at: 1)
    _ = state.apply(req, at: 2)
    _ = state.snapshotData()
    return 0
}
