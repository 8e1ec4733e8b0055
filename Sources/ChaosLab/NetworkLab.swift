import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private network for one cluster, built from Linux network namespaces (needs root):
///
/// - one namespace per node, named `sutra-<pid>-<lab>-<node>`, with loopback up and an `eth0` at
///   `10.x.y.<node>/24` (a random free private /24 per lab, so concurrent labs do not collide; see `SubnetPicker`);
/// - `eth0` is one end of a veth pair whose other end (`sv<tag>-<node>`) is enslaved to a bridge
///   (`sb<tag>`) in the **root** namespace; the bridge itself has `10.x.y.254` (`hostAddress`), so the test
///   process (the SDK client, in the root namespace) reaches every node's client and HTTP ports directly.
///
/// Partitions are blackhole routes inside node namespaces (no iptables/nft needed): cutting the link A→B
/// adds `blackhole <B's address>/32` in A's namespace, so A's packets to B are dropped while A's packets to the
/// host (10.x.y.254) and B's packets to A still flow. Client traffic is therefore never affected by a partition,
/// only node↔node traffic. On an established TCP connection a cut direction behaves like a silent drop
/// (retransmissions, then a timeout); a new connection from the cut side fails at once (EINVAL), one towards it
/// times out (its SYN-ACK is dropped).
///
/// `destroy()` (also called by `deinit`) removes every veth, namespace and the bridge this lab created; it is
/// idempotent and runs on `init`'s error paths too. Stop the processes running inside first: a namespace
/// lives on while a process is inside it.
public final class NetworkLab: @unchecked Sendable {
    /// One node's place in the lab.
    public struct Member: Sendable, Hashable {
        public var node: Int
        /// Network namespace name (for `ip netns exec`).
        public var namespace: String
        /// The node's address on the lab network.
        public var address: String
        /// The root-namespace end of its veth pair (the namespace end is `eth0`).
        public var hostVeth: String
    }

    /// Short per-lab tag used in interface names (`<pid base 36>-<lab counter base 36>`).
    public let tag: String
    /// The lab network, e.g. `10.213.41.0/24`.
    public let subnet: String
    /// The root namespace's address on the bridge: where client traffic to the nodes comes from.
    public let hostAddress: String
    /// The bridge interface in the root namespace.
    public let bridge: String
    /// Node ids, ascending.
    public let nodes: [Int]

    let lock = NSLock()
    var members: [Int: Member] = [:]
    // What was actually created (teardown removes exactly these).
    var createdNamespaces: [String] = []
    var createdVeths: [String] = []
    var createdBridge = false
    var destroyed = false
    var blocked = Set<DirectedLink>()
    var shaped = Set<Int>()

    /// Creates the bridge and one namespace per node (ids `1...nodes`). Throws `LabError.unavailable` when
    /// not root, after removing whatever was created.
    public convenience init(nodes: Int) throws {
        try self.init(nodeIDs: Array(1...max(1, nodes)))
    }

    /// Creates the bridge and one namespace per node id (1…253).
    public init(nodeIDs: [Int]) throws {
        guard geteuid() == 0 else { throw LabError.unavailable("network namespaces need root (euid is \(geteuid()))") }
        guard !nodeIDs.isEmpty, nodeIDs.allSatisfy({ (1...253).contains($0) }), Set(nodeIDs).count == nodeIDs.count else {
            throw LabError.invalid("node ids must be distinct and in 1…253: \(nodeIDs)")
        }
        let n = LabNames.nextLab()
        tag = LabNames.tag(lab: n)
        nodes = nodeIDs.sorted()
        bridge = "sb\(tag)"
        let net = try SubnetPicker.pick()
        subnet = net.description
        hostAddress = net.address(254)
        for id in nodes {
            members[id] = Member(node: id, namespace: LabNames.namespace(lab: n, node: id), address: net.address(UInt32(id)),
                                 hostVeth: "sv\(tag)-\(id)")
        }
        do {
            try build()
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    private func build() throws {
        try Shell.check(["ip", "link", "add", bridge, "type", "bridge"])
        createdBridge = true
        try Shell.check(["ip", "addr", "add", "\(hostAddress)/24", "dev", bridge])
        try Shell.check(["ip", "link", "set", bridge, "up"])
        for id in nodes {
            let m = members[id]!
            let inner = "sp\(tag)-\(id)"
            try Shell.check(["ip", "netns", "add", m.namespace])
            createdNamespaces.append(m.namespace)
            try Shell.check(["ip", "link", "add", m.hostVeth, "type", "veth", "peer", "name", inner])
            createdVeths.append(m.hostVeth)
            try Shell.check(["ip", "link", "set", inner, "netns", m.namespace])
            try Shell.check(["ip", "-n", m.namespace, "link", "set", inner, "name", "eth0"])
            try Shell.check(["ip", "-n", m.namespace, "addr", "add", "\(m.address)/24", "dev", "eth0"])
            try Shell.check(["ip", "-n", m.namespace, "link", "set", "eth0", "up"])
            try Shell.check(["ip", "-n", m.namespace, "link", "set", "lo", "up"])
            try Shell.check(["ip", "link", "set", m.hostVeth, "master", bridge])
            try Shell.check(["ip", "link", "set", m.hostVeth, "up"])
        }
    }

    /// Node `node`'s namespace, address and veth.
    public func member(_ node: Int) throws -> Member {
        guard let m = lock.withLock({ members[node] }) else { throw LabError.invalid("node \(node) is not in this lab (nodes \(nodes))") }
        return m
    }

    /// Node `node`'s address on the lab network.
    public func address(of node: Int) throws -> String { try member(node).address }

    /// Node `node`'s namespace name.
    public func namespace(of node: Int) throws -> String { try member(node).namespace }

    /// Every namespace and interface name this lab creates (for leak checks).
    public var resourceNames: (namespaces: [String], interfaces: [String]) {
        lock.withLock {
            (nodes.compactMap { members[$0]?.namespace }, [bridge] + nodes.compactMap { members[$0]?.hostVeth })
        }
    }

    /// Removes every veth, namespace and the bridge this lab created, in that order. Idempotent. Returns the
    /// problems met (a namespace still holding processes, a command that failed); empty when all went well.
    @discardableResult
    public func destroy() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        if destroyed { return [] }
        destroyed = true
        var problems: [String] = []
        for ns in createdNamespaces {
            let pids = LabNames.pids(in: ns)
            if !pids.isEmpty { problems.append("namespace \(ns) still holds processes \(pids.map(String.init).joined(separator: ",")): it is removed from /run/netns but lives until they exit") }
        }
        // Deleting the root end removes the pair at once (a namespace's own devices go away asynchronously).
        for v in createdVeths {
            let r = Shell.run(["ip", "link", "del", v])
            if !r.ok && LabNames.interfaceExists(v) { problems.append("ip link del \(v): \(r)") }
        }
        for ns in createdNamespaces {
            let r = Shell.run(["ip", "netns", "del", ns])
            if !r.ok && LabNames.namespaceExists(ns) { problems.append("ip netns del \(ns): \(r)") }
        }
        if createdBridge {
            let r = Shell.run(["ip", "link", "del", bridge])
            if !r.ok && LabNames.interfaceExists(bridge) { problems.append("ip link del \(bridge): \(r)") }
        }
        createdVeths = []
        createdNamespaces = []
        createdBridge = false
        blocked = []
        shaped = []
        return problems
    }
}
