import NodeCore
import Logging
import Raft
import TLS
import UV

/// The node's links to its peers: one TCP connection per node pair, used in both directions.
///
/// The lower node id dials, the higher accepts, so a pair never holds two connections. Each side's first frame
/// is a `hello` naming the cluster, the node and the wire versions it speaks; a connection from another cluster,
/// an unknown node or a version range that does not overlap is closed with a log line. The dialer reconnects
/// with exponential backoff (20 ms doubling to 1 s). Frames queued during a loop turn go out as one write per
/// peer in `flush()`. While a link is down, frames to it are dropped: Raft retransmits, and forwarded requests
/// are failed by their callers' timeouts.
///
/// Security (`PeerSecurity`): with TLS every link is mutual TLS 1.3 against the cluster CA and a peer is who its
/// certificate says — the hello's node and cluster must equal the certificate's, else the connection is closed
/// with one log line — so a connection without a valid certificate for a node never replaces that node's link.
/// In permissive mode (rolling upgrade) an inbound connection whose first bytes are not a TLS record is served
/// in plaintext, a peer that does not answer a TLS handshake is redialed in plaintext, and a plaintext
/// connection never replaces an established TLS link. With `--insecure-peers` (mode `.off`) links are plaintext.
final class PeerTransport {
    let loop: EventLoop
    let me: NodeID
    let clusterID: String
    /// What this node says about itself in its hello.
    let hello: PeerHello
    /// What each peer said about itself (learned from its hello).
    private(set) var peerHellos: [NodeID: PeerHello] = [:]
    private var links: [NodeID: PeerLink] = [:]
    private var listener: TCPListener?
    /// Inbound connections whose hello has not arrived yet (nothing else holds them).
    private var unclaimed: [ObjectIdentifier: PeerConnection] = [:]
    private let logger: Logger
    /// A frame arrived from an established peer.
    var onFrame: (NodeID, PeerFrame) -> Void = { _, _ in }
    /// A link came up (true) or went down (false).
    var onLinkChange: (NodeID, Bool) -> Void = { _, _ in }
    /// Frames dropped because their link was down or too far behind.
    private(set) var droppedFrames: UInt64 = 0
    /// Above this many unsent bytes on a connection, new frames to that peer are dropped.
    static let maxQueuedBytes = 256 << 20

    /// TLS contexts for accepted and dialed links, and the mode; nil contexts only with mode `.off`.
    let security: PeerSecurity
    /// Loop time (ms) of the last warning that links are unauthenticated.
    private var lastInsecureWarning: UInt64 = 0
    static let insecureWarningIntervalMs: UInt64 = 5 * 60 * 1000

    init(loop: EventLoop, hello: PeerHello, peers: [NodeID: PeerEndpoint], security: PeerSecurity = .insecure, logger: Logger) {
        self.security = security
        self.loop = loop
        self.me = hello.node
        self.clusterID = hello.clusterID
        self.hello = hello
        self.logger = logger
        for (id, addr) in peers where id != me { links[id] = PeerLink(peer: id, address: addr) }
    }

    /// Starts listening (lower-numbered peers dial us) and dialing the higher-numbered peers.
    func start(listenHost: String, port: Int) throws(UVError) {
        listener = try TCPListener(loop: loop, host: listenHost, port: port) { [weak self] result in
            guard let self, case .success(let conn) = result else { return }
            self.accept(conn)
        }
        for link in links.values where me < link.peer { dial(link) }
    }

    /// Established links running in plaintext (all of them with `--insecure-peers`).
    var plaintextPeers: [NodeID] {
        links.values.filter { $0.established && !($0.connection?.isTLS ?? false) }.map(\.peer).sorted()
    }

    /// Established links running mutual TLS.
    var tlsPeers: [NodeID] {
        links.values.filter { $0.established && ($0.connection?.isTLS ?? false) }.map(\.peer).sorted()
    }

    /// Whether the established link to `peer` is mutual TLS.
    func isTLS(_ peer: NodeID) -> Bool { links[peer].map { $0.established && ($0.connection?.isTLS ?? false) } ?? false }

    func isConnected(_ peer: NodeID) -> Bool { links[peer].map { $0.established && !$0.silent } ?? false }

    /// The wire version a link speaks: the lower of both ends' maximum versions (0 while it is down).
    func version(of peer: NodeID) -> UInt32 {
        guard links[peer]?.established == true, let h = peerHellos[peer] else { return 0 }
        return min(h.maxVersion, PeerFrame.maxVersion)
    }

