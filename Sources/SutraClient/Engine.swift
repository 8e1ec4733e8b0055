import ClientProto
import SutraModel
import SwiftProtobuf
import TLS
import UV

/// Where a request may be served.
enum Route: Sendable {
    /// The leader of `key`'s shard (writes, linearizable reads).
    case leader(key: ConceptID)
    /// Any node; a `NOT_LEADER` answer with a hint is followed (stale reads).
    case anyReplica(key: ConceptID)
    /// Any node (multi-shard operations).
    case anyNode
}

/// One logical request as the public API hands it to the engine.
struct CallSpec: Sendable {
    /// Its name in errors (`put`, `get`, ...).
    let operation: String
    /// The request without `id` (and, for writes, without `client_id` / `sequence`, set when the write starts).
    var request: Sutra_V1_Request
    let route: Route
    /// Concepts whose shards a write touches; nil for a read. 
    let writeKeys: [ConceptID]?
}

/// The engine's tuning, in loop milliseconds.
struct EngineConfig: Sendable {
    var requestTimeoutMs: UInt64
    var attemptTimeoutMs: UInt64
    var backoffBaseMs: UInt64
    var backoffCapMs: UInt64
    var maxFrameSize: Int
    /// Silence on a connection that owes answers before it probes its node.
    var probeAfterMs: UInt64
    /// An unanswered probe after this long closes the connection and makes the node a suspect.
    var probeTimeoutMs: UInt64
    /// The bearer token sent in every connection's `Hello` ("" = none).
    var token: String = ""
    /// TLS to every node (nil: plaintext).
    var tlsContext: TLSContext?
    /// How long a node whose probe went unanswered is avoided (unless it is heard from first).
    var suspectMs: UInt64 = 1000
    /// Consecutive `NOT_LEADER` redirects followed at once before backing off (stops ping-pong between two
    /// nodes that each believe the other leads).
    var maxImmediateRedirects = 3
    /// Every request to the first endpoint that answers, which forwards it (`SutraClient.Options.viaGateway`).
    var viaGateway = false
}

/// What the client knows of the cluster: the shard count and who leads what.
struct ClusterMap {
    var numShards: Int
    var dimension: Int
    var nodes: [UInt32: Endpoint]
    var leaders: [Int: UInt32]

    init?(_ s: Sutra_V1_ClusterState) {
        guard s.numShards > 0 else { return nil }
        numShards = Int(s.numShards)
        dimension = Int(s.dimension)
        nodes = [:]
        for n in s.nodes {
            if let e = Endpoint(n.clientAddress) { nodes[n.id] = e }
        }
        leaders = [:]
        for sh in s.shards where sh.leader != 0 { leaders[Int(sh.shard)] = sh.leader }
    }
}

/// One logical request in progress (loop thread only).
final class Call {
    enum State {
        /// Needs the cluster map, which is being fetched.
        case waitingForMap
        /// A write waiting for an earlier write of this client to one of its shards to finish.
        case queued
        /// Waiting before the next attempt.
        case backingOff
        /// An attempt is on the wire.
        case inFlight
    }

    let id: UInt64
    var spec: CallSpec
    let deadline: UInt64
    /// When the sweep should look at this call again (a backoff ends, an attempt or the deadline expires).
    var wakeAt: UInt64?
    let complete: (Result<Sutra_V1_Response, any Error>) -> Void
    var state = State.backingOff
    /// Failed attempts so far: the backoff exponent.
    var failures = 0
    var redirects = 0
    /// Which candidate an `anyNode` / `anyReplica` attempt goes to (advanced on each failure).
    var anyCursor: Int
    /// Where the next attempt goes, when a `NOT_LEADER` hint named it (`anyReplica` routes).
    var redirectTarget: Endpoint?
    var lastError: SutraError?
    /// Every wire id this call used: a late success for an earlier attempt is still accepted.
    var wireIDs: [UInt64] = []
    var currentWireID: UInt64?
    var currentEndpoint: Endpoint?
    var started = false

