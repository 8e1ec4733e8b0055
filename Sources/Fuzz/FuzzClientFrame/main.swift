// Fuzzes the binary client protocol's decoders: the length-prefixed framing (ClientProto/Framing.swift), fed in
// two pieces, and the protobuf `Request` decode of every frame. Property: no crash, and the framing never
// buffers more than its limit.
import ClientProto
import FuzzSupport
import SwiftProtobuf

let seeds: () -> [[UInt8]] = {
    var get = Sutra_V1_Request()
    get.id = 7
    get.getConcept = Sutra_V1_GetConcept()
    var put = Sutra_V1_Request()
    put.id = 8
    put.clientID = 3
    put.sequence = 1
    put.putConcept = Sutra_V1_PutConcept()
    let payloads: [[UInt8]] = [get, put].compactMap { m -> [UInt8]? in try? m.serializedBytes() }
    return payloads.map { frame($0) } + [payloads.flatMap { frame($0) }]
}

runFuzzer(seeds: seeds) { data, size in
    let bytes = fuzzBytes(data, size)
    let limit = 4096
    var decoder = FrameDecoder(maxFrameSize: limit)
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    for part in [bytes[0..<cut], bytes[cut...]] {
        for event in decoder.feed(part) {
            if case .frame(let payload) = event {
                precondition(payload.count <= limit, "a frame over the limit was delivered")
                _ = try? Sutra_V1_Request(serializedBytes: payload)
            }
        }
        precondition(decoder.bufferedByteCount <= limit + 8, "the framing buffered \(decoder.bufferedByteCount) bytes")
    }
    _ = try? Sutra_V1_Request(serializedBytes: bytes)
    return 0
}
