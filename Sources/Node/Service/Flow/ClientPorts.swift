import Foundation
import Logging
import SecureStream
import UV

/// The node-wide half of client flow control, shared by the binary and HTTP front ends: admission (the
/// connection cap, fitted under the descriptor limit), the budget for partly received requests, the per-turn
/// request slices, and the timeouts. Each connection's own half is its `ClientFlow`.
///
/// Guarantees (loop thread only): open client connections never exceed `connectionCap`, which leaves
/// `reservedDescriptors` of the process's descriptor limit to the WAL, snapshots and peers; a connection whose
/// request started more than `requestTimeoutMs` ago, or that idled `idleTimeoutMs`, is ended through its front
/// end; while the budget for partly received requests is spent, connections holding part of a request are not
/// read from (the request timeout ends any that stall); every connection with work waiting gets a slice each
/// loop turn, and the loop keeps turning while some wait.
final class ClientPorts {
    let limits: ClientLimits
    let loop: EventLoop
    let logger: Logger
    /// The most client connections open at once: `maxConnections`, lowered to fit the descriptor limit.
    let connectionCap: Int
    /// The process's descriptor limit (RLIMIT_NOFILE, soft) when the node started.
    let descriptorLimit: Int
    private var flows: [ObjectIdentifier: ClientFlow] = [:]
    private var waiting: [ClientFlow] = []
    private(set) var partialBytes = 0
    /// Loop turns so far: every connection's per-turn slice counts within one.
    private(set) var turn: UInt64 = 1
    private var sweepTimer: UV.Timer?
    private var turnTimer: UV.Timer?
    private var lastAcceptWarning: UInt64 = 0

    // Counters for /metrics.
    private(set) var refusedAtCap: UInt64 = 0
    private(set) var acceptFailures: UInt64 = 0
    private(set) var requestTimeouts: UInt64 = 0
    private(set) var idleCloses: UInt64 = 0
    /// Connections ended because their answers waited unsent, unread, for the idle timeout.
    private(set) var sendStalls: UInt64 = 0
    private(set) var pausedForInFlight: UInt64 = 0
    private(set) var pausedForUnsent: UInt64 = 0
    private(set) var pausedForBudget: UInt64 = 0
    private(set) var pausedForBacklog: UInt64 = 0
    private(set) var offLoopDecodes: UInt64 = 0

    init(limits: ClientLimits, loop: EventLoop, logger: Logger) {
        self.limits = limits
        self.loop = loop
        self.logger = logger
        var rl = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        let fdLimit = rl.rlim_cur == rlim_t.max ? Int.max : Int(clamping: rl.rlim_cur)
        descriptorLimit = fdLimit
        let fitting = fdLimit == Int.max ? Int.max : max(8, fdLimit - limits.reservedDescriptors)
        connectionCap = min(limits.maxConnections, fitting)
        if connectionCap < limits.maxConnections {
            logger.warning("client connections capped at \(connectionCap): the descriptor limit is \(fdLimit) and \(limits.reservedDescriptors) are reserved for the WAL, snapshots and peers (raise LimitNOFILE / ulimit -n for more)")
        }
    }

    func start() throws {
        let sweep = try UV.Timer(loop: loop)
        sweep.start(timeout: 1000, repeat: 1000) { [unowned self] in self.sweep() }
        sweepTimer = sweep
        turnTimer = try UV.Timer(loop: loop)
    }

    func stop() {
        sweepTimer?.close()
        turnTimer?.close()
        sweepTimer = nil
        turnTimer = nil
        flows = [:]
        waiting = []
    }

    var nowMs: UInt64 { loop.now }

    /// Whether one more connection may open; counts the refusal when not.
    func admits() -> Bool {
        if flows.count < connectionCap { return true }
        refusedAtCap += 1
        warnRateLimited("client connection refused: \(flows.count) open, the cap is \(connectionCap) (--client-max-connections, descriptor limit \(descriptorLimit))")
        return false
    }

