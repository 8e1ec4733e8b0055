#if canImport(Glibc)
import Glibc
#endif
import Logging
import NodeCore

/// The data directory's identity file, `DATA/identity` (the format is `DataIdentity`'s), and the start-up check
/// built on it.
///
/// Guarantees: the file is written atomically (temporary file, fsync, rename, directory fsync), mode 0600, so a
/// crash leaves the old identity or the new one; a file that cannot be decoded is refused and named (path,
/// offset, reason), never rewritten; a directory from before identity files (a WAL but no identity) is adopted:
/// the identity is recorded from the flags once, after the WAL opened.
public enum DataIdentityFile {
    public static func path(in dataDir: String) -> String { dataDir + "/identity" }

    /// What the start-up check found.
    public enum Check: Equatable {
        /// The recorded identity matches the flags.
        case matches
        /// The recorded identity matches but was written by older formats: record the current ones.
        case upgrade(DataIdentity)
        /// No identity and no data: a new directory (the identity is recorded before anything else is written).
        case fresh
        /// No identity but a WAL: a directory from before identity files; record it once the WAL opened.
        case adopt
    }

    /// Compares the directory's identity with the flags. Throws `ConfigurationRefusal` on a disagreement or a
    /// damaged file, `NodeStartError` if the file cannot be read at all.
    public static func check(dataDir: String, config: NodeConfig) throws -> Check {
        let p = path(in: dataDir)
        let wanted = DataIdentity.of(config)
        guard let bytes = try readFile(p) else {
            return hasWAL(dataDir) ? .adopt : .fresh
        }
        switch DataIdentity.decode(bytes) {
        case .failure(let e):
            throw ConfigurationRefusal("data directory identity file \(p) is damaged at byte offset \(e.offset): \(e.reason) (restore it, or wipe the data directory and let the node rejoin: docs/OPERATIONS.md)")
        case .success(let recorded):
            if let line = recorded.refusal(against: wanted, directory: dataDir) { throw ConfigurationRefusal(line) }
            return recorded == wanted ? .matches : .upgrade(wanted)
        }
    }

    private static func hasWAL(_ dataDir: String) -> Bool {
        guard let d = opendir(dataDir + "/wal") else { return false }
        defer { closedir(d) }
        while let ent = readdir(d) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name.hasSuffix(".wal") { return true }
        }
        return false
    }

    /// The identity recorded in `dataDir` (nil: none recorded yet). Throws on an unreadable or damaged file.
    public static func read(dataDir: String) throws -> DataIdentity? {
        let p = path(in: dataDir)
        guard let bytes = try readFile(p) else { return nil }
        switch DataIdentity.decode(bytes) {
        case .success(let id): return id
        case .failure(let e): throw NodeStartError("data directory identity file \(p) is damaged at byte offset \(e.offset): \(e.reason)")
        }
    }

    /// The file's bytes, nil if it does not exist. At most `DataIdentity.maxFileBytes + 1` bytes are read.
    static func readFile(_ p: String) throws -> [UInt8]? {
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw NodeStartError("cannot open \(p): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let cap = DataIdentity.maxFileBytes + 1
        var buf = [UInt8](repeating: 0, count: cap)
        var n = 0
        while n < cap {
            let r = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + n, cap - n) }
            if r < 0 {
                if errno == EINTR { continue }
                throw NodeStartError("cannot read \(p): \(String(cString: strerror(errno)))")
            }
            if r == 0 { break }
            n += r
        }
        return Array(buf[0..<n])
    }

    /// Records `identity` atomically (`DurableFile`: a 0600 temporary file fsynced, renamed, directory fsynced).
    public static func write(_ identity: DataIdentity, dataDir: String) throws {
        do { try DurableFile.write(identity.encode(), to: path(in: dataDir)) } catch { throw NodeStartError(error.description) }
    }
}
