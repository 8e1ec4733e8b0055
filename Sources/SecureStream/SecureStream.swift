import CUV
import TLS
import UV

/// A client connection's byte stream: a `TCPConnection` as is, or TLS over it (a `TLSSession` driven through
/// memory BIOs on the loop thread). Front ends and the SDK read and write plaintext through it and need not know
/// which.
///
/// Guarantees: loop-thread only. Under TLS every ciphertext byte the session produces (handshake, records,
/// alerts) is written right after the call that produced it; a handshake or record failure — a plaintext
/// client on a TLS port, a certificate that does not verify — is reported once as `.error` (code `EPROTO`, the
/// operation naming the TLS problem) after the alert is written, and the stream then delivers nothing more.
/// Plaintext written before the handshake completes is held by the session (bounded, see `TLSSession`).
public final class SecureStream {
    public let tcp: TCPConnection
    /// nil: plaintext.
    public let session: TLSSession?
    private var failed = false

    public init(tcp: TCPConnection, session: TLSSession?) {
        self.tcp = tcp
        self.session = session
    }

    public var isClosing: Bool { tcp.isClosing }
    public var peerHost: String? { tcp.peerHost }
    public var isTLS: Bool { session != nil }

    public func setNoDelay(_ on: Bool) throws(UVError) { try tcp.setNoDelay(on) }

    /// Starts reading; `reader` gets plaintext. A client session's first flight (ClientHello) leaves now.
    public func startReading(_ reader: @escaping (ReadEvent) -> Void) throws(UVError) {
        guard let session else {
            try tcp.startReading(reader)
            return
        }
        try tcp.startReading { [weak self] event in
            guard let self, !self.failed else { return }
            switch event {
            case .data(let ciphertext):
                do {
                    let plain = try session.receive(ciphertext)
                    self.flushCiphertext()
                    if !plain.isEmpty { reader(.data(plain)) }
                    if session.state == .closed { reader(.endOfFile) }
                } catch {
                    self.flushCiphertext()
                    self.failed = true
                    reader(.error(UVError(Int32(UV_EPROTO.rawValue), "TLS: \(error)")))
                }
            case .endOfFile, .error:
                reader(event)
            }
        }
        flushCiphertext()
    }

    public func write(_ bytes: [UInt8], _ completion: ((UVError?) -> Void)? = nil) {
        write(vectored: [bytes], completion)
    }

    public func write(vectored parts: [[UInt8]], _ completion: ((UVError?) -> Void)? = nil) {
        guard let session else {
            tcp.write(vectored: parts, completion)
            return
        }
        guard !failed else {
            completion?(UVError(Int32(UV_EPROTO.rawValue), "TLS: the session failed"))
            return
        }
        do {
            for p in parts where !p.isEmpty { try session.send(p) }
        } catch {
            failed = true
            completion?(UVError(Int32(UV_EPROTO.rawValue), "TLS: \(error)"))
            return
        }
        let out = session.takeOutgoing()
        if out.isEmpty {
            completion?(nil)  // held until the handshake completes
        } else if !tcp.isClosing {
            tcp.write(out, completion)
        }
    }

    /// Sends a close_notify under TLS (best effort), then closes the socket.
    public func close() {
        if let session, !failed, !tcp.isClosing {
            session.close()
            flushCiphertext()
        }
        if !tcp.isClosing { tcp.close() }
    }

    /// Bytes queued on the socket but not yet handed to the kernel.
    public var pendingWriteBytes: Int { tcp.pendingWriteBytes }

    private func flushCiphertext() {
        guard let session, !tcp.isClosing else { return }
        let out = session.takeOutgoing()
        if !out.isEmpty { tcp.write(out) }
    }
}
