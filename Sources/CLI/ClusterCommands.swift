import ArgumentParser
import Backup
import ChaosLab
import Foundation
import HTTP
import TLS
#if canImport(Glibc)
import Glibc
#endif

/// What `sutra cluster up` wrote down so `down` and `status` can find the nodes: `<data>/cluster.json`.
struct LocalCluster: Codable {
    struct Node: Codable {
        var id: Int
        var pid: Int32
        var clientPort: Int
        var httpPort: Int
        var peerPort: Int
        var data: String
        var log: String
        /// How it was started (so tools can restart it the same way).
        var binary: String?
        var args: [String]?

        /// This node's process still runs: the pid is alive, not a zombie, and still this node (its command line
        /// names the node's data directory — a pid reused by another process is not ours to signal).
        var isRunning: Bool {
            guard kill(pid, 0) == 0, let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return false }
            return cmd.split(separator: "\0").contains { $0 == data }
        }

        /// Node `i`'s ports in a local cluster of base port `base`, named for messages.
        static func ports(base: Int, node i: Int) -> [(what: String, port: Int)] {
            [("binary client", base + i), ("HTTP", base + 100 + i), ("peer", base + 200 + i)]
        }

        /// This node's ports, named for messages.
        var namedPorts: [(what: String, port: Int)] { [("binary client", clientPort), ("HTTP", httpPort), ("peer", peerPort)] }

        /// Where a start stands, polled once: answering `/ready`, still starting, or exited (its status and the
        /// last lines of its log).
        enum StartState { case ready, starting, exited(String) }

