import Foundation
import HTTP
import Shard
import TLS
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Real `sutra-node` processes on loopback for one test: started in a fresh temporary data directory on random
/// ports, killed by pid (SIGKILL after a bounded graceful wait) and deleted when the test ends.
final class LocalTestCluster {
    let dir: String
    let base: Int
    let nodeCount: Int
    let shards: Int
    let dimension: Int
    var extraFlags: [String]
    /// Per-node flags replacing that node's TLS flags (a wrong certificate, a plaintext node).
    var peerTLSOverride: [Int: [String]] = [:]
    /// The cluster's certificates (`dir/certs`), made unless the flags say `--insecure-peers`.
    let certificates: ClusterCertificates?
    private(set) var pids: [Int: pid_t] = [:]
    /// Per-node descriptor limit (RLIMIT_NOFILE) the node is started under, through prlimit(1).
    var descriptorLimit: [Int: Int] = [:]
    /// Per-node host in the peer list (a name instead of 127.0.0.1) and in `clientEndpoints`.
    var hostNames: [Int: String] = [:]

    /// Port ranges (slots of 300 ports from 10,000) held by the clusters of this process: two clusters alive at
    /// once never share one (drawn at random alone, the two clusters of one test collided one time in 70 — the
    /// second then "started" against the first's node).
    private static let slotLock = NSLock()
    nonisolated(unsafe) private static var slotsInUse: Set<Int> = []

    private static func takeSlot() -> Int {
        slotLock.lock()
        defer { slotLock.unlock() }
        let free = (0..<70).filter { !slotsInUse.contains($0) }
        let slot = free.randomElement() ?? Int.random(in: 0..<70)
        slotsInUse.insert(slot)
        return slot
    }

    private static func releaseSlot(_ slot: Int) {
        slotLock.lock()
        defer { slotLock.unlock() }
        slotsInUse.remove(slot)
    }

