import CTLS

/// An OpenSSL context: this side's certificate chain and key, the CA bundle it trusts, the verification mode and
/// the minimum protocol version. Immutable once made; a reload is a new context, used for new sessions while the
/// sessions already running keep theirs (each holds its context alive). Safe to share between threads (OpenSSL
/// contexts are reference counted and read-only after setup).
public final class TLSContext: @unchecked Sendable {
    /// Which side of the handshake sessions made from this context take.
    public enum Role: Sendable { case client, server }

    /// How the other side's certificate is treated.
    public enum Verification: Sendable, Equatable {
        /// Mutual TLS: the peer must present a certificate that verifies against the CA bundle.
        case requireAndVerifyPeer
        /// A server that asks clients for no certificate; a client that requires and verifies the server's.
        case serverOnly
    }

    /// What a context is made from. Paths are PEM files.
    public struct Configuration: Sendable, Equatable {
        public var role: Role
        /// This side's certificate, optionally followed by intermediates (nil: a client without a certificate).
        public var certificateChainPath: String?
        public var privateKeyPath: String?
        /// The CA certificates trusted to sign the peer's certificate.
        public var trustRootsPath: String?
        public var verification: Verification
        /// TLS 1.3 only (peers); false allows TLS 1.2 as well (clients of other stacks).
        public var requireTLS13: Bool

        public init(role: Role, certificateChainPath: String?, privateKeyPath: String?, trustRootsPath: String?,
                    verification: Verification, requireTLS13: Bool = true) {
            self.role = role
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
            self.trustRootsPath = trustRootsPath
            self.verification = verification
            self.requireTLS13 = requireTLS13
        }

        /// A node's peer-link context: mutual TLS 1.3 against the cluster CA.
        public static func peer(role: Role, certificate: String, key: String, ca: String) -> Configuration {
            Configuration(role: role, certificateChainPath: certificate, privateKeyPath: key, trustRootsPath: ca,
                          verification: .requireAndVerifyPeer, requireTLS13: true)
        }
    }

    public let configuration: Configuration
    let raw: OpaquePointer

    /// Loads the files and makes the context; a missing or mismatched file is a `.configuration` error naming it.
    public init(_ configuration: Configuration) throws(TLSError) {
        let c = configuration
        if c.verification == .requireAndVerifyPeer || c.role == .client {
            guard c.trustRootsPath != nil else { throw TLSError(.configuration, "a CA bundle is required to verify the peer") }
        }
        if c.role == .server {
            guard c.certificateChainPath != nil, c.privateKeyPath != nil else {
                throw TLSError(.configuration, "a server needs a certificate and a private key")
            }
        }
        guard (c.certificateChainPath == nil) == (c.privateKeyPath == nil) else {
            throw TLSError(.configuration, "a certificate needs its private key and a key its certificate")
        }
        let verify: Int32 = switch (c.verification, c.role) {
        case (.requireAndVerifyPeer, _): 2
        case (.serverOnly, .client): 1
        case (.serverOnly, .server): 0
        }
        let (ctx, message) = withErrorBuffer { err, len in
            ctls_context_new(c.role == .server ? 1 : 0, c.certificateChainPath, c.privateKeyPath, c.trustRootsPath,
                             verify, c.requireTLS13 ? 1 : 0, err, len)
        }
        guard let ctx else { throw TLSError(.configuration, message) }
        self.raw = ctx
        self.configuration = configuration
    }

    /// A new context from the same files (certificate rotation): throws, leaving this one in use, if they are bad.
    public func reloaded() throws(TLSError) -> TLSContext { try TLSContext(configuration) }

    /// The names of the certificate this context presents (nil: it presents none).
    public var ownCertificate: PeerCertificate? { PeerCertificate.read { ctls_context_own_names(raw, $0, $1) } }

    deinit { ctls_context_free(raw) }
}
