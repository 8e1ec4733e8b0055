import CTLS

/// One TLS connection as a pure state object over two memory BIOs — no socket, no loop, no clock (the way
/// Node.js runs TLS on libuv). The owner moves bytes: ciphertext read from the socket goes into `receive`, which
/// returns the plaintext it completed; `send` encrypts plaintext; `takeOutgoing` hands back every ciphertext byte
/// to write (handshake messages, records, alerts). Call `takeOutgoing` after every `receive`, `send` or `close`.
///
/// Guarantees: a hostile peer's bytes end in a thrown `TLSError` (the session is then failed and says so), never
/// a crash; received ciphertext is decrypted as it arrives, so at most one partial record (≤ 18 KiB) is held;
/// plaintext sent before the handshake completes is held up to `maxPendingPlaintext` bytes, beyond which `send`
/// throws `.overflow`. After the handshake, `peer` holds the peer's verified certificate names (nil if the peer
/// sent none, which only a `.serverOnly` server allows). Not thread-safe: use it from one thread.
public final class TLSSession {
    /// Where the session stands.
    public enum State: Equatable {
        case handshaking
        case established
        /// The peer sent close_notify, or `close()` was called.
        case closed
        case failed(TLSError)
    }

    public let context: TLSContext
    public private(set) var state: State = .handshaking
    /// The verified peer certificate's names, set when the handshake completes.
    public private(set) var peer: PeerCertificate?
    /// Bytes of plaintext `send` may hold while the handshake runs.
    public let maxPendingPlaintext: Int
    private var pendingPlaintext: [UInt8] = []
    private let raw: OpaquePointer
    /// A TLS record is at most 2^14 bytes of plaintext plus 256 of overhead (RFC 8446 §5.2); more unprocessed
    /// input than two of them means the session is not consuming what it is fed.
    static let maxUnprocessedInput = 2 * (maxRecordPlaintext + 256 + 5)
    /// The most plaintext one TLS record carries.
    static let maxRecordPlaintext = 16_384

    /// A session that takes `context`'s role. `serverName`, for a client: the DNS name or IP literal sent as SNI and
    /// required in the server's certificate (nil: the certificate's chain is verified, its names are left to the
    /// caller, as peers do with `peer`). A client's first flight (ClientHello) is ready in `takeOutgoing` at once.
    public init(context: TLSContext, serverName: String? = nil, maxPendingPlaintext: Int = 4 << 20) throws(TLSError) {
        precondition(maxPendingPlaintext >= 0)
        self.context = context
        self.maxPendingPlaintext = maxPendingPlaintext
        let server = context.configuration.role == .server
        let (s, message) = withErrorBuffer { err, len in ctls_session_new(context.raw, server ? 1 : 0, err, len) }
        guard let s else { throw TLSError(.configuration, message) }
        raw = s
        if let serverName, !server {
            let isIP = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
            let (ok, m) = withErrorBuffer { err, len in ctls_session_expect_host(s, serverName, isIP ? 1 : 0, err, len) }
            guard ok == 1 else { ctls_session_free(s); throw TLSError(.configuration, m) }
        }
        if !server { try advanceHandshake() }
    }

    deinit { ctls_session_free(raw) }

    public var isEstablished: Bool { state == .established }
    /// The negotiated protocol version ("TLSv1.3").
    public var protocolVersion: String { String(cString: ctls_version(raw)) }
    /// Ciphertext waiting in `takeOutgoing`.
    public var outgoingBytes: Int { ctls_pending_out(raw) }

