import Foundation
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// A cluster of real `sutra-node` processes for chaos tests: inside a `NetworkLab` (each node in its namespace
/// on its lab address, ports 7100/7200/7300) or, without a lab, on loopback with distinct ports. Data
/// directories and logs live under one temporary directory. Processes are controlled by pid (kill -9, restart on
/// the same data, SIGSTOP/SIGCONT, graceful SIGTERM) and `stopAll`/`destroy`/`deinit` never leave one behind.
/// On loopback the node↔node links can run through a `LinkProxy` (`Options.proxiedLinks`; each node then has a
/// loopback address of its own, 127.0.0.1x) so that partitions work without namespaces; `links` is whichever of
/// the two can cut them.
///
/// Spare nodes (`Options.spares`, ids after the members') are prepared with the rest — address, certificate,
/// namespace or proxy listener — but start only when a membership change brings them in (`addNode`, see
/// LabCluster+Membership.swift); `nodeIDs` names the members of the moment.
public final class LabCluster: @unchecked Sendable {
    /// How to build the cluster.
    public struct Options: Sendable {
        public var nodes = 3
        public var shards = 4
        /// Embedding dimension (0: no vectors, the fastest start).
        public var dimension = 0
        /// Default: `chaos-<pid>-<random>`.
        public var clusterID: String?
        /// Extra flags for every node (e.g. `["--election-ticks", "10"]`).
        public var extraFlags: [String] = []
        /// Loopback mode only: node i uses base+10i (client), +1 (HTTP), +2 (peers). Default: a random free base
        /// in 31000–32700 (below Linux's ephemeral ports; the cluster tests use 10000–31000).
        public var basePort: Int?
        /// Default: a new directory under the system's temporary directory.
        public var directory: String?
        /// Loopback mode only: route every node↔node connection through a fault-injecting `LinkProxy`, so
        /// partitions work without network namespaces.
        public var proxiedLinks = false
        /// Nodes prepared beyond `nodes` (ids nodes+1, …) that start only when added to the cluster.
        public var spares = 0

        public init() {}
    }

    public let binary: String
    public let lab: NetworkLab?
    /// The proxy between the nodes (loopback with `proxiedLinks` only).
    public let proxy: LinkProxy?
    public let options: Options
    /// Holds `node<i>/` (data) and `node<i>.log`.
    public let directory: String
    public let clusterID: String
    /// Every node, spares included, by ascending id (1…nodes+spares).
    public let processes: [NodeProcess]
    /// The cluster's members now (`nodeIDs`), and the spares not yet brought in; under `membershipLock`.
    let membershipLock = NSLock()
    var currentMembers: [Int]
    var unusedSpares: [Int]
    /// Nodes take leadership-transfer requests over HTTP (`POST /v1/admin/transfer-leader?shard=&to=`).
    public static let supportsLeadershipTransfer = true

