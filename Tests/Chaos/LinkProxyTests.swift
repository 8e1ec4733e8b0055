import ChaosLab
import Foundation
import UV
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The fault-injecting proxy on its own, between two plain sockets (no nodes, no root): it forwards both ways,
/// a cut direction holds its bytes while the other flows, healing delivers them in order, large transfers
/// survive backpressure, a refused upstream closes the dialer's connection, and `stop()` closes everything.
final class LinkProxyTests: XCTestCase {
    /// Node 1 (127.0.0.11) dials node 2, whose "peer port" is `upstream` on 127.0.0.12; the proxy listens for
    /// node 2 on 127.0.0.1 at the same port.
    private func proxy(to upstream: Int) throws -> (LinkProxy, Int) {
        let p = try LinkProxy(upstreams: [1: .init(host: node1, port: 1), 2: .init(host: node2, port: upstream)])
        let front = try XCTUnwrap(p.front(of: 2))
        XCTAssertEqual(front, LinkProxy.Endpoint(host: "127.0.0.1", port: upstream))
        return (p, front.port)
    }

    private let node1 = "127.0.0.11", node2 = "127.0.0.12"

    func testForwardsBothWaysAndACutDirectionHoldsItsBytesUntilHealed() throws {
        let server = try TestSocket.listen(on: node2)
        defer { close(server.fd) }
        let (p, port) = try proxy(to: server.port)
        defer { p.stop() }
        let a = try TestSocket.connect(port, from: node1)
        defer { close(a) }
        let b = try TestSocket.accept(server.fd)
        defer { close(b) }
        TestSocket.send(a, "hello")
        XCTAssertEqual(TestSocket.receive(b, 5), "hello")
        TestSocket.send(b, "world")
        XCTAssertEqual(TestSocket.receive(a, 5), "world")

        try p.block(DirectedLink(from: 1, to: 2))
        XCTAssertEqual(p.blockedLinks, [DirectedLink(from: 1, to: 2)])
        TestSocket.send(a, "held")
        XCTAssertEqual(TestSocket.receive(b, 4, timeout: 0.5), "", "a cut direction delivers nothing")
        TestSocket.send(b, "back")
        XCTAssertEqual(TestSocket.receive(a, 4), "back", "the other direction still flows")
        XCTAssertEqual(p.heal(), [])
        XCTAssertEqual(p.blockedLinks, [])
        TestSocket.send(a, "-after")
        XCTAssertEqual(TestSocket.receive(b, 10), "held-after", "healing delivers the held bytes first, in order")

        try p.apply(.isolate(2))
        TestSocket.send(b, "x")
        TestSocket.send(a, "y")
        XCTAssertEqual(TestSocket.receive(a, 1, timeout: 0.3), "")
        XCTAssertEqual(TestSocket.receive(b, 1, timeout: 0.3), "")
        try p.unblock(DirectedLink(from: 2, to: 1))
        XCTAssertEqual(TestSocket.receive(a, 1), "x")
        XCTAssertEqual(TestSocket.receive(b, 1, timeout: 0.3), "", "1→2 is still cut")
        try p.unblock(DirectedLink(from: 1, to: 2))
        XCTAssertEqual(TestSocket.receive(b, 1), "y")
        XCTAssertThrowsError(try p.block(DirectedLink(from: 1, to: 9)), "an unknown node is refused")
        let s = p.stats
        XCTAssertEqual(s.accepted, 1)
        XCTAssertEqual(s.bytes[DirectedLink(from: 1, to: 2)], 16)
        XCTAssertEqual(s.bytes[DirectedLink(from: 2, to: 1)], 10)
    }