        /// Polls a node this process started (`waitpid` reaps it if it exited).
        func startState(tls: TLSContext?) -> StartState {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: "\n") ?? ""
                return .exited("node \(id) exited during start (status \(exitStatus(status))); its log \(log) ends with:\n\(tail)")
            }
            return BlockingHTTPClient.request("GET", host: "127.0.0.1", port: httpPort, path: "/ready", timeout: 0.5, tls: tls)?.0 == 200 ? .ready : .starting
        }

        /// How `stop` ended.
        enum StopOutcome { case notRunning, stopped, killed }

        /// SIGTERM (a graceful stop: the node hands its leaderships on), then SIGKILL if it still runs after
        /// `timeout` seconds; waits (bounded) until the process is gone. Reaps it when it is our child.
        @discardableResult
        func stop(timeout: Double) -> StopOutcome {
            guard isRunning else { return .notRunning }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(timeout)
            var status: Int32 = 0
            while isRunning && Date() < deadline {
                if waitpid(pid, &status, WNOHANG) == pid { break }
                usleep(50_000)
            }
            guard isRunning else { return .stopped }
            kill(pid, SIGKILL)
            let gone = Date().addingTimeInterval(5)
            while isRunning && Date() < gone {
                if waitpid(pid, &status, WNOHANG) == pid { break }
                usleep(20_000)
            }
            return .killed
        }
    }
    var nodes: [Node]
    var shards: Int
    var dimension: Int
    /// The nodes' --tokens-file (nil: a cluster started without authentication).
    var tokensFile: String?
    /// The CA that verifies the nodes' client-port certificates (nil: client ports in plaintext).
    var clientCA: String?

    static func path(_ dir: String) -> String { dir + "/cluster.json" }
    /// The local cluster's admin token (0600), which the CLI uses when no --token or SUTRA_TOKEN is given.
    static func adminTokenPath(_ dir: String) -> String { dir + "/admin.token" }
    static func tokensPath(_ dir: String) -> String { dir + "/tokens" }

    /// The client context verifying node certificates against `ca` (the CLI's HTTPS and the readiness checks).
    static func clientTLSContext(ca: String) throws -> TLSContext {
        do {
            return try TLSContext(TLSContext.Configuration(role: .client, certificateChainPath: nil, privateKeyPath: nil,
                                                           trustRootsPath: ca, verification: .serverOnly, requireTLS13: false))
        } catch {
            throw CLIError("cannot use the CA certificate \(ca): \(error)")
        }
    }

    /// The CA certificate a CLI command verifies the nodes with: `--cacert`, else SUTRA_CACERT, else — when the
    /// command targets the local cluster in `data` (no explicit endpoints) — the one `cluster up --client-tls`
    /// recorded. Nil: plaintext.
    static func caCertificate(flag: String?, data: String, localCluster: Bool) -> String? {
        if let flag { return flag }
        if let env = ProcessInfo.processInfo.environment["SUTRA_CACERT"], !env.isEmpty { return env }
        guard localCluster else { return nil }
        return (try? load(URL(fileURLWithPath: data).standardizedFileURL.path))?.clientCA
    }

    /// The context for HTTPS to this cluster's nodes (nil: plain HTTP, or a CA that does not load).
    var clientTLS: TLSContext? { clientCA.flatMap { try? LocalCluster.clientTLSContext(ca: $0) } }

    /// Writes `DIR/cluster.json`.
    func save(_ dir: String) throws { try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: LocalCluster.path(dir))) }

    /// Starts node `nodes[index]` again with the command line it was started with (or on `binary`), records
    /// its new pid (and binary) and saves the cluster file. The caller makes sure it is not running.
    mutating func respawn(_ index: Int, binary: String? = nil, dir: String) throws {
        let n = nodes[index]
        guard let recorded = n.binary, let args = n.args else {
            throw CLIError("\(LocalCluster.path(dir)) records no command line for node \(n.id) (an older `cluster up`): recreate the cluster with `cluster down` and `cluster up`")
        }
        let chosen = binary ?? recorded
        nodes[index].pid = try spawnDetached(chosen, args, log: n.log)
        nodes[index].binary = chosen
        try save(dir)
    }

    static func load(_ dir: String) throws -> LocalCluster {
        guard let d = FileManager.default.contents(atPath: path(dir)) else {
            throw CLIError("no local cluster in \(dir) (\(path(dir)) not found); start one with `sutra cluster up --data \(dir)`")
        }
        return try JSONDecoder().decode(LocalCluster.self, from: d)
    }
}

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "Start or stop a local cluster of sutra-node processes.",
                                                    subcommands: [Up.self, Down.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a local cluster on loopback, in the background, and wait until it is ready.")
        @Option(help: "Number of nodes (1…7).") var nodes = 3
        @Option(help: "Number of shards (1…64), fixed for the cluster's life (default 8, or what the data directory records).") var shards: Int?
        @Option(help: "Replicas of each shard (1…--nodes; default 3, or every node of a smaller cluster), fixed when the cluster is created.") var replication: Int?
        @Option(help: "Data directory (one subdirectory per node).") var data = "./sutra-cluster"
        @Option(help: "Base port: node i uses P+i (binary clients), P+100+i (HTTP), P+200+i (peers).") var basePort = 7100
        @Option(help: "Embedding dimension (0…2048; default 768, or what the data directory records).") var dimension: Int?
        @Option(help: "Path of the sutra-node binary (default: next to this one).") var nodeBinary: String?
        @Option(help: "Seconds to wait for every node to be ready.") var timeout = 30.0
        @Flag(help: "Start the nodes without a tokens file: clients are not authenticated.") var noAuth = false
        @Flag(help: "TLS on the client ports (binary and HTTP) too, with each node's certificate from <data>/certs; the CLI and SDK of this data directory verify it against the cluster CA.") var clientTLS = false
        @Argument(parsing: .postTerminator, help: "Extra flags passed to every sutra-node (after --).") var nodeFlags: [String] = []

        func run() throws {
            guard (1...7).contains(nodes) else { throw ValidationError("--nodes is \(nodes); allowed: 1…7") }
            guard (1024...65000).contains(basePort) else { throw ValidationError("--base-port is \(basePort); allowed: 1024…65000") }
            let dir = URL(fileURLWithPath: data).standardizedFileURL.path
            // A directory with data (an earlier `cluster up`, or `sutra restore`) says what it was created for.
            var nodeFlags = self.nodeFlags
            var shards = self.shards ?? 8, dimension = self.dimension ?? 768
            let recorded = try (1...7).compactMap { i -> (Int, RecordedIdentity)? in
                do { return try RecordedIdentity.of(dataDir: "\(dir)/node\(i)").map { (i, $0) } } catch { throw CLIError("\(error)") }
            }
            if let (_, first) = recorded.first {
                guard recorded.map(\.0) == Array(1...nodes) else {
                    throw CLIError("\(dir) holds the data of nodes \(recorded.map { String($0.0) }.joined(separator: ", ")); start it with --nodes \(recorded.count) (a cluster's nodes are fixed when it is created or restored)")
                }
                if let s = self.shards, s != first.shards { throw CLIError("--shards \(s) but \(dir) was created with \(first.shards) shards") }
                if let d = self.dimension, d != first.dimension { throw CLIError("--dimension \(d) but \(dir) was created with dimension \(first.dimension)") }
                shards = first.shards
                dimension = first.dimension
                if let i = nodeFlags.firstIndex(of: "--cluster-id"), i + 1 < nodeFlags.count {
                    if nodeFlags[i + 1] != first.clusterID { throw CLIError("--cluster-id \(nodeFlags[i + 1]) but \(dir) holds cluster '\(first.clusterID)'") }
                } else if first.clusterID != "sutra" {
                    nodeFlags += ["--cluster-id", first.clusterID]
                }
            }
            guard (1...64).contains(shards) else { throw ValidationError("--shards is \(shards); allowed: 1…64") }
            if let r = replication {
                guard (1...nodes).contains(r) else { throw ValidationError("--replication is \(r); allowed: 1…\(nodes) (at most one replica per node)") }
                nodeFlags += ["--replication", "\(r)"]
            }
            if let existing = try? LocalCluster.load(dir), existing.nodes.contains(where: \.isRunning) {
                throw CLIError("a cluster from \(dir) is already running (pids \(existing.nodes.map(\.pid))); stop it with `sutra cluster down --data \(data)`")
            }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let binary = nodeBinary ?? siblingBinary("sutra-node")
            guard FileManager.default.isExecutableFile(atPath: binary) else { throw CLIError("sutra-node not found at \(binary); build it or pass --node-binary") }
            // A port already taken would make that node exit at start: say which one before starting anything.
            for i in 1...nodes {
                for (what, port) in LocalCluster.Node.ports(base: basePort, node: i) where !portIsFree(port) {
                    throw CLIError("port \(port) (node \(i)'s \(what) port) is in use on 127.0.0.1; choose another --base-port or stop what holds it")
                }
            }
            let peers = (1...nodes).map { "\($0)=127.0.0.1:\(basePort + 200 + $0)" }.joined(separator: ",")
            let tls = try ClusterCommand.peerTLSFlags(dir: dir, nodes: nodes, nodeFlags: nodeFlags)
            let tokens = noAuth ? nil : try ensureAdminToken(dir)
            let certs = clientTLS ? try ClusterCommand.certificates(dir: dir, nodeFlags: nodeFlags) : nil
            var cluster = LocalCluster(nodes: [], shards: shards, dimension: dimension, tokensFile: tokens, clientCA: certs?.caCertificate)
            let clientContext = try certs.map { try LocalCluster.clientTLSContext(ca: $0.caCertificate) }
            for i in 1...nodes {
                let nodeDir = "\(dir)/node\(i)", log = "\(dir)/node\(i).log"
                let clientTLSFlags = certs.map { ["--client-tls-cert", $0.nodeCertificate(UInt64(i)), "--client-tls-key", $0.nodeKey(UInt64(i))] } ?? []
                let args = ["--node-id", "\(i)", "--data", nodeDir, "--shards", "\(shards)", "--dimension", "\(dimension)",
                            "--peers", peers, "--client-port", "\(basePort + i)", "--http-port", "\(basePort + 100 + i)",
                            "--peer-port", "\(basePort + 200 + i)"] + tls(i) + clientTLSFlags + (tokens.map { ["--tokens-file", $0] } ?? []) + nodeFlags
                let pid: pid_t
                do { pid = try spawnDetached(binary, args, log: log) } catch { stopStarted(cluster, dir); throw error }
                cluster.nodes.append(.init(id: i, pid: pid, clientPort: basePort + i, httpPort: basePort + 100 + i,
                                           peerPort: basePort + 200 + i, data: nodeDir, log: log, binary: binary, args: args))
            }
            try cluster.save(dir)
            let deadline = Date().addingTimeInterval(timeout)
            var pending = Set(cluster.nodes.map(\.id))
            while !pending.isEmpty && Date() < deadline {
                for n in cluster.nodes where pending.contains(n.id) {
                    switch n.startState(tls: clientContext) {
                    case .ready: pending.remove(n.id)
                    case .starting: break
                    case .exited(let why):
                        let stopped = stopStarted(cluster, dir, except: n.id)
                        throw CLIError(why + "\nstopped the nodes this command had started: \(stopped.isEmpty ? "none" : stopped.map(String.init).joined(separator: ", "))")
                    }
                }
                if !pending.isEmpty { usleep(100_000) }
            }
            guard pending.isEmpty else {
                let stopped = stopStarted(cluster, dir)
                throw CLIError("nodes \(pending.sorted()) not ready after \(timeout) s; see their logs in \(dir)\n"
                               + "stopped the nodes this command had started: \(stopped.map(String.init).joined(separator: ", "))")
            }
            print("Sutra cluster ready: \(nodes) nodes, \(shards) shards, dimension \(dimension), data in \(dir)")
            print(tls(1).isEmpty ? "  peer links: PLAINTEXT (--insecure-peers)" : "  peer links: mutual TLS, certificates in \(dir)/certs")
            let scheme = certs == nil ? "http" : "https"
            if let certs { print("  client ports: TLS (verify with \(certs.caCertificate))") }
            for n in cluster.nodes {
                print("  node \(n.id)  pid \(n.pid)  sdk 127.0.0.1:\(n.clientPort)  http \(scheme)://127.0.0.1:\(n.httpPort)  log \(n.log)")
            }
            let curlTLS = certs.map { "--cacert \($0.caCertificate) " } ?? ""
            if tokens != nil {
                let tokenPath = LocalCluster.adminTokenPath(dir)
                print("Clients need a token: the admin token is in \(tokenPath) (the sutra CLI uses it for --data \(data)); tokens file \(LocalCluster.tokensPath(dir))")
                print("Try: curl -s \(curlTLS)-H \"Authorization: Bearer $(cat \(tokenPath))\" \(scheme)://127.0.0.1:\(basePort + 101)/v1/cluster    Stop: sutra cluster down --data \(data)")
            } else {
                print("Clients are NOT authenticated (--no-auth).")
                print("Try: curl -s \(curlTLS)\(scheme)://127.0.0.1:\(basePort + 101)/v1/cluster    Stop: sutra cluster down --data \(data)")
            }
        }

        /// A failed start leaves nothing running: stops (SIGTERM, then SIGKILL after 5 s) every node it started that
        /// still runs, removes the cluster file, and returns the ids it stopped.
        @discardableResult
        private func stopStarted(_ cluster: LocalCluster, _ dir: String, except: Int? = nil) -> [Int] {
            var stopped: [Int] = []
            for n in cluster.nodes where n.id != except && n.stop(timeout: 5) != .notRunning { stopped.append(n.id) }
            try? FileManager.default.removeItem(atPath: LocalCluster.path(dir))
            return stopped
        }

        /// The local cluster's tokens file, with an admin token created on first use (kept across restarts).
        private func ensureAdminToken(_ dir: String) throws -> String {
            let tokensFile = LocalCluster.tokensPath(dir), tokenPath = LocalCluster.adminTokenPath(dir)
            if FileManager.default.fileExists(atPath: tokenPath) && FileManager.default.fileExists(atPath: tokensFile) { return tokensFile }
            try? FileManager.default.removeItem(atPath: tokenPath)
            let token = try TokensCommand.add(name: "local-admin-\(Int(Date().timeIntervalSince1970))", role: .admin, file: tokensFile)
            guard FileManager.default.createFile(atPath: tokenPath, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CLIError("cannot write the admin token to \(tokenPath)")
            }
            return tokensFile
        }
    }

    /// The local cluster's certificates in `<dir>/certs`, created on first use (cluster id from `--cluster-id` among
    /// the node flags, else `sutra`): a CA and a certificate per node (loopback names included).
    static func certificates(dir: String, nodeFlags: [String]) throws -> ClusterCertificates {
        var clusterID = "sutra"
        if let i = nodeFlags.firstIndex(of: "--cluster-id"), i + 1 < nodeFlags.count { clusterID = nodeFlags[i + 1] }
        let certs = ClusterCertificates(directory: dir + "/certs")
        if !FileManager.default.fileExists(atPath: certs.caCertificate) {
            do { try certs.create(clusterID: clusterID, nodes: 7) } catch { throw CLIError("cannot create the cluster certificates: \(error)") }
        }
        return certs
    }

    /// The TLS flags of node `i`: the cluster's certificates in `<dir>/certs`, created on first use (cluster id
    /// from `--cluster-id` among the node flags, else `sutra`). None when the node flags say `--insecure-peers`.
    static func peerTLSFlags(dir: String, nodes: Int, nodeFlags: [String]) throws -> (Int) -> [String] {
        if nodeFlags.contains("--insecure-peers") || nodeFlags.contains("--tls-cert") { return { _ in [] } }
        let certs = try certificates(dir: dir, nodeFlags: nodeFlags)
        return { i in
            ["--tls-cert", certs.nodeCertificate(UInt64(i)), "--tls-key", certs.nodeKey(UInt64(i)), "--tls-ca", certs.caCertificate]
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a local cluster gracefully (SIGTERM, then SIGKILL after the timeout).")
        @Option(help: "Data directory given to `cluster up`.") var data = "./sutra-cluster"
        @Option(help: "Seconds to wait for a graceful stop.") var timeout = 10.0

        func run() throws {
            let dir = URL(fileURLWithPath: data).standardizedFileURL.path
            let cluster = try LocalCluster.load(dir)
            // One node at a time, so each can hand its leaderships to nodes that are still up.
            for n in cluster.nodes {
                switch n.stop(timeout: timeout) {
                case .killed: print("node \(n.id) (pid \(n.pid)) did not stop in \(timeout) s: killed")
                case .stopped: print("node \(n.id) (pid \(n.pid)) stopped")
                case .notRunning: print("node \(n.id) (pid \(n.pid)) was not running: skipped")
                }
            }
        }
    }
}