    init(id: UInt64, spec: CallSpec, deadline: UInt64, anyCursor: Int,
         complete: @escaping (Result<Sutra_V1_Response, any Error>) -> Void) {
        self.id = id
        self.spec = spec
        self.deadline = deadline
        self.anyCursor = anyCursor
        self.complete = complete
    }

    var isWrite: Bool { spec.writeKeys != nil }
}

/// The client's core: routing, the shard map, retries and connections. Lives on the client's loop thread.
///
/// `@unchecked Sendable` because the public `SutraClient` must hold it and post closures that use it; every
/// method and property is used only on the loop thread (the closures run there, via `LoopWakeup`), which
/// `onLoop()` checks.
///
/// Writes and idempotency: every write gets a sequence when it starts, reused on every retry, so a write that
/// was applied before a failover is answered with its first outcome instead of applying twice. Any number of
/// writes may be in flight at once, to any shards: each request carries `acked_below`, the lowest sequence
/// still outstanding, which tells the shards they may forget the outcomes below it (see `ShardRequest`).
final class Engine: @unchecked Sendable {
    let loop: EventLoop
    let config: EngineConfig
    let clientID: UInt64
    private let seeds: [Endpoint]

    private var calls: [UInt64: Call] = [:]
    /// wire id → (call id, endpoint it went to)
    private var wire: [UInt64: (call: UInt64, endpoint: Endpoint)] = [:]
    private var connections: [Endpoint: NodeConnection] = [:]
    private var map: ClusterMap?
    private var candidates: [Endpoint]
    private var refreshCallID: UInt64?
    private var waitingForMap: [UInt64] = []
    private var writeQueue: [UInt64] = []
    /// Sequences of the writes started and not finished (their outcomes may still be asked for).
    private var outstanding: Set<UInt64> = []
    private var nextWireID: UInt64 = 1
    private var nextSequence: UInt64 = 1
    private var nextInternalID: UInt64 = Engine.internalIDs
    /// When the map was last learned (loop ms).
    private var mapLearnedAt: UInt64 = 0
    private var nextAnyCursor = 0
    private var closed = false
    private var sweepTimer: UV.Timer?
    private var sweeping = false
    /// Ends each loop turn by flushing `toFlush`; closed with the engine.
    var turnEnd: LoopCheck?
    /// Connections with requests waiting for the end of the loop turn.
    private var toFlush: [NodeConnection] = []
    /// Nodes that did not answer a probe, avoided until the loop time given (or until heard from).
    private var suspects: [Endpoint: UInt64] = [:]

    init(loop: EventLoop, config: EngineConfig, clientID: UInt64, seeds: [Endpoint]) {
        self.loop = loop
        self.config = config
        self.clientID = clientID
        self.seeds = seeds
        candidates = seeds
    }

    func markForFlush(_ c: NodeConnection) { toFlush.append(c) }

    /// End of a loop turn: every connection writes the requests of the turn in one go.
    func flushWrites() {
        let cs = toFlush
        toFlush = []
        for c in cs { c.flush() }
    }

    private func onLoop() {
        precondition(loop.isOnLoopThread, "Engine used off its loop thread")
    }

    // MARK: calls

    /// Starts a logical request; `complete` runs exactly once, on the loop thread.
    func start(_ spec: CallSpec, id: UInt64, complete: @escaping (Result<Sutra_V1_Response, any Error>) -> Void) {
        onLoop()
        if closed { return complete(.failure(SutraError.closed)) }
        nextAnyCursor &+= 1
        let call = Call(id: id, spec: spec, deadline: loop.now + config.requestTimeoutMs,
                        anyCursor: nextAnyCursor, complete: complete)
        calls[id] = call
        // A busy client re-reads the map now and then, so it follows the cluster's membership: machines added
        // and retired while its map said nothing new (every node it knew may be gone one day).
        if map != nil, id < Engine.internalIDs, loop.now >= mapLearnedAt + Engine.mapRefreshMs { requestRefresh() }
        advance(call)
    }

