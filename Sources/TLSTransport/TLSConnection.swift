import CUV
import TLS
import UV

/// A `TLSSession` driven over a libuv TCP connection: ciphertext read from the socket is fed to the session and
/// the plaintext handed on; plaintext written is encrypted and written. Every callback runs on the loop thread.
///
/// Guarantees: the handler receives `.established` exactly once before any `.data`, and `.closed` at most once
/// (after which nothing); a handshake that has not completed within `handshakeTimeoutMs` ends in `.closed` with
/// the reason; a peer's bad bytes end in `.closed(reason)`, never a crash. Writes before the handshake completes
/// are held by the session (bounded by its `maxPendingPlaintext`).
public final class TLSConnection {
    /// What the connection reports.
    public enum Event {
        /// The handshake completed; the verified peer certificate (nil only in server-only mode without one).
        case established(PeerCertificate?)
        case data([UInt8])
        /// The connection ended: nil for a clean end (close_notify or EOF after the handshake), else why.
        case closed(String?)
    }

    public let tcp: TCPConnection
    public let session: TLSSession
    /// Whether `.closed` was reported (or `close()` called).
    public private(set) var isFinished = false
    /// Whether any byte came from the peer: a dialer uses it to tell "this peer does not speak TLS" from a refusal.
    public private(set) var heardFromPeer = false
    private var handler: ((Event) -> Void)?
    private var timer: Timer?
    private var reportedEstablished = false
    private var socketReader: ((ReadEvent) -> Void)?
    private var readingPaused = false

    /// Wraps `tcp` (connected or accepted). Nothing happens until `start`.
    public init(tcp: TCPConnection, session: TLSSession) {
        self.tcp = tcp
        self.session = session
    }

    /// Starts the handshake: sends the client's first flight, feeds `initial` bytes already read from the socket
    /// (a server that sniffed them), and reads. `handler` may be replaced later with `setHandler`.
    public func start(initial: [UInt8] = [], handshakeTimeoutMs: UInt64 = 5000, _ handler: @escaping (Event) -> Void) {
        self.handler = handler
        try? tcp.setNoDelay(true)
        if let t = try? Timer(loop: tcp.loop) {
            timer = t
            t.start(timeout: handshakeTimeoutMs) { [weak self] in
                guard let self, !self.session.isEstablished else { return }
                self.finish("TLS handshake not completed within \(handshakeTimeoutMs) ms")
            }
        }
        flushOutgoing()
        let reader: (ReadEvent) -> Void = { [weak self] event in
            guard let self, !self.isFinished else { return }
            switch event {
            case .data(let bytes): self.received(bytes)
            case .endOfFile: self.finish(self.session.isEstablished ? nil : "peer closed the connection during the TLS handshake")
            case .error(let e): self.finish("\(e)")
            }
        }
        socketReader = reader
        do {
            try tcp.startReading(reader)
        } catch {
            finish("\(error)")
            return
        }
        if !initial.isEmpty { received(initial) }
    }

    /// Stops reading ciphertext from the socket (backpressure); plaintext already decrypted was delivered.
    public func pauseReading() {
        guard !isFinished, !tcp.isClosing, !readingPaused else { return }
        readingPaused = true
        tcp.stopReading()
    }

    /// Reads again after `pauseReading`.
    public func resumeReading() {
        guard !isFinished, !tcp.isClosing, readingPaused, let socketReader else { return }
        readingPaused = false
        do { try tcp.startReading(socketReader) } catch { finish("\(error)") }
    }

    /// Replaces the event handler (e.g. when an accepted connection is handed to the link it belongs to).
    public func setHandler(_ handler: @escaping (Event) -> Void) { self.handler = handler }

    /// Encrypts and writes the buffers as one socket write. `completion` runs when the kernel took the ciphertext,
    /// at once when the session holds the plaintext until its handshake completes, or with an error if the
    /// connection has ended or the session refuses the data.
    public func write(vectored parts: [[UInt8]], _ completion: ((UVError?) -> Void)? = nil) {
        guard !isFinished else {
            completion?(UVError(Int32(UV_EPROTO.rawValue), "TLS: the connection has ended"))
            return
        }
        do {
            if parts.count == 1 {
                try session.send(parts[0])
            } else {
                // One plaintext for the whole write: OpenSSL then fills full records (16 KiB) instead of sealing one
                // record per part — a turn's answers to a pipelining client are hundreds of small frames.
                var joined: [UInt8] = []
                joined.reserveCapacity(parts.reduce(0) { $0 + $1.count })
                for p in parts { joined.append(contentsOf: p) }
                try session.send(joined)
            }
        } catch {
            completion?(UVError(Int32(UV_EPROTO.rawValue), "TLS: \(error)"))
            finish("\(error)")
            return
        }
        flushOutgoing(completion)
    }

    public func write(_ bytes: [UInt8], _ completion: ((UVError?) -> Void)? = nil) { write(vectored: [bytes], completion) }

    /// Ciphertext queued on the socket but not yet handed to the kernel.
    public var pendingWriteBytes: Int { tcp.isClosing ? 0 : tcp.pendingWriteBytes }

    /// Sends close_notify (best effort) and closes the socket; no event follows.
    public func close() {
        guard !isFinished else { return }
        isFinished = true
        handler = nil
        socketReader = nil
        timer?.close()
        timer = nil
        session.close()
        flushOutgoing()
        if !tcp.isClosing { tcp.close() }
    }

    private func received(_ bytes: [UInt8]) {
        heardFromPeer = true
        let plaintext: [UInt8]
        do {
            plaintext = try session.receive(bytes)
        } catch {
            flushOutgoing()  // the alert telling the peer why
            finish(error.description)
            return
        }
        flushOutgoing()
        if session.isEstablished && !reportedEstablished {
            reportedEstablished = true
            timer?.close()
            timer = nil
            handler?(.established(session.peer))
        }
        if !plaintext.isEmpty && !isFinished { handler?(.data(plaintext)) }
        if session.state == .closed && !isFinished { finish(nil) }
    }

    private func flushOutgoing(_ completion: ((UVError?) -> Void)? = nil) {
        let out = tcp.isClosing ? [] : session.takeOutgoing()
        if out.isEmpty { completion?(nil) } else { tcp.write(out, completion) }
    }

    private func finish(_ reason: String?) {
        guard !isFinished else { return }
        let h = handler
        close()
        h?(.closed(reason))
    }
}