    /// 8 MiB each way at once, with a cut and heal in the middle: every byte arrives, in order.
    func testLargeTransfersSurviveBackpressureAndACut() throws {
        let server = try TestSocket.listen(on: node2)
        defer { close(server.fd) }
        let (p, port) = try proxy(to: server.port)
        defer { p.stop() }
        let a = try TestSocket.connect(port, from: node1)
        defer { close(a) }
        let b = try TestSocket.accept(server.fd)
        defer { close(b) }
        let size = 8 << 20
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) }
        let received = Locked<[Int32: [UInt8]]>([:])
        let group = DispatchGroup()
        for (from, to) in [(a, b), (b, a)] {
            DispatchQueue.global().async(group: group) { TestSocket.sendBytes(from, payload) }
            DispatchQueue.global().async(group: group) {
                let got = TestSocket.receiveBytes(to, size, timeout: 60)
                received.withLock { $0[to] = got }
            }
        }
        usleep(20_000)
        try p.blockBoth(1, 2)
        usleep(200_000)
        XCTAssertEqual(p.heal(), [])
        XCTAssertEqual(group.wait(timeout: .now() + 90), .success)
        for fd in [a, b] {
            let got = received.withLock { $0[fd] } ?? []
            XCTAssertEqual(got.count, size)
            XCTAssertTrue(got == payload, "the stream arrived intact")
        }
    }

    func testARefusedUpstreamClosesTheDialersConnection() throws {
        let closed = try TestSocket.listen(on: node2)
        let deadPort = closed.port
        Glibc.close(closed.fd)
        let (p, port) = try proxy(to: deadPort)
        defer { p.stop() }
        let a = try TestSocket.connect(port, from: node1)
        defer { close(a) }
        XCTAssertEqual(TestSocket.waitForEOF(a, timeout: 5), true, "the dialer sees its connection closed")
        XCTAssertTrue(ChaosTestSupport.eventually(2) { p.stats.upstreamFailures == 1 })
    }

    /// A connection from an address that is no node's (here 127.0.0.1), or from the acceptor's own, is closed
    /// at once and never reaches the node.
    func testAConnectionFromAnUnknownAddressIsClosed() throws {
        let server = try TestSocket.listen(on: node2)
        defer { close(server.fd) }
        let (p, port) = try proxy(to: server.port)
        defer { p.stop() }
        for source in ["127.0.0.1", node2] {
            let a = try TestSocket.connect(port, from: source)
            defer { close(a) }
            XCTAssertEqual(TestSocket.waitForEOF(a, timeout: 5), true, "a dialer at \(source) is closed")
        }
        XCTAssertTrue(ChaosTestSupport.eventually(2) { p.stats.unidentified == 2 })
        XCTAssertEqual(p.stats.accepted, 0)
        XCTAssertThrowsError(try TestSocket.accept(server.fd, timeout: 500), "nothing reached node 2")
    }

    func testStopClosesConnectionsAndIsIdempotent() throws {
        let server = try TestSocket.listen(on: node2)
        defer { close(server.fd) }
        let (p, port) = try proxy(to: server.port)
        let a = try TestSocket.connect(port, from: node1)
        defer { close(a) }
        let b = try TestSocket.accept(server.fd)
        defer { close(b) }
        p.stop()
        XCTAssertEqual(TestSocket.waitForEOF(a, timeout: 5), true)
        XCTAssertEqual(TestSocket.waitForEOF(b, timeout: 5), true)
        p.stop()
        XCTAssertThrowsError(try p.block(DirectedLink(from: 1, to: 2)), "a stopped proxy refuses changes")
        XCTAssertThrowsError(try TestSocket.connect(port, from: node1), "nothing listens any more")
    }
}

/// Blocking loopback sockets for the proxy tests.
enum TestSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func address(_ port: Int, _ host: String = "127.0.0.1") -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr(host)
        return a
    }

    static func listen(on host: String = "127.0.0.1") throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = address(0, host)
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard fd >= 0, bound == 0, Glibc.listen(fd, 8) == 0 else { throw Failure(description: "listen: errno \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: a.sin_port)))
    }

    /// Connects to 127.0.0.1:`port`, from `source` when given.
    static func connect(_ port: Int, from source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = address(0, source)
            let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0 else { close(fd); throw Failure(description: "bind \(source): errno \(errno)") }
        }
        var a = address(port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "connect to \(port): errno \(e)")
        }
        return fd
    }

    /// Accepts one connection (waits up to `timeout` ms).
    static func accept(_ listener: Int32, timeout: Int32 = 5000) throws -> Int32 {
        var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeout) == 1 else { throw Failure(description: "no connection to accept within \(timeout) ms") }
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { throw Failure(description: "accept: errno \(errno)") }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) { sendBytes(fd, Array(text.utf8)) }

    static func sendBytes(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Up to `count` bytes as text, whatever arrived within `timeout` seconds.
    static func receive(_ fd: Int32, _ count: Int, timeout: Double = 5) -> String {
        String(decoding: receiveBytes(fd, count, timeout: timeout), as: UTF8.self)
    }

    static func receiveBytes(_ fd: Int32, _ count: Int, timeout: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while out.count < count {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, left * 1000))) == 1 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - out.count), 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    /// Whether the peer closed the connection (a read returns 0 or an error) within `timeout`.
    static func waitForEOF(_ fd: Int32, timeout: Double) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) == 1 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return true }
        }
        return false
    }
}
