import Dispatch
import Foundation
import HTTP
import Logging
import NodeCore
import UV

/// Asks the embedding service for vectors: off the loop thread (each call runs on its own dispatch worker, never
/// on libuv's thread pool, which the WAL's fsync needs), with a timeout, and shared — requests waiting at the
/// same time go out together in one call of up to `maxBatch` texts, `maxConcurrentCalls` calls at once.
///
/// Guarantees: `embed`'s completion runs exactly once, on the loop thread, with one finite vector of the
/// cluster's dimension per text (in order) or a 503 naming the service and what went wrong (down, slow, an
/// answer of another dimension or count, not the expected JSON); the waiting texts are bounded
/// (`maxWaitingTexts`: beyond, a request is refused at once), and so is the answer read (bytes).
final class EmbeddingClient: @unchecked Sendable {
    // @unchecked: every stored property is touched on the loop thread only; workers see only the Sendable
    // values handed to them and post their results back through `wakeup`.
    let config: EmbeddingServiceConfig
    let dimension: Int
    private let wakeup: LoopWakeup
    private let logger: Logger
    private let workers = DispatchQueue(label: "sutra.embedding", attributes: .concurrent)
    private var waiting: [(texts: [String], done: (Result<[[Float]], ClientError>) -> Void)] = []
    private var waitingTexts = 0
    private var nextCallID: UInt64 = 0
    /// Per call in flight, its requests: how many texts each gave, and whom to answer.
    private var callsInFlight: [UInt64: [(count: Int, done: (Result<[[Float]], ClientError>) -> Void)]] = [:]
    private var lastFailureLogged = 0.0

    /// Calls made, texts embedded, calls that failed, and seconds spent in calls (for /metrics).
    private(set) var calls: UInt64 = 0
    private(set) var textsEmbedded: UInt64 = 0
    private(set) var failures: UInt64 = 0
    private(set) var callSeconds = 0.0

    init(config: EmbeddingServiceConfig, dimension: Int, loop: EventLoop, logger: Logger) throws(UVError) {
        precondition(dimension > 0, "an embedding service needs a cluster with a dimension")
        self.config = config
        self.dimension = dimension
        self.logger = logger
        wakeup = try LoopWakeup(loop: loop)
    }

    func close() { wakeup.close() }

    /// Embeds `texts` (at least one); `done` runs once on the loop thread.
    func embed(_ texts: [String], _ done: @escaping (Result<[[Float]], ClientError>) -> Void) {
        precondition(!texts.isEmpty, "asked to embed nothing")
        guard waitingTexts + texts.count <= config.maxWaitingTexts else {
            done(.failure(ClientError(.unavailable, "embedding service \(config.url): \(waitingTexts) texts are already waiting for it (the limit is \(config.maxWaitingTexts)); retry")))
            return
        }
        waiting.append((texts, done))
        waitingTexts += texts.count
        pump()
    }

    /// Starts calls while slots are free: each takes waiting requests, whole, up to `maxBatch` texts (a
    /// request larger than that goes alone and is sent in several calls by its worker).
    private func pump() {
        while callsInFlight.count < config.maxConcurrentCalls, !waiting.isEmpty {
            var taken: [(texts: [String], done: (Result<[[Float]], ClientError>) -> Void)] = [waiting.removeFirst()]
            var count = taken[0].texts.count
            while let next = waiting.first, count + next.texts.count <= config.maxBatch {
                taken.append(waiting.removeFirst())
                count += next.texts.count
            }
            waitingTexts -= count
            let texts = taken.flatMap(\.texts)
            let config = self.config, dimension = self.dimension
            let id = nextCallID
            nextCallID += 1
            callsInFlight[id] = taken.map { ($0.texts.count, $0.done) }
            let started = Date()
            workers.async { [self] in
                let result = EmbeddingClient.fetch(texts, config: config, dimension: dimension)
                let seconds = Date().timeIntervalSince(started)
                self.wakeup.post { [self] in self.finished(id, result, seconds: seconds) }
            }
        }
    }

