/// The tokens a node accepts now, and the pure decision of whether a request may proceed.
///
/// Guarantees: a presented token is compared, as its digest, with every entry in constant time per entry and
/// without stopping at the first match, so the time taken says nothing about which entry (if any) matched.
public struct TokenSet: Sendable {
    public let entries: [TokenEntry]

    public init(_ entries: [TokenEntry]) { self.entries = entries }

    /// The entry whose digest matches, if any.
    public func entry(for digest: TokenDigest) -> TokenEntry? {
        var found: TokenEntry?
        for e in entries where e.digest.matches(digest) && found == nil { found = e }
        return found
    }

    /// Whether a request that needs `needed` may proceed with what it presented (nil: no token at all).
    public func decide(presented: TokenDigest?, needed: Role) -> AccessDecision {
        guard let presented else { return .unauthenticated(missing: true) }
        guard let e = entry(for: presented) else { return .unauthenticated(missing: false) }
        return e.role.allows(needed) ? .allowed(name: e.name) : .forbidden(name: e.name, role: e.role, needed: needed)
    }
}

/// The outcome of an authorization check.
public enum AccessDecision: Sendable, Equatable {
    /// Proceed; `name` is the token's (nil when authentication is off or the route is open).
    case allowed(name: String?)
    /// No valid token: `missing` when none was presented, else it matched no entry (HTTP 401).
    case unauthenticated(missing: Bool)
    /// A valid token whose role is too low (HTTP 403).
    case forbidden(name: String, role: Role, needed: Role)

    public var isAllowed: Bool { if case .allowed = self { return true } else { return false } }

    /// What the client is told (never which names exist).
    public var message: String {
        switch self {
        case .allowed: return "allowed"
        case .unauthenticated(true): return "this node requires a bearer token (HTTP: Authorization: Bearer <token>; SDK: the token option)"
        case .unauthenticated(false): return "the bearer token is not valid (unknown or revoked)"
        case .forbidden(let name, let role, let needed): return "token '\(name)' has role \(role); this request needs \(needed)"
        }
    }
}

/// `Authorization: Bearer <token>` (RFC 6750). The scheme is case-insensitive; the token is 1…512 characters of
/// the b64token alphabet.
public enum BearerToken {
    public static let maxLength = 512

    /// The token's bytes; nil if the header is absent, not a Bearer credential, or malformed (all refused alike).
    public static func parse(_ header: String?) -> [UInt8]? {
        guard let header else { return nil }
        let u = Array(header.utf8)
        guard u.count > 7, u.count <= maxLength + 7 + 32 else { return nil }
        let scheme = String(decoding: u[0..<6], as: UTF8.self).lowercased()
        guard scheme == "bearer", u[6] == 0x20 else { return nil }
        var start = 7
        while start < u.count && u[start] == 0x20 { start += 1 }
        var end = u.count
        while end > start && (u[end - 1] == 0x20 || u[end - 1] == 0x09) { end -= 1 }
        let token = Array(u[start..<end])
        guard (1...maxLength).contains(token.count) else { return nil }
        let ok = token.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E || c == 0x2B || c == 0x2F || c == 0x3D
        }
        return ok ? token : nil
    }
}

/// Rate limit for refusal log lines: at most one line per source per `windowNanos`; the next line says how many
/// were suppressed meanwhile. Pure (time is a value); remembers at most `maxSources` sources (the oldest
/// window is forgotten first), so a flood from many addresses costs bounded memory.
public struct RefusalLogLimiter: Sendable {
    public let windowNanos: UInt64
    public let maxSources: Int
    private var sources: [String: (since: UInt64, suppressed: Int)] = [:]

    public init(windowNanos: UInt64 = 10_000_000_000, maxSources: Int = 1024) {
        precondition(maxSources > 0)
        self.windowNanos = windowNanos
        self.maxSources = maxSources
    }

    /// Whether to log a refusal from `source` now, and how many of its refusals were not logged before it.
    public mutating func shouldLog(source: String, now: UInt64) -> (log: Bool, suppressed: Int) {
        if let s = sources[source], now &- s.since < windowNanos {
            sources[source] = (s.since, s.suppressed + 1)
            return (false, 0)
        }
        let suppressed = sources[source]?.suppressed ?? 0
        if sources[source] == nil && sources.count >= maxSources {
            // Drop every source whose window has passed; if none has, the oldest one.
            sources = sources.filter { now &- $0.value.since < windowNanos }
            if sources.count >= maxSources, let oldest = sources.min(by: { $0.value.since < $1.value.since }) {
                sources[oldest.key] = nil
            }
        }
        sources[source] = (now, 0)
        return (true, suppressed)
    }

    public var trackedSources: Int { sources.count }
}
