/// Why the log could not be opened, read or written. Every case names the file (and offset) involved.
public enum WALError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call failed.
    case io(op: String, path: String, errno: Int32)
    /// A damaged frame that is not the torn tail of the log: data after it is intact, so it cannot be a
    /// crash mid-write. The log is refused rather than silently dropping acknowledged data.
    case corruption(path: String, offset: Int, detail: String)
    /// A file written by a format version this build does not understand (refused, never skipped).
    case unsupportedVersion(path: String, version: UInt32)
    /// A snapshot file that fails its checksum or does not match its record.
    case badSnapshot(path: String, detail: String)

    /// The file system is out of space (or the user's quota): the write can be tried again, unchanged, once
    /// space returns (`PreparedWrite.perform` may be repeated after it throws this; see there).
    public var isOutOfSpace: Bool {
        if case .io(_, _, let e) = self { return e == ENOSPC || e == EDQUOT }
        return false
    }

    public var description: String {
        switch self {
        case .io(let op, let path, let e): return "WAL: \(op) \(path) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .corruption(let path, let offset, let detail): return "WAL: corruption in \(path) at byte offset \(offset): \(detail)"
        case .unsupportedVersion(let path, let v): return "WAL: \(path) has format version \(v); this build reads version \(WALFormat.version)"
        case .badSnapshot(let path, let detail): return "WAL: bad snapshot file \(path): \(detail)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