    /// How old the cluster map may get before a new call has it fetched again, ms.
    static let mapRefreshMs: UInt64 = 5_000
    /// Call ids from here on are the engine's own (map fetches).
    static let internalIDs: UInt64 = 1 << 63

    /// Cancels a call (the caller's task was cancelled): it completes with `CancellationError`.
    func cancel(_ id: UInt64) {
        onLoop()
        if let call = calls[id] { finish(call, .failure(CancellationError())) }
    }

    /// Moves a call that is not on the wire forward: to the map wait, the write queue, or an attempt.
    private func advance(_ call: Call) {
        if closed { return finish(call, .failure(SutraError.closed)) }
        if loop.now >= call.deadline { return timeOut(call) }
        let needsMap: Bool
        switch call.spec.route {
        case .leader: needsMap = true
        case .anyReplica, .anyNode: needsMap = call.isWrite && !call.started
        }
        if needsMap && map == nil {
            call.state = .waitingForMap
            waitingForMap.append(call.id)
            arm(call, at: call.deadline)
            ensureRefresh()
            return
        }
        if call.isWrite && !call.started {
            call.state = .queued
            writeQueue.append(call.id)
            arm(call, at: call.deadline)
            startQueuedWrites()
            return
        }
        send(call)
    }

    /// Starts every queued write, in order: each gets its sequence now, kept for all its retries.
    private func startQueuedWrites() {
        guard !closed else { return }
        var ready: [Call] = []
        for id in writeQueue {
            guard let call = calls[id], call.state == .queued else { continue }
            call.started = true
            call.spec.request.clientID = clientID
            call.spec.request.sequence = nextSequence
            outstanding.insert(nextSequence)
            nextSequence += 1
            ready.append(call)
        }
        writeQueue = []
        for call in ready where calls[call.id] === call { send(call) }
    }

    /// Sends one attempt of `call` to the node its route picks.
    private func send(_ call: Call) {
        guard let target = pickTarget(call) else {
            call.lastError = call.lastError ?? .unavailable("no node address known")
            return scheduleRetry(call)
        }
        let wid = nextWireID
        nextWireID += 1
        call.spec.request.id = wid
        // The SDK routes by its shard map and follows NOT_LEADER hints: no forwarding by the node it reaches
        // (unless it is in gateway mode).
        call.spec.request.noForward = !config.viaGateway
        if call.started { call.spec.request.ackedBelow = outstanding.min() ?? nextSequence }
        let bytes: [UInt8]
        do {
            bytes = try call.spec.request.serializedBytes()
        } catch {
            return finish(call, .failure(SutraError.invalidArgument("the request could not be encoded: \(error)")))
        }
        if bytes.count > config.maxFrameSize {
            return finish(call, .failure(SutraError.tooLarge(
                "the \(call.spec.operation) request is \(bytes.count) bytes; the frame limit is \(config.maxFrameSize)")))
        }
        let conn: NodeConnection
        if let c = connections[target], c.state != .closed {
            conn = c
        } else {
            nextWireID += 1
            conn = NodeConnection(endpoint: target, engine: self, maxFrameSize: config.maxFrameSize, helloID: nextWireID - 1,
                                  token: config.token, tls: config.tlsContext)
            do {
                try conn.connect()
            } catch {
                call.lastError = .connectionFailed(endpoint: target.description, reason: error.description)
                call.currentEndpoint = target
                requestRefresh()
                return failedAttempt(call)
            }
            connections[target] = conn
        }
        wire[wid] = (call.id, target)
        call.wireIDs.append(wid)
        call.currentWireID = wid
        call.currentEndpoint = target
        call.state = .inFlight
        arm(call, at: min(call.deadline, loop.now + config.attemptTimeoutMs))
        conn.send(frame(bytes), wireID: wid)
    }

