#if canImport(Glibc)
import Glibc
#endif

/// Writing a small or large file so that a crash leaves either the old file or the whole new one: the bytes
/// to `<path>.tmp` (mode 0600, created afresh), fsync, rename over `path`, fsync of the directory. Used for the
/// data directory's identity and for backup files.
public enum DurableFile {
    /// Why a durable write failed: the step, the file and the system's reason.
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func write(_ bytes: [UInt8], to path: String) throws(WriteError) {
        let tmp = path + ".tmp"
        func fail(_ op: String, _ p: String) -> WriteError {
            WriteError(description: "cannot \(op) \(p): \(String(cString: strerror(errno)))")
        }
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw fail("create", tmp) }
        var done = 0
        while done < bytes.count {
            let r = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if r < 0 {
                if errno == EINTR { continue }
                let e = fail("write", tmp); close(fd); throw e
            }
            done += r
        }
        if fsync(fd) != 0 { let e = fail("fsync", tmp); close(fd); throw e }
        close(fd)
        if rename(tmp, path) != 0 { throw fail("rename to \(path)", tmp) }
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd < 0 { throw fail("open directory", dir) }
        defer { close(dfd) }
        if fsync(dfd) != 0 { throw fail("fsync directory", dir) }
    }
}
