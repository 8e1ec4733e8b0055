import XCTest
@testable import HTTP

final class HTTPTests: XCTestCase {
    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// Feeds `input` in one piece and returns the single request it must contain.
    private func parseOne(_ input: String, _ parser: HTTPRequestParser = HTTPRequestParser(),
                          file: StaticString = #filePath, line: UInt = #line) throws -> HTTPRequest {
        let results = parser.feed(bytes(input))
        XCTAssertEqual(results.count, 1, file: file, line: line)
        return try XCTUnwrap(results.first, file: file, line: line).get()
    }

    private func failure(_ results: [Result<HTTPRequest, HTTPRequestError>]) -> HTTPRequestError? {
        guard case .failure(let e)? = results.last else { return nil }
        return e
    }

    func testGetWithQueryString() throws {
        let r = try parseOne("GET /concepts/a%2Fb?q=hello+world&name=caf%C3%A9&flag&x=1%3D2 HTTP/1.1\r\n"
                             + "Host: localhost\r\nX-Trace-ID:  abc \r\nx-trace-id: def\r\nX-Empty:\r\n\r\n")
        XCTAssertEqual(r.method, "GET")
        XCTAssertEqual(r.target, "/concepts/a%2Fb?q=hello+world&name=caf%C3%A9&flag&x=1%3D2")
        XCTAssertEqual(r.path, "/concepts/a%2Fb")
        XCTAssertEqual(r.query, ["q": "hello world", "name": "café", "flag": "", "x": "1=2"])
        XCTAssertEqual(r.headers["host"], "localhost")
        XCTAssertEqual(r.headers["X-TRACE-ID"], "abc, def")
        XCTAssertEqual(r.headers.values("x-trace-id"), ["abc", "def"])
        XCTAssertEqual(r.headers["x-empty"], "")
        XCTAssertNil(r.headers["Content-Length"])
        XCTAssertEqual(r.headers.fields.count, 4)
        XCTAssertEqual(r.body, [])
        XCTAssertTrue(r.keepAlive)
    }

    func testTargetForms() {
        let absolute = HTTPRequest(method: "GET", target: "http://example.com:8080/x/y?k=%zz%41#frag")
        XCTAssertEqual(absolute.path, "/x/y")
        XCTAssertEqual(absolute.query, ["k": "%zzA"])
        XCTAssertEqual(HTTPRequest(method: "GET", target: "http://example.com").path, "/")
        XCTAssertEqual(HTTPRequest(method: "GET", target: "/p#f?x=1").query, [:])
    }

    func testPostBodySplitByteByByte() throws {
        let parser = HTTPRequestParser()
        let input = bytes("POST /ingest HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\":[1,2]}")
        var results: [Result<HTTPRequest, HTTPRequestError>] = []
        for (i, b) in input.enumerated() {
            let got = parser.feed([b])
            if i < input.count - 1 { XCTAssertTrue(got.isEmpty, "request delivered early at byte \(i)") }
            results += got
        }
        XCTAssertEqual(results.count, 1)
        let r = try XCTUnwrap(results.first).get()
        XCTAssertEqual(r.method, "POST")
        XCTAssertEqual(r.path, "/ingest")
        XCTAssertEqual(r.headers["content-type"], "application/json")
        XCTAssertEqual(r.body, bytes("{\"a\":[1,2]}"))
        XCTAssertTrue(r.keepAlive)
    }

