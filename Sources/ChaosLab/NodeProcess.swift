import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where and how one `sutra-node` runs: its address and ports, data directory, log file, namespace (nil: the
/// test process's own, e.g. loopback) and its full command-line arguments.
public struct NodeSpec: Sendable, Equatable {
    public var id: Int
    /// The address it listens on and advertises (its namespace address in a lab, 127.0.0.1 otherwise).
    public var host: String
    public var clientPort: Int
    public var httpPort: Int
    public var peerPort: Int
    public var dataDir: String
    public var logPath: String
    public var namespace: String?
    /// Everything after the binary on its command line.
    public var arguments: [String]

    /// `host:port` of the binary client protocol (what the SDK is given).
    public var clientEndpoint: String { "\(host):\(clientPort)" }
}

/// One `sutra-node` process, controlled by pid: started (inside its namespace with `ip netns exec`, which
/// execs the node in place so the pid we hold is the node's), killed, paused, resumed, stopped gracefully, and
/// always reaped. Its stdout and stderr are appended to `spec.logPath`, with a marker line per start.
/// Thread-safe: every operation takes the process lock.
public final class NodeProcess: @unchecked Sendable {
    /// What the process is doing, as far as this object knows.
    public enum State: String, Sendable {
        case stopped, running, paused
    }

    public var spec: NodeSpec { lock.withLock { currentSpec } }
    public let binary: String
    public let id: Int
    private var currentSpec: NodeSpec

    private let lock = NSLock()
    private var currentPID: pid_t?
    private var paused = false
    private var starts = 0
    private var endings: [ExitOutcome] = []

    public init(binary: String, spec: NodeSpec) {
        self.binary = binary
        currentSpec = spec
        id = spec.id
    }

    /// Changes the command line of the next start (the node must be stopped).
    public func setArguments(_ arguments: [String]) throws {
        try lock.withLock {
            guard currentPID == nil else { throw LabError.invalid("node \(id) runs: its command line is not changed under it") }
            currentSpec.arguments = arguments
        }
    }

    deinit {
        if let pid = currentPID { Reaper.killAndReap(pid) }
    }

    /// The pid while started (running or paused).
    public var pid: pid_t? { lock.withLock { currentPID } }

    public var state: State {
        lock.withLock { currentPID == nil ? .stopped : (paused ? .paused : .running) }
    }

    /// How each earlier run of this node ended, oldest first.
    public var exitHistory: [ExitOutcome] { lock.withLock { endings } }

    /// Starts the node (it must be stopped). Returns once the process exists, not once it is ready.
    public func start() throws {
        try lock.withLock {
            guard currentPID == nil else { throw LabError.invalid("node \(id) is already running (pid \(currentPID!))") }
            starts += 1
            let marker = "--- chaoslab: start #\(starts) of node \(id) at \(Date()) ---\n"
            if !FileManager.default.fileExists(atPath: currentSpec.logPath) {
                _ = FileManager.default.createFile(atPath: currentSpec.logPath, contents: nil)
            }
            if let h = FileHandle(forWritingAtPath: currentSpec.logPath) {
                h.seekToEndOfFile()
                h.write(Data(marker.utf8))
                try? h.close()
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, currentSpec.logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let argv = (currentSpec.namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [binary] + currentSpec.arguments
            currentPID = try Spawner.spawn(argv, actions: &actions, searchPath: true)
            paused = false
        }
    }

    /// If the process has ended on its own, reaps it and returns how; nil while it runs (or when stopped).
    public func checkExited() -> ExitOutcome? {
        lock.withLock {
            guard let pid = currentPID, let o = Reaper.poll(pid) else { return nil }
            ended(o)
            return o
        }
    }

    /// SIGKILL and reap (bounded). Returns how it ended, nil if it was not running.
    @discardableResult
    public func kill9(timeout: Double = 10) -> ExitOutcome? {
        lock.withLock {
            guard let pid = currentPID else { return nil }
            let o = Reaper.killAndReap(pid, timeout: timeout) ?? .vanished
            ended(o)
            return o
        }
    }

    /// Graceful stop: SIGCONT if paused, SIGTERM, wait up to `timeout` seconds, then SIGKILL. Returns how it
    /// ended (`.exited(0)` for a clean graceful stop), nil if it was not running.
    @discardableResult
    public func terminate(timeout: Double = 10) -> ExitOutcome? {
        lock.withLock {
            guard let pid = currentPID else { return nil }
            if paused { kill(pid, SIGCONT) }
            kill(pid, SIGTERM)
            let o = Reaper.wait(pid, timeout: timeout) ?? Reaper.killAndReap(pid) ?? .vanished
            ended(o)
            return o
        }
    }

    /// SIGSTOP; returns once the kernel reports the process stopped (bounded to 2 s).
    public func pause() throws {
        try lock.withLock {
            guard let pid = currentPID else { throw LabError.invalid("node \(id) is not running") }
            guard !paused else { return }
            kill(pid, SIGSTOP)
            paused = true
            let deadline = Monotonic.seconds() + 2
            while ProcState.of(pid) != "T" && ProcState.of(pid) != "t" {
                if Monotonic.seconds() > deadline { throw LabError.timeout("node \(id) (pid \(pid)) did not stop after SIGSTOP (state \(ProcState.of(pid) ?? "?"))") }
                usleep(2_000)
            }
        }
    }

    /// SIGCONT.
    public func resume() throws {
        try lock.withLock {
            guard let pid = currentPID else { throw LabError.invalid("node \(id) is not running") }
            kill(pid, SIGCONT)
            paused = false
        }
    }

    /// The last `bytes` of its log.
    public func logTail(_ bytes: Int = 4000) -> String {
        guard let h = FileHandle(forReadingAtPath: spec.logPath) else { return "(no log at \(spec.logPath))" }
        defer { try? h.close() }
        let size = h.seekToEndOfFile()
        h.seek(toFileOffset: size > UInt64(bytes) ? size - UInt64(bytes) : 0)
        return String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
    }

    private func ended(_ o: ExitOutcome) {
        endings.append(o)
        currentPID = nil
        paused = false
    }
}

/// The one-letter state of a process in /proc/<pid>/stat (R, S, D, T, Z…).
enum ProcState {
    static func of(_ pid: pid_t) -> String? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return nil }
        return s[s.index(after: close)...].split(separator: " ").first.map(String.init)
    }
}
