import Foundation
@testable import HTTP
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The blocking client a node uses to reach its embedding service: a service that trickles its answer, sends too
/// much, or answers in chunks is bounded and understood; every failure says why.
final class BlockingHTTPClientTests: XCTestCase {
    /// A one-connection loopback server that reads the request and then runs `answer` on the socket.
    private func serve(_ answer: @escaping @Sendable (Int32) -> Void) throws -> (port: Int, done: DispatchSemaphore) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(bound, 0)
        listen(listener, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let c = accept(listener, nil, nil)
            var buf = [UInt8](repeating: 0, count: 65536)
            _ = recv(c, &buf, buf.count, 0)
            answer(c)
            close(c)
            close(listener)
            done.signal()
        }
        return (port, done)
    }


    func testATricklingAnswerIsCutAtTheTimeoutAsAWhole() throws {
        let (port, done) = try serve { fd in
            for _ in 0..<40 { sendText(fd, "H"); usleep(100_000) }   // 4 s of one byte every 0.1 s
        }
        let t0 = Date()
        let r = BlockingHTTPClient.call("GET", host: "127.0.0.1", port: port, path: "/", timeout: 1)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 3, "bounded by the timeout, not by each byte's")
        guard case .failure(let f) = r else { return XCTFail("accepted \(r)") }
        XCTAssertTrue(f.description.contains("no whole answer within"), f.description)
        done.wait()
    }

    func testAnAnswerOverTheLimitIsRefused() throws {
        let (port, done) = try serve { fd in
            sendText(fd, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "x", count: 200_000))
        }
        guard case .failure(let f) = BlockingHTTPClient.call("GET", host: "127.0.0.1", port: port, path: "/", timeout: 5, maxResponseBytes: 100_000) else {
            return XCTFail("accepted")
        }
        XCTAssertTrue(f.description.contains("over 100000 bytes"), f.description)
        done.wait()
    }

    func testChunkedAnswersAreJoinedAndMalformedOnesRefused() throws {
        let (port, done) = try serve { fd in
            sendText(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
        }
        let r = try BlockingHTTPClient.call("GET", host: "127.0.0.1", port: port, path: "/", timeout: 5).get()
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "hello, world")
        done.wait()
        XCTAssertNil(BlockingHTTPClient.dechunk(Array("5\r\nhel".utf8)), "cut short")
        XCTAssertNil(BlockingHTTPClient.dechunk(Array("zz\r\nhello\r\n0\r\n\r\n".utf8)), "not a size")
        XCTAssertNil(BlockingHTTPClient.dechunk(Array("-5\r\nhello\r\n0\r\n\r\n".utf8)), "negative")
        XCTAssertEqual(BlockingHTTPClient.dechunk(Array("0\r\n\r\n".utf8)), [])
    }

    func testARefusedConnectionSaysSo() {
        guard case .failure(let f) = BlockingHTTPClient.call("GET", host: "127.0.0.1", port: 1, path: "/", timeout: 1) else { return XCTFail() }
        XCTAssertTrue(f.description.contains("Connection refused"), f.description)
    }
}

/// Writes `s` to a socket (the fake server's side).
private func sendText(_ fd: Int32, _ s: String) {
    _ = Array(s.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}