    private func pickTarget(_ call: Call) -> Endpoint? {
        if config.viaGateway {
            // The configured endpoints in order, the first that is not suspect (then any node the map names).
            return (seeds + candidates).first { !isSuspect($0) } ?? seeds.first
        }
        if let t = call.redirectTarget {
            call.redirectTarget = nil
            if !isSuspect(t) { return t }
        }
        if case .leader(let key) = call.spec.route, let map,
           let leader = map.leaders[key.shard(of: map.numShards)], let e = map.nodes[leader], !isSuspect(e) {
            return e
        }
        // Any node (also for a shard whose leader is unknown or unresponsive: the node will name the leader or
        // say UNAVAILABLE), preferring nodes that answer.
        guard !candidates.isEmpty else { return nil }
        let start = abs(call.anyCursor % candidates.count)
        for i in 0..<candidates.count {
            let e = candidates[(start + i) % candidates.count]
            if !isSuspect(e) { return e }
        }
        return candidates[start]
    }

    /// Whether `e` failed a probe less than `suspectMs` ago and has not been heard from since.
    private func isSuspect(_ e: Endpoint) -> Bool {
        guard let until = suspects[e] else { return false }
        if until > loop.now { return true }
        suspects[e] = nil
        return false
    }

    // MARK: answers

    /// A response arrived on `conn`.
    func received(_ response: Sutra_V1_Response, on conn: NodeConnection) {
        onLoop()
        suspects[conn.endpoint] = nil
        guard let w = wire[response.id], let call = calls[w.call] else { return }  // finished already
        let isCurrent = call.currentWireID == response.id
        if !response.hasError || response.error.code == .ok {
            if case .cluster(let state)? = response.result { learn(state) }
            return finish(call, .success(response))
        }
        let error = SutraError(proto: response.error)
        guard error.isRetryable else { return finish(call, .failure(error)) }
        // A transient answer to an attempt already given up on changes nothing.
        guard isCurrent else { return }
        call.currentWireID = nil
        call.lastError = error
        switch error {
        case .notLeader(let leader, let address, _):
            followLeaderHint(call, leader: leader, address: address, from: conn.endpoint)
        case .unavailable:
            requestRefresh()
            failedAttempt(call)
        default:
            failedAttempt(call)
        }
    }

    private func followLeaderHint(_ call: Call, leader: UInt32, address: String, from: Endpoint) {
        var target: Endpoint?
        let hinted = Endpoint(address)
        switch call.spec.route {
        case .leader(let key), .anyReplica(let key):
            if var m = map {
                let shard = key.shard(of: m.numShards)
                var nodesChanged = false
                if leader != 0 {
                    m.leaders[shard] = leader
                    if let hinted, m.nodes[leader] != hinted {
                        m.nodes[leader] = hinted
                        nodesChanged = true
                    }
                    target = m.nodes[leader]
                } else {
                    m.leaders[shard] = nil
                }
                map = m
                if nodesChanged { recomputeCandidates() }
            }
            if target == nil, leader != 0 { target = hinted }
        case .anyNode:
            target = leader != 0 ? hinted : nil
        }
        guard leader != 0, let target, !isSuspect(target) else {
            requestRefresh()
            return failedAttempt(call)
        }
        if case .leader = call.spec.route {} else { call.redirectTarget = target }
        if target != from && call.redirects < config.maxImmediateRedirects {
            call.redirects += 1
            send(call)
        } else {
            call.redirects = 0
            requestRefresh()
            scheduleRetry(call)
        }
    }

    /// The connection to a node closed; `lost` are the wire ids still unanswered on it.
    func connectionClosed(_ conn: NodeConnection, lost: Set<UInt64>, error: SutraError) {
        onLoop()
        if connections[conn.endpoint] === conn { connections[conn.endpoint] = nil }
        guard !closed else { return }
        var affected: [Call] = []
        for wid in lost.sorted() {
            if let w = wire[wid], let call = calls[w.call], call.currentWireID == wid { affected.append(call) }
        }
        if !affected.isEmpty && error.isRetryable { requestRefresh() }
        for call in affected where calls[call.id] === call {
            guard error.isRetryable else {
                finish(call, .failure(error))
                continue
            }
            call.currentWireID = nil
            call.lastError = error
            failedAttempt(call)
        }
    }