    func testTwoPipelinedRequestsInOneFeed() throws {
        let parser = HTTPRequestParser()
        let results = parser.feed(bytes("PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                                        + "DELETE /b?id=7 HTTP/1.1\r\nConnection: close\r\n\r\nGET /c HT"))
        XCTAssertEqual(results.count, 2)
        let first = try results[0].get(), second = try results[1].get()
        XCTAssertEqual([first.method, first.path], ["PUT", "/a"])
        XCTAssertEqual(first.body, bytes("xyz"))
        XCTAssertTrue(first.keepAlive)
        XCTAssertEqual([second.method, second.path], ["DELETE", "/b"])
        XCTAssertEqual(second.query, ["id": "7"])
        XCTAssertEqual(second.body, [])
        XCTAssertNil(second.headers["content-length"])  // headers do not leak between requests
        XCTAssertFalse(second.keepAlive)
        let third = try XCTUnwrap(parser.feed(bytes("TP/1.1\r\n\r\n")).first).get()
        XCTAssertEqual([third.method, third.path], ["GET", "/c"])
        XCTAssertNil(third.headers["connection"])
    }

    func testChunkedBody() throws {
        let parser = HTTPRequestParser()
        let input = "POST /bulk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
        XCTAssertTrue(parser.feed(bytes(String(input.prefix(60)))).isEmpty)
        let results = parser.feed(bytes(String(input.dropFirst(60))))
        XCTAssertEqual(results.count, 1)
        let r = try XCTUnwrap(results.first).get()
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "hello, world")
        XCTAssertEqual(r.headers["transfer-encoding"], "chunked")
        XCTAssertNil(r.headers["x-trailer"])  // trailers are dropped
        XCTAssertTrue(r.keepAlive)
    }

    func testKeepAlive() throws {
        XCTAssertFalse(try parseOne("GET / HTTP/1.0\r\n\r\n").keepAlive)
        XCTAssertTrue(try parseOne("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        XCTAssertFalse(try parseOne("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keepAlive)
        XCTAssertTrue(try parseOne("GET / HTTP/1.1\r\n\r\n").keepAlive)
    }

    func testUpgradeIsIgnoredAndBodyStillRead() throws {
        let parser = HTTPRequestParser()
        let results = parser.feed(bytes("POST /u HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok"
                                        + "GET /next HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(results.count, 2)
        XCTAssertEqual(try results[0].get().body, bytes("ok"))
        XCTAssertEqual(try results[1].get().path, "/next")
    }

    func testOversizeBodyRejectedBeforeBodyArrives() {
        let parser = HTTPRequestParser(maxBodyBytes: 1000)
        let results = parser.feed(bytes("GET /ok HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"))
        XCTAssertEqual(results.count, 2)
        XCTAssertEqual(try results[0].get().path, "/ok")
        let error = failure(results)
        XCTAssertEqual(error, .bodyTooLarge("body of 1001 bytes exceeds the limit of 1000 bytes"))
        XCTAssertEqual(error?.status, 413)
        XCTAssertEqual(parser.failure, error)
        XCTAssertTrue(parser.feed(bytes("GET / HTTP/1.1\r\n\r\n")).isEmpty)  // dead
        // Exactly at the limit is fine; the default limit accepts 100 MiB.
        XCTAssertEqual(try parseOne("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", HTTPRequestParser(maxBodyBytes: 3)).body.count, 3)
        XCTAssertGreaterThanOrEqual(HTTPRequestParser().maxBodyBytes, 100 << 20)
    }

    func testOversizeChunkedBodyRejected() {
        let results = HTTPRequestParser(maxBodyBytes: 10).feed(
            bytes("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n3\r\n"))
        XCTAssertEqual(failure(results), .bodyTooLarge("chunked body of 11 bytes or more exceeds the limit of 10 bytes"))
    }

    func testOversizeHeaders() {
        let parser = HTTPRequestParser()
        var results = parser.feed(bytes("GET / HTTP/1.1\r\nX-Big: "))
        XCTAssertTrue(results.isEmpty)
        results = parser.feed(Array(repeating: UInt8(ascii: "a"), count: 70_000))
        XCTAssertEqual(failure(results), .headersTooLarge("request line and headers exceed the limit of 65536 bytes"))
        XCTAssertEqual(failure(results)?.status, 431)
    }

    func testOversizeURL() {
        let results = HTTPRequestParser().feed(bytes("GET /" + String(repeating: "a", count: 8192) + " HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(failure(results), .urlTooLong("request target exceeds the limit of 8192 bytes"))
        XCTAssertEqual(failure(results)?.status, 414)
    }

    func testGarbageIsMalformed() {
        let parser = HTTPRequestParser()
        let results = parser.feed(bytes("\u{16}\u{03}\u{01}\u{02}\u{00} hello"))
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(failure(results), .malformed("invalid HTTP method"))
        XCTAssertEqual(failure(results)?.status, 400)
        XCTAssertEqual(failure(HTTPRequestParser().feed(bytes("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"))),
                       .malformed("invalid character in content-length header"))
    }

    func testResponseSerialization() {
        var response = HTTPResponse.json(status: 201, body: bytes("{\"id\":1}"))
        response.headers.add("Content-Length", "999")  // replaced by the real length
        response.headers.add("X-Evil", "a\r\nSet-Cookie: x")
        XCTAssertEqual(String(decoding: response.serialize(), as: UTF8.self),
                       "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Evil: a Set-Cookie: x\r\n"
                       + "Content-Length: 8\r\nConnection: keep-alive\r\n\r\n{\"id\":1}")
        XCTAssertEqual(String(decoding: HTTPResponse.text(status: 404, "no such concept", keepAlive: false).serialize(), as: UTF8.self),
                       "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Content-Length: 15\r\nConnection: close\r\n\r\nno such concept")
        XCTAssertEqual(String(decoding: HTTPResponse(status: 204, body: bytes("dropped")).serialize(), as: UTF8.self),
                       "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(String(decoding: HTTPResponse(status: 599).serialize(), as: UTF8.self),
                       "HTTP/1.1 599 \r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
        let error = HTTPResponse.error(.bodyTooLarge("too big"))
        XCTAssertEqual(String(decoding: error.serialize(), as: UTF8.self),
                       "HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Content-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
    }
}
