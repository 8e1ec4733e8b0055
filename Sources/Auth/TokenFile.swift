#if canImport(Glibc)
import Glibc
#endif

/// One client token a node accepts: who it is (`name`, shown in logs), what it may do (`role`), and the SHA-256
/// of the token itself (the token is never stored).
public struct TokenEntry: Sendable {
    public let name: String
    public let role: Role
    public let digest: TokenDigest

    public init(name: String, role: Role, digest: TokenDigest) {
        precondition(TokenFile.isValidName(name), "token name '\(name)' is not valid")
        self.name = name
        self.role = role
        self.digest = digest
    }
}

/// Why a tokens file was refused: the file, and the line when one is at fault.
public struct TokenFileProblem: Error, CustomStringConvertible {
    public let path: String
    public let line: Int?
    public let message: String

    public var description: String { line.map { "\(path) line \($0): \(message)" } ?? "\(path): \(message)" }
}

/// The tokens file (`--tokens-file`): text, one token per line as `NAME ROLE sha256:HEX`; `#` starts a comment
/// line; blank lines are ignored.
///
/// Guarantees: a file is accepted whole or refused whole, with the first problem's line number; at most
/// `maxBytes` are ever read and at most `maxTokens` entries accepted; names are unique and made of
/// `[A-Za-z0-9._@-]`, 1…64 characters; an entry that looks like a plaintext token instead of a digest is refused.
public enum TokenFile {
    public static let maxBytes = 1 << 20
    public static let maxTokens = 1000
    public static let header = "# Sutra client tokens: NAME ROLE sha256:HEX-OF-THE-TOKEN, one per line. Add with `sutra tokens add`.\n"

    public static func isValidName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...64).contains(u.count) else { return false }
        return u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x40 || c == 0x2D
        }
    }

    /// The line an entry is written as (no newline).
    public static func line(for e: TokenEntry) -> String { "\(e.name) \(e.role) sha256:\(e.digest.hex)" }

    /// Parses a whole file's bytes.
    public static func parse(_ bytes: [UInt8], path: String) throws(TokenFileProblem) -> [TokenEntry] {
        guard bytes.count <= maxBytes else {
            throw TokenFileProblem(path: path, line: nil, message: "larger than \(maxBytes) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TokenFileProblem(path: path, line: nil, message: "not UTF-8 text")
        }
        var entries: [TokenEntry] = []
        var names = Set<String>()
        var lineNo = 0
        // "\r\n" is one Character in Swift: split on both line ends.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            func bad(_ m: String) -> TokenFileProblem { TokenFileProblem(path: path, line: lineNo, message: m) }
            guard fields.count == 3 else {
                throw bad("expected NAME ROLE sha256:HEX, found \(fields.count) field\(fields.count == 1 ? "" : "s")")
            }
            let name = String(fields[0])
            guard isValidName(name) else { throw bad("name '\(name.prefix(80))' must be 1…64 characters of A-Z a-z 0-9 . _ @ -") }
            guard let role = Role(name: String(fields[1])) else { throw bad("role '\(fields[1].prefix(80))' is not read, write or admin") }
            let h = fields[2]
            if h.hasPrefix(TokenGenerator.prefix) {
                throw bad("this looks like a plaintext token; the file holds only sha256:HEX digests (use `sutra tokens add`)")
            }
            guard h.hasPrefix("sha256:"), let digest = TokenDigest(hex: h.dropFirst(7)) else {
                throw bad("the token hash must be sha256: followed by 64 hex digits")
            }
            guard names.insert(name).inserted else { throw bad("name '\(name)' appears twice") }
            guard entries.count < maxTokens else { throw bad("more than \(maxTokens) tokens") }
            entries.append(TokenEntry(name: name, role: role, digest: digest))
        }
        return entries
    }

    /// Reads and parses `path` (reading at most `maxBytes + 1` bytes).
    public static func load(path: String) throws(TokenFileProblem) -> [TokenEntry] {
        try parse(try read(path), path: path)
    }

    static func read(_ path: String) throws(TokenFileProblem) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TokenFileProblem(path: path, line: nil, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count <= maxBytes {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TokenFileProblem(path: path, line: nil, message: "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Appends `entry` to `path`, creating the file (mode 0600, with a header comment) if it does not exist.
    /// Refuses a name already in the file, and a file that does not parse.
    public static func append(_ entry: TokenEntry, to path: String) throws(TokenFileProblem) {
        var existing: [UInt8] = []
        if access(path, F_OK) == 0 {
            existing = try read(path)
            let entries = try parse(existing, path: path)
            if entries.contains(where: { $0.name == entry.name }) {
                throw TokenFileProblem(path: path, line: nil, message: "a token named '\(entry.name)' already exists")
            }
            if entries.count >= maxTokens {
                throw TokenFileProblem(path: path, line: nil, message: "already holds \(maxTokens) tokens, the limit")
            }
        }
        var text = existing.isEmpty ? header : ""
        if let last = existing.last, last != 0x0A { text += "\n" }
        text += line(for: entry) + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TokenFileProblem(path: path, line: nil, message: "cannot open for appending: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TokenFileProblem(path: path, line: nil, message: "cannot write: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw TokenFileProblem(path: path, line: nil, message: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
