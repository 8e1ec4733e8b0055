import Auth
import ClientProto
import NodeCore

/// What a binary-protocol connection authenticates with: the digest of the token its latest `Hello` carried,
/// and that token's entry resolved against the node's tokens — cached, and resolved again after a reload, so a
/// revoked token stops working on open connections too.
struct BinaryCredential {
    /// nil: no Hello with a token yet.
    var digest: TokenDigest?
    private var resolvedAt: UInt64 = 0
    private var resolved: TokenEntry?

    /// The entry the token names in `tokens` now (nil: none, or unknown/revoked).
    mutating func entry(in tokens: TokenSet, generation: UInt64) -> TokenEntry? {
        guard let digest else { return nil }
        if resolvedAt != generation {
            resolved = tokens.entry(for: digest)
            resolvedAt = generation
        }
        return resolved
    }

    mutating func present(_ d: TokenDigest) {
        digest = d
        resolvedAt = 0
        resolved = nil
    }
}

extension BinaryFrontEnd {
    /// A `Hello`'s token: remembered for the connection's later requests. Returns the refusal to answer the
    /// Hello with if the token is unknown, revoked or over 512 bytes; nil when it is valid, absent, or
    /// authentication is off.
    func presentHelloToken(_ token: String, on c: BinaryConnection) -> (Sutra_V1_ErrorCode, String)? {
        let auth = node.clientAuth!
        guard auth.isOn, let tokens = auth.tokens, !token.isEmpty else { return nil }
        let bytes = Array(token.utf8)
        // An over-long token is refused like an unknown one (its digest matches nothing we issued).
        c.credential.present(TokenDigest(token: bytes.count <= BearerToken.maxLength ? bytes : []))
        if c.credential.entry(in: tokens, generation: auth.generation) != nil { return nil }
        let d = AccessDecision.unauthenticated(missing: false)
        auth.record(d, source: "binary " + c.peer, what: "Hello", now: node.nanos)
        return (.unauthenticated, d.message)
    }

    /// The binary front end's one authorization point: nil lets `op` proceed, else the error to answer with.
    func authorizationRefusal(_ op: ClientOp, on c: BinaryConnection) -> (Sutra_V1_ErrorCode, String)? {
        let auth = node.clientAuth!
        guard auth.isOn, let tokens = auth.tokens else { return nil }
        let needed = AccessPolicy.role(for: op)
        let d: AccessDecision
        if c.credential.digest == nil {
            d = .unauthenticated(missing: true)
        } else if let e = c.credential.entry(in: tokens, generation: auth.generation) {
            if e.role.allows(needed) { return nil }
            d = .forbidden(name: e.name, role: e.role, needed: needed)
        } else {
            d = .unauthenticated(missing: false)
        }
        auth.record(d, source: "binary " + c.peer, what: "\(op.kindName)", now: node.nanos)
        if case .forbidden = d { return (.permissionDenied, d.message) }
        return (.unauthenticated, d.message + (c.credential.digest == nil ? " (send it in the connection's Hello)" : ""))
    }
}

extension ClientOp {
    /// The operation's name, for refusal logs (never its arguments).
    var kindName: String {
        switch self {
        case .put: return "put"
        case .putIf: return "conditional put"
        case .patch: return "partial update"
        case .get: return "get"
        case .delete: return "delete"
        case .associate: return "associate"
        case .dissociate: return "dissociate"
        case .neighbors: return "neighbors"
        case .path: return "path"
        case .search: return "search"
        case .batch: return "batch"
        case .flush: return "flush"
        case .cluster: return "cluster info"
        case .transferLeader: return "transfer-leader"
        case .fsyncDelay: return "fsync-delay"
        case .membership: return "membership change"
        }
    }
}
