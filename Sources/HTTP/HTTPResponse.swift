/// An HTTP/1.1 response to write to a connection. `serialize()` always produces a well-framed message:
/// the status line, the caller's headers (CR and LF replaced by spaces, so a value cannot inject lines; any
/// caller-set Content-Length, Transfer-Encoding or Connection dropped), then `Content-Length` and `Connection`
/// computed here, then the body. 1xx, 204 and 304 responses carry neither body nor Content-Length.
public struct HTTPResponse: Sendable {
    /// 100...999; see `reasonPhrase(_:)`.
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Sends `Connection: keep-alive` when true, `Connection: close` when false (then the server closes).
    public var keepAlive: Bool
    /// The answer to a HEAD request: the head as for GET (its Content-Length that of `body`), no body.
    public var headOnly = false

    public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = [], keepAlive: Bool = true) {
        self.status = status
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// `body` (already encoded JSON) with `Content-Type: application/json`.
    public static func json(status: Int = 200, body: [UInt8], keepAlive: Bool = true) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body, keepAlive: keepAlive)
    }

    /// `text` as UTF-8 with `Content-Type: text/plain; charset=utf-8`.
    public static func text(status: Int = 200, _ text: String, keepAlive: Bool = true) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"],
                     body: Array(text.utf8), keepAlive: keepAlive)
    }

    /// The answer to a request the parser rejected: its status and message, then close.
    public static func error(_ error: HTTPRequestError) -> HTTPResponse {
        text(status: error.status, error.message + "\n", keepAlive: false)
    }

    /// Whether this status may carry a body (RFC 9110 §6.4.1).
    public var allowsBody: Bool { status >= 200 && status != 204 && status != 304 }

    /// The status line and headers, ending with the blank line; write `body` after it (e.g. as a vectored write).
    public func head() -> [UInt8] {
        precondition((100...999).contains(status), "HTTP status \(status) is not three digits")
        var text = "HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n"
        for (name, value) in headers.fields
        where !["content-length", "transfer-encoding", "connection"].contains(where: { HTTPHeaders.sameName($0, name) }) {
            text += "\(HTTPResponse.oneLine(name)): \(HTTPResponse.oneLine(value))\r\n"
        }
        if allowsBody { text += "Content-Length: \(body.count)\r\n" }
        text += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        return Array(text.utf8)
    }

    /// The whole message: `head()` followed by the body (when the status allows one).
    public func serialize() -> [UInt8] {
        allowsBody && !headOnly ? head() + body : head()
    }

    private static func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }

    /// The standard reason phrase for `status`, or "" for a code without one (an empty phrase is valid HTTP/1.1).
    public static func reasonPhrase(_ status: Int) -> String { phrases[status] ?? "" }

    private static let phrases: [Int: String] = [
        100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
        206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
        307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
        403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
        409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
        414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
        421: "Misdirected Request", 422: "Unprocessable Content", 425: "Too Early", 426: "Upgrade Required",
        428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout", 505: "HTTP Version Not Supported", 507: "Insufficient Storage",
    ]
}
