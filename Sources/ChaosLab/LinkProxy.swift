import Foundation
import UV
#if canImport(Glibc)
import Glibc
#endif

/// A fault-injecting TCP proxy between nodes on loopback: how the chaos runner partitions a cluster where
/// network namespaces are unavailable (not root).
///
/// Sutra's peer transport keeps one connection per node pair and the lower id dials. The proxy listens on one
/// port per pair; the dialer's `--peers` entry for the acceptor names that port (`port(dialer:acceptor:)`),
/// and every accepted connection is joined to a new connection to the acceptor's real peer port. Bytes are
/// forwarded in both directions with `TCP_NODELAY` and write backpressure.
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
    /// One proxied node pair.
    public struct Route: Sendable, Hashable, CustomStringConvertible {
        /// The lower id: it dials `listenPort`.
        public var dialer: Int
        /// The higher id: the proxy connects to its real peer port, `upstreamPort`.
        public var acceptor: Int
        public var listenPort: Int
        public var upstreamPort: Int

        public var description: String { "\(dialer)→\(acceptor) via :\(listenPort) → :\(upstreamPort)" }
    }

    /// What the proxy has done so far.
    public struct Stats: Sendable, CustomStringConvertible {
        /// Connections accepted from dialers.
        public var accepted = 0
        /// Connections to an acceptor that failed (refused while it was down, typically).
        public var upstreamFailures = 0
        /// Bytes forwarded per direction.
        public var bytes: [DirectedLink: UInt64] = [:]

        public var description: String {
            "accepted \(accepted), upstream failures \(upstreamFailures), bytes "
                + bytes.keys.sorted().map { "\($0) \(bytes[$0]!)" }.joined(separator: ", ")
        }
    }

    public let nodes: [Int]
    public let host: String
    /// One per node pair, set before `init` returns.
    public private(set) var routes: [Route] = []

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

    /// Starts the proxy thread and one listener per node pair on `host` (ephemeral ports). `upstreamPorts` maps
    /// each node id to its real peer port on `host`.
    public init(upstreamPorts: [Int: Int], host: String = "127.0.0.1") throws {
        guard upstreamPorts.count >= 2 else { throw LabError.invalid("a proxy needs at least two nodes, got \(upstreamPorts.keys.sorted())") }
        nodes = upstreamPorts.keys.sorted()
        self.host = host
        let started = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<[Route], Error>?>(nil)
        let thread = Thread { [self] in
            do {
                let loop = try EventLoop()
                let w = try LoopWakeup(loop: loop)
                var made: [Route] = []
                for a in nodes {
                    for b in nodes where a < b {
                        let route = Route(dialer: a, acceptor: b, listenPort: 0, upstreamPort: upstreamPorts[b]!)
                        let listener = try TCPListener(loop: loop, host: host, port: 0) { [unowned self] r in self.accepted(r, route) }
                        listeners.append(listener)
                        made.append(Route(dialer: a, acceptor: b, listenPort: listener.localPort, upstreamPort: route.upstreamPort))
                    }
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
        case .success(let r): routes = r
        case .failure(let e): throw LabError.unavailable("the link proxy could not start: \(e)")
        }
    }

    /// The port node `dialer` must dial to reach node `acceptor` through the proxy (`dialer < acceptor`).
    public func port(dialer: Int, acceptor: Int) -> Int? {
        routes.first { $0.dialer == dialer && $0.acceptor == acceptor }?.listenPort
    }

    public var mechanism: String { "fault-injecting TCP proxy on \(host) (one per node pair)" }

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

    private func accepted(_ r: Result<TCPConnection, UVError>, _ route: Route) {
        guard case .success(let down) = r, let loop else { return }
        try? down.setNoDelay(true)
        let p = ProxiedConnection(route: route, down: down)
        pipes[ObjectIdentifier(p)] = p
        lock.withLock { counters.accepted += 1 }
        do {
            try TCPConnection.connect(loop: loop, host: host, port: route.upstreamPort) { [weak self, weak p] result in
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

    let route: LinkProxy.Route
    let down: TCPConnection
    var up: TCPConnection?
    var closed = false
    var reading = [false, false]
    var backpressured = [false, false]

    init(route: LinkProxy.Route, down: TCPConnection) {
        self.route = route
        self.down = down
    }

    func link(_ d: Direction) -> DirectedLink {
        d == .forward ? DirectedLink(from: route.dialer, to: route.acceptor) : DirectedLink(from: route.acceptor, to: route.dialer)
    }
}
