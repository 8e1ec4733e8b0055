import UV

/// A node's client address: an IPv4 or IPv6 literal or a host name, and a port. A name is resolved by the
/// loop's resolver (libuv's `getaddrinfo` on its thread pool) on every connection attempt, so a node whose name
/// moves is found at its new address. `localhost` is read as 127.0.0.1.
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
        guard Resolver.isLiteral(String(host)) || Endpoint.isHostName(String(host)) else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// RFC 1123 host name syntax: dot-separated labels of letters, digits and hyphens (1–63 characters, no
    /// hyphen at either end), 253 characters at most.
    static func isHostName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= Resolver.maxNameBytes else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let b = Array(label.utf8)
            guard (1...63).contains(b.count), b.first != UInt8(ascii: "-"), b.last != UInt8(ascii: "-") else { return false }
            return b.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == UInt8(ascii: "-") }
        }
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
