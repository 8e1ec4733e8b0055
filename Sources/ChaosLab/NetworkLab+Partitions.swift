/// Partitions as blackhole routes in the node namespaces (see `NetworkLab` for what that does to traffic).
extension NetworkLab: LinkCutter {
    public var mechanism: String { "network namespaces \(subnet) (blackhole routes)" }

    /// The directed links currently cut.
    public var blockedLinks: Set<DirectedLink> { lock.withLock { blocked } }

    /// Cuts one direction: packets from `from` to `to` are dropped (a blackhole route to `to`'s address in
    /// `from`'s namespace). Cutting an already cut link does nothing.
    public func block(_ link: DirectedLink) throws {
        try lock.withLock {
            guard !destroyed else { throw LabError.invalid("the lab was destroyed") }
            guard !blocked.contains(link) else { return }
            guard let src = members[link.from], let dst = members[link.to], link.from != link.to else {
                throw LabError.invalid("link \(link) names a node that is not in this lab (nodes \(nodes))")
            }
            try Shell.check(["ip", "-n", src.namespace, "route", "add", "blackhole", "\(dst.address)/32"])
            blocked.insert(link)
        }
    }

    /// Restores one direction.
    public func unblock(_ link: DirectedLink) throws {
        try lock.withLock {
            guard blocked.contains(link), let src = members[link.from], let dst = members[link.to] else { return }
            try Shell.check(["ip", "-n", src.namespace, "route", "del", "blackhole", "\(dst.address)/32"])
            blocked.remove(link)
        }
    }

    /// Removes every cut link: the routes this lab added and then any blackhole route left in a node namespace.
    /// Returns the problems met (empty when the network is whole again).
    @discardableResult
    public func heal() -> [String] {
        lock.withLock {
            guard !destroyed else { return [] }
            var problems: [String] = []
            for link in blocked.sorted() {
                guard let src = members[link.from], let dst = members[link.to] else { continue }
                _ = Shell.run(["ip", "-n", src.namespace, "route", "del", "blackhole", "\(dst.address)/32"])
            }
            blocked = []
            for id in nodes {
                guard let m = members[id] else { continue }
                func left() -> String? {
                    let r = Shell.run(["ip", "-n", m.namespace, "route", "show", "type", "blackhole"])
                    return r.ok ? (r.output.contains("blackhole") ? r.output : nil) : r.description
                }
                guard left() != nil else { continue }
                _ = Shell.run(["ip", "-n", m.namespace, "route", "flush", "type", "blackhole"])
                if let still = left() { problems.append("\(m.namespace) still has blackhole routes: \(still)") }
            }
            return problems
        }
    }
}
