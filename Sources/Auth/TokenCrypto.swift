import CLibCrypto
import Codec

/// The SHA-256 digest of a bearer token: what a tokens file stores and what a node compares, never the token.
///
/// Guarantees: always 32 bytes; `matches` takes the same time whatever the bytes (OpenSSL's `CRYPTO_memcmp`).
public struct TokenDigest: Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// The digest of a presented token's bytes.
    public init(token: some Collection<UInt8>) {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let input = Array(token)
        input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in _ = SHA256(i.baseAddress, i.count, o.baseAddress) }
        }
        bytes = out
    }

    /// Parses 64 hex digits (either case); nil for anything else.
    public init?(hex: some StringProtocol) {
        let u = Array(hex.utf8)
        guard u.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var i = 0
        while i < 64 {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        bytes = out
    }

    /// Lower-case hex, as written in a tokens file.
    public var hex: String { lowerHex(bytes) }

    public var description: String { "sha256:" + hex }

    /// Constant-time equality.
    public func matches(_ other: TokenDigest) -> Bool {
        precondition(bytes.count == 32 && other.bytes.count == 32, "a token digest is 32 bytes")
        return bytes.withUnsafeBufferPointer { a in
            other.bytes.withUnsafeBufferPointer { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, 32) == 0 }
        }
    }
}

/// New bearer tokens: `sutra_` followed by 43 base64url characters of 32 bytes from OpenSSL's OS-seeded
/// generator (256 bits: not guessable, so a plain SHA-256 of it is a safe thing to store).
public enum TokenGenerator {
    public static let prefix = "sutra_"

    /// A fresh token, or nil if the random generator fails (it never returns weak bytes).
    public static func newToken() -> String? {
        var raw = [UInt8](repeating: 0, count: 32)
        let ok = raw.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, 32) }
        guard ok == 1 else { return nil }
        return prefix + base64url(raw)
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for k in 0...n { out.append(alphabet[Int((v >> (18 - 6 * UInt32(k))) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