    /// An accept failed (EMFILE: out of descriptors, say). libuv accepts and closes the pending connection with
    /// its reserved descriptor, so the listener does not spin; the node keeps serving the connections it has.
    func acceptFailed(_ error: UVError, port: String) {
        acceptFailures += 1
        warnRateLimited("accepting a \(port) client failed: \(error) — connections beyond the descriptor limit are dropped; the node keeps serving")
    }

    private func warnRateLimited(_ line: String) {
        let now = nowMs
        guard now >= lastAcceptWarning + 10_000 || lastAcceptWarning == 0 else { return }
        lastAcceptWarning = now
        logger.warning("\(line)")
    }

    func register(_ flow: ClientFlow) {
        precondition(flows[ObjectIdentifier(flow)] == nil, "a client flow registered twice")
        flows[ObjectIdentifier(flow)] = flow
    }

    func unregister(_ flow: ClientFlow) {
        guard flows.removeValue(forKey: ObjectIdentifier(flow)) != nil else { return }
        if flow.partialBytes > 0 { partialChanged(by: -flow.partialBytes) }
    }

    /// A connection's partly received bytes changed by `delta`; when the budget frees, paused readers resume.
    func partialChanged(by delta: Int) {
        let wasOver = overBudget
        partialBytes += delta
        assert(partialBytes >= 0, "partly received bytes went negative")
        if wasOver && !overBudget {
            for f in flows.values where f.partialBytes > 0 { f.updateReading() }
        }
    }

    var overBudget: Bool { partialBytes > limits.partialRequestBudget }

    func countPause(_ why: ClientFlow.PauseReason) {
        switch why {
        case .inFlight: pausedForInFlight += 1
        case .unsent: pausedForUnsent += 1
        case .budget: pausedForBudget += 1
        case .backlog: pausedForBacklog += 1
        }
    }

    func countOffLoopDecode() { offLoopDecodes += 1 }

    /// `flow` has requests it could not start this turn (its slice was used): it gets the next one.
    func needsTurn(_ flow: ClientFlow) {
        if !flow.isWaitingForTurn {
            flow.isWaitingForTurn = true
            waiting.append(flow)
        }
        turnTimer?.start(timeout: 0) {}  // keep the loop turning (and polling peers) between slices
    }

    /// End of a loop turn: a new turn begins (every connection's slice restarts), and those with work waiting
    /// get their slice now.
    func endOfTurn() {
        turn += 1
        guard !waiting.isEmpty else { return }
        let ready = waiting
        waiting = []
        for f in ready {
            f.isWaitingForTurn = false
            f.newTurn()
        }
    }

    /// Once a second: request, idle and send-stall timeouts. A client that stops reading its answers is ended
    /// once they have waited the idle timeout with no write completing: it would otherwise hold its connection
    /// and up to its unsent budget of memory for good (it is never idle while answers wait).
    private func sweep() {
        let now = nowMs
        for f in Array(flows.values) {
            // Progress is a write completing (`wrote()`) or fewer bytes waiting than at the last sweep (the kernel
            // took part of a big answer): a slow reader is not a stalled one.
            let unsent = f.unsentBytes
            if unsent == 0 { f.unsentSinceMs = nil } else if f.unsentSinceMs == nil || unsent < f.unsentAtSweep { f.unsentSinceMs = now }
            f.unsentAtSweep = unsent
            if let since = f.partialSinceMs, now >= since + UInt64(limits.requestTimeoutMs) {
                requestTimeouts += 1
                f.timedOut(.request)
            } else if limits.idleTimeoutMs > 0, f.isIdle, now >= f.lastActivityMs + UInt64(limits.idleTimeoutMs) {
                idleCloses += 1
                f.timedOut(.idle)
            } else if limits.idleTimeoutMs > 0, let since = f.unsentSinceMs, now >= since + UInt64(limits.idleTimeoutMs) {
                sendStalls += 1
                f.timedOut(.sendStall)
            }
        }
    }
}
