#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for operator tools and cluster tests (readiness, status, curl-like
/// calls): one request per connection, IPv4 hosts, a send/receive timeout. Returns (status, body), or nil if
/// the node is unreachable or answers something that is not HTTP. Not for load: the SDK is.
public enum BlockingHTTPClient {
    /// `headers` are added as given (e.g. `Authorization: Bearer …`); names and values must not hold CR or LF.
    public static func request(_ method: String, host: String, port: Int, path: String, body: [UInt8] = [], timeout: Double = 2,
                               headers: [(String, String)] = []) -> (Int, [UInt8])? {
        exchange(method, host: host, port: port, path: path, body: body, timeout: timeout, headers: headers).map { ($0.status, $0.body) }
    }

    /// A response with its header fields (names lower-cased; repeated names joined with ", ").
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// Like `request`, keeping the response's header fields.
    public static func exchange(_ method: String, host: String, port: Int, path: String, body: [UInt8] = [], timeout: Double = 2,
                                headers: [(String, String)] = []) -> Reply? {
        for (n, v) in headers where n.contains(where: \.isNewline) || v.contains(where: \.isNewline) { return nil }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let h = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, h, &addr.sin_addr) == 1 else { return nil }
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let extra = headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        var req = Array("\(method) \(path) HTTP/1.1\r\nHost: \(h):\(port)\r\nConnection: close\r\n\(extra)Content-Length: \(body.count)\r\n\r\n".utf8)
        req += body
        var sent = 0
        while sent < req.count {
            // MSG_NOSIGNAL: a server that answers early (413) and closes must not kill us with SIGPIPE.
            let n = req[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may have answered already: read what it said
            sent += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        guard let headerEnd = out.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: out[..<headerEnd.lowerBound], as: UTF8.self)
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var fields: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" }))
            fields[name] = fields[name].map { $0 + ", " + value } ?? value
        }
        return Reply(status: status, headers: fields, body: Array(out[headerEnd.upperBound...]))
    }
}
