import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished command said: its exit status (-1 when it was killed or could not start) and its stdout
/// and stderr together.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var output: String
    public var ok: Bool { status == 0 }
    public var description: String { "exit \(status): \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
}

/// Runs short administrative commands (`ip`, `tc`) synchronously, with a bound on their running time: a
/// command still running after `timeout` seconds is killed and reaped. The child gets an empty signal mask.
public enum Shell {
    /// Runs `argv` (argv[0] is looked up on `PATH`), returns its status and combined output.
    public static func run(_ argv: [String], timeout: Double = 10) -> CommandResult {
        precondition(!argv.isEmpty)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return CommandResult(status: -1, output: "pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        let pid: pid_t
        do {
            pid = try Spawner.spawn(argv, actions: &actions, searchPath: true)
        } catch {
            close(readEnd)
            close(writeEnd)
            return CommandResult(status: -1, output: "\(error)")
        }
        close(writeEnd)
        defer { close(readEnd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Monotonic.seconds() + timeout
        var timedOut = false
        while true {
            let left = deadline - Monotonic.seconds()
            if left <= 0 { timedOut = true; break }
            var p = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        if timedOut { kill(pid, SIGKILL) }
        let outcome = Reaper.wait(pid, timeout: timedOut ? 5 : max(1, deadline - Monotonic.seconds()))
        var text = String(decoding: out, as: UTF8.self)
        if timedOut { text += "\n(killed after \(timeout) s)" }
        switch outcome {
        case .exited(let code)?: return CommandResult(status: timedOut ? -1 : code, output: text)
        default:
            if outcome == nil { kill(pid, SIGKILL); _ = Reaper.wait(pid, timeout: 5) }
            return CommandResult(status: -1, output: text)
        }
    }

    /// Runs `argv` and throws `LabError.command` with its output unless it exits 0.
    @discardableResult
    public static func check(_ argv: [String], timeout: Double = 10) throws -> String {
        let r = run(argv, timeout: timeout)
        guard r.ok else { throw LabError.command(argv.joined(separator: " "), r.description) }
        return r.output
    }
}

/// CLOCK_MONOTONIC readings (not affected by wall-clock changes).
public enum Monotonic {
    /// Nanoseconds since an arbitrary fixed point (boot).
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The same reading in seconds.
    public static func seconds() -> Double { Double(nanoseconds()) / 1e9 }
}