    private func finished(_ id: UInt64, _ result: Result<[[Float]], EmbeddingFailure>, seconds: Double) {
        guard let owners = callsInFlight.removeValue(forKey: id) else { preconditionFailure("call \(id) finished twice") }
        let sizes = owners.map(\.count), dones = owners.map(\.done)
        calls += 1
        callSeconds += seconds
        switch result {
        case .success(let vectors):
            precondition(vectors.count == sizes.reduce(0, +), "fetch checks the count")
            textsEmbedded += UInt64(vectors.count)
            var at = 0
            for (n, done) in zip(sizes, dones) {
                done(.success(Array(vectors[at..<(at + n)])))
                at += n
            }
        case .failure(let why):
            failures += 1
            let message = "embedding service \(config.url): \(why.why)"
            // Once a minute at most: a down service fails every request.
            let now = Date().timeIntervalSince1970
            if now - lastFailureLogged >= 60 {
                lastFailureLogged = now
                logger.warning("\(message)")
            }
            for done in dones { done(.failure(ClientError(.unavailable, message))) }
        }
        pump()
    }

    /// One or more calls (worker thread): `texts` in slices of `maxBatch`, each answer checked.
    static func fetch(_ texts: [String], config: EmbeddingServiceConfig, dimension: Int) -> Result<[[Float]], EmbeddingFailure> {
        var out: [[Float]] = []
        out.reserveCapacity(texts.count)
        var at = 0
        while at < texts.count {
            let slice = Array(texts[at..<min(at + config.maxBatch, texts.count)])
            switch call(slice, config: config, dimension: dimension) {
            case .success(let v): out += v
            case .failure(let why): return .failure(why)
            }
            at += slice.count
        }
        return .success(out)
    }

    private static func call(_ texts: [String], config: EmbeddingServiceConfig, dimension: Int) -> Result<[[Float]], EmbeddingFailure> {
        var request: [String: Any] = ["input": texts]
        if !config.model.isEmpty { request["model"] = config.model }
        guard let body = try? JSONSerialization.data(withJSONObject: request) else { return .failure(EmbeddingFailure("cannot encode the request")) }
        // An answer: per text, the dimension's numbers at ≤ 32 bytes each in JSON, plus room for the envelope.
        let limit = texts.count * (dimension * 32 + 256) + 65536
        let reply: BlockingHTTPClient.Reply
        switch BlockingHTTPClient.call("POST", host: config.host, port: config.port, path: config.path, body: Array(body),
                                       timeout: config.timeoutSeconds, headers: [("Content-Type", "application/json")],
                                       maxResponseBytes: limit) {
        case .success(let r): reply = r
        case .failure(let f): return .failure(EmbeddingFailure("\(f) (is it running?)"))
        }
        guard reply.status == 200 else {
            let said = String(decoding: reply.body.prefix(300), as: UTF8.self)
            return .failure(EmbeddingFailure("answered HTTP \(reply.status): \(said)"))
        }
        return decode(reply.body, count: texts.count, dimension: dimension)
    }

    /// The vectors of an OpenAI-style answer `{"data": [{"embedding": […], "index": i}, …]}`, in input order.
    static func decode(_ body: [UInt8], count: Int, dimension: Int) -> Result<[[Float]], EmbeddingFailure> {
        guard let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let data = o["data"] as? [[String: Any]] else {
            return .failure(EmbeddingFailure("the answer is not an embeddings object ({\"data\": [{\"embedding\": […]}]})"))
        }
        guard data.count == count else { return .failure(EmbeddingFailure("answered \(data.count) embeddings for \(count) texts")) }
        var out = [[Float]?](repeating: nil, count: count)
        for (position, item) in data.enumerated() {
            let index = (item["index"] as? NSNumber)?.intValue ?? position
            guard (0..<count).contains(index), out[index] == nil else { return .failure(EmbeddingFailure("embedding index \(index) is out of range or repeated")) }
            guard let raw = item["embedding"] as? [Any] else { return .failure(EmbeddingFailure("embedding \(index) is not an array of numbers (ask for encoding_format float)")) }
            guard raw.count == dimension else {
                return .failure(EmbeddingFailure("it answers \(raw.count)-dimensional embeddings; this cluster's dimension is \(dimension) (use a model of that dimension, or a cluster created with --dimension \(raw.count))"))
            }
            var v = [Float]()
            v.reserveCapacity(dimension)
            for x in raw {
                guard let n = x as? NSNumber, n.doubleValue.isFinite, abs(n.doubleValue) < 1e30 else { return .failure(EmbeddingFailure("embedding \(index) holds a value that is not a finite number")) }
                v.append(n.floatValue)
            }
            out[index] = v
        }
        return .success(out.map { $0! })
    }
}

/// Why a call to the embedding service gave no vectors, in words for the client's 503 and the log.
struct EmbeddingFailure: Error, Sendable {
    let why: String
    init(_ why: String) { self.why = why }
}
