import Foundation
import Raft
import Shard

/// Everything a `sutra-node` process is configured with. Built from flags and environment variables by the
/// executable, then checked by `validate()` before anything starts: a bad value stops the node with one line
/// naming the setting and its allowed range.
public struct NodeConfig: Sendable {
    public var nodeID: UInt64 = 1
    public var clusterID = "sutra"
    /// Data directory: the WAL (`wal/`, snapshots in `wal/snap/`) lives here.
    public var dataDir = "./sutra-data"
    public var numShards = 8
    /// `--replication`: voting replicas per shard when the cluster is created (nil: 3, or every node of a smaller
    /// cluster). A node holds only its shards' replicas; it places a new cluster's replicas, and every node must
    /// be given the same (compared on every peer link). Afterwards the cluster map keeps it.
    public var replication: Int?
    /// Embedding dimension of every concept (0: the cluster stores no embeddings).
    public var dimension = 768
    /// Every node of the cluster (this one included): id → peer-transport address.
    public var peers: [UInt64: PeerEndpoint] = [:]
    public var listenHost = "127.0.0.1"
    /// The host other nodes and clients should use to reach this node (defaults to `listenHost`).
    public var advertiseHost: String?
    public var peerPort = 7300
    public var clientPort = 7100
    public var httpPort = 7200
    /// Length of a Raft tick. Elections start after 10–20 ticks without a leader.
    public var tickMs = 20
    public var electionTicks = 10
    /// Take a shard snapshot (and compact its log) after this many applied entries.
    public var snapshotEntries = 100_000
    /// …or after this many bytes of applied log entries, whichever comes first (the log's size bound).
    public var snapshotBytes = 64 << 20
    /// Entries kept behind a snapshot for followers that are only a little behind.
    public var compactMargin = 2_000
    public var maxFrameBytes = 100 << 20
    /// Largest frame on an established peer link, sent or accepted. A snapshot to a peer of wire version 7 or
    /// later is streamed in chunks; to an older peer it travels in one frame, which this bounds.
    public var maxPeerFrameBytes = 1 << 30
    /// A snapshot image bigger than this is streamed to a peer in chunks of this size (`SnapshotSender`).
    public var snapshotChunkBytes = 512 << 10
    /// Largest snapshot image accepted from a peer's stream (`SnapshotAssembler`): written to `snap/incoming/` as it
    /// arrives (the disk holds it, not memory).
    public var maxSnapshotBytes: UInt64 = 16 << 30
    public var logLevel = "info"
    /// KNOWN-BAD, for testing the chaos checkers only: answer linearizable reads from this replica's own state
    /// without confirming leadership — a deposed or partitioned leader (or a lagging follower) then serves
    /// stale reads, which the linearizability checker must catch. Never use it in production.
    public var unsafeLocalReads = false
    /// TEST-ONLY: accept `POST /v1/admin/fault/fsync-delay?ms=N`, which makes every WAL write sleep N ms before
    /// its fdatasync (a slow disk for the chaos runner). Off in production: the route then answers 400.
    public var faultInjection = false
    /// A participant's intent unresolved this long makes its shard's leader ask the record shard for the
    /// decision, aborting the transaction there if it has none.
    public var txnIntentTimeoutMs = 1000
    /// A coordinator whose participants have not all prepared after this long decides abort.
    public var txnPrepareTimeoutMs = 2000
    /// A node whose recent WAL writes take this long (the last 3, or the median of the last 9; ms) while a connected peer acknowledges appends three
    /// times faster hands its leaderships to that peer, and leaders do not hand shards to such a node (see
    /// `DiskHealth`). 0 disables.
    public var slowDiskMs = 50
    /// Client writes are refused (`ClientError.Code.diskFull`, HTTP 507) while the data directory's file system has
    /// less than this many bytes free for this user, and again accepted once it has this much; reads go on being
    /// served. 0 disables the check (a WAL write that finds no space still waits and retries, never crashes).
    public var minFreeDiskBytes: UInt64 = 64 << 20
    /// Peer-link TLS (PEM paths): this node's certificate chain and key, and the cluster CA bundle.
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsCA: String?
    /// `--join`: this node joins a running cluster that added it to its map; its groups start without members
    /// (it takes part once the cluster moves replicas to it) and it never proposes a first map.
    public var join = false
    /// `--insecure-peers`: plaintext, unauthenticated peer links (loudly logged).
    public var insecurePeers = false
    /// `--peer-tls`: "required" (every link mutual TLS) or "permissive" (rolling upgrade from plaintext).
    public var peerTLS = "required"

