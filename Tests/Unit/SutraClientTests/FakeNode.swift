import ClientProto
import Foundation
import SwiftProtobuf
import UV

/// A value behind a lock, for test state shared between the fake nodes' threads and the test.
final class Shared<T>: @unchecked Sendable {
    // Safe: `value` is only touched while `lock` is held.
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func with<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var get: T { with { $0 } }
}

/// What a fake node does with one request.
enum FakeReply: Sendable {
    /// Answer now (the request id is filled in).
    case respond(Sutra_V1_Response)
    /// Answer after `ms` milliseconds.
    case respondAfter(ms: UInt64, Sutra_V1_Response)
    /// Never answer.
    case ignore
}

/// A fake Sutra node for the SDK tests: a libuv `TCPListener` on 127.0.0.1 (port 0) on its own loop thread,
/// speaking the real framing and protobuf messages. It answers `Hello` itself and hands every other request
/// to `handler` (on its loop thread), recording them. `stop()` closes everything and joins the thread.
final class FakeNode: @unchecked Sendable {
    // Safe: `port`, `wakeup` and `loopState` are set once before init returns (and `loopState` is only used
    // on its loop thread); everything else is behind `Shared`.
    let id: UInt32
    private(set) var port = 0
    private var wakeup: LoopWakeup!
    private var loopState: FakeLoopState!
    private let handler: Shared<@Sendable (Sutra_V1_Request) -> FakeReply>
    private let log = Shared<[Sutra_V1_Request]>([])
    private let stats = Shared<(inFlight: Int, maxInFlight: Int, connections: Int)>((0, 0, 0))
    private let finished = DispatchSemaphore(value: 0)
    private let stopped = Shared(false)
    /// While true the node answers nothing, not even `Hello` (a SIGSTOPped process: the kernel still
    /// accepts connections and bytes). Requests are still recorded.
    let frozen = Shared(false)
    /// `Hello` requests received (one per connection, plus the client's liveness probes).
    let hellos = Shared(0)

    var address: String { "127.0.0.1:\(port)" }

    /// Every request received except `Hello`, in arrival order.
    var requests: [Sutra_V1_Request] { log.get }
    /// Requests with a given op.
    func requests(_ isOp: (Sutra_V1_Request.OneOf_Op) -> Bool) -> [Sutra_V1_Request] {
        requests.filter { $0.op.map(isOp) ?? false }
    }
    var puts: [Sutra_V1_Request] { requests { if case .putConcept = $0 { return true } else { return false } } }
    /// The most requests this node held unanswered at once (answered with a delay or not at all).
    var maxInFlight: Int { stats.get.maxInFlight }
    var connectionsAccepted: Int { stats.get.connections }

    init(id: UInt32, handler: @escaping @Sendable (Sutra_V1_Request) -> FakeReply = { _ in .ignore }) throws {
        self.id = id
        self.handler = Shared(handler)
        let ready = DispatchSemaphore(value: 0)
        let started = Shared<Result<(Int, LoopWakeup, FakeLoopState), UVError>?>(nil)
        let (log, stats, handlerBox, finished, frozen, hellos) = (self.log, self.stats, self.handler, self.finished, self.frozen, self.hellos)
        let thread = Thread {
            do {
                let loop = try EventLoop()
                let state = FakeLoopState(loop: loop, log: log, stats: stats, handler: handlerBox, frozen: frozen, hellos: hellos)
                let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
                    if case .success(let conn) = result { state.accepted(conn) }
                }
                state.listener = listener
                let wakeup = try LoopWakeup(loop: loop)
                state.wakeup = wakeup
                started.with { $0 = .success((listener.localPort, wakeup, state)) }
                ready.signal()
                loop.run()
                loop.close()
            } catch let e as UVError {
                started.with { $0 = .failure(e) }
                ready.signal()
            } catch {
                ready.signal()
            }
            finished.signal()
        }
        thread.name = "fake-node-\(id)"
        thread.start()
        ready.wait()
        switch started.get {
        case .success(let (port, wakeup, state))?:
            self.port = port
            self.wakeup = wakeup
            self.loopState = state
        case .failure(let e)?:
            throw e
        case nil:
            throw UVError(-1, "fake node start")
        }
    }

    /// Replaces the request handler.
    func setHandler(_ h: @escaping @Sendable (Sutra_V1_Request) -> FakeReply) {
        handler.with { $0 = h }
    }

    /// Closes the listener and every connection (clients see EOF) and waits for the loop thread to end.
    func stop() {
        let already = stopped.with { s -> Bool in
            defer { s = true }
            return s
        }
        guard !already else { return }
        let state = loopState!
        let posted = wakeup.post { state.shutdown() }
        if posted { finished.wait() }
    }

    deinit { stop() }
}

