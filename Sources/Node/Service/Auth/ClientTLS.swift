import Logging
import SecureStream
import TLS
import UV

/// TLS on the client ports (binary and HTTP): the server context made from `--client-tls-cert/-key` (and, with
/// `--client-tls-ca`, client certificates required and verified against that CA), a session per accepted
/// connection, and the SIGHUP reload of the certificate files.
///
/// Guarantees: loop-thread only. With no certificate configured every connection is plaintext. A reload that
/// fails (missing, unreadable, mismatched files) keeps the context in force and logs why; a successful one is
/// used by connections accepted afterwards (those already open keep theirs).
final class ClientTLS {
    private let logger: Logger
    private(set) var context: TLSContext?
    private(set) var reloadsFailed: UInt64 = 0
    private(set) var sessionsRefused: UInt64 = 0

    init(settings: ClientAuthSettings, logger: Logger) throws {
        self.logger = logger
        guard let config = try ClientTLS.configuration(settings) else { return }
        do {
            context = try TLSContext(config)
        } catch {
            throw NodeStartError("client TLS (--client-tls-cert / --client-tls-key / --client-tls-ca): \(error)")
        }
        logger.info("client TLS on: certificate \(config.certificateChainPath ?? "?")\(config.verification == .requireAndVerifyPeer ? ", client certificates required (CA \(config.trustRootsPath ?? "?"))" : "")")
    }

    var isOn: Bool { context != nil }

    /// The server configuration the settings name; nil without a certificate. Throws on a half-given pair.
    static func configuration(_ s: ClientAuthSettings) throws -> TLSContext.Configuration? {
        switch (s.tlsCertificate, s.tlsKey) {
        case (nil, nil):
            if s.tlsClientCA != nil { throw NodeStartError("--client-tls-ca needs --client-tls-cert and --client-tls-key") }
            return nil
        case (let c?, let k?):
            return TLSContext.Configuration(role: .server, certificateChainPath: c, privateKeyPath: k, trustRootsPath: s.tlsClientCA,
                                            verification: s.tlsClientCA == nil ? .serverOnly : .requireAndVerifyPeer, requireTLS13: false)
        default:
            throw NodeStartError("--client-tls-cert and --client-tls-key go together")
        }
    }

    /// Why the node must not start listening for clients on `host` (nil: it may): a non-loopback address with no
    /// client TLS, unless the operator said `--allow-insecure-clients`.
    static func insecureListenProblem(host: String, tls: Bool, allowInsecure: Bool) -> String? {
        if tls || allowInsecure || isLoopback(host) { return nil }
        return "clients on \(host) would be served without TLS (bearer tokens and data in the clear): give --client-tls-cert and --client-tls-key, listen on loopback, or pass --allow-insecure-clients"
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// SIGHUP: loads the certificate files again; a failure keeps the current context.
    func reload() {
        guard let current = context else { return }
        do {
            context = try current.reloaded()
            logger.notice("SIGHUP: client TLS certificate reloaded from \(current.configuration.certificateChainPath ?? "?")")
        } catch {
            reloadsFailed += 1
            logger.error("SIGHUP: client TLS certificate not reloaded, the previous one stays in force: \(error)")
        }
    }

    /// The stream for an accepted connection: TLS when on. nil (the connection is closed) if no session can be made.
    func stream(for tcp: TCPConnection) -> SecureStream? {
        guard let context else { return SecureStream(tcp: tcp, session: nil) }
        do {
            return SecureStream(tcp: tcp, session: try TLSSession(context: context))
        } catch {
            sessionsRefused += 1
            logger.error("client TLS session not created: \(error)")
            tcp.close()
            return nil
        }
    }
}