    public init() {}

    public var host: String { advertiseHost ?? listenHost }
    /// The replication factor in force for a new cluster: `--replication`, or 3 (every node of a smaller one).
    public var replicationFactor: Int { replication ?? min(3, peers.count) }
    public var clientAddress: String { "\(host):\(clientPort)" }
    public var httpAddress: String { "\(host):\(httpPort)" }

    /// The first problem found, as one line naming the setting and its allowed range; nil if valid.
    public func validate() -> String? {
        if let p = NodeConfig.clusterIDProblem(clusterID) { return "cluster id (--cluster-id / SUTRA_CLUSTER_ID) \(p)" }
        if !(1...64).contains(numShards) { return "shards (--shards / SUTRA_NUM_SHARDS) is \(numShards); allowed: 1…64" }
        if !(0...ShardLimits.maxDimension).contains(dimension) {
            return "dimension (--dimension / VECTOR_DIMENSION) is \(dimension); allowed: 0…\(ShardLimits.maxDimension)"
        }
        if nodeID == 0 || nodeID > 255 { return "node id (--node-id / STORAGE_NODE_ID) is \(nodeID); allowed: 1…255" }
        if peers.isEmpty { return "peers (--peers / SUTRA_PEERS) is empty; give every node as id=host:port, this one included" }
        if peers[nodeID] == nil { return "peers (--peers / SUTRA_PEERS) does not name this node (\(nodeID))" }
        if peers.count > 7 { return "peers (--peers / SUTRA_PEERS) names \(peers.count) nodes; allowed: 1…7" }
        if let r = replication, !(1...peers.count).contains(r) {
            return "replication (--replication / SUTRA_REPLICATION) is \(r); allowed: 1…\(peers.count) (a replica per node at most: --peers names \(peers.count))"
        }
        for (name, p) in [("peer port (--peer-port)", peerPort), ("client port (--client-port / STORAGE_PORT)", clientPort), ("http port (--http-port)", httpPort)] {
            if !(1...65535).contains(p) { return "\(name) is \(p); allowed: 1…65535" }
        }
        if let problem = validatePeerTLS() { return problem }
        if Set([peerPort, clientPort, httpPort]).count != 3 { return "ports: peer \(peerPort), client \(clientPort) and http \(httpPort) must differ" }
        if !(1...1000).contains(tickMs) { return "tick (--tick-ms) is \(tickMs); allowed: 1…1000" }
        if !(3...100).contains(electionTicks) { return "election ticks (--election-ticks) is \(electionTicks); allowed: 3…100" }
        if !(100...600_000).contains(txnIntentTimeoutMs) {
            return "intent timeout (--txn-intent-timeout-ms) is \(txnIntentTimeoutMs); allowed: 100…600000"
        }
        if !(0...60_000).contains(slowDiskMs) {
            return "slow-disk threshold (--slow-disk-ms) is \(slowDiskMs); allowed: 0 (off)…60000"
        }
        if minFreeDiskBytes > 1 << 40 {
            return "free-disk floor (--min-free-disk-bytes) is \(minFreeDiskBytes); allowed: 0 (off)…\(UInt64(1) << 40)"
        }
        if !(100...600_000).contains(txnPrepareTimeoutMs) {
            return "prepare timeout (--txn-prepare-timeout-ms) is \(txnPrepareTimeoutMs); allowed: 100…600000"
        }
        if !((1 << 20)...(1 << 30)).contains(maxPeerFrameBytes) {
            return "peer frame limit (--peer-max-frame-bytes) is \(maxPeerFrameBytes); allowed: \(1 << 20)…\(1 << 30)"
        }
        if !(4096...(16 << 20)).contains(snapshotChunkBytes) || snapshotChunkBytes + 64 > maxPeerFrameBytes {
            return "snapshot chunk (--snapshot-chunk-bytes) is \(snapshotChunkBytes); allowed: 4096…\(16 << 20), and 64 bytes below --peer-max-frame-bytes"
        }
        if !((1 << 20)...(1 << 40)).contains(maxSnapshotBytes) {
            return "snapshot limit (--max-snapshot-bytes) is \(maxSnapshotBytes); allowed: \(1 << 20)…\(UInt64(1) << 40)"
        }
        if !(1024...(1 << 30)).contains(maxFrameBytes) || maxFrameBytes > 100 << 20 {
            return "max frame (--max-frame-bytes) is \(maxFrameBytes); allowed: 1024…\(100 << 20)"
        }
        if snapshotBytes < 1 << 20 { return "snapshot bytes (--snapshot-bytes) is \(snapshotBytes); allowed: ≥ 1048576" }
        if snapshotEntries < 100 { return "snapshot entries (--snapshot-entries) is \(snapshotEntries); allowed: ≥ 100" }
        if compactMargin < 0 { return "compact margin (--compact-margin) is \(compactMargin); allowed: ≥ 0" }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            return "log level (--log-level) is \(logLevel); allowed: trace, debug, info, notice, warning, error, critical"
        }
        return nil
    }

    /// Why `id` cannot name a cluster (nil: it can): 1…128 characters of letters, digits, `.`, `_` and `-` —
    /// it is written into certificates, hellos, identity files and log lines.
    public static func clusterIDProblem(_ id: String) -> String? {
        if id.isEmpty || id.utf8.count > 128 { return "is \(id.utf8.count) bytes long; allowed: 1…128" }
        if let bad = id.unicodeScalars.first(where: { !($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0))) }) {
            return "'\(id)' contains '\(bad)'; allowed: letters, digits, '.', '_' and '-'"
        }
        return nil
    }

    /// Parses `1=127.0.0.1:7300,2=127.0.0.1:7301`.
    public static func parsePeers(_ text: String) -> Result<[UInt64: PeerEndpoint], ConfigProblem> {
        var out: [UInt64: PeerEndpoint] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let id = UInt64(kv[0].trimmingCharacters(in: .whitespaces)) else {
                return .failure(ConfigProblem(line: "peers (--peers / SUTRA_PEERS): '\(part)' is not id=host:port"))
            }
            let addr = kv[1].trimmingCharacters(in: .whitespaces)
            guard let endpoint = PeerEndpoint(hostPort: addr) else {
                return .failure(ConfigProblem(line: "peers (--peers / SUTRA_PEERS): '\(addr)' is not host:port with a port in 1…65535"))
            }
            out[id] = endpoint
        }
        return .success(out)
    }

    /// Accepts `3` or a name ending in `-3` (the seeds' `storage-prod-3`).
    public static func parseNodeID(_ text: String) -> UInt64? {
        if let v = UInt64(text) { return v }
        guard let dash = text.lastIndex(of: "-") else { return nil }
        return UInt64(text[text.index(after: dash)...])
    }
}

