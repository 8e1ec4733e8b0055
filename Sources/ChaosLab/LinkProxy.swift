import Foundation
import UV
#if canImport(Glibc)
import Glibc
#endif

/// A fault-injecting TCP proxy between nodes on loopback: how the chaos runner partitions a cluster where
/// network namespaces are unavailable (not root).
///
/// Each node has a loopback address of its own (`127.0.0.11`, `.12`, …): it listens there and, listening on one
/// address, dials its peers from it too. The proxy listens for each node on `listenHost` (127.0.0.1) at the
/// node's peer port, and that is the address the node is known by — its own `--peers` entry, hence the address
/// it announces in the cluster map, which every peer dials (a node added later included). An accepted
/// connection's source address names the dialer; the connection is joined to a new one to the acceptor's real
/// address. Bytes are forwarded in both directions with `TCP_NODELAY` and write backpressure. A connection from
/// an address that is no node's is closed (counted in `Stats.unidentified`).
///
/// Cutting a direction stops reading it: the bytes wait in kernel buffers, the sender's queue grows until the
/// node drops frames, and nothing reaches the other side until the cut heals — what a blackhole route does to
/// an established connection (`NetworkLab`). A cut never corrupts the stream, so healing resumes it. Clients
/// talk to the nodes directly and are never cut. When either side closes or fails, both are closed (the dialer
/// redials; while the acceptor is down the proxy's connection to it is refused and the dialer's is closed).
///
/// All sockets live on the proxy's own libuv loop thread; `block`/`unblock`/`heal` are callable from any thread
/// and return once the new state is in force. `stop()` closes everything and ends the thread (`LabCluster`
/// stops its proxy in `destroy()` and `deinit`).
public final class LinkProxy: LinkCutter, @unchecked Sendable {
    /// A TCP address.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { "\(host):\(port)" }
    }

    /// What the proxy has done so far.
    public struct Stats: Sendable, CustomStringConvertible {
        /// Connections accepted from dialers.
        public var accepted = 0
        /// Connections closed at once because their source address is no node's.
        public var unidentified = 0
        /// Connections to an acceptor that failed (refused while it was down, typically).
        public var upstreamFailures = 0
        /// Bytes forwarded per direction.
        public var bytes: [DirectedLink: UInt64] = [:]

        public var description: String {
            "accepted \(accepted), unidentified \(unidentified), upstream failures \(upstreamFailures), bytes "
                + bytes.keys.sorted().map { "\($0) \(bytes[$0]!)" }.joined(separator: ", ")
        }
    }

    public let nodes: [Int]
    /// Where the proxy listens.
    public let listenHost: String
    /// Where each node really is (its own address and peer port).
    public let upstreams: [Int: Endpoint]
    /// Where each node is reached through the proxy, set before `init` returns.
    public private(set) var fronts: [Int: Endpoint] = [:]
    private let nodeBySource: [String: Int]

    // Shared between callers and the loop thread, under `lock`.
    private let lock = NSLock()
    private var cut = Set<DirectedLink>()
    private var counters = Stats()
    private var stopped = false
    private var wakeup: LoopWakeup?
    private let loopEnded = DispatchSemaphore(value: 0)

    // Loop thread only.
    private var loop: EventLoop?
    private var listeners: [TCPListener] = []
    private var pipes: [ObjectIdentifier: ProxiedConnection] = [:]
    private var cutInForce = Set<DirectedLink>()

    /// Above this many bytes queued towards one side, reading from the other stops until the queue drains.
    static let highWater = 1 << 20

    /// Starts the proxy thread and one listener per node on `listenHost`: at the node's own port when
    /// `samePorts` (so the node's `--peers` entry can name it), else at a free one. `upstreams` gives each node's
    /// real address; the hosts must differ (a connection's source address names its dialer).
    public init(upstreams: [Int: Endpoint], listenHost: String = "127.0.0.1", samePorts: Bool = true) throws {
        guard upstreams.count >= 2 else { throw LabError.invalid("a proxy needs at least two nodes, got \(upstreams.keys.sorted())") }
        let hosts = Set(upstreams.values.map(\.host))
        guard hosts.count == upstreams.count, !hosts.contains(listenHost) else {
            throw LabError.invalid("every node needs an address of its own, apart from the proxy's \(listenHost): \(upstreams)")
        }
        nodes = upstreams.keys.sorted()
        self.listenHost = listenHost
        self.upstreams = upstreams
        nodeBySource = Dictionary(uniqueKeysWithValues: upstreams.map { ($0.value.host, $0.key) })
        let started = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<[Int: Endpoint], Error>?>(nil)
        let thread = Thread { [self] in
            do {
                let loop = try EventLoop()
                let w = try LoopWakeup(loop: loop)
                var made: [Int: Endpoint] = [:]
                for id in nodes {
                    let listener = try TCPListener(loop: loop, host: listenHost, port: samePorts ? upstreams[id]!.port : 0) { [unowned self] r in
                        self.accepted(r, acceptor: id)
                    }
                    listeners.append(listener)
                    made[id] = Endpoint(host: listenHost, port: listener.localPort)
                }
                self.loop = loop
                lock.withLock { wakeup = w }
                outcome.withLock { $0 = .success(made) }
                started.signal()
                loop.run()
                loop.close()
            } catch {
                outcome.withLock { $0 = .failure(error) }
                started.signal()
            }
            loopEnded.signal()
        }
        thread.name = "sutra-link-proxy"
        thread.start()
        started.wait()
        switch outcome.withLock({ $0 })! {
        case .success(let f): fronts = f
        case .failure(let e): throw LabError.unavailable("the link proxy could not start: \(e)")
        }
    }

    /// Where node `id` is reached through the proxy.
    public func front(of id: Int) -> Endpoint? { fronts[id] }

    public var mechanism: String { "fault-injecting TCP proxy on \(listenHost) (one listener per node, dialers known by their address)" }

    public var blockedLinks: Set<DirectedLink> { lock.withLock { cut } }

    /// What has been forwarded and accepted so far.
    public var stats: Stats { lock.withLock { counters } }

    public func block(_ link: DirectedLink) throws {
        guard nodes.contains(link.from), nodes.contains(link.to), link.from != link.to else {
            throw LabError.invalid("link \(link) names a node that is not behind this proxy (nodes \(nodes))")
        }
        try change { $0.insert(link) }
    }

    public func unblock(_ link: DirectedLink) throws {
        try change { $0.remove(link) }
    }

    @discardableResult
    public func heal() -> [String] {
        do {
            try change { $0.removeAll() }
            return []
        } catch {
            return ["\(error)"]
        }
    }

    /// Closes every connection and listener and ends the proxy's thread (bounded: 5 s). Idempotent.
    public func stop() {
        let w: LoopWakeup? = lock.withLock {
            if stopped { return nil }
            stopped = true
            return wakeup
        }
        guard let w else { return }
        if w.post({ [self] in shutDownOnLoop() }) { _ = loopEnded.wait(timeout: .now() + 5) }
    }

    deinit { stop() }

    // MARK: callers → loop

    /// Changes the cut set, then waits until the loop has started or stopped reading accordingly.
    private func change(_ body: (inout Set<DirectedLink>) -> Void) throws {
        let w: LoopWakeup? = lock.withLock {
            body(&cut)
            return stopped ? nil : wakeup
        }
        guard let w else { throw LabError.invalid("the link proxy is stopped") }
        let applied = DispatchSemaphore(value: 0)
        guard w.post({ [self] in
            applyCut()
            applied.signal()
        }) else { throw LabError.invalid("the link proxy is stopped") }
        guard applied.wait(timeout: .now() + 5) == .success else { throw LabError.timeout("the link proxy did not apply the cut within 5 s") }
    }

    // MARK: on the loop thread

    private func applyCut() {
        cutInForce = lock.withLock { cut }
        for p in pipes.values { refresh(p) }
    }

    private func shutDownOnLoop() {
        for p in Array(pipes.values) { close(p) }
        for l in listeners where !l.isClosing { l.close() }
        listeners = []
        loop?.stop()
    }

    private func accepted(_ r: Result<TCPConnection, UVError>, acceptor: Int) {
        guard case .success(let down) = r, let loop else { return }
        guard let source = down.peerHost, let dialer = nodeBySource[source], dialer != acceptor else {
            lock.withLock { counters.unidentified += 1 }
            down.close()
            return
        }
        try? down.setNoDelay(true)
        let p = ProxiedConnection(dialer: dialer, acceptor: acceptor, down: down)
        pipes[ObjectIdentifier(p)] = p
        lock.withLock { counters.accepted += 1 }
        let upstream = upstreams[acceptor]!
        do {
            try TCPConnection.connect(loop: loop, host: upstream.host, port: upstream.port) { [weak self, weak p] result in
                guard let self else { return }
                switch result {
                case .success(let up):
                    guard let p, !p.closed else { up.close(); return }
                    try? up.setNoDelay(true)
                    p.up = up
                    self.refresh(p)
                case .failure:
                    self.lock.withLock { self.counters.upstreamFailures += 1 }
                    if let p { self.close(p) }
                }
            }
        } catch {
            lock.withLock { counters.upstreamFailures += 1 }
            close(p)
        }
    }

    /// Starts or stops reading each direction of `p`: a direction flows while both sides are connected, it is
    /// not cut and its destination's write queue is below the high-water mark.
    private func refresh(_ p: ProxiedConnection) {
        guard !p.closed, let up = p.up else { return }
        for d in ProxiedConnection.Direction.allCases {
            let source = d == .forward ? p.down : up
            let link = p.link(d)
            let flow = !cutInForce.contains(link) && !p.backpressured[d.rawValue]
            if flow == p.reading[d.rawValue] { continue }
            p.reading[d.rawValue] = flow
            if !flow {
                source.stopReading()
                continue
            }
            do {
                try source.startReading { [weak self, weak p] event in
                    guard let self, let p else { return }
                    self.received(event, on: p, d)
                }
            } catch {
                close(p)
                return
            }
        }
    }

    private func received(_ event: ReadEvent, on p: ProxiedConnection, _ d: ProxiedConnection.Direction) {
        guard !p.closed, let up = p.up else { return }
        switch event {
        case .data(let bytes):
            let destination = d == .forward ? up : p.down
            let link = p.link(d)
            lock.withLock { counters.bytes[link, default: 0] += UInt64(bytes.count) }
            destination.write(bytes) { [weak self, weak p] error in
                guard let self, let p, !p.closed else { return }
                if error != nil {
                    self.close(p)
                } else if p.backpressured[d.rawValue], destination.pendingWriteBytes < LinkProxy.highWater / 2 {
                    p.backpressured[d.rawValue] = false
                    self.refresh(p)
                }
            }
            if destination.pendingWriteBytes > LinkProxy.highWater {
                p.backpressured[d.rawValue] = true
                refresh(p)
            }
        case .endOfFile, .error:
            close(p)
        }
    }

    private func close(_ p: ProxiedConnection) {
        guard !p.closed else { return }
        p.closed = true
        if !p.down.isClosing { p.down.close() }
        if let up = p.up, !up.isClosing { up.close() }
        pipes[ObjectIdentifier(p)] = nil
    }
}

/// One dialer connection joined to its connection to the acceptor (loop thread only).
private final class ProxiedConnection {
    enum Direction: Int, CaseIterable {
        /// dialer → acceptor (read from `down`, written to `up`)
        case forward = 0
        /// acceptor → dialer
        case backward = 1
    }

    let dialer: Int
    let acceptor: Int
    let down: TCPConnection
    var up: TCPConnection?
    var closed = false
    var reading = [false, false]
    var backpressured = [false, false]

    init(dialer: Int, acceptor: Int, down: TCPConnection) {
        self.dialer = dialer
        self.acceptor = acceptor
        self.down = down
    }

    func link(_ d: Direction) -> DirectedLink {
        d == .forward ? DirectedLink(from: dialer, to: acceptor) : DirectedLink(from: acceptor, to: dialer)
    }
}
