#if canImport(Glibc)
import Glibc
#endif
import TLS

/// A minimal blocking HTTP/1.1 client for operator tools and cluster tests (readiness, status, curl-like
/// calls): one request per connection, IPv4 hosts, a send/receive timeout, and HTTPS when given a client
/// `TLSContext` (the server's certificate must verify against its CA and name `host`). Returns (status, body),
/// or nil if the node is unreachable, fails the TLS handshake, answers something that is not HTTP, or sends
/// less body than its `Content-Length` says. Not for
/// load: the SDK is.
public enum BlockingHTTPClient {
    /// `headers` are added as given (e.g. `Authorization: Bearer …`); names and values must not hold CR or LF.
    public static func request(_ method: String, host: String, port: Int, path: String, body: [UInt8] = [], timeout: Double = 2,
                               headers: [(String, String)] = [], tls: TLSContext? = nil) -> (Int, [UInt8])? {
        exchange(method, host: host, port: port, path: path, body: body, timeout: timeout, headers: headers, tls: tls).map { ($0.status, $0.body) }
    }

    /// A response with its header fields (names lower-cased; repeated names joined with ", ").
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// Like `request`, keeping the response's header fields.
    public static func exchange(_ method: String, host: String, port: Int, path: String, body: [UInt8] = [], timeout: Double = 2,
                                headers: [(String, String)] = [], tls: TLSContext? = nil) -> Reply? {
        try? call(method, host: host, port: port, path: path, body: body, timeout: timeout, headers: headers, tls: tls).get()
    }

    /// Why a `call` got no usable answer, in words an operator can act on.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Like `exchange`, saying why when there is no answer, and refusing an answer over `maxResponseBytes`
    /// (headers and body) — for a service this process depends on, whose answers are not trusted to be small.
    public static func call(_ method: String, host: String, port: Int, path: String, body: [UInt8] = [], timeout: Double = 2,
                            headers: [(String, String)] = [], tls: TLSContext? = nil, maxResponseBytes: Int = Int.max) -> Result<Reply, Failure> {
        func failed(_ why: String) -> Result<Reply, Failure> { .failure(Failure(description: why)) }
        for (n, v) in headers where n.contains(where: \.isNewline) || v.contains(where: \.isNewline) { return failed("a header holds a line break") }
        let h = host == "localhost" ? "127.0.0.1" : host
        // An IP literal or a host name (getaddrinfo: this client blocks anyway); the first stream address.
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>?
        guard !h.isEmpty, h.utf8.count <= 253, getaddrinfo(h, String(port), &hints, &res) == 0, let first = res else {
            return failed("cannot resolve host '\(h.prefix(253))'")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return failed("connecting to \(h):\(port): \(String(cString: strerror(errno)))")
        }
        let extra = headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        var req = Array("\(method) \(path) HTTP/1.1\r\nHost: \(h):\(port)\r\nConnection: close\r\n\(extra)Content-Length: \(body.count)\r\n\r\n".utf8)
        req += body
        let out: [UInt8]
        if let tls {
            guard let plain = exchangeTLS(fd: fd, host: h, request: req, context: tls) else { return failed("TLS with \(h):\(port) failed") }
            out = plain
        } else {
            _ = sendAll(fd, req)  // a short send: the server may have answered already (413): read what it said
            var got: [UInt8] = []
            // The timeout bounds each receive; this bounds the whole answer (a server trickling a byte at a time).
            let deadline = monotonicSeconds() + timeout
            while let chunk = receive(fd) {
                got += chunk
                if got.count > maxResponseBytes { return failed("the answer is over \(maxResponseBytes) bytes") }
                if monotonicSeconds() > deadline { return failed("no whole answer within \(timeout) s") }
            }
            if got.isEmpty {
                return failed(errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within \(timeout) s" : "the connection closed without an answer")
            }
            out = got
        }
        guard let headerEnd = out.firstRange(of: Array("\r\n\r\n".utf8)) else { return failed("the answer is not HTTP (no header end)") }
        let head = String(decoding: out[..<headerEnd.lowerBound], as: UTF8.self)
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return failed("the answer is not HTTP (no status)") }
        var fields: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" }))
            fields[name] = fields[name].map { $0 + ", " + value } ?? value
        }
        var body = Array(out[headerEnd.upperBound...])
        if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            guard let plain = dechunk(body) else { return failed("the answer's chunked body is malformed or cut short") }
            body = plain
            fields["content-length"] = nil
        }
        // An answer cut short (the connection ended early, or the receive timed out) is no answer.
        if let declared = fields["content-length"].flatMap({ Int($0) }), body.count < declared {
            return failed("the answer was cut short (\(body.count) of \(declared) body bytes)")
        }
        return .success(Reply(status: status, headers: fields, body: body))
    }

    /// The body of a chunked answer (RFC 9112 §7.1: hex size, optional extensions, CRLF, data, CRLF; a zero
    /// size ends it); nil when malformed or cut short.
    static func dechunk(_ raw: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while true {
            guard let lineEnd = raw[i...].firstRange(of: [13, 10]) else { return nil }
            let sizeText = String(decoding: raw[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.filter { $0 != " " && $0 != "\t" }, radix: 16), size >= 0, size < Int(Int32.max) else { return nil }
            i = lineEnd.upperBound
            if size == 0 { return out }
            guard raw.count - i >= size + 2 else { return nil }
            out += raw[i..<(i + size)]
            i += size + 2
        }
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Writes all of `bytes`; false if the connection stopped taking them.
    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a server that answers early and closes must not kill us with SIGPIPE.
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// The next bytes from the socket; nil at its end (or on a timeout).
    private static func receive(_ fd: Int32) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            return n > 0 ? Array(buf[0..<n]) : nil
        }
    }

    /// The request over TLS: handshake (the server's certificate verified for `host`), the request, then every
    /// plaintext byte until the server closes. Nil on a handshake or record failure.
    private static func exchangeTLS(fd: Int32, host: String, request: [UInt8], context: TLSContext) -> [UInt8]? {
        guard let session = try? TLSSession(context: context, serverName: host) else { return nil }
        var plain: [UInt8] = []
        do {
            try session.send(request)   // held until the handshake completes
            guard sendAll(fd, session.takeOutgoing()) else { return nil }
            while let chunk = receive(fd) {
                plain += try session.receive(chunk)
                let reply = session.takeOutgoing()   // the rest of the handshake, then the request
                if !reply.isEmpty && !sendAll(fd, reply) { break }
                if session.state == .closed { break }
            }
        } catch {
            return nil
        }
        return session.isEstablished || session.state == .closed ? plain : nil
    }
}