    /// Feeds ciphertext received from the peer; returns the plaintext it completed (possibly empty). Throws on a
    /// handshake or record error — the alert for the peer is then in `takeOutgoing` — and, once failed or closed,
    /// on every later call. A close_notify from the peer moves the session to `.closed` and returns what preceded it.
    public func receive(_ ciphertext: [UInt8]) throws(TLSError) -> [UInt8] {
        try usable()
        if ciphertext.isEmpty { return [] }
        let fed = ciphertext.withUnsafeBufferPointer { ctls_feed(raw, $0.baseAddress, $0.count) }
        guard fed == ciphertext.count else { throw fail(.overflow, "cannot buffer received bytes") }
        if state == .handshaking {
            try advanceHandshake()
            if state == .handshaking {
                guard ctls_pending_in(raw) <= TLSSession.maxUnprocessedInput else {
                    throw fail(.protocolError, "handshake input not consumed")
                }
                return []
            }
        }
        // Plaintext never exceeds the ciphertext it came from: a buffer the size of the buffered input usually takes
        // every whole record in one call (no zeroed scratch buffer). Only when part of a record had already been
        // pulled into OpenSSL by an earlier call can it fill; the rest is then read in record-sized steps.
        var out: [UInt8] = []
        var room = max(ctls_pending_in(raw), 1)
        while true {
            var rc: Int32 = 0
            var message = ""
            let batch = [UInt8](unsafeUninitializedCapacity: room) { buf, count in
                var n = 0
                (rc, message) = withErrorBuffer { err, len in ctls_read(raw, buf.baseAddress, buf.count, &n, err, len) }
                precondition(n <= buf.count, "ctls_read wrote past its buffer")
                count = n
            }
            if out.isEmpty { out = batch } else { out.append(contentsOf: batch) }
            room = max(ctls_pending_in(raw), TLSSession.maxRecordPlaintext)
            switch Int(rc) {
            case Int(CTLS_OK): continue   // the buffer filled: more may follow
            case Int(CTLS_WANT):
                guard ctls_pending_in(raw) <= TLSSession.maxUnprocessedInput else {
                    throw fail(.protocolError, "record input not consumed")
                }
                return out
            case Int(CTLS_CLOSED):
                state = .closed
                return out
            default:
                throw fail(.protocolError, message)
            }
        }
    }

    /// Encrypts `plaintext` for the peer (held until the handshake completes, within `maxPendingPlaintext`).
    public func send(_ plaintext: [UInt8]) throws(TLSError) {
        try usable()
        if plaintext.isEmpty { return }
        if state == .handshaking {
            guard pendingPlaintext.count + plaintext.count <= maxPendingPlaintext else {
                throw TLSError(.overflow, "more than \(maxPendingPlaintext) bytes queued before the handshake completed")
            }
            pendingPlaintext.append(contentsOf: plaintext)
            return
        }
        try encrypt(plaintext)
    }

    /// Every ciphertext byte ready to be written to the socket (empties the output).
    public func takeOutgoing() -> [UInt8] {
        let n = ctls_pending_out(raw)
        if n == 0 { return [] }
        return [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            count = ctls_take(raw, buf.baseAddress, buf.count)
            precondition(count <= buf.count, "ctls_take wrote past its buffer")
        }
    }

    /// Queues a close_notify (in `takeOutgoing`); the session then refuses further use.
    public func close() {
        if state == .established || state == .handshaking { ctls_shutdown(raw) }
        if case .failed = state { return }
        state = .closed
    }

    // MARK: internals

    private func usable() throws(TLSError) {
        switch state {
        case .handshaking, .established: return
        case .closed: throw TLSError(.closed, "the TLS session is closed")
        case .failed(let e): throw e
        }
    }

    private func fail(_ kind: TLSError.Kind, _ message: String) -> TLSError {
        let e = TLSError(kind, message.isEmpty ? "TLS error" : message)
        state = .failed(e)
        pendingPlaintext = []
        return e
    }

    private func advanceHandshake() throws(TLSError) {
        let (rc, message) = withErrorBuffer { err, len in ctls_handshake(raw, err, len) }
        switch Int(rc) {
        case Int(CTLS_OK):
            state = .established
            peer = readPeer()
            if !pendingPlaintext.isEmpty {
                let held = pendingPlaintext
                pendingPlaintext = []
                try encrypt(held)
            }
        case Int(CTLS_WANT): return
        default: throw fail(.handshake, message)
        }
    }

    private func encrypt(_ plaintext: [UInt8]) throws(TLSError) {
        let (rc, message) = withErrorBuffer { err, len in
            plaintext.withUnsafeBufferPointer { ctls_write(raw, $0.baseAddress, $0.count, err, len) }
        }
        guard Int(rc) == Int(CTLS_OK) else { throw fail(.protocolError, message) }
    }

    private func readPeer() -> PeerCertificate? {
        PeerCertificate.read { ctls_peer_names(raw, $0, $1) }
    }
}
