/// Where and how the node asks for text embeddings: an OpenAI-compatible `POST …/embeddings` (Ollama,
/// text-embeddings-inference, vLLM, and `tools/embedding-service`), reached over plain HTTP.
///
/// Guarantees: the URL is checked at start (scheme, host, port, path), never per request; limits bound what one
/// request may cost — texts per call, bytes of each text sent, waiting texts, bytes of an answer.
public struct EmbeddingServiceConfig: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The request path, ending in `/embeddings` (`http://h:p` alone means `/v1/embeddings`).
    public var path: String
    /// Sent as `model` (a service hosting several picks by it); empty: not sent.
    public var model: String
    /// How long one call may take before its texts fail (503).
    public var timeoutSeconds: Double
    /// Texts sent in one call at most (requests waiting at the same time share calls).
    public var maxBatch = 32
    /// Calls in flight at once.
    public var maxConcurrentCalls = 2
    /// Texts waiting for a call at most; beyond, a request is refused (503) rather than queued without bound.
    public var maxWaitingTexts = 2048
    /// Bytes of a text sent to the service (cut on a character boundary): sentence models read the first few
    /// hundred tokens anyway.
    public var maxTextBytes = 8192

    /// The original URL, for messages.
    public var url: String { "http://\(host):\(port)\(path)" }

    /// Parses `http://host[:port][/base]`; the path gets `/v1/embeddings` when it is empty or `/`, and
    /// `/embeddings` when it ends in `/v1`. Throws a message naming what is wrong.
    public init(url: String, model: String = "", timeoutSeconds: Double = 10) throws(EmbeddingConfigProblem) {
        guard url.hasPrefix("http://") else {
            throw EmbeddingConfigProblem("--embedding-service \(url): only http:// URLs are supported (run the service on the node's host or a private network)")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        let hostPart: Substring, portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw EmbeddingConfigProblem("--embedding-service \(url): an IPv6 address needs its closing ]") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }
        guard !hostPart.isEmpty, hostPart.utf8.count <= 253 else { throw EmbeddingConfigProblem("--embedding-service \(url): no host") }
        let port = portPart.map { Int($0) } ?? 80
        guard let port, (1...65535).contains(port) else { throw EmbeddingConfigProblem("--embedding-service \(url): the port must be 1…65535") }
        if path.isEmpty || path == "/" { path = "/v1/embeddings" }
        if path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/v1") { path += "/embeddings" }
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "?" && $0 != "#" }) else {
            throw EmbeddingConfigProblem("--embedding-service \(url): the path must be plain ASCII without a query")
        }
        guard model.utf8.count <= 256, !model.contains(where: \.isNewline) else { throw EmbeddingConfigProblem("--embedding-model: at most 256 characters, one line") }
        guard timeoutSeconds > 0, timeoutSeconds <= 600 else { throw EmbeddingConfigProblem("--embedding-timeout-ms: 1…600000") }
        self.host = String(hostPart)
        self.port = port
        self.path = path
        self.model = model
        self.timeoutSeconds = timeoutSeconds
    }
}

/// A bad embedding-service setting, said in one line.
public struct EmbeddingConfigProblem: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
