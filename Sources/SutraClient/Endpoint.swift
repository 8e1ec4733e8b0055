#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A node's client address: an IPv4 or IPv6 literal and a port. `localhost` is read as 127.0.0.1 (the loop
/// does no DNS lookups).
struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    let host: String
    let port: Int

    /// Parses `host:port` or `[v6]:port`; nil for anything else.
    init?(_ text: String) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // a bare IPv6 address needs brackets
        }
        guard let port = Int(portText), (1...65535).contains(port) else { return nil }
        if host == "localhost" { host = "127.0.0.1" }
        guard Endpoint.isIPLiteral(String(host)) else { return nil }
        self.host = String(host)
        self.port = port
    }

    private static func isIPLiteral(_ s: String) -> Bool {
        var buf = [UInt8](repeating: 0, count: 16)
        if s.contains(":") { return inet_pton(AF_INET6, s, &buf) == 1 }
        return inet_pton(AF_INET, s, &buf) == 1
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
