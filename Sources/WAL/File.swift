#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A raw file descriptor with the few calls the WAL needs. Files it creates are mode 0600 (directories 0700). Every failure becomes a `WALError.io` naming the path.
/// Not thread-safe by itself: the engine guarantees one writer at a time (see `PreparedWrite`).
final class RawFile: @unchecked Sendable {
    let path: String
    private(set) var fd: Int32

    init(path: String, create: Bool) throws(WALError) {
        self.path = path
        let flags = O_RDWR | O_CLOEXEC | (create ? (O_CREAT | O_EXCL) : 0)
        fd = open(path, flags, 0o600)   // data files: owner only
        if fd < 0 { throw .io(op: create ? "create" : "open", path: path, errno: errno) }
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    func size() throws(WALError) -> Int {
        var st = stat()
        if fstat(fd, &st) != 0 { throw .io(op: "stat", path: path, errno: errno) }
        return Int(st.st_size)
    }

    func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(WALError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(op: "write", path: path, errno: errno)
            }
            done += n
        }
    }

    func pwriteAll(_ bytes: [UInt8], at offset: Int) throws(WALError) {
        var failure: WALError?
        bytes.withUnsafeBytes { b in
            do throws(WALError) { try pwriteAll(b, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func readAll() throws(WALError) -> [UInt8] {
        let n = try size()
        var out = [UInt8](repeating: 0, count: n)
        var done = 0
        while done < n {
            let r = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, n - done, off_t(done)) }
            if r < 0 {
                if errno == EINTR { continue }
                throw .io(op: "read", path: path, errno: errno)
            }
            if r == 0 { break }
            done += r
        }
        if done < n { out.removeSubrange(done...) }
        return out
    }

    func datasync() throws(WALError) {
        if fdatasync(fd) != 0 { throw .io(op: "fdatasync", path: path, errno: errno) }
    }

    func sync() throws(WALError) {
        if fsync(fd) != 0 { throw .io(op: "fsync", path: path, errno: errno) }
    }

    func truncate(to size: Int) throws(WALError) {
        if ftruncate(fd, off_t(size)) != 0 { throw .io(op: "truncate", path: path, errno: errno) }
    }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }
}

/// File-system helpers: directory fsync (after create/rename), listing, removal.
enum FS {
    static func syncDirectory(_ dir: String) throws(WALError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw .io(op: "open directory", path: dir, errno: errno) }
        defer { _ = Glibc.close(fd) }
        if fsync(fd) != 0 { throw .io(op: "fsync directory", path: dir, errno: errno) }
    }

    static func makeDirectory(_ dir: String) throws(WALError) {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw .io(op: "mkdir", path: dir, errno: errno) }
    }

    static func list(_ dir: String) throws(WALError) -> [String] {
        guard let d = opendir(dir) else { throw .io(op: "list", path: dir, errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let ent = readdir(d) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func remove(_ path: String) throws(WALError) {
        if unlink(path) != 0 && errno != ENOENT { throw .io(op: "remove", path: path, errno: errno) }
    }

    static func rename(_ from: String, _ to: String) throws(WALError) {
        if Glibc.rename(from, to) != 0 { throw .io(op: "rename to \(to)", path: from, errno: errno) }
    }
}
