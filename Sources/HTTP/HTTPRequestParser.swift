import CHTTPParser

/// Why a connection's byte stream cannot be served, with the status the server should answer before closing.
public enum HTTPRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not valid HTTP/1.x (http_parser's description of the problem): 400.
    case malformed(String)
    /// The request target is longer than the limit: 414.
    case urlTooLong(String)
    /// The request line and header fields are larger than the limit: 431.
    case headersTooLarge(String)
    /// The body (declared by Content-Length, or chunks so far) is larger than the limit: 413.
    case bodyTooLarge(String)

    /// The HTTP status to answer with.
    public var status: Int {
        switch self {
        case .malformed: 400
        case .urlTooLong: 414
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        }
    }

    public var message: String {
        switch self {
        case .malformed(let m), .urlTooLong(let m), .headersTooLarge(let m), .bodyTooLarge(let m): m
        }
    }

    public var description: String { "\(status): \(message)" }
}

/// Incremental HTTP/1.x request parser for one server connection, over http_parser. Feed it bytes as they arrive;
/// each `feed` returns every request completed by those bytes, in order (pipelined requests, or one request split
/// over many feeds). Guarantees: no request is delivered before its body is complete; no more than the limits is
/// ever buffered (a Content-Length above `maxBodyBytes` fails as soon as the headers end, before any body byte);
/// after the first failure, which is the last element of that feed's result, the parser is dead and ignores
/// further bytes. `Upgrade` is ignored (never switches protocols). Not thread-safe: use from one thread at a time.
public final class HTTPRequestParser {
    public let maxURLBytes: Int
    /// Limit on the request target plus header names and values (trailers included).
    public let maxHeaderBytes: Int
    public let maxBodyBytes: Int
    /// The error that killed the parser, if any.
    public private(set) var failure: HTTPRequestError?

    private let parser: UnsafeMutablePointer<http_parser>
    private var settings = http_parser_settings()
    private var callbackError: HTTPRequestError?
    private var completed: [HTTPRequest] = []
    // The message being parsed.
    private var url: [UInt8] = []
    private var headers = HTTPHeaders()
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    private var headersDone = false
    private var headerBytes = 0
    private var body: [UInt8] = []
    private var keepAlive = false

    /// Defaults: 8 KiB target, 64 KiB of headers, 101 MiB of body (100 MiB of payload plus framing slack).
    public init(maxURLBytes: Int = 8 << 10, maxHeaderBytes: Int = 64 << 10, maxBodyBytes: Int = 101 << 20) {
        self.maxURLBytes = maxURLBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        parser = .allocate(capacity: 1)
        parser.initialize(to: http_parser())
        http_parser_init(parser, HTTP_REQUEST)
        // The callbacks capture nothing; they find this object through `parser.data`.
        settings.on_message_begin = { p in HTTPRequestParser.from(p).isMidRequest = true; return 0 }
        settings.on_url = { p, at, n in HTTPRequestParser.from(p).onURL(at, n) }
        settings.on_header_field = { p, at, n in HTTPRequestParser.from(p).onHeaderField(at, n) }
        settings.on_header_value = { p, at, n in HTTPRequestParser.from(p).onHeaderValue(at, n) }
        settings.on_headers_complete = { p in HTTPRequestParser.from(p).onHeadersComplete() }
        settings.on_chunk_header = { p in HTTPRequestParser.from(p).onChunkHeader() }
        settings.on_body = { p, at, n in HTTPRequestParser.from(p).onBody(at, n) }
        settings.on_message_complete = { p in HTTPRequestParser.from(p).onMessageComplete() }
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deinitialize(count: 1)
        parser.deallocate()
    }

    /// Bytes of the request being received (target, header fields, body so far): what this connection holds
    /// of a partly received request, for the node-wide budget.
    public var bufferedByteCount: Int { headerBytes + body.count }

    /// Whether a request has begun (some of it arrived) and is not complete yet.
    public private(set) var isMidRequest = false

