import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether this machine can host a lab (and why not), and cleanup after labs whose process died.
extension NetworkLab {
    /// The answer of `NetworkLab.isAvailable()`.
    public struct Availability: Sendable, CustomStringConvertible {
        public var available: Bool
        /// Why not (or what was probed, when available).
        public var reason: String
        public var description: String { (available ? "available: " : "unavailable: ") + reason }
    }

    private static let probeResult = ProbeCache()

    /// Probes (once per process) whether network namespaces, veth pairs and a bridge can be created: needs
    /// root and iproute2. The probe creates and removes a namespace, a veth pair and a bridge.
    public static func isAvailable() -> Availability {
        probeResult.get { probe() }
    }

    private static func probe() -> Availability {
        guard geteuid() == 0 else {
            return Availability(available: false, reason: "not root (euid \(geteuid())): creating network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN")
        }
        let v = Shell.run(["ip", "-V"])
        guard v.ok else { return Availability(available: false, reason: "iproute2's `ip` is not usable: \(v)") }
        let lab = LabNames.nextLab()
        let ns = LabNames.namespace(lab: lab, node: 1)
        let tag = LabNames.tag(lab: lab)
        let veth = "sv\(tag)-1", bridge = "sb\(tag)"
        defer {
            _ = Shell.run(["ip", "link", "del", veth])
            _ = Shell.run(["ip", "link", "del", bridge])
            _ = Shell.run(["ip", "netns", "del", ns])
        }
        let steps: [[String]] = [
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", "sp\(tag)-1"],
            ["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "-n", ns, "route", "add", "blackhole", "10.255.255.1/32"],
        ]
        for s in steps {
            let r = Shell.run(s)
            guard r.ok else { return Availability(available: false, reason: "`\(s.joined(separator: " "))` failed: \(r)") }
        }
        return Availability(available: true, reason: "root, \(v.output.trimmingCharacters(in: .whitespacesAndNewlines)); namespace, veth, bridge and blackhole route created and removed")
    }

    /// Removes namespaces, veths and bridges named by a lab (see `LabNames`) whose creating process no longer
    /// exists — what a test process killed mid-run leaves behind. Never touches a live process's lab, nor a
    /// namespace that still holds processes (it kills nothing). Returns the names removed.
    @discardableResult
    public static func removeStale() -> [String] {
        guard geteuid() == 0 else { return [] }
        func dead(_ name: String) -> Bool {
            guard let pid = LabNames.creatorPID(of: name), pid > 1 else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        var removed: [String] = []
        let links = Shell.run(["ip", "-o", "link", "show"]).output.split(separator: "\n")
        for line in links {
            // "7: sv2ryls-1-3@if6: <BROADCAST,…> … link/ether …" ; the kind is in `ip -d` output, checked below.
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { continue }
            let name = String(fields[1].split(separator: "@").first ?? "").trimmingCharacters(in: CharacterSet(charactersIn: ":"))
            guard dead(name) else { continue }
            let kind = name.hasPrefix("sb") ? "bridge" : "veth"
            guard Shell.run(["ip", "-d", "link", "show", "dev", name]).output.contains("\n    \(kind) ") else { continue }
            if Shell.run(["ip", "link", "del", name]).ok { removed.append(name) }
        }
        for line in Shell.run(["ip", "netns", "list"]).output.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard dead(name) else { continue }
            // A namespace still holding processes (nodes orphaned by a crashed test) is left alone: deleting its
            // name would only hide them. `ip netns pids <name>` lists them.
            guard LabNames.pids(in: name).isEmpty else { continue }
            if Shell.run(["ip", "netns", "del", name]).ok { removed.append(name) }
        }
        return removed
    }
}

/// The probe's answer, computed once.
private final class ProbeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var value: NetworkLab.Availability?

    func get(_ compute: () -> NetworkLab.Availability) -> NetworkLab.Availability {
        lock.withLock {
            if let value { return value }
            let v = compute()
            value = v
            return v
        }
    }
}
