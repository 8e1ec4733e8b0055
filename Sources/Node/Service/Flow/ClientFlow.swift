import SecureStream

/// One client connection's flow control: requests parsed from it wait in order in a backlog and start only
/// while it has fewer than `maxInFlightPerConnection` in flight, fewer than `maxUnsentBytesPerConnection` of
/// answers unsent, and slice left this turn; the socket is not read while anything waits or the node-wide
/// budget for partly received requests is spent. Its front end feeds it and answers; it never parses.
///
/// Guarantees (loop thread only): requests start in arrival order, each exactly once, and none after `close`;
/// `inFlight` counts started requests whose `finished()` has not been called; a request may hold back every
/// later one (`holdOrder`, for a body decoded on the thread pool) until it calls `releaseOrder`.
///
/// A request that may start the moment it is parsed (the usual case) starts through `startsNow()` and costs no
/// allocation here; only one that must wait is kept, as a closure, in the backlog.
final class ClientFlow {
    /// Starts one waiting request. Every started request — through `startsNow()` or a `Start` — is answered
    /// by its front end calling `finished()` exactly once, when its answer is handed to the writer (unless the
    /// connection is gone by then, and its flow with it).
    typealias Start = () -> Void
    enum PauseReason { case backlog, inFlight, unsent, budget }
    /// `sendStall`: answers have waited unsent for the idle timeout while the client read none of them.
    enum Timeout { case request, idle, sendStall }

    unowned let ports: ClientPorts
    let stream: SecureStream
    /// Answer bytes the front end holds that the socket has not been given yet (ordering, the turn's write).
    var heldBytes: () -> Int = { 0 }
    /// Ends the connection for a timeout (the front end answers if it can, then closes).
    var onTimeout: (Timeout) -> Void = { _ in }

    private var backlog: [Start] = []
    private var head = 0
    private(set) var inFlight = 0
    private var startedThisTurn = 0
    /// The loop turn `startedThisTurn` counts (`ClientPorts.turn`): a new turn restarts it.
    private var countedTurn: UInt64 = 0
    private var pumping = false
    private var orderHeld = false
    private var paused = false
    private var pauseReason: PauseReason?
    private(set) var closed = false
    var isWaitingForTurn = false
    private(set) var lastActivityMs: UInt64
    private(set) var partialSinceMs: UInt64?
    private(set) var partialBytes = 0
    /// Since when answers have waited unsent with no write completing (nil: none waits, or one just completed);
    /// set by the ports' sweep, cleared by `wrote()`.
    var unsentSinceMs: UInt64?
    /// `unsentBytes` at the last sweep.
    var unsentAtSweep = 0

    init(ports: ClientPorts, stream: SecureStream) {
        self.ports = ports
        self.stream = stream
        lastActivityMs = ports.nowMs
        ports.register(self)
    }

    var limits: ClientLimits { ports.limits }
    var waitingCount: Int { backlog.count - head }
    var unsentBytes: Int { stream.pendingWriteBytes + heldBytes() }
    var isIdle: Bool { inFlight == 0 && waitingCount == 0 && partialSinceMs == nil && unsentBytes == 0 }

    /// After each read: `bytes` of a request are buffered in the parser (0 when none is partly received).
    func received(partialBytes bytes: Int, midRequest: Bool) {
        guard !closed else { return }
        let now = ports.nowMs
        lastActivityMs = now
        if midRequest {
            if partialSinceMs == nil { partialSinceMs = now }
        } else {
            partialSinceMs = nil
        }
        let delta = bytes - partialBytes
        partialBytes = bytes
        if delta != 0 { ports.partialChanged(by: delta) }
    }

    /// Whether a request parsed now may start at once: nothing waits before it and the limits allow. If so it
    /// counts as started — the caller runs it now and calls `finished()` once — else the caller `submit`s it.
    func startsNow() -> Bool {
        restartSliceIfNewTurn()
        guard !closed, head == backlog.count, !orderHeld, limitHoldingBack() == nil else { return false }
        inFlight += 1
        startedThisTurn += 1
        return true
    }

    /// Which of the connection's limits keeps one more request from starting now (nil: none).
    private enum Limit { case inFlight, unsent, slice }
    private func limitHoldingBack() -> Limit? {
        if inFlight >= limits.maxInFlightPerConnection { return .inFlight }
        if unsentBytes >= limits.maxUnsentBytesPerConnection { return .unsent }
        if startedThisTurn >= limits.requestsPerTurn { return .slice }
        return nil
    }

    /// Queues a parsed request; it starts as soon as the connection's limits allow (at once if they do).
    func submit(_ start: @escaping Start) {
        guard !closed else { return }
        backlog.append(start)
        pump()
    }

    /// Holds back later requests until `releaseOrder` (a request whose decoding left the loop).
    func holdOrder() { orderHeld = true }

    func releaseOrder() {
        orderHeld = false
        pump()
    }

    /// Something changed (an answer was written, a request finished, a turn began): start what may start.
    func pump() {
        guard !closed, !pumping else { return }
        pumping = true
        defer { pumping = false }
        restartSliceIfNewTurn()
        while head < backlog.count && !orderHeld && !closed {
            if let limit = limitHoldingBack() {
                if limit == .slice { ports.needsTurn(self) }  // the others lift when an answer goes out
                break
            }
            let start = backlog[head]
            head += 1
            inFlight += 1
            startedThisTurn += 1
            start()
        }
        if head == backlog.count {
            backlog.removeAll(keepingCapacity: backlog.count <= 256)
            head = 0
        } else if head > 1024 {
            backlog.removeFirst(head)
            head = 0
        }
        updateReading()
    }

    /// A started request's answer was handed to the writer.
    func finished() {
        precondition(inFlight > 0, "a client request finished that never started (or finished twice)")
        inFlight -= 1
        lastActivityMs = ports.nowMs
        if !pumping { pump() }
    }

    /// A new loop turn for a connection that waited for it: what waits starts (`pump` opens the new slice).
    func newTurn() { pump() }

    private func restartSliceIfNewTurn() {
        if countedTurn != ports.turn {
            countedTurn = ports.turn
            startedThisTurn = 0
        }
    }

    /// Reads while nothing waits and the budgets allow; pauses otherwise.
    func updateReading() {
        guard !closed else { return }
        var reason: PauseReason?
        if waitingCount > 0 {
            reason = inFlight >= limits.maxInFlightPerConnection ? .inFlight : .backlog
        }
        if unsentBytes >= limits.maxUnsentBytesPerConnection { reason = .unsent }
        if reason == nil && partialBytes > 0 && ports.overBudget { reason = .budget }
        if let reason {
            if reason != pauseReason { ports.countPause(reason) }
            pauseReason = reason
            if !paused {
                paused = true
                stream.pauseReading()
            }
        } else if paused {
            paused = false
            pauseReason = nil
            stream.resumeReading()
        }
    }

    func timedOut(_ why: Timeout) { onTimeout(why) }

    /// A write of answers to the socket completed (the client is reading): the send-stall clock restarts, and
    /// requests held back by the unsent budget may start.
    func wrote() {
        unsentSinceMs = nil
        pump()
    }

    /// The connection ended: nothing more starts; its partly received bytes leave the budget.
    func close() {
        guard !closed else { return }
        closed = true
        backlog = []
        head = 0
        ports.unregister(self)
        partialBytes = 0
    }
}