    /// An attempt failed transiently: the next goes elsewhere (for any-node routes) after a backoff.
    private func failedAttempt(_ call: Call) {
        call.anyCursor &+= 1
        call.redirects = 0
        scheduleRetry(call)
    }

    /// Exponential backoff with full jitter: uniform in [0, min(cap, base · 2^failures)].
    private func scheduleRetry(_ call: Call) {
        call.currentWireID = nil
        let ceiling = min(config.backoffCapMs, config.backoffBaseMs << UInt64(min(call.failures, 30)))
        call.failures += 1
        let delay = UInt64.random(in: 0...ceiling)
        call.state = .backingOff
        arm(call, at: min(call.deadline, loop.now + delay))
    }

    /// Asks the sweep to look at `call` again at `time` (ms on the loop clock). One repeating timer serves
    /// every call (a libuv timer per call cost more than the requests themselves); it runs only while calls
    /// are waiting, every `sweepMs`, so wake-ups are late by at most that much.
    private func arm(_ call: Call, at time: UInt64) {
        call.wakeAt = time
        guard !sweeping else { return }
        if sweepTimer == nil { sweepTimer = try? UV.Timer(loop: loop) }
        sweeping = true
        sweepTimer?.start(timeout: Engine.sweepMs, repeat: Engine.sweepMs) { [weak self] in self?.sweep() }
    }

    static let sweepMs: UInt64 = 5

    private func sweep() {
        let now = loop.now
        var due: [UInt64] = []
        for (id, c) in calls {
            if let t = c.wakeAt, t <= now { due.append(id) }
        }
        for id in due.sorted() {
            guard let c = calls[id] else { continue }
            c.wakeAt = nil
            timerFired(id)
        }
        probeSilentConnections(now: loop.now)
        if !calls.values.contains(where: { $0.wakeAt != nil }) {
            sweeping = false
            sweepTimer?.stop()
        }
    }

    /// Probes connections that owe answers and have been silent; closes those whose probe went unanswered and
    /// makes their nodes suspects, so their requests are retried elsewhere now rather than at the attempt
    /// timeout. Runs with the sweep, which runs while any attempt is in flight.
    private func probeSilentConnections(now: UInt64) {
        for conn in Array(connections.values) {
            switch conn.liveness(now: now, probeAfterMs: config.probeAfterMs, probeTimeoutMs: config.probeTimeoutMs) {
            case .fine:
                break
            case .probe:
                let id = nextWireID
                nextWireID += 1
                conn.sendProbe(wireID: id, now: now)
            case .unresponsive(let silentMs):
                suspects[conn.endpoint] = now + config.suspectMs
                conn.fail(.noResponse(endpoint: conn.endpoint.description, afterMilliseconds: silentMs))
            }
        }
    }

    private func timerFired(_ id: UInt64) {
        guard let call = calls[id] else { return }
        if loop.now >= call.deadline { return timeOut(call) }
        switch call.state {
        case .backingOff:
            advance(call)
        case .inFlight:
            // The attempt got no answer in time: try again (the same write, same sequence), elsewhere if the
            // route allows. A connection still not up is given up on.
            let endpoint = call.currentEndpoint
            call.currentWireID = nil
            call.lastError = .noResponse(endpoint: endpoint?.description ?? "?", afterMilliseconds: config.attemptTimeoutMs)
            if let endpoint, let conn = connections[endpoint], conn.state == .connecting {
                conn.fail(.connectionFailed(endpoint: endpoint.description, reason: "connect timed out"))
            }
            requestRefresh()
            failedAttempt(call)
        case .waitingForMap, .queued:
            arm(call, at: call.deadline)
        }
    }

