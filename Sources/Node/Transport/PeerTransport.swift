import NodeCore
import Logging
import Raft
import UV

/// The node's links to its peers: one TCP connection per node pair, used in both directions.
///
/// The lower node id dials, the higher accepts, so a pair never holds two connections. Each side's first frame
/// is a `hello` naming the cluster, the node and the wire versions it speaks; a connection from another cluster,
/// an unknown node or a version range that does not overlap is closed with a log line. The dialer reconnects
/// with exponential backoff (20 ms doubling to 1 s). Frames queued during a loop turn go out as one write per
/// peer in `flush()`. While a link is down, frames to it are dropped: Raft retransmits, and forwarded requests
/// are failed by their callers' timeouts.
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
    private let logger: Logger
    /// A frame arrived from an established peer.
    var onFrame: (NodeID, PeerFrame) -> Void = { _, _ in }
    /// A link came up (true) or went down (false).
    var onLinkChange: (NodeID, Bool) -> Void = { _, _ in }
    /// Frames dropped because their link was down or too far behind.
    private(set) var droppedFrames: UInt64 = 0
    /// Above this many unsent bytes on a connection, new frames to that peer are dropped.
    static let maxQueuedBytes = 256 << 20

    init(loop: EventLoop, hello: PeerHello, peers: [NodeID: PeerEndpoint], logger: Logger) {
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
                case .success(let conn):
                    if link.stopped { conn.close(); return }
                    self.adopt(conn, for: link)
                    conn.write(PeerFrame.hello(self.hello).encode())
                case .failure:
                    self.scheduleRedial(link)
                }
            }
        } catch {
            scheduleRedial(link)
        }
    }

    private func scheduleRedial(_ link: PeerLink) {
        guard !link.stopped else { return }
        if link.timer == nil { link.timer = try? Timer(loop: loop) }
        let delay = link.backoffMs
        link.backoffMs = min(link.backoffMs * 2, 1000)
        link.timer?.start(timeout: delay) { [weak self] in self?.dial(link) }
    }

    /// An inbound connection: it belongs to no link until its hello names a known, lower-numbered peer.
    private func accept(_ conn: TCPConnection) {
        var frames = LengthPrefixedFrames(maxFrame: PeerFrame.maxFrameBytes)
        try? conn.setNoDelay(true)
        do {
            try conn.startReading { [weak self] event in
                guard let self else { return }
                guard case .data(let bytes) = event else { conn.close(); return }
                frames.append(bytes)
                var hello: PeerFrame?
                do {
                    try frames.drain { body in
                        if hello == nil { hello = try PeerFrame.decode(body) }
                    }
                } catch {
                    self.logger.warning("peer connection refused: \(error)")
                    conn.close()
                    return
                }
                guard case .hello(let h)? = hello else { return }
                guard let link = self.links[h.node], h.node < self.me, self.acceptable(h) else {
                    self.logger.warning("peer connection refused: cluster \(h.clusterID) node \(h.node) versions \(h.minVersion)…\(h.maxVersion); this node is cluster \(self.clusterID) node \(self.me), speaks \(PeerFrame.minVersion)…\(PeerFrame.maxVersion)")
                    conn.close()
                    return
                }
                conn.stopReading()
                if let old = link.connection, old !== conn, !old.isClosing { old.close() }
                self.adopt(conn, for: link)
                conn.write(PeerFrame.hello(self.hello).encode())
                self.peerHellos[h.node] = h
                self.markEstablished(link)
            }
        } catch {
            conn.close()
        }
    }

    /// Makes `conn` the link's connection and starts reading its frames. The dialing side becomes established
    /// when the peer's hello arrives; the accepting side already has it.
    private func adopt(_ conn: TCPConnection, for link: PeerLink) {
        link.connection = conn
        link.established = false
        try? conn.setNoDelay(true)
        var frames = LengthPrefixedFrames(maxFrame: PeerFrame.maxFrameBytes)
        do {
            try conn.startReading { [weak self, weak conn] event in
                guard let self, let conn, link.connection === conn else { return }
                switch event {
                case .data(let bytes):
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
                case .endOfFile, .error:
                    self.linkDown(link, conn)
                }
            }
        } catch {
            linkDown(link, conn)
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
        logger.info("link to node \(link.peer) up")
        onLinkChange(link.peer, true)
    }

    private func linkDown(_ link: PeerLink, _ conn: TCPConnection) {
        guard link.connection === conn else { return }
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
    var connection: TCPConnection?
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
