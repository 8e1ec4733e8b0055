/// Why a lab, process or fault operation failed; each case carries enough text to act on.
public enum LabError: Error, Sendable, CustomStringConvertible {
    /// A command (`ip …`, `tc …`) exited non-zero: the command line and what it printed.
    case command(String, String)
    /// A process could not be started.
    case spawn(String, String)
    /// Network namespaces (or something else the lab needs) cannot be used here.
    case unavailable(String)
    /// A node did not become ready / did not stop / answered wrongly in time.
    case timeout(String)
    /// A node process ended on its own.
    case nodeExited(Int, String)
    /// An argument names something the lab does not have (node id, fault kind…).
    case invalid(String)

    public var description: String {
        switch self {
        case .command(let c, let r): return "`\(c)` failed (\(r))"
        case .spawn(let b, let e): return "cannot start \(b): \(e)"
        case .unavailable(let why): return "unavailable: \(why)"
        case .timeout(let what): return "timed out: \(what)"
        case .nodeExited(let id, let tail): return "node \(id) exited; its log ends with:\n\(tail)"
        case .invalid(let what): return "invalid: \(what)"
        }
    }
}
