import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Names of the namespaces and interfaces labs create, unique per process and lab, and the reverse: which
/// process made a name (to clean up after a lab whose process died without tearing down).
///
/// Namespace `sutra-<pid>-<lab>-<node>`; bridge `sb<tag>`; veth `sv<tag>-<node>` (its other end is `sp<tag>-<node>`
/// until it moves into the namespace as `eth0`) where `tag` is
/// `<pid base 36>-<lab base 36>` (interface names are limited to 15 bytes).
public enum LabNames {
    private static let counter = LabCounter()

    static func nextLab() -> Int { counter.next() }

    static func tag(lab: Int, pid: Int32 = getpid()) -> String {
        "\(String(pid, radix: 36))-\(String(lab, radix: 36))"
    }

    static func namespace(lab: Int, node: Int, pid: Int32 = getpid()) -> String { "sutra-\(pid)-\(lab)-\(node)" }

    /// The pid that created a lab namespace or interface, or nil for a name no lab makes.
    public static func creatorPID(of name: String) -> Int32? {
        if name.hasPrefix("sutra-") {
            let parts = name.dropFirst(6).split(separator: "-")
            guard parts.count == 3, parts.allSatisfy({ Int($0) != nil }) else { return nil }
            return Int32(parts[0])
        }
        if name.hasPrefix("sb") || name.hasPrefix("sv") || name.hasPrefix("sp") {
            let parts = name.dropFirst(2).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == (name.hasPrefix("sb") ? 2 : 3), let pid = Int32(parts[0], radix: 36),
                  Int(parts[1], radix: 36) != nil, parts.count == 2 || Int(parts[2]) != nil else { return nil }
            return pid
        }
        return nil
    }

    /// The processes inside a named namespace (empty if none, or if it does not exist).
    static func pids(in namespace: String) -> [Int32] {
        let r = Shell.run(["ip", "netns", "pids", namespace])
        guard r.ok else { return [] }
        return r.output.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
    }

    /// Whether a namespace of that name is registered (`/run/netns/<name>`).
    static func namespaceExists(_ name: String) -> Bool {
        Shell.run(["ip", "netns", "list"]).output.split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == name }
    }

    /// Whether an interface of that name exists in the root namespace.
    static func interfaceExists(_ name: String) -> Bool {
        Shell.run(["ip", "link", "show", "dev", name]).ok
    }
}

/// A process-wide lab counter.
private final class LabCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}
