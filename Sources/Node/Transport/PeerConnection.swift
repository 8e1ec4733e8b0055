import NodeCore
import Raft
import TLS
import TLSTransport
import UV

/// One peer link's byte stream: plaintext TCP (`--insecure-peers`, or a peer of the older release in permissive
/// mode) or mutual TLS with the peer's certificate checked against this cluster. Callbacks run on the loop thread.
///
/// Guarantees: `onReady` runs once before any `onData` — for TLS only after the handshake verified a certificate
/// naming exactly one node of this cluster (`certified`); `onEnd` runs at most once, never after `close()`.
final class PeerConnection {
    private let plain: TCPConnection?
    private let tls: TLSConnection?
    private let clusterID: String
    /// The node the peer's certificate names (TLS, once ready); nil on a plaintext connection.
    private(set) var certified: NodeID?
    private(set) var isClosing = false
    var onReady: () -> Void = {}
    var onData: ([UInt8]) -> Void = { _ in }
    /// The connection ended; the reason (nil: a clean end of stream).
    var onEnd: (String?) -> Void = { _ in }

    init(plain: TCPConnection, clusterID: String) {
        self.plain = plain
        self.tls = nil
        self.clusterID = clusterID
    }

    init(tls session: TLSSession, over tcp: TCPConnection, clusterID: String) {
        self.plain = nil
        self.tls = TLSConnection(tcp: tcp, session: session)
        self.clusterID = clusterID
    }

    var isTLS: Bool { tls != nil }
    /// A TLS connection whose peer never sent a byte (a peer that does not speak TLS, in permissive mode).
    var silentDuringHandshake: Bool { tls.map { !$0.heardFromPeer && !$0.session.isEstablished } ?? false }
    var pendingWriteBytes: Int { plain.map { $0.isClosing ? 0 : $0.pendingWriteBytes } ?? tls!.pendingWriteBytes }

    /// Starts reading; `initial` holds bytes already read from the socket (a sniffed first flight).
    func start(initial: [UInt8] = [], handshakeTimeoutMs: UInt64 = 3000) {
        if let plain {
            try? plain.setNoDelay(true)
            onReady()
            if !initial.isEmpty && !isClosing { onData(initial) }
            guard !isClosing else { return }
            do {
                try plain.startReading { [weak self] event in
                    guard let self, !self.isClosing else { return }
                    switch event {
                    case .data(let b): self.onData(b)
                    case .endOfFile: self.end(nil)
                    case .error(let e): self.end("\(e)")
                    }
                }
            } catch {
                end("\(error)")
            }
            return
        }
        tls!.start(initial: initial, handshakeTimeoutMs: handshakeTimeoutMs) { [weak self] event in
            guard let self, !self.isClosing else { return }
            switch event {
            case .established(let cert):
                switch PeerIdentity.certifiedNode(cert, clusterID: self.clusterID) {
                case .success(let id):
                    self.certified = id
                    self.onReady()
                case .failure(let why):
                    self.end("peer certificate refused: \(why)")
                }
            case .data(let b): self.onData(b)
            case .closed(let reason): self.end(reason)
            }
        }
    }

    func write(_ bytes: [UInt8]) { write(vectored: [bytes]) }

    func write(vectored parts: [[UInt8]]) {
        guard !isClosing else { return }
        if let plain { plain.write(vectored: parts) } else { tls!.write(vectored: parts) }
    }

    /// Closes the connection; no callback follows.
    func close() {
        guard !isClosing else { return }
        isClosing = true
        onReady = {}
        onData = { _ in }
        onEnd = { _ in }
        if let plain { if !plain.isClosing { plain.close() } } else { tls!.close() }
    }

    private func end(_ reason: String?) {
        let h = onEnd
        close()
        h(reason)
    }
}
