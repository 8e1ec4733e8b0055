import Raft

/// How fast this node's WAL writes are, and how fast each peer acknowledges the appends this node sends it —
/// the evidence for moving leadership off a slow disk. A leader acknowledges a write only once its own WAL
/// write is durable, so a leader whose disk is much slower than its followers' slows every write of the shards
/// it leads; a follower's slow disk costs nothing while the other follower keeps up.
///
/// Pure bookkeeping (time comes in as nanoseconds): `NodeServer` feeds it each group-commit write's duration,
/// each append it sends and each acknowledgement it receives, and asks it two questions:
/// - `evictionTarget`: this node's writes are slow (the last 3 all, or the median of the last 9, ≥ `slowMs`) and a
///   connected peer acknowledges appends at least `ratio` times faster — hand leaderships to that peer;
/// - `isSlow(peer:)`: that peer acknowledges at least `ratio` times slower than this node writes, and ≥ `slowMs` —
///   do not hand it leadership (the rebalancer would otherwise give a shard straight back to a slow disk).
/// When every disk is equally slow nobody is `ratio` times faster, so leadership does not move in circles.
/// Medians and runs, not averages: one long write (a big snapshot, a write that spanned a SIGSTOP) moves
/// nothing; it takes three slow writes in a row, or most of the last nine.
struct DiskHealth {
    private var ownWrites = RecentLatencies()
    private var peerAck: [NodeID: (recent: RecentLatencies, at: UInt64)] = [:]
    private var unacked: [PendingAppend: (index: LogIndex, sentAt: UInt64)] = [:]

    /// Writes this slow (median, ms) count as a slow disk; 0 disables eviction.
    let slowMs: Double
    /// How many times faster a peer must be.
    let ratio: Double
    /// Acknowledgement figures older than this are not trusted (the peer may be gone or healed).
    let freshNanos: UInt64
    /// Longest acknowledgement wait timed, ms: an append unacknowledged this long counts as this slow.
    static let sampleCapMs = 1000.0

    private struct PendingAppend: Hashable {
        var peer: NodeID
        var shard: Int
    }

    init(slowMs: Double, ratio: Double = 3, freshNanos: UInt64 = 5_000_000_000) {
        precondition(slowMs >= 0 && ratio > 1, "slowMs ≥ 0 and ratio > 1")
        self.slowMs = slowMs
        self.ratio = ratio
        self.freshNanos = freshNanos
    }

    /// The median of this node's last WAL write + fdatasync durations, milliseconds (nil before the first).
    var ownWriteMs: Double? { ownWrites.median }

    /// How slow this node's disk looks now, ms: the fastest of the last 3 writes or the median of the last 9,
    /// whichever is larger (nil before the first write).
    var ownSlowness: Double? {
        guard let median = ownWrites.median else { return nil }
        return max(median, ownWrites.minOfLast(3) ?? 0)
    }

    /// One group-commit write took `nanos`.
    mutating func wrote(nanos: UInt64) {
        ownWrites.add(Double(nanos) / 1e6)
    }

    private mutating func ackSample(_ peer: NodeID, _ ms: Double, now: UInt64) {
        var r = peerAck[peer]?.recent ?? RecentLatencies()
        r.add(min(ms, DiskHealth.sampleCapMs))
        peerAck[peer] = (r, now)
    }

    /// An append carrying entries up to `lastIndex` left for `peer`. Only the oldest unacknowledged one per
    /// peer and shard is timed; one unacknowledged for longer than `sampleCapMs` (the peer is very slow, gone,
    /// or this node stopped leading meanwhile) counts as a sample of that cap and timing starts again.
    mutating func sentAppend(to peer: NodeID, shard: Int, lastIndex: LogIndex, now: UInt64) {
        let key = PendingAppend(peer: peer, shard: shard)
        if let p = unacked[key] {
            guard Double(now &- p.sentAt) / 1e6 > DiskHealth.sampleCapMs else { return }
            ackSample(peer, DiskHealth.sampleCapMs, now: now)
        }
        unacked[key] = (lastIndex, now)
    }

    /// `peer` accepted shard `shard`'s log up to `index`.
    mutating func acknowledged(by peer: NodeID, shard: Int, index: LogIndex, now: UInt64) {
        let key = PendingAppend(peer: peer, shard: shard)
        guard let p = unacked[key], index >= p.index else { return }
        unacked[key] = nil
        ackSample(peer, Double(now &- p.sentAt) / 1e6, now: now)
    }

    /// The median of `peer`'s last acknowledgement times, ms, if one was measured within `freshNanos`.
    func ackMs(_ peer: NodeID, now: UInt64) -> Double? {
        guard let a = peerAck[peer], now &- a.at <= freshNanos else { return nil }
        return a.recent.median
    }

    /// The connected peer to hand leaderships to because this node's disk is slow compared with it, if any:
    /// the fastest among those at least `ratio` times faster.
    func evictionTarget(connected: [NodeID], now: UInt64) -> NodeID? {
        guard slowMs > 0, let own = ownSlowness, own >= slowMs else { return nil }
        let fast = connected.compactMap { p in ackMs(p, now: now).map { (p, $0) } }.filter { $0.1 * ratio <= own }
        return fast.min { $0.1 < $1.1 }?.0
    }

    /// Whether `peer` acknowledges appends so much slower than this node writes that it should not be given
    /// leadership.
    func isSlow(peer: NodeID, now: UInt64) -> Bool {
        guard slowMs > 0, let ack = ackMs(peer, now: now), ack >= slowMs else { return false }
        return ack >= ratio * (ownWriteMs ?? 0)
    }
}

/// The last few latencies (a ring of 9), their median, and the fastest of the newest few.
struct RecentLatencies {
    static let window = 9
    private var samples: [Double] = []
    private var next = 0

    /// The smallest of the newest `n` samples; nil until there are `n`.
    func minOfLast(_ n: Int) -> Double? {
        precondition((1...RecentLatencies.window).contains(n))
        guard samples.count >= n else { return nil }
        let newest = samples.count < RecentLatencies.window ? samples.count - 1 : (next + RecentLatencies.window - 1) % RecentLatencies.window
        return (0..<n).map { samples[(newest - $0 + RecentLatencies.window) % RecentLatencies.window] }.min()
    }

    mutating func add(_ ms: Double) {
        if samples.count < RecentLatencies.window {
            samples.append(ms)
        } else {
            samples[next] = ms
            next = (next + 1) % RecentLatencies.window
        }
    }

    /// The middle sample (the upper one of an even count); nil when empty.
    var median: Double? {
        guard !samples.isEmpty else { return nil }
        return samples.sorted()[samples.count / 2]
    }
}
