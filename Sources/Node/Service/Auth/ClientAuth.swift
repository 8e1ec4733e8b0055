import Auth
import Foundation
import Logging

/// The client-security settings of a node: tokens (`--tokens-file`, `--metrics-auth`) and TLS on the client
/// ports (`--client-tls-cert/-key/-ca`, `--allow-insecure-clients`).
public struct ClientAuthSettings: Sendable {
    /// The tokens file; nil: clients are not authenticated (every request is allowed, and the node says so).
    public var tokensFile: String?
    /// Whether `GET /metrics` needs a token (any role); otherwise it is open like `/health` and `/ready`.
    public var metricsNeedToken = false
    /// PEM certificate (chain) and key the client ports serve TLS with; nil: plaintext.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// CA bundle client certificates must verify against (then required); nil: none asked for.
    public var tlsClientCA: String?
    /// Serve clients on a non-loopback address without TLS anyway.
    public var allowInsecureClients = false

    public init(tokensFile: String? = nil, metricsNeedToken: Bool = false) {
        self.tokensFile = tokensFile
        self.metricsNeedToken = metricsNeedToken
    }
}

/// The node's client authorization: the tokens accepted now, the check both front ends make before serving a
/// request, the refusal counters and their rate-limited log lines, and the SIGHUP reload.
///
/// Guarantees: loop-thread only. With no tokens file every request is allowed. A reload that fails (missing,
/// unreadable or malformed file) keeps the tokens in force and logs why; a successful one applies to the next
/// request of every connection, open ones included (`generation` changes). At most one log line per refusal
/// source (client address and reason) per 10 s.
final class ClientAuth {
    let settings: ClientAuthSettings
    private let logger: Logger
    /// nil: authentication is off.
    private(set) var tokens: TokenSet?
    /// Bumped on every successful (re)load; connections cache their resolved identity against it.
    private(set) var generation: UInt64 = 0
    private var limiter = RefusalLogLimiter()
    /// Refusals since start: missing token, invalid token, role too low.
    private(set) var refusedMissing: UInt64 = 0
    private(set) var refusedInvalid: UInt64 = 0
    private(set) var refusedForbidden: UInt64 = 0
    private(set) var reloadsFailed: UInt64 = 0

    /// Loads the tokens file; throws (the node refuses to start) if it is given but unusable.
    init(settings: ClientAuthSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        if let path = settings.tokensFile {
            do {
                let entries = try TokenFile.load(path: path)
                tokens = TokenSet(entries)
                generation = 1
                logger.info("client authentication on: \(entries.count) tokens from \(path) (\(Self.summary(entries)))")
                if entries.isEmpty { logger.warning("the tokens file \(path) holds no tokens: every client request except /health and /ready is refused") }
            } catch {
                throw NodeStartError("tokens file (--tokens-file / SUTRA_TOKENS_FILE): \(error)")
            }
        } else {
            logger.warning("no --tokens-file: clients are NOT authenticated (every request, admin routes included, is served to anyone who can connect)")
        }
    }

    var isOn: Bool { tokens != nil }

    /// SIGHUP: reads the tokens file again. A bad file keeps the old tokens.
    func reload() {
        guard let path = settings.tokensFile else {
            logger.info("SIGHUP: no --tokens-file, client authentication stays off")
            return
        }
        do {
            let entries = try TokenFile.load(path: path)
            tokens = TokenSet(entries)
            generation &+= 1
            logger.notice("SIGHUP: reloaded \(entries.count) tokens from \(path) (\(Self.summary(entries)))")
        } catch {
            reloadsFailed += 1
            logger.error("SIGHUP: tokens file not reloaded, the previous \(tokens?.entries.count ?? 0) tokens stay in force: \(error)")
        }
    }

    /// The one check of a request: `needed` nil means an open route. Counts and logs refusals.
    func check(needed: Role?, presented: TokenDigest?, source: String, what: @autoclosure () -> String, now: UInt64) -> AccessDecision {
        guard let needed, let tokens else { return .allowed(name: nil) }
        let d = tokens.decide(presented: presented, needed: needed)
        record(d, source: source, what: what(), now: now)
        return d
    }

    /// Counts and logs a refusal decided elsewhere (a binary connection's cached identity).
    func record(_ d: AccessDecision, source: String, what: @autoclosure () -> String, now: UInt64) {
        let reason: String
        switch d {
        case .allowed: return
        case .unauthenticated(true): refusedMissing += 1; reason = "no token"
        case .unauthenticated(false): refusedInvalid += 1; reason = "invalid token"
        case .forbidden: refusedForbidden += 1; reason = "role too low"
        }
        let (log, suppressed) = limiter.shouldLog(source: source + " " + reason, now: now)
        guard log else { return }
        let more = suppressed > 0 ? " (\(suppressed) more from this source not logged)" : ""
        logger.warning("client request refused from \(source): \(reason): \(what()): \(d.message)\(more)")
    }

    static func summary(_ entries: [TokenEntry]) -> String {
        Role.allCases.map { r in "\(entries.filter { $0.role == r }.count) \(r)" }.joined(separator: ", ")
    }
}