    /// Prepares (does not start) the nodes. `binary` is the path of `sutra-node`.
    public init(binary: String, lab: NetworkLab?, options: Options = Options()) throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw LabError.invalid("sutra-node not found at \(binary); build it with `swift build --product sutra-node`")
        }
        guard (1...7).contains(options.nodes) else { throw LabError.invalid("nodes is \(options.nodes); allowed: 1…7") }
        guard (0...40).contains(options.spares) else { throw LabError.invalid("spares is \(options.spares); allowed: 0…40") }
        if lab != nil, options.proxiedLinks {
            throw LabError.invalid("proxiedLinks is for loopback clusters; a lab cuts links with its namespaces")
        }
        let total = options.nodes + options.spares
        if let lab, lab.nodes != Array(1...total) {
            throw LabError.invalid("the lab has nodes \(lab.nodes) but the cluster wants 1…\(total)")
        }
        self.binary = binary
        self.lab = lab
        self.options = options
        clusterID = options.clusterID ?? "chaos-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        directory = options.directory ?? NSTemporaryDirectory() + "sutra-chaos-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var specs: [NodeSpec] = []
        let ids = Array(1...total)
        let members = Array(1...options.nodes)
        currentMembers = members
        unusedSpares = Array(ids.dropFirst(options.nodes))
        if let lab {
            for id in ids {
                let m = try lab.member(id)
                specs.append(NodeSpec(id: id, host: m.address, clientPort: 7100, httpPort: 7200, peerPort: 7300,
                                      dataDir: "\(directory)/node\(id)", logPath: "\(directory)/node\(id).log",
                                      namespace: m.namespace, arguments: []))
            }
        } else {
            // Proxied, each node has an address of its own (the proxy knows a dialer by it) and the proxy listens
            // for it on 127.0.0.1 at its peer port.
            func host(_ id: Int) -> String { options.proxiedLinks ? "127.0.0.\(10 + id)" : "127.0.0.1" }
            let base = try options.basePort
                ?? LoopbackPorts.pickBase(hosts: ids.map(host), alsoPeerPortsOn: options.proxiedLinks ? "127.0.0.1" : nil)
            for id in ids {
                specs.append(NodeSpec(id: id, host: host(id), clientPort: base + 10 * id, httpPort: base + 10 * id + 1,
                                      peerPort: base + 10 * id + 2, dataDir: "\(directory)/node\(id)",
                                      logPath: "\(directory)/node\(id).log", namespace: nil, arguments: []))
            }
        }
        let proxy = options.proxiedLinks && total > 1
            ? try LinkProxy(upstreams: Dictionary(uniqueKeysWithValues: specs.map { ($0.id, LinkProxy.Endpoint(host: $0.host, port: $0.peerPort)) }))
            : nil
        self.proxy = proxy
        /// Node `me`'s `--peers`: every first member's address (the proxy's front for it when proxied), and a
        /// spare's own (`addNode` gives a spare the members of the moment when it starts it).
        func peers(for me: Int) -> String {
            specs.filter { $0.id <= options.nodes || $0.id == me }.map { p in
                "\(p.id)=\(proxy?.front(of: p.id)?.description ?? "\(p.host):\(p.peerPort)")"
            }.joined(separator: ",")
        }
        let cid = clusterID
        // Peer links are mutual TLS, as in a default deployment, unless the flags say --insecure-peers.
        var tls: (Int) -> [String] = { _ in [] }
        if !options.extraFlags.contains("--insecure-peers") && !options.extraFlags.contains("--tls-cert") {
            let certs = ClusterCertificates(directory: directory + "/certs")
            if !FileManager.default.fileExists(atPath: certs.caCertificate) {
                do { try certs.create(clusterID: cid, nodes: total) } catch { throw LabError.invalid("cluster certificates: \(error)") }
            }
            tls = { i in ["--tls-cert", certs.nodeCertificate(UInt64(i)), "--tls-key", certs.nodeKey(UInt64(i)), "--tls-ca", certs.caCertificate] }
        }
        processes = specs.map { s in
            var s = s
            s.arguments = ["--node-id", "\(s.id)", "--data", s.dataDir, "--shards", "\(options.shards)",
                           "--dimension", "\(options.dimension)", "--peers", peers(for: s.id), "--cluster-id", cid,
                           "--listen", s.host, "--client-port", "\(s.clientPort)", "--http-port", "\(s.httpPort)",
                           "--peer-port", "\(s.peerPort)"] + tls(s.id)
                + (s.host.hasPrefix("127.") ? [] : ["--allow-insecure-clients"])  // lab namespaces: a private test network
                + (s.id > options.nodes ? ["--join"] : [])
                + options.extraFlags
            return NodeProcess(binary: binary, spec: s)
        }
    }

    deinit {
        stopAll()
        proxy?.stop()
    }

    /// What cuts the links between nodes: the lab's namespaces or the proxy; nil when neither exists.
    public var links: LinkCutter? { lab ?? proxy }

    /// The members' ids, ascending (spares not yet added are not; nodes removed are no longer).
    public var nodeIDs: [Int] { membershipLock.withLock { currentMembers } }

    /// Spares not brought in yet, ascending.
    public var spareIDs: [Int] { membershipLock.withLock { unusedSpares } }

    /// The process of node `id`.
    public func node(_ id: Int) throws -> NodeProcess {
        guard id >= 1, id <= processes.count else { throw LabError.invalid("no node \(id) (nodes 1…\(processes.count))") }
        return processes[id - 1]
    }

    /// Every member's SDK endpoint (`host:port`).
    public var clientEndpoints: [String] { nodeIDs.compactMap { try? node($0).spec.clientEndpoint } }

    /// Starts every stopped member, then (by default) waits until each answers `/ready`.
    public func startAll(waitReady: Bool = true, timeout: Double = 30) throws {
        for id in nodeIDs where try node(id).state == .stopped { try node(id).start() }
        if waitReady { try self.waitReady(nodeIDs, timeout: timeout) }
    }

    /// kill -9 node `id` (reaped before returning).
    @discardableResult
    public func kill9(_ id: Int) throws -> ExitOutcome? { try node(id).kill9() }

    /// Starts node `id` again on the same data directory (kill -9 it first if it runs); waits for `/ready` if asked.
    public func restart(_ id: Int, waitReady: Bool = false, timeout: Double = 30) throws {
        let p = try node(id)
        if p.state != .stopped { p.kill9() }
        try p.start()
        if waitReady { try self.waitReady([id], timeout: timeout) }
    }

    /// Deletes node `id`'s data directory (it must not run): its disk replaced by an empty one.
    public func wipeData(_ id: Int) throws {
        let p = try node(id)
        guard p.state == .stopped else { throw LabError.invalid("node \(id) runs: its data is not deleted under it") }
        if FileManager.default.fileExists(atPath: p.spec.dataDir) { try FileManager.default.removeItem(atPath: p.spec.dataDir) }
    }

    /// Whether node `id` has applied, on every shard, what the shard's leader (as the node's own view names it)
    /// had committed: a rejoining node has caught up.
    /// Under load the leaders' commit indexes move on meanwhile: they are read first, the node's applied indexes
    /// after, so a node that keeps up passes.
    public func caughtUp(_ id: Int) -> Bool {
        guard let first = shardView(id) else { return false }
        var commits: [Int: Int] = [:]
        for s in first {
            guard let shard = s["shard"] as? Int, let leader = s["leader"] as? Int, leader != 0,
                  let theirs = shardView(leader), shard < theirs.count, let commit = theirs[shard]["commit_index"] as? Int else { return false }
            commits[shard] = commit
        }
        guard let now = shardView(id) else { return false }
        for s in now {
            guard let shard = s["shard"] as? Int, let applied = s["applied_index"] as? Int, let commit = commits[shard] else { return false }
            if applied < commit { return false }
        }
        return true
    }

    private func shardView(_ id: Int) -> [[String: Any]]? {
        let r = http(id, "GET", "/v1/cluster", timeout: 2)
        guard r.status == 200, let obj = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else { return nil }
        return obj["shards"] as? [[String: Any]]
    }

    /// SIGSTOP node `id`.
    public func pause(_ id: Int) throws { try node(id).pause() }

    /// SIGCONT node `id`.
    public func resume(_ id: Int) throws { try node(id).resume() }

    /// Graceful stop of node `id` (SIGTERM; SIGKILL after `timeout`).
    @discardableResult
    public func terminate(_ id: Int, timeout: Double = 10) throws -> ExitOutcome? { try node(id).terminate(timeout: timeout) }

    /// Stops every node by pid: SIGKILL and reap (bounded), or gracefully one at a time when `graceful`
    /// (each SIGTERM gets `timeout` seconds before SIGKILL). Safe to call repeatedly.
    public func stopAll(graceful: Bool = false, timeout: Double = 10) {
        for p in processes {
            if graceful { p.terminate(timeout: timeout) } else { p.kill9() }
        }
    }

    /// Stops every node, then deletes the directory unless `keepFiles` (keep it when a test failed: the logs
    /// are there). Returns the directory.
    @discardableResult
    public func destroy(keepFiles: Bool = false) -> String {
        stopAll()
        proxy?.stop()
        if !keepFiles { try? FileManager.default.removeItem(atPath: directory) }
        return directory
    }

    /// Every node's log tail, for a failure report.
    public func logReport(tailBytes: Int = 3000) -> String {
        processes.map { p in
            "--- node \(p.id) (\(p.state.rawValue), log \(p.spec.logPath), earlier exits \(p.exitHistory)) ---\n\(p.logTail(tailBytes))"
        }.joined(separator: "\n")
    }
}