    private func timeOut(_ call: Call) {
        var last = call.lastError
        if last == nil, call.state == .waitingForMap, let r = refreshCallID, let rc = calls[r] {
            last = rc.lastError
        }
        finish(call, .failure(SutraError.timeout(operation: call.spec.operation, lastError: last)))
    }

    /// Completes a call exactly once and releases what it holds.
    private func finish(_ call: Call, _ result: Result<Sutra_V1_Response, any Error>) {
        guard calls.removeValue(forKey: call.id) != nil else { return }
        call.wakeAt = nil
        for wid in call.wireIDs {
            if let w = wire.removeValue(forKey: wid) { connections[w.endpoint]?.inflight.remove(wid) }
        }
        switch call.state {
        case .waitingForMap: waitingForMap.removeAll { $0 == call.id }
        case .queued: writeQueue.removeAll { $0 == call.id }
        case .backingOff, .inFlight: break
        }
        // Finished either way (answered, refused, or given up on at the deadline): it is never sent again.
        if call.started { outstanding.remove(call.spec.request.sequence) }
        call.complete(result)
    }

    // MARK: the cluster map

    /// Marks the map as possibly stale: fetches it again (at most one fetch at a time).
    private func requestRefresh() { ensureRefresh() }

    private func ensureRefresh() {
        guard refreshCallID == nil, !closed else { return }
        let id = nextInternalID
        nextInternalID += 1
        refreshCallID = id
        var request = Sutra_V1_Request()
        request.clusterInfo = Sutra_V1_ClusterInfo()
        start(CallSpec(operation: "clusterInfo", request: request, route: .anyNode, writeKeys: nil), id: id) {
            [weak self] result in self?.refreshDone(result)
        }
    }

    private func refreshDone(_ result: Result<Sutra_V1_Response, any Error>) {
        refreshCallID = nil
        var failure: SutraError?
        switch result {
        case .success(let r):
            if case .cluster? = r.result {
                if map == nil { failure = .invalidResponse("the cluster reports 0 shards") }
            } else {
                failure = .invalidResponse("ClusterInfo answered without a cluster state")
            }
        case .failure(let e):
            if case SutraError.timeout(_, let last) = e { failure = last } else { failure = e as? SutraError }
            if failure == nil { failure = .unavailable("cluster map: \(e)") }
        }
        let waiting = waitingForMap
        waitingForMap = []
        if map == nil, let failure, case .unauthenticated = failure {
            // A token the node refuses will be refused again: every call waiting for the map gets the answer now.
            for id in waiting { if let call = calls[id] { finish(call, .failure(failure)) } }
            return
        }
        for id in waiting {
            guard let call = calls[id] else { continue }
            if map != nil {
                advance(call)
            } else {
                call.lastError = failure
                waitingForMap.append(id)
            }
        }
        if !waitingForMap.isEmpty && !closed { ensureRefresh() }
    }

    /// Takes in a cluster state (from a refresh or a user's `clusterInfo()`).
    private func learn(_ state: Sutra_V1_ClusterState) {
        guard let m = ClusterMap(state) else { return }
        map = m
        mapLearnedAt = loop.now
        recomputeCandidates()
    }

    private func recomputeCandidates() {
        var list: [Endpoint] = []
        if let map {
            for id in map.nodes.keys.sorted() { list.append(map.nodes[id]!) }
        }
        for s in seeds where !list.contains(s) { list.append(s) }
        candidates = list
    }

    // MARK: shutdown

    /// Fails every call with `SutraError.closed` and closes every connection and timer. The caller then closes
    /// the wake-up handle and stops the loop.
    func shutdown() {
        onLoop()
        guard !closed else { return }
        closed = true
        waitingForMap = []
        writeQueue = []
        for id in calls.keys.sorted() {
            if let call = calls[id] { finish(call, .failure(SutraError.closed)) }
        }
        for conn in Array(connections.values) { conn.fail(.closed) }
        connections = [:]
        toFlush = []
        turnEnd?.close()
        turnEnd = nil
        sweepTimer?.close()
        sweepTimer = nil
    }
}
