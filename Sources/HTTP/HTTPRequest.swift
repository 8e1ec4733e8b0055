/// Header fields in the order they were received or added, with case-insensitive (ASCII) name lookup.
/// Repeated names are kept as separate fields; the subscript joins their values as RFC 9110 §5.3 allows.
public struct HTTPHeaders: Sendable, ExpressibleByDictionaryLiteral {
    /// Every field, in order, names as received.
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The value of `name` (any case); several fields of that name are joined with ", ". Nil when absent.
    public subscript(name: String) -> String? {
        let values = values(name)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// Every value of `name` (any case), in order.
    public func values(_ name: String) -> [String] {
        fields.filter { HTTPHeaders.sameName($0.name, name) }.map(\.value)
    }

    /// Appends a field (an existing field of the same name is kept).
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && a.lowercased() == b.lowercased()
    }
}

/// One complete HTTP/1.x request as the parser delivered it: the body fully read (chunked bodies decoded), the
/// request target split into a path and percent-decoded query parameters. Values only; safe to send anywhere.
public struct HTTPRequest: Sendable {
    /// The method as sent, e.g. "GET" (http_parser accepts only methods it knows).
    public var method: String
    /// The request target as sent, e.g. "/search?q=a%20b".
    public var target: String
    /// The target up to "?" or "#", not percent-decoded (so an encoded "/" stays distinguishable from a separator).
    /// An absolute-form target ("http://host/p") is reduced to its path ("/p").
    public var path: String
    /// Query parameters, "+" and percent escapes decoded; a name without "=" maps to "". The last repeat wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the connection may carry another request after this one (HTTP/1.1 without `Connection: close`,
    /// or HTTP/1.0 with `Connection: keep-alive`).
    public var keepAlive: Bool

    public init(method: String, target: String, headers: HTTPHeaders = [:], body: [UInt8] = [], keepAlive: Bool = true) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
        var rest = Substring(target)
        if !rest.hasPrefix("/"), let scheme = rest.firstRange(of: "://") {
            rest = rest[scheme.upperBound...]
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        let end = rest.firstIndex { $0 == "?" || $0 == "#" } ?? rest.endIndex
        path = String(rest[..<end])
        query = [:]
        guard end < rest.endIndex, rest[end] == "?" else { return }
        let queryString = rest[rest.index(after: end)...].prefix { $0 != "#" }
        for pair in queryString.split(separator: "&", omittingEmptySubsequences: true) {
            let eq = pair.firstIndex(of: "=") ?? pair.endIndex
            let value = eq < pair.endIndex ? pair[pair.index(after: eq)...] : ""
            query[HTTPRequest.formDecode(pair[..<eq])] = HTTPRequest.formDecode(value)
        }
    }

    /// Decodes "+" to a space and "%XX" to its byte; a malformed escape is kept as is. Invalid UTF-8 becomes U+FFFD.
    static func formDecode(_ s: Substring) -> String {
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
                      let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(bytes[i])
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