/// Loopback port bases that nothing listens on.
enum LoopbackPorts {
    /// A base for node ids 1…hosts.count (node i at `hosts[i-1]`, ports base+10i, +1, +2), every port free on
    /// its host and, with `alsoPeerPortsOn`, each peer port on that host too (the link proxy's listeners).
    static func pickBase(hosts: [String], alsoPeerPortsOn proxyHost: String? = nil) throws -> Int {
        let span = 10 * (hosts.count + 1)
        guard span < 1_700 else { throw LabError.invalid("\(hosts.count) nodes do not fit in the loopback port range 31000–32700") }
        for _ in 0..<50 {
            let base = 31_000 + 30 * Int.random(in: 0..<((1_700 - span) / 30))
            var ports: [(String, Int)] = []
            for (i, host) in hosts.enumerated() {
                let first = base + 10 * (i + 1)
                ports += [(host, first), (host, first + 1), (host, first + 2)]
                if let proxyHost { ports.append((proxyHost, first + 2)) }
            }
            if ports.allSatisfy({ isFree($0.1, on: $0.0) }) { return base }
        }
        throw LabError.unavailable("no free loopback port range in 31000–32700")
    }

    /// Whether a TCP socket can bind `host`:`port` right now.
    static func isFree(_ port: Int, on host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard var a = UDPProbe.sockaddr(host, UInt16(port)) else { return false }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
}
