/// Everything a `SutraClient` call throws (besides `CancellationError` when the calling task is cancelled).
///
/// Final answers of a node — `invalidArgument`, `notFound`, `tooLarge`, `unsupportedVersion`, `conflict`,
/// `preconditionFailed`, `unauthenticated`, `permissionDenied` — are thrown at once,
/// without retrying, and carry the node's message. Transient conditions (`notLeader`, `unavailable`,
/// `nodeTimeout`, `diskFull`, `internalError`, `connectionFailed`, `noResponse`) are retried until the request's deadline and
/// are then reported as the `lastError` of `timeout`; they are never thrown on their own.
public enum SutraError: Error, Sendable, Hashable, CustomStringConvertible {
    // MARK: final answers (thrown at once)

    /// The node refused the request as malformed or out of range; sending it again fails again.
    case invalidArgument(String)
    /// The concept does not exist (`get` returns nil instead of throwing this).
    case notFound(String)
    /// Over a size limit: content, dimension, batch, frame, depth or k. Also thrown, without sending, for a
    /// request larger than `Options.maxFrameSize`.
    case tooLarge(String)
    /// The node speaks no protocol version this SDK speaks.
    case unsupportedVersion(String)
    /// The node answered something this SDK cannot read (a missing result, an unknown enum value, bad bytes).
    case invalidResponse(String)
    /// Nothing was applied: a pending cross-shard transaction held what the write touches, or the write's own
    /// transaction was aborted. Retrying (a new call) may succeed.
    case conflict(String)
    /// A conditional put's condition did not hold; nothing changed.
    case preconditionFailed(String)
    /// The node requires a bearer token and the client has none (`Options.token`), or one the node does not
    /// accept (unknown or revoked). Nothing was done.
    case unauthenticated(String)
    /// The client's token is valid but its role (read < write < admin) is too low for the request. Nothing
    /// was done.
    case permissionDenied(String)

    // MARK: the deadline

    /// `operation` did not succeed before its deadline (`Options.requestTimeout`). `lastError` is the last
    /// transient failure seen (nil if no attempt got an answer, e.g. still waiting for an earlier write to the
    /// same shard). A write that times out may or may not have been applied; retrying it with a new call is
    /// a new write.
    indirect case timeout(operation: String, lastError: SutraError?)

    // MARK: the client itself

    /// `close()` was called (or the client was released) before the call finished.
    case closed
    /// An endpoint is not `host:port` with an IPv4 or IPv6 literal or a well-formed host name.
    case invalidEndpoint(String)
    /// The client could not start its event loop thread.
    case startFailed(String)

    // MARK: transient (only ever seen as `timeout`'s `lastError`)

    /// The node does not lead the shard; `leader` (0 if unknown) and its client `address` ("" if unknown).
    case notLeader(leader: UInt32, address: String, message: String)
    /// No leader, the node is shutting down, or a write's outcome is unknown after a leadership change.
    case unavailable(String)
    /// The node itself timed out (e.g. waiting for a commit).
    case nodeTimeout(String)
    /// The node's disk is full or below its free-space floor: the write was refused (reads are still served).
    /// Retried, as writes resume once space returns or the shard's leadership moves to a node with space.
    case diskFull(String)
    /// The node reported an internal error (or an error code this SDK does not know).
    case internalError(String)
    /// The TCP connection to `endpoint` could not be made or broke.
    case connectionFailed(endpoint: String, reason: String)
    /// No answer from `endpoint` within `Options.attemptTimeout` (in milliseconds).
    case noResponse(endpoint: String, afterMilliseconds: UInt64)

    /// Whether the SDK retries after this error.
    var isRetryable: Bool {
        switch self {
        case .notLeader, .unavailable, .nodeTimeout, .diskFull, .internalError, .connectionFailed, .noResponse: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .notFound(let m): return "not found: \(m)"
        case .tooLarge(let m): return "too large: \(m)"
        case .unsupportedVersion(let m): return "unsupported protocol version: \(m)"
        case .invalidResponse(let m): return "invalid response from the node: \(m)"
        case .conflict(let m): return "conflict: \(m)"
        case .preconditionFailed(let m): return "precondition failed: \(m)"
        case .unauthenticated(let m): return "unauthenticated: \(m)"
        case .permissionDenied(let m): return "permission denied: \(m)"
        case .timeout(let op, let last):
            return "\(op) timed out" + (last.map { "; last error: \($0)" } ?? "; no answer was received")
        case .closed: return "the client is closed"
        case .invalidEndpoint(let e): return "invalid endpoint '\(e)': expected host:port with an IP address or a host name"
        case .startFailed(let m): return "could not start the client's event loop: \(m)"
        case .notLeader(let leader, let address, let m):
            return "not leader (leader: \(leader == 0 ? "unknown" : "node \(leader) at \(address)")): \(m)"
        case .unavailable(let m): return "unavailable: \(m)"
        case .nodeTimeout(let m): return "the node timed out: \(m)"
        case .diskFull(let m): return "disk full: \(m)"
        case .internalError(let m): return "internal error on the node: \(m)"
        case .connectionFailed(let e, let r): return "connection to \(e) failed: \(r)"
        case .noResponse(let e, let ms): return "no response from \(e) within \(ms) ms"
        }
    }
}
