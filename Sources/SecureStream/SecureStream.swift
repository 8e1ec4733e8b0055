import CUV
import TLS
import TLSTransport
import UV

/// A client connection's byte stream: a `TCPConnection` as is, or TLS over it (a `TLSConnection`, the same
/// session pump the peer links use). Front ends and the SDK read and write plaintext through it and need not
/// know which.
///
/// Guarantees: loop-thread only. Under TLS a handshake or record failure — a plaintext client on a TLS port, a
/// certificate that does not verify, a handshake not finished within `handshakeTimeoutMs` — is reported once as
/// `.error` (code `EPROTO`, the operation naming the TLS problem) after the alert is written and the socket
/// closed, and the stream then delivers nothing more; a clean TLS end is `.endOfFile`. Plaintext written before
/// the handshake completes is held by the session (bounded, see `TLSSession`).
public final class SecureStream {
    public let tcp: TCPConnection
    /// nil: plaintext.
    private let tls: TLSConnection?
    private var plainReader: ((ReadEvent) -> Void)?
    private var plainPaused = false
    /// How long a TLS handshake may take before the stream fails.
    public static let handshakeTimeoutMs: UInt64 = 5000

    public init(tcp: TCPConnection, session: TLSSession?) {
        self.tcp = tcp
        tls = session.map { TLSConnection(tcp: tcp, session: $0) }
    }

    public var session: TLSSession? { tls?.session }
    public var isClosing: Bool { tcp.isClosing }
    public var peerHost: String? { tcp.peerHost }
    public var isTLS: Bool { tls != nil }

    public func setNoDelay(_ on: Bool) throws(UVError) { try tcp.setNoDelay(on) }

    /// Starts reading; `reader` gets plaintext. A client session's first flight (ClientHello) leaves now.
    public func startReading(_ reader: @escaping (ReadEvent) -> Void) throws(UVError) {
        guard let tls else {
            plainReader = reader
            try tcp.startReading(reader)
            return
        }
        tls.start(handshakeTimeoutMs: SecureStream.handshakeTimeoutMs) { event in
            switch event {
            case .established: break
            case .data(let plain): reader(.data(plain))
            case .closed(nil): reader(.endOfFile)
            case .closed(let why?): reader(.error(UVError(Int32(UV_EPROTO.rawValue), "TLS: \(why)")))
            }
        }
    }

    /// Stops reading from the socket until `resumeReading` (backpressure). Idempotent; nothing after close.
    public func pauseReading() {
        if let tls { tls.pauseReading(); return }
        guard !tcp.isClosing, plainReader != nil, !plainPaused else { return }
        plainPaused = true
        tcp.stopReading()
    }

    /// Reads again after `pauseReading`. A failure to restart is reported to the reader as `.error`.
    public func resumeReading() {
        if let tls { tls.resumeReading(); return }
        guard !tcp.isClosing, plainPaused, let plainReader else { return }
        plainPaused = false
        do { try tcp.startReading(plainReader) } catch { plainReader(.error(error)) }
    }

    public func write(_ bytes: [UInt8], _ completion: ((UVError?) -> Void)? = nil) {
        write(vectored: [bytes], completion)
    }

    public func write(vectored parts: [[UInt8]], _ completion: ((UVError?) -> Void)? = nil) {
        if let tls { tls.write(vectored: parts, completion) } else { tcp.write(vectored: parts, completion) }
    }

    /// Sends a close_notify under TLS (best effort), then closes the socket.
    public func close() {
        plainReader = nil
        if let tls { tls.close() } else if !tcp.isClosing { tcp.close() }
    }

    /// Bytes queued on the socket but not yet handed to the kernel.
    public var pendingWriteBytes: Int { tcp.isClosing ? 0 : tcp.pendingWriteBytes }
}
