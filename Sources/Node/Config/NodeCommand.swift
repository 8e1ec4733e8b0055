import Release
import NodeCore
import ArgumentParser
import Foundation
import Logging

/// The `sutra-node` command line: flags, with the seeds' environment variables as fallbacks, validated before
/// anything starts. A bad value prints one line naming the setting and its allowed range and exits with 78
/// (`NodeExit.configurationRefused`, EX_CONFIG), like every configuration refusal.
public struct NodeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sutra-node",
        abstract: "Run one node of a Sutra cluster (shards replicated with Raft over every node).",
        version: SutraRelease.version)

    @Option(name: .long, help: "This node's id, 1…255 (env STORAGE_NODE_ID; 'storage-prod-3' means 3).")
    var nodeId: String?
    @Option(name: .long, help: "Data directory (env STORAGE_PATH).")
    var data: String?
    @Option(name: .long, help: "Number of shards, fixed at cluster creation, 1…64 (env SUTRA_NUM_SHARDS).")
    var shards: Int?
    @Option(name: .long, help: "Voting replicas per shard of a new cluster, 1…the node count (default 3, or every node of a smaller cluster; env SUTRA_REPLICATION). Every node must be given the same.")
    var replication: Int?
    @Option(name: .long, help: "Embedding dimension, 0…2048, 0 = no vectors (env VECTOR_DIMENSION).")
    var dimension: Int?
    @Option(name: .long, help: "Every node's peer address, this one included: 1=host:port,2=host:port,… (env SUTRA_PEERS).")
    var peers: String?
    @Option(name: .long, help: "Cluster id; nodes refuse peers of another cluster (env SUTRA_CLUSTER_ID).")
    var clusterId: String?
    @Option(name: .long, help: "Address to listen on.")
    var listen: String = "127.0.0.1"
    @Option(name: .long, help: "Address peers and clients use to reach this node (default: --listen).")
    var advertise: String?
    @Option(name: .long, help: "Peer transport port (default 7300).")
    var peerPort: Int?
    @Option(name: .long, help: "Binary client protocol port (env STORAGE_PORT, default 7100).")
    var clientPort: Int?
    @Option(name: .long, help: "HTTP/JSON port (default 7200).")
    var httpPort: Int?
    @Option(name: .long, help: "Raft tick in milliseconds, 1…1000.")
    var tickMs: Int = 20
    @Option(name: .long, help: "Ticks without a leader before an election, 3…100 (randomized up to twice this).")
    var electionTicks: Int = 10
    @Option(name: .long, help: "Snapshot a shard after this many applied entries (≥ 100).")
    var snapshotEntries: Int = 100_000
    @Option(name: .long, help: "…or after this many bytes of applied log entries (≥ 1048576): the log size bound.")
    var snapshotBytes: Int = 64 << 20
    @Option(name: .long, help: "Entries kept in the log behind a snapshot (≥ 0).")
    var compactMargin: Int = 2_000
    @Option(name: .long, help: "Largest client frame or HTTP body in bytes, 1024…104857600.")
    var maxFrameBytes: Int = 100 << 20
    @Option(name: .long, help: "Largest frame on a peer link, sent or accepted, 1048576…1073741824 (a snapshot to a peer of an older release is one frame: set it above the largest shard image while one runs).")
    var peerMaxFrameBytes: Int = 1 << 30
    @Option(name: .long, help: "A shard snapshot bigger than this is streamed to a peer in chunks of this many bytes, 4096…16777216 and below --peer-max-frame-bytes.")
    var snapshotChunkBytes: Int = 512 << 10
    @Option(name: .long, help: "Largest shard snapshot image accepted from a peer (streamed in chunks), 1048576…1099511627776.")
    var maxSnapshotBytes: UInt64 = 16 << 30
    @Option(name: .long, help: "Ask the record shard for a transaction's decision (aborting it if undecided) after its intent waited this long, 100…600000 ms.")
    var txnIntentTimeoutMs: Int = 1000
    @Option(name: .long, help: "Abort a transaction whose participants have not all prepared after this long, 100…600000 ms.")
    var txnPrepareTimeoutMs: Int = 2000
    @Option(name: .long, help: "Hand leaderships away while this node's recent WAL writes take this long (median, ms) and a peer acknowledges appends 3x faster; 0 disables, ≤ 60000.")
    var slowDiskMs: Int = 50
    @Option(name: .long, help: "Refuse client writes (HTTP 507, DISK_FULL) while the data directory's file system has less than this many bytes free; reads are still served and writes resume once space returns. 0 disables, ≤ 1099511627776 (env SUTRA_MIN_FREE_DISK_BYTES).")
    var minFreeDiskBytes: UInt64?
    @Option(name: .long, help: "This node's certificate chain for peer links, PEM (env SUTRA_TLS_CERT; `sutra certs init` makes it).")
    var tlsCert: String?
    @Option(name: .long, help: "This node's private key, PEM (env SUTRA_TLS_KEY).")
    var tlsKey: String?
    @Option(name: .long, help: "The cluster CA bundle peers' certificates must verify against, PEM (env SUTRA_TLS_CA).")
    var tlsCa: String?
    @Option(name: .long, help: "Peer TLS: required (every link mutual TLS 1.3) or permissive (rolling upgrade: also plaintext peers of the older release) (env SUTRA_PEER_TLS).")
    var peerTls: String?
    @Flag(name: .long, help: "Run peer links in plaintext, unauthenticated (loudly logged; env SUTRA_INSECURE_PEERS=1).")
    var insecurePeers = false
    @Flag(name: .long, help: "Join a running cluster: this node was added to its map (`sutra node add`); --peers names some of its nodes and this one. Its data directory must be new (env SUTRA_JOIN=1).")
    var join = false
    @Option(name: .long, help: "Client tokens file (NAME ROLE sha256:HEX lines, see `sutra tokens add`); reloaded on SIGHUP. Without it clients are not authenticated (env SUTRA_TOKENS_FILE).")
    var tokensFile: String?
    @Flag(name: .long, help: "GET /metrics needs a token (any role) when a tokens file is set; otherwise it is open like /health and /ready (env SUTRA_METRICS_AUTH=1).")
    var metricsAuth = false
    @Option(name: .long, help: "PEM certificate (chain) the client ports (binary and HTTP) serve TLS with; may be the node's peer certificate (env SUTRA_CLIENT_TLS_CERT).")
    var clientTlsCert: String?
    @Option(name: .long, help: "Its PEM private key (env SUTRA_CLIENT_TLS_KEY).")
    var clientTlsKey: String?
    @Option(name: .long, help: "CA bundle: clients must present a certificate it verifies (env SUTRA_CLIENT_TLS_CA).")
    var clientTlsCa: String?
    @Flag(name: .long, help: "Serve clients on a non-loopback --listen address without TLS (refused otherwise; env SUTRA_ALLOW_INSECURE_CLIENTS=1).")
    var allowInsecureClients = false
    @Option(name: .long, help: "Client connections open at once, both ports (lowered to fit the descriptor limit), 1…1000000.")
    var clientMaxConnections: Int = ClientLimits().maxConnections
    @Option(name: .long, help: "Requests one client connection may have in flight; more pipelined ones wait unread, 1…65536.")
    var clientMaxInFlight: Int = ClientLimits().maxInFlightPerConnection
    @Option(name: .long, help: "Unsent answer bytes of one client connection before the node stops reading from it, 65536…1073741824.")
    var clientMaxUnsentBytes: Int = ClientLimits().maxUnsentBytesPerConnection
    @Option(name: .long, help: "Requests one client connection may start per loop turn, 1…10000.")
    var clientRequestsPerTurn: Int = ClientLimits().requestsPerTurn
    @Option(name: .long, help: "Bytes of partly received client requests held node-wide; connections holding part of one wait while it is spent (≥ --max-frame-bytes).")
    var clientPartialRequestBudget: Int = ClientLimits().partialRequestBudget
    @Option(name: .long, help: "A client request must arrive whole within this many ms of its first byte (else 408 and close), 100…3600000.")
    var clientRequestTimeoutMs: Int = ClientLimits().requestTimeoutMs
    @Option(name: .long, help: "Close a client connection idle this long (nothing in flight, no traffic), ms; 0 never.")
    var clientIdleTimeoutMs: Int = ClientLimits().idleTimeoutMs
    @Option(name: .long, help: "File descriptors kept free of client connections for the WAL, snapshots and peers, 16…100000.")
    var reservedDescriptors: Int = ClientLimits().reservedDescriptors
    @Option(name: .long, help: "OpenAI-compatible embeddings endpoint (http://host:port[/v1]; Ollama, text-embeddings-inference, vLLM, tools/embedding-service): concepts written with text and no embedding, and searches by text, are embedded through it (env SUTRA_EMBEDDING_SERVICE_URL).")
    var embeddingService: String?
    @Option(name: .long, help: "The model name sent to the embedding service (env SUTRA_EMBEDDING_MODEL).")
    var embeddingModel: String?
    @Option(name: .long, help: "How long one call to the embedding service may take, ms (then the requests waiting on it get 503), 1…600000.")
    var embeddingTimeoutMs: Int = 10_000
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"
    @Option(name: .long, help: "Log format: auto (journald when stderr is the journal, else text), text (UTC timestamp, level, one line per event) or journald (syslog priority prefix, no timestamp) (env SUTRA_LOG_FORMAT).")
    var logFormat: String?
    @Option(name: .long, help: "Append log lines to this file (created 0600) instead of stderr; reopened on SIGHUP for logrotate (env SUTRA_LOG_FILE).")
    var logFile: String?
    @Flag(help: ArgumentHelp("Known-bad test switch: serve linearizable reads from local state without confirming leadership.", visibility: .hidden))
    var unsafeLocalReads = false
    @Flag(help: ArgumentHelp("Test-only switch: accept fault-injection requests (POST /v1/admin/fault/fsync-delay?ms=N, a slow disk).", visibility: .hidden))
    var enableFaultInjection = false

    public init() {}

    public mutating func run() throws {
        let env = ProcessInfo.processInfo.environment
        var c = NodeConfig()
        func fail(_ line: String) -> ExitCode {
            FileHandle.standardError.write(Data("sutra-node: invalid configuration: \(line)\n".utf8))
            return ExitCode(NodeExit.configurationRefused)
        }
        if let raw = nodeId ?? env["STORAGE_NODE_ID"] {
            guard let id = NodeConfig.parseNodeID(raw) else { throw fail("node id (--node-id / STORAGE_NODE_ID) '\(raw)' is not a number 1…255") }
            c.nodeID = id
        }
        if let d = data ?? env["STORAGE_PATH"] { c.dataDir = d }
        func int(_ flag: Int?, _ envName: String, _ setting: String) throws -> Int? {
            if let flag { return flag }
            guard let raw = env[envName] else { return nil }
            guard let v = Int(raw) else { throw fail("\(setting) (\(envName)) '\(raw)' is not a number") }
            return v
        }
        if let v = try int(shards, "SUTRA_NUM_SHARDS", "shards") { c.numShards = v }
        if let v = try int(dimension, "VECTOR_DIMENSION", "dimension") { c.dimension = v }
        if let v = try int(replication, "SUTRA_REPLICATION", "replication") { c.replication = v }
        if let v = try int(clientPort, "STORAGE_PORT", "client port") { c.clientPort = v }
        if let v = peerPort { c.peerPort = v }
        if let v = httpPort { c.httpPort = v }
        if let v = clusterId ?? env["SUTRA_CLUSTER_ID"] { c.clusterID = v }
        c.listenHost = listen
        c.advertiseHost = advertise
        c.tickMs = tickMs
        c.electionTicks = electionTicks
        c.txnIntentTimeoutMs = txnIntentTimeoutMs
        c.txnPrepareTimeoutMs = txnPrepareTimeoutMs
        c.slowDiskMs = slowDiskMs
        if let v = minFreeDiskBytes {
            c.minFreeDiskBytes = v
        } else if let raw = env["SUTRA_MIN_FREE_DISK_BYTES"] {
            guard let v = UInt64(raw) else { throw fail("free-disk floor (SUTRA_MIN_FREE_DISK_BYTES) '\(raw)' is not a number of bytes") }
            c.minFreeDiskBytes = v
        }
        c.snapshotEntries = snapshotEntries
        c.snapshotBytes = snapshotBytes
        c.compactMargin = compactMargin
        c.maxFrameBytes = maxFrameBytes
        c.maxPeerFrameBytes = peerMaxFrameBytes
        c.snapshotChunkBytes = snapshotChunkBytes
        c.maxSnapshotBytes = maxSnapshotBytes
        c.logLevel = logLevel
        c.unsafeLocalReads = unsafeLocalReads
        c.faultInjection = enableFaultInjection
        c.tlsCert = tlsCert ?? env["SUTRA_TLS_CERT"]
        c.tlsKey = tlsKey ?? env["SUTRA_TLS_KEY"]
        c.tlsCA = tlsCa ?? env["SUTRA_TLS_CA"]
        if let v = peerTls ?? env["SUTRA_PEER_TLS"] { c.peerTLS = v }
        c.join = join || ["1", "true", "yes"].contains(env["SUTRA_JOIN"]?.lowercased() ?? "")
        c.insecurePeers = insecurePeers || ["1", "true", "yes"].contains(env["SUTRA_INSECURE_PEERS"]?.lowercased() ?? "")
        if let p = peers ?? env["SUTRA_PEERS"] {
            switch NodeConfig.parsePeers(p) {
            case .success(let map): c.peers = map
            case .failure(let p): throw fail(p.line)
            }
        } else {
            c.peers = [c.nodeID: PeerEndpoint(host: c.host, port: c.peerPort)]
        }
        if let problem = c.validate() { throw fail(problem) }
        if let me = c.peers[c.nodeID], me.port != c.peerPort {
            if peerPort != nil { throw fail("peer port (--peer-port) is \(c.peerPort) but --peers gives this node port \(me.port)") }
            c.peerPort = me.port
        }
        var auth = ClientAuthSettings()
        auth.tokensFile = tokensFile ?? env["SUTRA_TOKENS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if metricsAuth {
            auth.metricsNeedToken = true
        } else if let raw = env["SUTRA_METRICS_AUTH"] {
            switch raw {
            case "1", "true", "yes": auth.metricsNeedToken = true
            case "0", "false", "no", "": auth.metricsNeedToken = false
            default: throw fail("metrics auth (SUTRA_METRICS_AUTH) '\(raw)' is not 1/true/yes or 0/false/no")
            }
        }
        func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }
        auth.tlsCertificate = clientTlsCert ?? nonEmpty(env["SUTRA_CLIENT_TLS_CERT"])
        auth.tlsKey = clientTlsKey ?? nonEmpty(env["SUTRA_CLIENT_TLS_KEY"])
        auth.tlsClientCA = clientTlsCa ?? nonEmpty(env["SUTRA_CLIENT_TLS_CA"])
        auth.allowInsecureClients = allowInsecureClients || ["1", "true", "yes"].contains(env["SUTRA_ALLOW_INSECURE_CLIENTS"] ?? "")
        do { _ = try ClientTLS.configuration(auth) } catch { throw fail("\(error)") }
        if let problem = ClientTLS.insecureListenProblem(host: c.listenHost, tls: auth.tlsCertificate != nil, allowInsecure: auth.allowInsecureClients) {
            throw fail(problem)
        }
        var limits = ClientLimits()
        limits.maxConnections = clientMaxConnections
        limits.maxInFlightPerConnection = clientMaxInFlight
        limits.maxUnsentBytesPerConnection = clientMaxUnsentBytes
        limits.requestsPerTurn = clientRequestsPerTurn
        limits.partialRequestBudget = clientPartialRequestBudget
        limits.requestTimeoutMs = clientRequestTimeoutMs
        limits.idleTimeoutMs = clientIdleTimeoutMs
        limits.reservedDescriptors = reservedDescriptors
        if let problem = limits.problem(maxFrameBytes: c.maxFrameBytes) { throw fail(problem) }
        if auth.metricsNeedToken && auth.tokensFile == nil { throw fail("--metrics-auth needs --tokens-file (without tokens no client is authenticated)") }
        var embedding: EmbeddingServiceConfig?
        if let url = embeddingService ?? nonEmpty(env["SUTRA_EMBEDDING_SERVICE_URL"]) {
            do {
                embedding = try EmbeddingServiceConfig(url: url, model: embeddingModel ?? env["SUTRA_EMBEDDING_MODEL"] ?? "",
                                                       timeoutSeconds: Double(embeddingTimeoutMs) / 1000)
            } catch { throw fail("\(error)") }
            if c.dimension == 0 { throw fail("--embedding-service needs a cluster with embeddings (--dimension > 0)") }
        }
        prepareProcessSignals()
        // libuv's thread pool runs the group commit's fsync and the decoding of big client requests: enough
        // threads that a bulk load's decoding never queues the fsync behind it (read at the pool's first use).
        if env["UV_THREADPOOL_SIZE"] == nil { setenv("UV_THREADPOOL_SIZE", "8", 1) }
        // Whatever a library creates (hnswlib's ofstream, say) is owner-only too; the node's own files are
        // created 0600 / 0700 explicitly.
        umask(0o077)
        let level = Logger.Level(rawValue: c.logLevel) ?? .info
        let formatName = logFormat ?? nonEmpty(env["SUTRA_LOG_FORMAT"]) ?? "auto"
        guard let format = LogOutput.Format(rawValue: formatName) else {
            throw fail("log format (--log-format / SUTRA_LOG_FORMAT) is '\(formatName)'; allowed: auto, text, journald")
        }
        let output: LogOutput
        do { output = try LogOutput(format: format, path: logFile ?? nonEmpty(env["SUTRA_LOG_FILE"]), environment: env) } catch {
            throw fail("log file (--log-file / SUTRA_LOG_FILE): \(error)")
        }
        LoggingSystem.bootstrap { label in output.handler(label: label, level: level) }
        var logger = Logger(label: "sutra.node\(c.nodeID)")
        logger.logLevel = level
        let server: NodeServer
        do {
            server = try NodeServer(config: c, logger: logger, auth: auth, clientLimits: limits, embedding: embedding)
        } catch let refusal as ConfigurationRefusal {
            // One line, and an exit code the service manager does not restart on (restarting cannot help).
            FileHandle.standardError.write(Data("sutra-node: \(refusal)\n".utf8))
            throw ExitCode(NodeExit.configurationRefused)
        } catch {
            FileHandle.standardError.write(Data("sutra-node: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        server.onReload = { [logger] in
            if let problem = output.reopen() { logger.error("SIGHUP: \(problem); still writing to the old file") }
        }
        let code = try server.run()
        throw ExitCode(code)
    }
}

/// Signals the node relies on, whatever its parent left it with: SIGPIPE ignored (a client that hangs up while
/// we write must cost an EPIPE on that connection, not the process), and SIGTERM/SIGINT unblocked (a parent's
/// thread may have had them blocked — Swift's concurrency threads do — and a spawned child inherits the mask,
/// which would silently disable graceful shutdown).
func prepareProcessSignals() {
    signal(SIGPIPE, SIG_IGN)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGHUP)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