    /// Parses `bytes` and returns the requests they complete, then at most one failure (last). Empty once dead.
    public func feed(_ bytes: [UInt8]) -> [Result<HTTPRequest, HTTPRequestError>] {
        guard failure == nil, !bytes.isEmpty else { return [] }  // an empty buffer would mean EOF to http_parser
        let consumed = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { http_parser_execute(parser, &settings, $0.baseAddress, $0.count) }
        }
        var results = completed.map { Result<HTTPRequest, HTTPRequestError>.success($0) }
        completed = []
        let errno = http_errno(rawValue: parser.pointee.http_errno)
        if let error = callbackError ?? Self.error(errno, consumed: consumed, of: bytes.count) {
            failure = error
            results.append(.failure(error))
        }
        return results
    }

    private static func error(_ errno: http_errno, consumed: Int, of count: Int) -> HTTPRequestError? {
        if errno == HPE_HEADER_OVERFLOW { return .headersTooLarge("request headers too large") }
        if errno != HPE_OK { return .malformed(String(cString: http_errno_description(errno))) }
        return consumed == count ? nil : .malformed("parser stopped after \(consumed) of \(count) bytes")
    }

    private static func from(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser {
        Unmanaged<HTTPRequestParser>.fromOpaque(p!.pointee.data).takeUnretainedValue()
    }

    /// Records `error` and makes http_parser stop (any non-zero return other than 1 from on_headers_complete).
    private func fail(_ error: HTTPRequestError) -> Int32 {
        callbackError = error
        return -1
    }

    private func countHeaderBytes(_ n: Int) -> Int32 {
        headerBytes += n
        if headerBytes > maxHeaderBytes {
            return fail(.headersTooLarge("request line and headers exceed the limit of \(maxHeaderBytes) bytes"))
        }
        return 0
    }

    private func onURL(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        if url.count + n > maxURLBytes {
            return fail(.urlTooLong("request target exceeds the limit of \(maxURLBytes) bytes"))
        }
        url += UnsafeRawBufferPointer(start: at, count: n)
        return countHeaderBytes(n)
    }

    private func onHeaderField(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        if inValue { finishField() }
        field += UnsafeRawBufferPointer(start: at, count: n)
        return countHeaderBytes(n)
    }

    private func onHeaderValue(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        inValue = true
        value += UnsafeRawBufferPointer(start: at, count: n)
        return countHeaderBytes(n)
    }

    /// Stores the field just read; trailers (fields after a chunked body) are counted but dropped.
    private func finishField() {
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        if !headersDone && !field.isEmpty {
            headers.add(String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self))
        }
        field = []
        value = []
        inValue = false
    }

    private func onHeadersComplete() -> Int32 {
        finishField()
        headersDone = true
        // Never switch protocols (RFC 9110 §7.8 lets a server ignore Upgrade): clearing the flag makes
        // http_parser read the body and the following requests as HTTP/1.1.
        parser.pointee.upgrade = 0
        keepAlive = http_should_keep_alive(parser) != 0
        let length = parser.pointee.content_length  // UInt64.max unless a Content-Length header was given
        if length != UInt64.max {
            if length > UInt64(maxBodyBytes) {
                return fail(.bodyTooLarge("body of \(length) bytes exceeds the limit of \(maxBodyBytes) bytes"))
            }
            // Reserve at most 1 MiB up front: a declared length is a claim, not bytes received.
            body.reserveCapacity(Int(min(length, 1 << 20)))
        }
        return 0
    }

    private func onChunkHeader() -> Int32 {
        let size = parser.pointee.content_length  // the announced chunk's size
        if size > UInt64(maxBodyBytes - body.count) {
            return fail(.bodyTooLarge("chunked body of \(UInt64(body.count) + size) bytes or more exceeds"
                                      + " the limit of \(maxBodyBytes) bytes"))
        }
        return 0
    }

    private func onBody(_ at: UnsafePointer<CChar>?, _ n: Int) -> Int32 {
        if body.count + n > maxBodyBytes {
            return fail(.bodyTooLarge("body exceeds the limit of \(maxBodyBytes) bytes"))
        }
        body += UnsafeRawBufferPointer(start: at, count: n)
        return 0
    }

    private func onMessageComplete() -> Int32 {
        if inValue { finishField() }  // trailers
        let method = String(cString: http_method_str(http_method(rawValue: UInt32(parser.pointee.method))))
        completed.append(HTTPRequest(method: method, target: String(decoding: url, as: UTF8.self),
                                     headers: headers, body: body, keepAlive: keepAlive))
        url = []
        headers = HTTPHeaders()
        body = []
        headersDone = false
        headerBytes = 0
        isMidRequest = false
        return 0
    }
}