    /// Queues a frame for `peer`; false if it was dropped (link down or overloaded).
    @discardableResult
    func send(_ frame: PeerFrame, to peer: NodeID) -> Bool {
        guard let link = links[peer], link.established, let conn = link.connection,
              conn.pendingWriteBytes < PeerTransport.maxQueuedBytes else {
            droppedFrames += 1
            return false
        }
        link.outbox.append(frame.encode())
        return true
    }

    /// Writes every queued frame: one write per peer.
    func flush() {
        for link in links.values where !link.outbox.isEmpty {
            let frames = link.outbox
            link.outbox = []
            guard let conn = link.connection, link.established else { droppedFrames += UInt64(frames.count); continue }
            conn.write(vectored: frames)
            link.lastSent = loop.now
        }
    }

    /// Keeps every link honest (call it every tick): a link with nothing to say for `idleMs` sends its hello
    /// again (every wire version accepts a repeated hello), and a link that heard nothing for `silenceMs` counts
    /// as not connected until it hears from the peer again. Without this, a peer behind a network partition
    /// (packets silently dropped) would look connected for minutes — and be chosen for leadership transfers.
    func keepAlive(idleMs: UInt64 = 200, silenceMs: UInt64 = 1500) {
        let now = loop.now
        warnIfInsecure(now: now)
        for link in links.values.sorted(by: { $0.peer < $1.peer }) where link.established {
            guard let conn = link.connection else { continue }
            if !link.silent && now >= link.lastHeard + silenceMs {
                // Keep the connection (it resumes by itself when the network heals; a redial through a
                // partition would hang in SYN retries) but stop calling the peer connected.
                link.silent = true
                logger.warning("nothing heard from node \(link.peer) for \(now - link.lastHeard) ms: treating it as unreachable")
                onLinkChange(link.peer, false)
            }
            if now >= link.lastSent + idleMs {
                conn.write(PeerFrame.hello(hello).encode())
                link.lastSent = now
            }
        }
    }

    /// The loud warning of `--insecure-peers` and of plaintext links in permissive mode: at start, then every
    /// five minutes.
    func warnIfInsecure(now: UInt64) {
        guard lastInsecureWarning == 0 || now >= lastInsecureWarning + PeerTransport.insecureWarningIntervalMs else { return }
        switch security.mode {
        case .off:
            lastInsecureWarning = max(now, 1)
            logger.warning("INSECURE PEERS: --insecure-peers is set: peer links are plaintext and unauthenticated; anyone who can reach the peer port can join, forge and read replication traffic")
        case .permissive:
            let plain = plaintextPeers
            guard !plain.isEmpty else { return }
            lastInsecureWarning = max(now, 1)
            logger.warning("PLAINTEXT PEER LINKS (--peer-tls=permissive): links to nodes \(plain) are unauthenticated plaintext; set --peer-tls=required once every node runs with certificates")
        case .required:
            return
        }
    }

    func stop() {
        listener?.close()
        listener = nil
        for link in links.values {
            link.stopped = true
            link.timer?.close()
            link.timer = nil
            if let c = link.connection, !c.isClosing { c.close() }
            link.connection = nil
            link.established = false
        }
    }

    // MARK: connection setup

