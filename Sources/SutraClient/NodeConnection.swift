import ClientProto
import SecureStream
import SwiftProtobuf
import TLS
import UV

/// The one TCP connection to one node, confined to the client's loop thread. Frames written before the
/// connection is up are queued and leave, after a `Hello`, in one write once it is. Every response is handed to
/// the engine; a failure (refused, reset, EOF, unreadable bytes) closes the connection and reports once.
final class NodeConnection {
    enum State { case connecting, open, closed }

    let endpoint: Endpoint
    private unowned let engine: Engine
    private(set) var state = State.connecting
    private var tcp: SecureStream?
    private var queued: [[UInt8]] = []
    private var outbox: [[UInt8]] = []
    private var decoder: FrameDecoder
    /// Wire ids of requests written (or queued) here whose response has not come.
    var inflight: Set<UInt64> = []
    /// Wire id of this connection's `Hello`.
    private let helloID: UInt64
    /// The bearer token every `Hello` carries ("" = none).
    private let token: String
    /// TLS to the node (nil: plaintext).
    private let tls: TLSContext?
    /// The protocol version the node chose, once its `Hello` answer came.
    private(set) var version: UInt32?
    /// Loop time of the last bytes from the node.
    private var lastHeard: UInt64 = 0
    /// Loop time at which `inflight` last went from empty to non-empty.
    private var owedSince: UInt64 = 0
    /// The outstanding liveness probe (a `Hello`) and when it was sent.
    private var probe: (id: UInt64, sentAt: UInt64)?

    /// What the engine should do about a connection's silence.
    enum Liveness: Equatable {
        case fine
        /// Owes answers and has been silent for `probeAfterMs`: send a probe.
        case probe
        /// Its probe went unanswered: silent this many milliseconds while owing answers.
        case unresponsive(silentMs: UInt64)
    }

    static let protocolVersion: UInt32 = 1

    init(endpoint: Endpoint, engine: Engine, maxFrameSize: Int, helloID: UInt64, token: String, tls: TLSContext?) {
        self.endpoint = endpoint
        self.token = token
        self.tls = tls
        self.engine = engine
        self.helloID = helloID
        decoder = FrameDecoder(maxFrameSize: maxFrameSize)
    }

    /// Starts connecting. Throws if libuv refuses at once (the connection is then closed and reports nothing).
    func connect() throws(UVError) {
        do {
            try TCPConnection.connect(loop: engine.loop, host: endpoint.host, port: endpoint.port) { [self] result in
                switch result {
                case .success(let conn): opened(conn)
                case .failure(let e): fail(.connectionFailed(endpoint: endpoint.description, reason: e.description))
                }
            }
        } catch {
            state = .closed
            throw error
        }
    }

    /// Sends one framed request: queued until the connection is up, and until the end of the loop turn once it
    /// is (`flush()`), so the requests of one turn leave in one write.
    func send(_ framed: [UInt8], wireID: UInt64) {
        precondition(state != .closed, "send on a closed connection")
        if inflight.isEmpty { owedSince = engine.loop.now }
        inflight.insert(wireID)
        if state == .open {
            if outbox.isEmpty { engine.markForFlush(self) }
            outbox.append(framed)
        } else {
            queued.append(framed)
        }
    }

    /// Whether this connection needs a probe or has failed one (see `SutraClient.Options.probeAfter`). Only a
    /// connection that owes answers is judged; any bytes from the node count as an answer. One still connecting
    /// after `probeAfterMs + probeTimeoutMs` counts as unresponsive too (a host gone without a reset).
    func liveness(now: UInt64, probeAfterMs: UInt64, probeTimeoutMs: UInt64) -> Liveness {
        if state == .connecting, !inflight.isEmpty {
            return now >= owedSince + probeAfterMs + probeTimeoutMs ? .unresponsive(silentMs: now - owedSince) : .fine
        }
        guard state == .open, !inflight.isEmpty else {
            probe = nil
            return .fine
        }
        let quietSince = max(lastHeard, owedSince)
        if let p = probe {
            if lastHeard >= p.sentAt {
                probe = nil
                return .fine
            }
            return now >= p.sentAt + probeTimeoutMs ? .unresponsive(silentMs: now - quietSince) : .fine
        }
        return now >= quietSince + probeAfterMs ? .probe : .fine
    }