    init(nodes: Int = 3, shards: Int = 8, dimension: Int = 4, flags: [String] = []) throws {
        nodeCount = nodes
        self.shards = shards
        self.dimension = dimension
        extraFlags = flags
        // Below Linux's ephemeral range (32768+), so an outgoing connection never holds a port a node must bind.
        base = 10_000 + LocalTestCluster.takeSlot() * 300
        dir = NSTemporaryDirectory() + "sutra-cluster-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if flags.contains("--insecure-peers") {
            certificates = nil
        } else {
            var cluster = "sutra"
            if let i = flags.firstIndex(of: "--cluster-id"), i + 1 < flags.count { cluster = flags[i + 1] }
            let c = ClusterCertificates(directory: dir + "/certs")
            try c.create(clusterID: cluster, nodes: nodes)
            certificates = c
        }
    }

    /// Node `id`'s peer TLS flags: its override, else its certificate from `certificates`.
    func peerTLSFlags(_ id: Int) -> [String] {
        if let o = peerTLSOverride[id] { return o }
        guard let c = certificates else { return [] }
        return ["--tls-cert", c.nodeCertificate(UInt64(id)), "--tls-key", c.nodeKey(UInt64(id)), "--tls-ca", c.caCertificate]
    }

    var peerPorts: [Int] { (1...nodeCount).map { base + 200 + $0 } }

    /// The sutra-node next to the test binary, or `SUTRA_TEST_NODE_BINARY` (to run a probe against a release build).
    static var nodeBinary: String {
        if let override = ProcessInfo.processInfo.environment["SUTRA_TEST_NODE_BINARY"], !override.isEmpty { return override }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sutra-node").path
    }

    func httpPort(_ id: Int) -> Int { base + 100 + id }
    func clientPort(_ id: Int) -> Int { base + id }
    var clientEndpoints: [String] { (1...nodeCount).map { "\(hostNames[$0] ?? "127.0.0.1"):\(clientPort($0))" } }

    /// Starts node `id`; `overrides` replace (or add) flags, e.g. `["--shards": "4"]`, and `logPath` sends its
    /// output elsewhere than the node's log.
    func start(_ id: Int, overrides: [String: String] = [:], logPath: String? = nil) throws {
        let peers = (1...nodeCount).map { "\($0)=\(hostNames[$0] ?? "127.0.0.1"):\(base + 200 + $0)" }.joined(separator: ",")
        try startWith(id: id, peers: peers, peerPort: base + 200 + id, overrides: overrides, logPath: logPath)
    }

    /// Starts node `id` of another cluster's peer list (`peers`, `peerPort`): a node joining it with this
    /// cluster's settings, data directory and client ports.
    func startWith(id: Int, peers: String, peerPort: Int, overrides: [String: String] = [:], switches: [String] = [], logPath: String? = nil) throws {
        precondition(pids[id] == nil, "node \(id) is already running")
        var args = ["--node-id", "\(id)", "--data", "\(dir)/node\(id)", "--shards", "\(shards)", "--dimension", "\(dimension)",
                    "--peers", peers, "--client-port", "\(clientPort(id))", "--http-port", "\(httpPort(id))",
                    "--peer-port", "\(peerPort)", "--log-level", "info"] + peerTLSFlags(id) + extraFlags + switches
        for (flag, value) in overrides.sorted(by: { $0.key < $1.key }) {
            if let i = args.firstIndex(of: flag), i + 1 < args.count { args[i + 1] = value } else { args += [flag, value] }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, logPath ?? "\(dir)/node\(id).log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours (a build lock's descriptor, other nodes' sockets) leaks into the node.
        let inherited = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in inherited where fd >= 3 && fcntl(fd, F_GETFD) != -1 && fcntl(fd, F_GETFD) & FD_CLOEXEC == 0 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var program = LocalTestCluster.nodeBinary
        var command = [LocalTestCluster.nodeBinary] + args
        if let limit = descriptorLimit[id] {
            program = "/usr/bin/prlimit"
            command = [program, "--nofile=\(limit):\(limit)", "--"] + command
        }
        let argv = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        // An empty signal mask for the child: this test may run on a thread that blocks signals.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        let rc = posix_spawn(&pid, program, &actions, &attr, argv, environ)
        guard rc == 0 else { throw ClusterTestError("cannot start \(program): \(rc)") }
        pids[id] = pid
    }

    func startAll() throws {
        for id in 1...nodeCount { try start(id) }
        try waitReady()
    }

    /// Waits until every running node answers /ready with 200 (each local shard knows its leader).
    func waitReady(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = Set(pids.keys)
        while !pending.isEmpty {
            for id in pending where http(id, "GET", "/ready").status == 200 { pending.remove(id) }
            if pending.isEmpty { return }
            if Date() > deadline { throw ClusterTestError("nodes \(pending.sorted()) not ready after \(timeout) s") }
            for (id, pid) in pids {
                var st: Int32 = 0
                if waitpid(pid, &st, WNOHANG) == pid {
                    pids[id] = nil
                    throw ClusterTestError("node \(id) exited: \(log(id).suffix(500))")
                }
            }
            usleep(50_000)
        }
    }

    func log(_ id: Int) -> String { (try? String(contentsOfFile: "\(dir)/node\(id).log", encoding: .utf8)) ?? "" }

    func kill9(_ id: Int) {
        guard let pid = pids.removeValue(forKey: id) else { return }
        kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
    }

    /// SIGTERM, then waits (bounded) for the process to exit; returns its exit status (or -1 if it was killed).
    @discardableResult
    func terminate(_ id: Int, timeout: Double = 10) -> Int32 {
        guard let pid = pids.removeValue(forKey: id) else { return -1 }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        var st: Int32 = 0
        while Date() < deadline {
            if waitpid(pid, &st, WNOHANG) == pid { return (st & 0x7f) == 0 ? (st >> 8) & 0xff : -1 }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &st, 0)
        return -1
    }

    /// Starts node `id` expecting it to exit by itself (a refusal): waits (bounded) and returns its exit status and
    /// its output. A node still running after `timeout` is killed and reported as -1.
    func runToExit(_ id: Int, overrides: [String: String] = [:], timeout: Double = 15) throws -> (code: Int32, output: String) {
        let path = "\(dir)/node\(id)-run-\(UInt32.random(in: 0...UInt32.max)).log"
        try start(id, overrides: overrides, logPath: path)
        let pid = pids.removeValue(forKey: id)!
        let deadline = Date().addingTimeInterval(timeout)
        var st: Int32 = 0
        var code: Int32 = -1
        while Date() < deadline {
            if waitpid(pid, &st, WNOHANG) == pid { code = (st & 0x7f) == 0 ? (st >> 8) & 0xff : -1; break }
            usleep(20_000)
        }
        if code == -1 && Date() >= deadline { kill(pid, SIGKILL); waitpid(pid, &st, 0) }
        return (code, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    func stopAll() {
        for id in Array(pids.keys) { kill9(id) }
    }

    /// Kills every node; deletes the data unless `keepLogs` (a failed test), then prints where the logs are.
    func destroy(keepLogs: Bool = false) {
        stopAll()
        LocalTestCluster.releaseSlot((base - 10_000) / 300)
        if keepLogs {
            print("cluster test failed: node logs and data kept in \(dir)")
            for id in 1...nodeCount { print("--- node \(id) log (tail) ---\n\(log(id).suffix(3000))") }
        } else {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    // MARK: HTTP

    struct Reply {
        var status: Int
        var body: [UInt8]
        /// Response header fields, names lower-cased.
        var headers: [String: String] = [:]
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
        var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `token`: sent as `Authorization: Bearer <token>`.
    func http(_ id: Int, _ method: String, _ path: String, _ body: String = "", timeout: Double = 5, token: String? = nil) -> Reply {
        http(id, method, path, bytes: Array(body.utf8), timeout: timeout, token: token)
    }

    func http(_ id: Int, _ method: String, _ path: String, bytes: [UInt8], timeout: Double = 5, token: String? = nil) -> Reply {
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        guard let r = BlockingHTTPClient.exchange(method, host: "127.0.0.1", port: httpPort(id), path: path, body: bytes, timeout: timeout,
                                                  headers: headers) else {
            return Reply(status: 0, body: [])
        }
        return Reply(status: r.status, body: r.body, headers: r.headers)
    }

    /// Sends a request to node `via`, following 421 NOT_LEADER to the leader it names (a few hops).
    func httpToLeader(via: Int, _ method: String, _ path: String, _ body: String = "", token: String? = nil) -> Reply {
        var node = via
        for _ in 0..<5 {
            let r = http(node, method, path, body, token: token)
            guard r.status == 421, let err = r.json?["error"] as? [String: Any], let leader = (err["leader"] as? NSNumber)?.intValue else { return r }
            node = leader
        }
        return http(node, method, path, body, token: token)
    }

    /// Sends `sig` (e.g. SIGHUP) to every running node.
    func signalAll(_ sig: Int32) {
        for pid in pids.values { kill(pid, sig) }
    }

    /// Each running node's view of the cluster.
    func clusterView(_ id: Int) -> [[String: Any]] {
        (http(id, "GET", "/v1/cluster").json?["shards"] as? [[String: Any]]) ?? []
    }

    /// Waits until every shard is led by its preferred node (shards dealt round-robin over the node ids) as every
    /// node sees it: after start the nodes hand leaderships to their preferred nodes, which changes terms — a test
    /// that asserts "no leader changed" must start counting after that.
    func waitLeadersPlaced(timeout: Double = 20) throws {
        let ids = (1...nodeCount).filter { pids[$0] != nil }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let placed = ids.allSatisfy { id in
                let view = clusterView(id)
                return !view.isEmpty && view.enumerated().allSatisfy { s, shard in
                    (shard["leader"] as? NSNumber)?.intValue == ids[s % ids.count]
                }
            }
            if placed { return }
            if Date() > deadline { throw ClusterTestError("leaderships not on their preferred nodes after \(timeout) s") }
            usleep(100_000)
        }
    }
}

struct ClusterTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func conceptID(_ n: Int) -> ConceptID { ConceptID(hi: UInt64(n) &* 0x9E37_79B9_7F4A_7C15, lo: UInt64(n)) }

/// Runs the `sutra` CLI built beside the node binary (with `environment` added to this process's) and returns its
/// exit status and output (stdout and stderr).
func runSutraCLI(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let cli = URL(fileURLWithPath: LocalTestCluster.nodeBinary).deletingLastPathComponent().appendingPathComponent("sutra").path
    return try runProgram(cli, args, environment: environment)
}

/// Runs `program` to its end (with `environment` added to this process's, in `directory` if given) and returns
/// its exit status and output (stdout and stderr).
func runProgram(_ program: String, _ args: [String], environment: [String: String] = [:], directory: String? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}
