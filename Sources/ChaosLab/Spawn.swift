import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum ExitOutcome: Sendable, Equatable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// A signal ended it.
    case signaled(Int32)
    /// It is no longer our child (already reaped elsewhere); nothing more is known.
    case vanished

    public var description: String {
        switch self {
        case .exited(let c): return "exited \(c)"
        case .signaled(let s): return "killed by signal \(s)"
        case .vanished: return "gone (reaped elsewhere)"
        }
    }
}

/// posix_spawn with the settings every child here needs: an empty signal mask and default dispositions for
/// the signals we send. The mask matters: a child inherits its parent thread's mask, and Swift's concurrency
/// threads block signals, so a node started from async code used to ignore SIGTERM (see `prepareProcessSignals`
/// in Sources/Node/Config/NodeCommand.swift and `spawnDetached` in Sources/CLI/ClusterCommands.swift).
public enum Spawner {
    /// `newSession`: the child gets its own session (a terminal's Ctrl-C or hang-up does not reach it).
    public static func spawn(_ argv: [String], actions: inout posix_spawn_file_actions_t, searchPath: Bool,
                             newSession: Bool = false) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCONT] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        // POSIX_SPAWN_SETSID (0x80) is hidden behind _GNU_SOURCE.
        posix_spawnattr_setflags(&attr, Int16((newSession ? 0x80 : 0) | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = searchPath ? posix_spawnp(&pid, argv[0], &actions, &attr, cargs, environ)
                            : posix_spawn(&pid, argv[0], &actions, &attr, cargs, environ)
        guard rc == 0 else { throw LabError.spawn(argv[0], String(cString: strerror(rc))) }
        return pid
    }
}

/// Reaps children by pid with a bounded wait.
enum Reaper {
    /// The child's outcome if it has ended (reaping it), nil while it runs.
    static func poll(_ pid: pid_t) -> ExitOutcome? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return decode(status) }
            if r == 0 { return nil }
            if errno == EINTR { continue }
            return .vanished
        }
    }

    /// Waits up to `timeout` seconds for the child to end; nil if it still runs.
    static func wait(_ pid: pid_t, timeout: Double) -> ExitOutcome? {
        let deadline = Monotonic.seconds() + timeout
        while true {
            if let o = poll(pid) { return o }
            if Monotonic.seconds() >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// SIGKILL, then wait (bounded: a process stuck in the kernel may take a moment). Never returns nil for
    /// a process that SIGKILL can end.
    @discardableResult
    static func killAndReap(_ pid: pid_t, timeout: Double = 10) -> ExitOutcome? {
        kill(pid, SIGKILL)
        return wait(pid, timeout: timeout)
    }

    private static func decode(_ status: Int32) -> ExitOutcome {
        let sig = status & 0x7f
        return sig == 0 ? .exited((status >> 8) & 0xff) : .signaled(sig)
    }
}