    /// Sends a `Hello` as a liveness probe (its answer only proves the node is alive).
    func sendProbe(wireID: UInt64, now: UInt64) {
        guard state == .open else { return }
        probe = (wireID, now)
        if outbox.isEmpty { engine.markForFlush(self) }
        outbox.append(NodeConnection.helloFrame(id: wireID, token: token))
    }

    /// A framed `Hello` offering this client's protocol version and its token: the first request of every
    /// connection, and the liveness probe.
    private static func helloFrame(id: UInt64, token: String) -> [UInt8] {
        var hello = Sutra_V1_Request()
        hello.id = id
        hello.hello.minVersion = protocolVersion
        hello.hello.maxVersion = protocolVersion
        hello.hello.token = token
        return frame((try? hello.serializedBytes()) ?? [])
    }

    /// Writes the turn's requests (called by the engine at the end of each loop turn).
    func flush() {
        guard !outbox.isEmpty else { return }
        let parts = outbox
        outbox = []
        guard let tcp, state == .open else { return }
        tcp.write(vectored: parts) { [self] error in
            if let error, error.code != UVError.canceled {
                fail(.connectionFailed(endpoint: endpoint.description, reason: error.description))
            }
        }
    }

    private func opened(_ raw: TCPConnection) {
        guard state == .connecting else {
            raw.close()
            return
        }
        let conn: SecureStream
        do {
            conn = SecureStream(tcp: raw, session: try tls.map { try TLSSession(context: $0, serverName: endpoint.host) })
        } catch {
            raw.close()
            fail(.connectionFailed(endpoint: endpoint.description, reason: "TLS: \(error)"))
            return
        }
        tcp = conn
        state = .open
        lastHeard = engine.loop.now
        try? conn.setNoDelay(true)
        do {
            try conn.startReading { [self] event in
                switch event {
                case .data(let bytes): received(bytes)
                case .endOfFile: fail(.connectionFailed(endpoint: endpoint.description, reason: "closed by the node"))
                case .error(let e): fail(.connectionFailed(endpoint: endpoint.description, reason: e.description))
                }
            }
        } catch {
            fail(.connectionFailed(endpoint: endpoint.description, reason: error.description))
            return
        }
        let parts = [NodeConnection.helloFrame(id: helloID, token: token)] + queued
        queued = []
        conn.write(vectored: parts) { [self] error in
            if let error, error.code != UVError.canceled {
                fail(.connectionFailed(endpoint: endpoint.description, reason: error.description))
            }
        }
    }

    private func received(_ bytes: [UInt8]) {
        lastHeard = engine.loop.now
        for event in decoder.feed(bytes) {
            guard state == .open else { return }
            switch event {
            case .frame(let payload):
                let response: Sutra_V1_Response
                do {
                    response = try Sutra_V1_Response(serializedBytes: payload)
                } catch {
                    fail(.connectionFailed(endpoint: endpoint.description, reason: "unreadable response: \(error)"))
                    return
                }
                if response.id == helloID {
                    helloAnswered(response)
                } else if let p = probe, response.id == p.id {
                    probe = nil
                } else {
                    inflight.remove(response.id)
                    engine.received(response, on: self)
                }
            case .tooLarge:
                // The response (whose request id is inside it) is skipped; that request gets no answer here and
                // is retried or times out like an unanswered one. The connection stays usable.
                break
            }
        }
    }

    private func helloAnswered(_ response: Sutra_V1_Response) {
        if response.hasError, response.error.code != .ok {
            let error = SutraError(proto: response.error)
            if case .unsupportedVersion = error {
                fail(error)
            }
            // Any other refusal of Hello (UNAUTHENTICATED: a token the node does not accept) is ignored: the
            // requests themselves will say what is wrong, each with a final error.
            return
        }
        if case .hello(let h)? = response.result { version = h.maxVersion }
    }

    /// Closes the connection (idempotent) and reports `error` for every request still in flight on it.
    func fail(_ error: SutraError) {
        guard state != .closed else { return }
        state = .closed
        queued = []
        if let tcp, !tcp.isClosing { tcp.close() }
        tcp = nil
        let lost = inflight
        inflight = []
        engine.connectionClosed(self, lost: lost, error: error)
    }
}
