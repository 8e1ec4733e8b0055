import NodeCore
import Logging
import Raft
import TLS
import UV

/// The node's links to its peers: one TCP connection per node pair, used in both directions.
///
/// The lower node id dials, the higher accepts, so a pair never holds two connections. Each side's first frame
/// is a `hello` naming the cluster, the node and the wire versions it speaks; a connection from another cluster,
/// an unknown node, a node that may not dial us (a higher id) or a version range that does not overlap is
/// closed with a log line. On a version-4 link both sides then send their `PeerConfig` (shard count, dimension,
/// formats); the link carries Raft traffic only once they agree, else both ends refuse it with one log line
/// naming both values (shown in `/v1/cluster`). Until then a frame may not exceed 4 KiB; afterwards
/// `--peer-max-frame-bytes`. A hello claiming a node whose link is alive never replaces it: only once that
/// connection closed or was silent for `replaceAfterSilenceMs` (a peer restarted behind a dead socket). The dialer reconnects
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
    /// What this node's data depends on, sent after the hello on version-4 links.
    let config: PeerConfig
    /// Largest frame on an established link (`--peer-max-frame-bytes`).
    let maxFrameBytes: Int
    /// A new connection claiming a peer replaces its link only after the old one was silent this long.
    let replaceAfterSilenceMs: UInt64
    /// Where outgoing links are made from (`start`): the listening address when it is a single one.
    private var dialSource: String?
    private var links: [NodeID: PeerLink] = [:]
    private var listener: TCPListener?
    /// Inbound connections no hello has claimed yet — sniffing their first bytes, in their TLS handshake, or
    /// waiting for the hello — keyed by their socket (nothing else holds them). At most `maxPendingInbound` at
    /// once, each for at most `pendingInboundTimeoutMs`: a peer port costs an attacker's idle sockets no more.
    private var pending: [ObjectIdentifier: PendingInbound] = [:]
    static let maxPendingInbound = 32
    static let pendingInboundTimeoutMs: UInt64 = 5000
    /// Inbound connections closed before their hello: the pending cap was full / they took too long.
    private(set) var refusedInboundAtCap: UInt64 = 0
    private(set) var timedOutInbound: UInt64 = 0
    /// Refused-connection log lines: 20 per 10 s.
    private var inboundLog = LogLineBudget(lines: 20, windowMs: 10_000)
    private let logger: Logger
    /// A frame arrived from an established peer.
    var onFrame: (NodeID, PeerFrame) -> Void = { _, _ in }
    /// A link came up (true) or went down (false).
    var onLinkChange: (NodeID, Bool) -> Void = { _, _ in }
    /// Frames dropped because their link was down or too far behind.
    private(set) var droppedFrames: UInt64 = 0
    /// Above this many unsent bytes on a connection, new frames to that peer are dropped.
    static let maxQueuedBytes = 256 << 20

    /// TLS contexts for accepted and dialed links, and the mode; nil contexts only with mode `.off`. Replaced by
    /// `reloadCertificates()`: links made afterwards use the new ones, established links keep theirs.
    private(set) var security: PeerSecurity
    private(set) var certificateReloadsFailed: UInt64 = 0
    /// Loop time (ms) of the last warning that links are unauthenticated.
    private var lastInsecureWarning: UInt64 = 0
    static let insecureWarningIntervalMs: UInt64 = 5 * 60 * 1000

    init(loop: EventLoop, hello: PeerHello, config: PeerConfig, maxFrameBytes: Int, replaceAfterSilenceMs: UInt64,
         peers: [NodeID: PeerEndpoint], security: PeerSecurity = .insecure, logger: Logger) {
        precondition(maxFrameBytes >= PeerFrame.maxHandshakeFrameBytes, "the peer frame limit is below the handshake's")
        self.security = security
        self.loop = loop
        self.config = config
        self.maxFrameBytes = maxFrameBytes
        self.replaceAfterSilenceMs = replaceAfterSilenceMs
        self.me = hello.node
        self.clusterID = hello.clusterID
        self.hello = hello
        self.logger = logger
        for (id, addr) in peers where id != me { links[id] = PeerLink(peer: id, address: addr) }
    }

    /// Starts listening (lower-numbered peers dial us) and dialing the higher-numbered peers. When it listens on
    /// one address (not a wildcard), it also dials from that address: its peers see it come from where it can
    /// be reached (firewall rules by address hold, and on a machine with several addresses the links do not
    /// depend on the routing table's choice of source).
    func start(listenHost: String, port: Int) throws(UVError) {
        dialSource = PeerTransport.dialSource(listeningOn: listenHost)
        listener = try TCPListener(loop: loop, host: listenHost, port: port) { [weak self] result in
            guard let self, case .success(let conn) = result else { return }
            self.accept(conn)
        }
        for link in links.values where me < link.peer { dial(link) }
    }

    /// The cluster map's nodes (this one left out): links to nodes it adds are made (dialed when this node has
    /// the lower id, as at start), a changed address is dialed from the next attempt, and links to nodes the map
    /// dropped are closed. The peers given at start stay known (a joining node reaches the cluster through them).
    func updatePeers(_ peers: [NodeID: PeerEndpoint], keep: Set<NodeID>) {
        for (id, addr) in peers where id != me {
            if let link = links[id] {
                if link.address != addr {
                    logger.notice("node \(id) is at \(addr.host):\(addr.port) now (the cluster map says so; was \(link.address.host):\(link.address.port))")
                    link.address = addr
                }
            } else {
                logger.notice("linking to node \(id) at \(addr.host):\(addr.port) (new in the cluster map)")
                let link = PeerLink(peer: id, address: addr)
                links[id] = link
                if listener != nil && me < id { dial(link) }
            }
        }
        for (id, link) in links where peers[id] == nil && !keep.contains(id) {
            logger.notice("closing the link to node \(id): the cluster map no longer names it")
            link.stopped = true
            link.timer?.close()
            link.timer = nil
            if let c = link.connection, !c.isClosing { c.close() }
            link.connection = nil
            if link.established { link.established = false; onLinkChange(id, false) }
            links[id] = nil
        }
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

    /// For `/v1/cluster`: connected, connecting, unreachable (silent), or refused with the reason.
    func status(of peer: NodeID) -> String {
        guard let link = links[peer] else { return "unknown" }
        if link.established { return link.silent ? "unreachable" : "connected" }
        return link.refusal.map { "refused: \($0)" } ?? link.dialError.map { "connecting (last attempt: \($0))" } ?? "connecting"
    }

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
        expirePendingInbound(now: now)
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

    /// SIGHUP: the peer certificate, key and CA bundle are read again; a failure keeps the ones in force.
    func reloadCertificates() {
        guard security.mode != .off else { return }
        do {
            security = try security.reloaded()
            logger.notice("SIGHUP: peer TLS certificate reloaded (links made from now on use it; established links keep theirs until they reconnect)")
        } catch {
            certificateReloadsFailed += 1
            logger.error("SIGHUP: peer TLS certificate not reloaded, the previous one stays in force: \(error)")
        }
    }

    func stop() {
        listener?.close()
        listener = nil
        for p in pending.values { p.close() }
        pending = [:]
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

    /// Dials the peer's address — a host name is resolved again on every dial, so a peer whose name moved is
    /// found at its new address. A failure is logged when its reason changes (a name that does not resolve, a
    /// refused connection), shown by `/v1/cluster`, and redialed with backoff.
    private func dial(_ link: PeerLink) {
        guard !link.stopped else { return }
        do {
            try TCPConnection.connect(loop: loop, host: link.address.host, port: link.address.port, from: dialSource) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let tcp):
                    if link.stopped { tcp.close(); return }
                    self.dialed(tcp, for: link)
                case .failure(let e):
                    self.dialFailed(link, e)
                }
            }
        } catch {
            dialFailed(link, error)
        }
    }

    /// The source address of outgoing links for a node listening on `host`: that address when it is one
    /// (an IP literal, not a wildcard), else none (the system picks).
    static func dialSource(listeningOn host: String) -> String? {
        guard Resolver.isLiteral(host), !["0.0.0.0", "::", "[::]"].contains(host) else { return nil }
        return host
    }

    private func dialFailed(_ link: PeerLink, _ error: UVError) {
        let why = "\(error)"
        if link.dialError != why {
            // A peer not listening yet (start-up, a restart) is ordinary; a name that does not resolve is not.
            let line: Logger.Message = "cannot reach node \(link.peer) at \(link.address.host):\(link.address.port): \(why); retrying"
            if error.code == UVError.connectionRefused { logger.info(line) } else { logger.warning(line) }
            link.dialError = why
        }
        scheduleRedial(link)
    }

    /// A dialed connection: TLS (unless `.off`, or a permissive fallback for this peer), then our hello.
    private func dialed(_ tcp: TCPConnection, for link: PeerLink) {
        link.dialError = nil
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
        let key = ObjectIdentifier(tcp)
        guard pending.count < PeerTransport.maxPendingInbound else {
            refusedInboundAtCap += 1
            warnInbound("peer connection refused: \(pending.count) inbound connections are already waiting for their hello (the cap is \(PeerTransport.maxPendingInbound))")
            tcp.close()
            return
        }
        pending[key] = PendingInbound(since: loop.now, tcp: tcp)
        guard let ctx = security.server else { inbound(PeerConnection(plain: tcp, clusterID: clusterID), key: key, initial: []); return }
        var first: [UInt8] = []
        do {
            try tcp.startReading { [weak self] event in
                guard let self, self.pending[key] != nil else { return }
                guard case .data(let bytes) = event else { self.pending[key] = nil; tcp.close(); return }
                first += bytes
                guard first.count >= 3 else { return }
                tcp.stopReading()
                // A TLS handshake record: content type 22, legacy version 3.x. A plaintext hello starts with its
                // little-endian length, which can never be 0x??0316 for a frame under the pre-hello cap.
                if first[0] == 0x16 && first[1] == 0x03 {
                    do {
                        self.inbound(PeerConnection(tls: try TLSSession(context: ctx), over: tcp, clusterID: self.clusterID), key: key, initial: first)
                    } catch {
                        self.logger.error("cannot start a TLS session for an inbound peer: \(error)")
                        self.pending[key] = nil
                        tcp.close()
                    }
                } else if self.security.mode == .permissive {
                    self.inbound(PeerConnection(plain: tcp, clusterID: self.clusterID), key: key, initial: first)
                } else {
                    self.warnInbound("peer connection refused: plaintext on the peer port (this node requires mutual TLS: --peer-tls=required)")
                    self.pending[key] = nil
                    tcp.close()
                }
            }
        } catch {
            pending[key] = nil
            tcp.close()
        }
    }

    /// Closes pending inbound connections older than `pendingInboundTimeoutMs` (called every tick).
    private func expirePendingInbound(now: UInt64) {
        let late = pending.filter { now >= $0.value.since + PeerTransport.pendingInboundTimeoutMs }
        guard !late.isEmpty else { return }
        for (key, p) in late {
            pending[key] = nil
            timedOutInbound += 1
            p.close()
        }
        warnInbound("peer connection refused: \(late.count) inbound connection(s) sent no accepted hello within \(PeerTransport.pendingInboundTimeoutMs) ms")
    }

    /// Logs a refused inbound connection within `inboundLog`'s budget, so an attacker's connections cannot fill
    /// the log; the lines held back are summed up when the next window opens.
    private func warnInbound(_ line: String) {
        let (log, heldBack) = inboundLog.admit(now: loop.now)
        if heldBack > 0 { logger.warning("\(heldBack) more refused peer connection(s) not shown in the previous 10 s") }
        if log { logger.warning("\(line)") }
    }

    /// Why an inbound hello may not have a link: another cluster, no common wire version, a node not in the
    /// peer list (or this node), a node that must be dialed by us (the lower id dials), or a node whose link is
    /// alive — its connection open and heard from within `replaceAfterSilenceMs`. Nil: it may.
    private func refusalOfInbound(_ h: PeerHello) -> String? {
        let claim = "cluster \(h.clusterID) node \(h.node) versions \(h.minVersion)…\(h.maxVersion)"
        guard acceptable(h) else {
            return "\(claim); this node is cluster \(clusterID) node \(me), speaks \(PeerFrame.minVersion)…\(PeerFrame.maxVersion)"
        }
        guard let link = links[h.node] else { return "\(claim): node \(h.node) is not in this node's peer list" }
        guard h.node < me else { return "\(claim): node \(h.node) may not dial node \(me) (the lower id dials)" }
        if let old = link.connection, !old.isClosing, loop.now < link.lastHeard + replaceAfterSilenceMs {
            return "\(claim): the link to node \(h.node) is alive (heard \(loop.now - link.lastHeard) ms ago); a new connection replaces it only after \(replaceAfterSilenceMs) ms of silence"
        }
        return nil
    }

    /// The peer's hello is accepted on `link`: a version-4 link exchanges configurations first, an older one
    /// (which sends none) is established at once.
    private func helloAccepted(_ h: PeerHello, on link: PeerLink, _ conn: PeerConnection) {
        if case let version = min(h.maxVersion, PeerFrame.maxVersion), version >= 4 {
            if !link.configSent {
                conn.write(PeerFrame.config(config.forLink(version: version)).encode())
                link.configSent = true
            }
        } else if !link.established {
            logger.info("node \(h.node) speaks wire version \(h.maxVersion): its shard count, dimension and formats are unknown (an older release; not checked)")
            markEstablished(link)
        }
    }

    /// The peer's configuration arrived: the link is established if it agrees with ours, refused by closing it
    /// if not (logged once per distinct reason; the peer, comparing ours, refuses too).
    private func configReceived(_ c: PeerConfig, on link: PeerLink, _ conn: PeerConnection) throws {
        if let why = config.mismatch(with: c) {
            let reason = "configuration mismatch with node \(link.peer): \(why)"
            if link.refusal != reason { logger.error("peer link refused: \(reason)") }
            link.refusal = reason
            throw PeerWireError(description: reason)
        }
        link.refusal = nil
        if !link.established { markEstablished(link) }
    }

    /// The largest frame `link` may receive now: a few KiB until its handshake is accepted.
    private func frameLimit(_ link: PeerLink) -> Int {
        link.established ? maxFrameBytes : PeerFrame.maxHandshakeFrameBytes
    }

    /// An inbound connection belongs to no link until its hello names a known, lower-numbered peer whose link
    /// may be taken over — the one its certificate names, on TLS. Frames before that are capped at
    /// `PeerFrame.maxHandshakeFrameBytes`.
    private func inbound(_ conn: PeerConnection, key: ObjectIdentifier, initial: [UInt8]) {
        var frames = LengthPrefixedFrames(maxFrame: PeerFrame.maxHandshakeFrameBytes)
        pending[key]?.connection = conn
        conn.onEnd = { [weak self] reason in
            if let reason { self?.warnInbound("peer connection refused: \(reason)") }
            self?.pending[key] = nil
        }
        conn.onData = { [weak self, weak conn] bytes in
            guard let self, let conn else { return }
            let refuse = { (why: String) in
                self.warnInbound("peer connection refused: \(why)")
                self.pending[key] = nil
                conn.close()
            }
            frames.append(bytes)
            var hello: PeerFrame?
            do {
                try frames.drain { body in
                    if hello == nil { hello = try PeerFrame.decode(body) }
                }
            } catch {
                refuse("before its hello: \(error)")
                return
            }
            guard let first = hello else { return }
            guard case .hello(let h) = first else { refuse("its first frame is not a hello"); return }
            if let why = PeerIdentity.refusal(hello: h, certified: conn.certified, clusterID: self.clusterID) { refuse("\(why)"); return }
            if let why = self.refusalOfInbound(h) { refuse(why); return }
            let link = self.links[h.node]!
            if !conn.isTLS, link.established, link.connection?.isTLS == true {
                refuse("a plaintext connection claims node \(h.node), whose link is mutual TLS")
                return
            }
            if let old = link.connection, old !== conn, !old.isClosing { old.close() }
            self.pending[key] = nil
            self.adopt(conn, for: link)
            conn.write(PeerFrame.hello(self.hello).encode())
            self.peerHellos[h.node] = h
            self.helloAccepted(h, on: link, conn)
        }
        conn.start(initial: initial)
    }

    /// Makes `conn` the link's connection and starts reading its frames. The dialing side becomes established
    /// when the peer's hello arrives; the accepting side already has it.
    private func adopt(_ conn: PeerConnection, for link: PeerLink) {
        link.connection = conn
        link.established = false
        link.configSent = false
        var frames = LengthPrefixedFrames(maxFrame: maxFrameBytes)
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
                try frames.drain(limit: { self.frameLimit(link) }) { body in
                    let frame = try PeerFrame.decode(body)
                    switch frame {
                    case .hello(let h):
                        if let why = PeerIdentity.refusal(hello: h, certified: conn.certified, clusterID: self.clusterID) {
                            throw PeerWireError(description: "\(why)")
                        }
                        guard h.node == link.peer, self.acceptable(h) else {
                            throw PeerWireError(description: "unexpected hello from cluster \(h.clusterID) node \(h.node) versions \(h.minVersion)…\(h.maxVersion)")
                        }
                        self.peerHellos[h.node] = h
                        self.helloAccepted(h, on: link, conn)
                    case .config(let c):
                        try self.configReceived(c, on: link, conn)
                    default:
                        if link.established { self.onFrame(link.peer, frame) }
                    }
                }
            } catch {
                // A refused handshake was logged once already (see `configReceived`).
                if "\(error)" != link.refusal { self.logger.warning("link to node \(link.peer) broken: \(error)") }
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

/// An inbound connection before its hello: when it arrived, its socket, and once its first bytes chose
/// plaintext or TLS, the connection reading it.
struct PendingInbound {
    let since: UInt64
    let tcp: TCPConnection
    var connection: PeerConnection?

    func close() {
        if let connection { if !connection.isClosing { connection.close() } } else if !tcp.isClosing { tcp.close() }
    }
}

/// One peer's connection state.
final class PeerLink {
    let peer: NodeID
    /// Where it is dialed; changed when the cluster map says the node moved (used from the next dial).
    var address: PeerEndpoint
    var connection: PeerConnection?
    /// Permissive mode: this peer did not answer TLS, so it is dialed in plaintext until that link goes down.
    var plaintextFallback = false
    var established = false
    /// This connection has sent our `PeerConfig` (version-4 links).
    var configSent = false
    /// Why the last connection's handshake was refused (shown until one is accepted).
    var refusal: String?
    /// Why the last dial failed (a name that does not resolve, a refused connection); nil once a dial connects.
    var dialError: String?
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
