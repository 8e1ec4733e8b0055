/// Why a TLS context could not be made or a session failed. `description` is one line for the log, with
/// OpenSSL's reason (e.g. "certificate verification failed: certificate has expired").
public struct TLSError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Certificates, key or CA bundle could not be loaded (a configuration problem).
        case configuration
        /// The handshake failed: protocol error, a certificate that does not verify, no common version.
        case handshake
        /// Bytes after the handshake that are not valid TLS records.
        case protocolError
        /// More buffered than the session's bounds allow.
        case overflow
        /// The session was used after it closed or failed.
        case closed
    }
    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// Calls `body` with an error buffer for the C layer and returns its result and the message written.
func withErrorBuffer<R>(_ body: (UnsafeMutablePointer<CChar>, Int) -> R) -> (R, String) {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buf in
        buf[0] = 0
        let r = body(buf.baseAddress!, buf.count)
        buf[buf.count - 1] = 0
        // Most calls succeed: no String for an empty message.
        return (r, buf[0] == 0 ? "" : String(cString: buf.baseAddress!))
    }
}
