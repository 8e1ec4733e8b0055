import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Where a node's log lines go and how they look, for the two ways operators collect them.
///
/// - **journald** (`--log-format journald`, chosen by `auto` when stderr is the journal: systemd sets
///   `JOURNAL_STREAM` to its device and inode): each line starts with its syslog priority (`<4>` for a warning),
///   which journald turns into the entry's priority (`journalctl -p warning`), and carries no timestamp of its
///   own (the journal stamps it).
/// - **text** (otherwise): `2026-12-03T13:44:57.123Z warning sutra.node1: message key=value`, UTC, one line per
///   event, to stderr or, with `--log-file`, appended to that file (created 0600) and reopened on SIGHUP, so
///   logrotate's `postrotate` can send `kill -HUP` (or `systemctl reload`) and no line is lost or written to the
///   rotated file.
///
/// Guarantees: one event is one line: a newline or other control character inside a message or a value (which
/// a peer or a client may have chosen) is escaped, so no input can forge a log line. Writes from any thread are
/// whole lines (one `write` each, under a lock).
public final class LogOutput: @unchecked Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case auto, text, journald
    }

    public let format: Format
    public let path: String?
    private let lock = NSLock()
    private var fd: Int32

    /// `format` `.auto` is resolved here: journald when stderr is the journal and no file is given.
    public init(format: Format, path: String?, environment: [String: String]) throws {
        self.path = path
        if let path {
            fd = try LogOutput.open(path)
        } else {
            fd = STDERR_FILENO
        }
        switch format {
        case .auto: self.format = path == nil && LogOutput.stderrIsJournal(environment) ? .journald : .text
        default: self.format = format
        }
    }

    deinit { if path != nil { close(fd) } }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LogOutputError("cannot open the log file \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// systemd's `JOURNAL_STREAM` is `device:inode` of the stream it connected stderr to.
    static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let v = environment["JOURNAL_STREAM"] else { return false }
        let parts = v.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// Reopens the log file (after logrotate moved it away); nil on success or without a file, else why not
    /// (the old file stays in use).
    public func reopen() -> String? {
        guard let path else { return nil }
        do {
            let new = try LogOutput.open(path)
            lock.lock()
            let old = fd
            fd = new
            lock.unlock()
            close(old)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The line for one event, without its trailing newline.
    func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, now: timespec) -> String {
        var text = LogOutput.escaped(message)
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { text += " \(LogOutput.escaped(k))=\(LogOutput.escaped("\(v)"))" }
        switch format {
        case .journald:
            return "<\(LogOutput.priority(level))>\(label): \(text)"
        case .text, .auto:
            return "\(LogOutput.timestamp(now)) \(level) \(label): \(text)"
        }
    }

    func write(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var bytes = Array(line(level: level, label: label, message: message, metadata: metadata, now: now).utf8)
        bytes.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }   // a full disk or a closed stream: the line is lost, the node goes on
            done += n
        }
    }

    /// syslog priorities: critical 2, error 3, warning 4, notice 5, info 6, debug and trace 7.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: return 2
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug, .trace: return 7
        }
    }

    /// Control characters (newlines included) and backslashes escaped: one event stays one line.
    static func escaped(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    /// `2026-12-03T13:44:57.123Z`.
    static func timestamp(_ t: timespec) -> String {
        var secs = t.tv_sec
        var tm = tm()
        gmtime_r(&secs, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(t.tv_nsec / 1_000_000))
    }

    /// A swift-log handler writing to this output.
    public func handler(label: String, level: Logger.Level) -> LogHandler {
        var h = OutputLogHandler(label: label, output: self)
        h.logLevel = level
        return h
    }
}

/// Why the log output could not be set up (one line for the configuration refusal).
public struct LogOutputError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// swift-log's handler for `LogOutput`.
struct OutputLogHandler: LogHandler {
    let label: String
    let output: LogOutput
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, output: LogOutput) {
        self.label = label
        self.output = output
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let all = explicit.map { metadata.merging($0) { $1 } } ?? metadata
        output.write(level: level, label: label, message: message.description, metadata: all)
    }
}