    private func dial(_ link: PeerLink) {
        guard !link.stopped else { return }
        do {
            try TCPConnection.connect(loop: loop, host: link.address.host, port: link.address.port) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let tcp):
                    if link.stopped { tcp.close(); return }
                    self.dialed(tcp, for: link)
                case .failure:
                    self.scheduleRedial(link)
                }
            }
        } catch {
            scheduleRedial(link)
        }
    }

    /// A dialed connection: TLS (unless `.off`, or a permissive fallback for this peer), then our hello.
    private func dialed(_ tcp: TCPConnection, for link: PeerLink) {
        let conn: PeerConnection
        if let ctx = security.client, !link.plaintextFallback {
            do {
                conn = PeerConnection(tls: try TLSSession(context: ctx), over: tcp, clusterID: clusterID)
            } catch {
                logger.error("cannot start a TLS session to node \(link.peer): \(error)")
                tcp.close()
                scheduleRedial(link)
                return
            }
        } else {
            conn = PeerConnection(plain: tcp, clusterID: clusterID)
        }
        adopt(conn, for: link)
        conn.onReady = { [weak self, weak conn] in
            guard let self, let conn else { return }
            if let id = conn.certified, id != link.peer {
                self.logger.warning("link to node \(link.peer) refused: its certificate is for node \(id)")
                self.linkDown(link, conn)
                return
            }
            conn.write(PeerFrame.hello(self.hello).encode())
        }
        conn.start()
    }

    private func scheduleRedial(_ link: PeerLink) {
        guard !link.stopped else { return }
        if link.timer == nil { link.timer = try? Timer(loop: loop) }
        let delay = link.backoffMs
        link.backoffMs = min(link.backoffMs * 2, 1000)
        link.timer?.start(timeout: delay) { [weak self] in self?.dial(link) }
    }

    /// An inbound connection. With TLS its first bytes decide: a TLS record starts a handshake; anything else is
    /// refused, or served in plaintext in permissive mode.
    private func accept(_ tcp: TCPConnection) {
        guard let ctx = security.server else { inbound(PeerConnection(plain: tcp, clusterID: clusterID), initial: []); return }
        var first: [UInt8] = []
        do {
            try tcp.startReading { [weak self] event in
                guard let self, case .data(let bytes) = event else { tcp.close(); return }
                first += bytes
                guard first.count >= 3 else { return }
                tcp.stopReading()
                // A TLS handshake record: content type 22, legacy version 3.x. A plaintext hello starts with its
                // little-endian length, which can never be 0x??0316 for a frame under the pre-hello cap.
                if first[0] == 0x16 && first[1] == 0x03 {
                    do {
                        self.inbound(PeerConnection(tls: try TLSSession(context: ctx), over: tcp, clusterID: self.clusterID), initial: first)
                    } catch {
                        self.logger.error("cannot start a TLS session for an inbound peer: \(error)")
                        tcp.close()
                    }
                } else if self.security.mode == .permissive {
                    self.inbound(PeerConnection(plain: tcp, clusterID: self.clusterID), initial: first)
                } else {
                    self.logger.warning("peer connection refused: plaintext on the peer port (this node requires mutual TLS: --peer-tls=required)")
                    tcp.close()
                }
            }
        } catch {
            tcp.close()
        }
    }

    /// An inbound connection belongs to no link until its hello names a known, lower-numbered peer — the one its
    /// certificate names, on TLS.
    private func inbound(_ conn: PeerConnection, initial: [UInt8]) {
        var frames = LengthPrefixedFrames(maxFrame: PeerFrame.maxFrameBytes)
        let key = ObjectIdentifier(conn)
        unclaimed[key] = conn
        conn.onEnd = { [weak self] reason in
            if let reason { self?.logger.warning("peer connection refused: \(reason)") }
            self?.unclaimed[key] = nil
        }
        conn.onData = { [weak self, weak conn] bytes in
            guard let self, let conn else { return }
            frames.append(bytes)
            var hello: PeerFrame?
            do {
                try frames.drain { body in
                    if hello == nil { hello = try PeerFrame.decode(body) }
                }
            } catch {
                self.logger.warning("peer connection refused: \(error)")
                self.unclaimed[key] = nil
                conn.close()
                return
            }
            guard case .hello(let h)? = hello else { return }
            if let why = PeerIdentity.refusal(hello: h, certified: conn.certified, clusterID: self.clusterID) {
                self.logger.warning("peer connection refused: \(why)")
                self.unclaimed[key] = nil
                conn.close()
                return
            }
            guard let link = self.links[h.node], h.node < self.me, self.acceptable(h) else {
                self.logger.warning("peer connection refused: cluster \(h.clusterID) node \(h.node) versions \(h.minVersion)…\(h.maxVersion); this node is cluster \(self.clusterID) node \(self.me), speaks \(PeerFrame.minVersion)…\(PeerFrame.maxVersion)")
                self.unclaimed[key] = nil
                conn.close()
                return
            }
            if !conn.isTLS, link.established, link.connection?.isTLS == true {
                self.logger.warning("peer connection refused: a plaintext connection claims node \(h.node), whose link is mutual TLS")
                self.unclaimed[key] = nil
                conn.close()
                return
            }
            if let old = link.connection, old !== conn, !old.isClosing { old.close() }
            self.unclaimed[key] = nil
            self.adopt(conn, for: link)
            conn.write(PeerFrame.hello(self.hello).encode())
            self.peerHellos[h.node] = h
            self.markEstablished(link)
        }
        conn.start(initial: initial)
    }

    /// Makes `conn` the link's connection and starts reading its frames. The dialing side becomes established
    /// when the peer's hello arrives; the accepting side already has it.
    private func adopt(_ conn: PeerConnection, for link: PeerLink) {
        link.connection = conn
        link.established = false
        var frames = LengthPrefixedFrames(maxFrame: PeerFrame.maxFrameBytes)
        conn.onEnd = { [weak self, weak conn] reason in
            guard let self, let conn else { return }
            if let reason, link.connection === conn { self.logger.warning("link to node \(link.peer) broken: \(reason)") }
            // Permissive mode: a dialed peer that never answered the TLS handshake is of the older release.
            if self.security.mode == .permissive, self.me < link.peer, conn.silentDuringHandshake, link.connection === conn {
                link.plaintextFallback = true
                self.logger.warning("node \(link.peer) does not answer TLS: dialing it in plaintext (--peer-tls=permissive)")
            }
            self.linkDown(link, conn)
        }
        conn.onData = { [weak self, weak conn] bytes in
            guard let self, let conn, link.connection === conn else { return }
            link.lastHeard = self.loop.now
            if link.silent {
                link.silent = false
                self.logger.info("node \(link.peer) reachable again")
                self.onLinkChange(link.peer, true)
            }
            frames.append(bytes)
            do {
                try frames.drain { body in
                    let frame = try PeerFrame.decode(body)
                    if case .hello(let h) = frame {
                        if let why = PeerIdentity.refusal(hello: h, certified: conn.certified, clusterID: self.clusterID) {
                            throw PeerWireError(description: "\(why)")
                        }
                        guard h.node == link.peer, self.acceptable(h) else {
                            throw PeerWireError(description: "unexpected hello from cluster \(h.clusterID) node \(h.node) versions \(h.minVersion)…\(h.maxVersion)")
                        }
                        self.peerHellos[h.node] = h
                        if !link.established { self.markEstablished(link) }
                    } else if link.established {
                        self.onFrame(link.peer, frame)
                    }
                }
            } catch {
                self.logger.warning("link to node \(link.peer) broken: \(error)")
                self.linkDown(link, conn)
            }
        }
    }

    /// Same cluster, and a wire version both sides speak.
    private func acceptable(_ h: PeerHello) -> Bool {
        h.clusterID == clusterID && h.minVersion <= PeerFrame.maxVersion && h.maxVersion >= PeerFrame.minVersion
    }

    private func markEstablished(_ link: PeerLink) {
        link.established = true
        link.silent = false
        link.lastHeard = loop.now
        link.lastSent = loop.now
        link.backoffMs = 20
        if let c = link.connection, c.isTLS {
            logger.info("link to node \(link.peer) up (mutual TLS, certificate of node \(c.certified.map(String.init) ?? "?"))")
        } else if security.mode == .off {
            logger.info("link to node \(link.peer) up (plaintext: --insecure-peers)")
        } else {
            logger.warning("link to node \(link.peer) up in PLAINTEXT (--peer-tls=permissive; the peer does not speak TLS)")
        }
        onLinkChange(link.peer, true)
    }

    private func linkDown(_ link: PeerLink, _ conn: PeerConnection) {
        guard link.connection === conn else { return }
        // A plaintext link that went down: try TLS again next time (the peer may have been upgraded).
        if !conn.isTLS && !conn.silentDuringHandshake && link.established { link.plaintextFallback = false }
        if !conn.isClosing { conn.close() }
        let was = link.established
        link.connection = nil
        link.established = false
        link.outbox = []
        if was {
            logger.info("link to node \(link.peer) down")
            onLinkChange(link.peer, false)
        }
        if me < link.peer { scheduleRedial(link) }
    }
}

/// One peer's connection state.
final class PeerLink {
    let peer: NodeID
    let address: PeerEndpoint
    var connection: PeerConnection?
    /// Permissive mode: this peer did not answer TLS, so it is dialed in plaintext until that link goes down.
    var plaintextFallback = false
    var established = false
    var outbox: [[UInt8]] = []
    var backoffMs: UInt64 = 20
    /// Loop time (ms) of the last bytes received from / written to the peer.
    var lastHeard: UInt64 = 0
    var lastSent: UInt64 = 0
    /// Established, but nothing heard for longer than the silence bound (a partition, a paused peer).
    var silent = false
    var timer: Timer?
    var stopped = false

    init(peer: NodeID, address: PeerEndpoint) {
        self.peer = peer
        self.address = address
    }
}