/// The fake node's loop-thread state. `@unchecked Sendable` only so `stop()` can post its shutdown: it is used
/// on its loop thread alone.
private final class FakeLoopState: @unchecked Sendable {
    let loop: EventLoop
    let log: Shared<[Sutra_V1_Request]>
    let stats: Shared<(inFlight: Int, maxInFlight: Int, connections: Int)>
    let handler: Shared<@Sendable (Sutra_V1_Request) -> FakeReply>
    let frozen: Shared<Bool>
    let hellos: Shared<Int>
    var listener: TCPListener?
    var wakeup: LoopWakeup?
    var connections: [ObjectIdentifier: TCPConnection] = [:]
    var timers: [UV.Timer] = []

    init(loop: EventLoop, log: Shared<[Sutra_V1_Request]>, stats: Shared<(inFlight: Int, maxInFlight: Int, connections: Int)>,
         handler: Shared<@Sendable (Sutra_V1_Request) -> FakeReply>, frozen: Shared<Bool>, hellos: Shared<Int>) {
        self.loop = loop
        self.log = log
        self.stats = stats
        self.handler = handler
        self.frozen = frozen
        self.hellos = hellos
    }

    func accepted(_ conn: TCPConnection) {
        stats.with { $0.connections += 1 }
        let key = ObjectIdentifier(conn)
        connections[key] = conn
        var decoder = FrameDecoder()
        do {
            try conn.startReading { [unowned self] event in
                switch event {
                case .data(let bytes):
                    for case .frame(let payload) in decoder.feed(bytes) {
                        guard let request = try? Sutra_V1_Request(serializedBytes: payload) else {
                            self.drop(key)
                            return
                        }
                        self.handle(request, on: conn)
                    }
                case .endOfFile, .error:
                    self.drop(key)
                }
            }
        } catch {
            drop(key)
        }
    }

    private func drop(_ key: ObjectIdentifier) {
        if let c = connections.removeValue(forKey: key), !c.isClosing { c.close() }
    }

    private func handle(_ request: Sutra_V1_Request, on conn: TCPConnection) {
        if case .hello(let h)? = request.op {
            hellos.with { $0 += 1 }
            if frozen.get { return }
            var r = Sutra_V1_Response()
            r.hello.minVersion = h.minVersion
            r.hello.maxVersion = min(h.maxVersion, 1)
            send(r, to: request.id, on: conn)
            return
        }
        log.with { $0.append(request) }
        if frozen.get { return }
        let reply = handler.get(request)
        switch reply {
        case .respond(let r):
            send(r, to: request.id, on: conn)
        case .respondAfter(let ms, let r):
            stats.with { s in
                s.inFlight += 1
                s.maxInFlight = max(s.maxInFlight, s.inFlight)
            }
            guard let t = try? UV.Timer(loop: loop) else { return }
            timers.append(t)
            t.start(timeout: ms) { [unowned self] in
                self.stats.with { $0.inFlight -= 1 }
                t.close()
                self.timers.removeAll { $0 === t }
                if !conn.isClosing { self.send(r, to: request.id, on: conn) }
            }
        case .ignore:
            stats.with { s in
                s.inFlight += 1
                s.maxInFlight = max(s.maxInFlight, s.inFlight)
            }
        }
    }

    private func send(_ response: Sutra_V1_Response, to id: UInt64, on conn: TCPConnection) {
        var r = response
        r.id = id
        guard !conn.isClosing, let bytes: [UInt8] = try? r.serializedBytes() else { return }
        conn.write(frame(bytes))
    }

    func shutdown() {
        for t in timers where !t.isClosing { t.close() }
        timers = []
        for c in connections.values where !c.isClosing { c.close() }
        connections = [:]
        listener?.close()
        wakeup?.close()
        loop.stop()
    }
}

// MARK: responses

enum Reply {
    static func cluster(nodes: [FakeNode], leader: UInt32, numShards: UInt32 = 4, dimension: UInt32 = 3,
                        answeredBy: UInt32 = 1) -> Sutra_V1_Response {
        var s = Sutra_V1_ClusterState()
        s.clusterID = "test-cluster"
        s.nodeID = answeredBy
        s.numShards = numShards
        s.dimension = dimension
        s.nodes = nodes.map { n in
            var info = Sutra_V1_NodeInfo()
            info.id = n.id
            info.clientAddress = n.address
            info.connected = true
            return info
        }
        s.shards = (0..<numShards).map { i in
            var sh = Sutra_V1_ShardInfo()
            sh.shard = i
            sh.leader = leader
            sh.term = 3
            return sh
        }
        var r = Sutra_V1_Response()
        r.cluster = s
        return r
    }

    static func write(_ version: UInt64) -> Sutra_V1_Response {
        var r = Sutra_V1_Response()
        r.write.version = version
        return r
    }

    static func error(_ code: Sutra_V1_ErrorCode, _ message: String, leader: UInt32 = 0,
                      address: String = "") -> Sutra_V1_Response {
        var r = Sutra_V1_Response()
        r.error.code = code
        r.error.message = message
        r.error.leaderNode = leader
        r.error.leaderAddress = address
        return r
    }
}
