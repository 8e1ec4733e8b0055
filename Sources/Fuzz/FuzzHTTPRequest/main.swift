// Fuzzes the HTTP/1.1 request parser (HTTP/HTTPRequestParser.swift) with small limits, the input fed in two
// pieces at a point it chooses. Property: no crash; a request is never delivered with a body or URL over the
// limits; after a failure nothing more is delivered.
import FuzzSupport
import HTTP

let seeds: () -> [[UInt8]] = {
    [
        Array("GET /v1/concepts/0001?consistency=stale HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
        Array("POST /v1/concepts HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"a\":\"bc\"}\nGET / HTTP/1.1\r\n\r\n".utf8),
        Array("POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8),
    ]
}

runFuzzer(seeds: seeds) { data, size in
    let bytes = fuzzBytes(data, size)
    let parser = HTTPRequestParser(maxURLBytes: 256, maxHeaderBytes: 1024, maxBodyBytes: 4096)
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var failed = false
    for part in [Array(bytes[0..<cut]), Array(bytes[cut...])] {
        for result in parser.feed(part) {
            precondition(!failed, "a request was delivered after a failure")
            switch result {
            case .success(let req):
                precondition(req.body.count <= 4096, "a body of \(req.body.count) bytes passed a 4096-byte limit")
            case .failure:
                failed = true
            }
        }
    }
    return 0
}