/// A node's peer-transport address.
public struct PeerEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port` (the form of `--peers` and of the cluster map's addresses); nil without a port in 1…65535.
    public init?(hostPort text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        self.init(host: String(text[..<colon]), port: port)
    }
}

/// One line naming a setting and what is wrong with it.
public struct ConfigProblem: Error, Sendable {
    public var line: String
}

extension NodeConfig {
    /// Peer TLS settings: all three files or none; without them a node with peers needs `--insecure-peers`.
    func validatePeerTLS() -> String? {
        if !["required", "permissive"].contains(peerTLS) { return "peer TLS (--peer-tls / SUTRA_PEER_TLS) is \(peerTLS); allowed: required, permissive" }
        let given = [tlsCert, tlsKey, tlsCA].filter { $0 != nil }.count
        if given != 0 && given != 3 {
            return "peer TLS: give all of --tls-cert, --tls-key and --tls-ca (SUTRA_TLS_CERT, SUTRA_TLS_KEY, SUTRA_TLS_CA), not \(given) of them"
        }
        if given == 0 && !insecurePeers && peers.count > 1 {
            return "peer TLS: no certificates (--tls-cert, --tls-key, --tls-ca; create them with `sutra certs init`); to run peer links in plaintext and unauthenticated, pass --insecure-peers"
        }
        return nil
    }
}