/// Whether nothing listens on 127.0.0.1:`port` now: a bind to it succeeds.
func portIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return true }
    defer { close(fd) }
    // As libuv binds (SO_REUSEADDR): connections of an earlier run in TIME_WAIT do not count, a listener does.
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// A wait status as the shell would say it: `exit 78`, `signal 9`.
func exitStatus(_ status: Int32) -> String {
    status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
}

/// The path of another executable installed beside this one.
func siblingBinary(_ name: String) -> String {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    if me.path.contains("/") && FileManager.default.fileExists(atPath: me.deletingLastPathComponent().appendingPathComponent(name).path) {
        return me.deletingLastPathComponent().appendingPathComponent(name).path
    }
    return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
}

/// Starts `binary` in its own session (so a terminal's Ctrl-C or hang-up does not reach it), with stdout and
/// stderr appended to `log`, and returns its pid.
func spawnDetached(_ binary: String, _ args: [String], log: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Nothing else of ours: a daemon holding the caller's descriptors (a pipe capturing `sutra cluster up`) would
    // keep that pipe open for as long as the node runs. (posix_spawn_file_actions_addclosefrom_np is not visible
    // to Swift: mark every descriptor above 2 close-on-exec instead; this short-lived process needs none across exec.)
    if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
        for fd in fds.compactMap({ Int32($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
    do {
        return try Spawner.spawn([binary] + args, actions: &actions, searchPath: false, newSession: true)
    } catch {
        throw CLIError("cannot start \(binary): \(error)")
    }
}
