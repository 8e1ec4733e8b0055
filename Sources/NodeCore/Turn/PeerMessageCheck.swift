import Raft
import Shard

/// Why a message from a peer was refused before it reached a shard's Raft core, as the `reason` label of
/// `sutra_peer_rejected_messages_total`. Pure values.
package enum PeerRejection: Hashable, CustomStringConvertible {
    /// For a shard this node does not have, or not from the link's peer, or not to this node.
    case misaddressed
    /// An append carrying a normal entry whose shard command does not decode.
    case undecodableEntry(index: LogIndex)
    /// An append carrying a membership-change entry that does not decode.
    case undecodableConfChange(index: LogIndex)
    /// A snapshot message whose state image does not restore (checksum, version, dimension, layout).
    case undecodableSnapshot(index: LogIndex)
    /// The Raft core's own refusal (a term or index out of bounds, malformed entries or snapshot).
    case raft(MessageRejection)
    /// A forwarded request no honest node builds (a transaction without two parts on distinct shards, …).
    case malformedForward(String)
    /// A streamed snapshot's frame no honest node sends (over the size limit, a chunk past the image's end, …).
    case malformedSnapshotStream(String)

    /// The metric label.
    package var reason: String {
        switch self {
        case .misaddressed: return "misaddressed"
        case .undecodableEntry: return "undecodable_entry"
        case .undecodableConfChange: return "undecodable_conf_change"
        case .undecodableSnapshot: return "undecodable_snapshot"
        case .raft(let r): return r.rawValue
        case .malformedForward: return "malformed_forward"
        case .malformedSnapshotStream: return "malformed_snapshot_stream"
        }
    }

    package var description: String {
        switch self {
        case .misaddressed: return "misaddressed"
        case .undecodableEntry(let i): return "entry \(i) holds no shard command this node can decode"
        case .undecodableConfChange(let i): return "entry \(i) holds no membership change this node can decode"
        case .undecodableSnapshot(let i): return "the snapshot at \(i) does not restore"
        case .raft(let r): return "refused by the Raft core: \(r.rawValue)"
        case .malformedForward(let why): return "malformed forward: \(why)"
        case .malformedSnapshotStream(let why): return "malformed snapshot stream: \(why)"
        }
    }
}

/// The content check of a Raft message received from a peer: every entry it carries must decode (a shard
/// command or a membership change) and a snapshot's image must restore, so nothing that would stop this node
/// when it applies is ever taken into its log. Pure; nil when the message may be stepped.
///
/// It checks every entry's decoding (`ShardRequest.check`: the same refusals as applying, without copying
/// contents and embeddings out) and restores every snapshot's image — through `restores`, which the node points at
/// `ShardReplica.checkSnapshot` so the restored state is kept for the install (a big image is decoded once).
package enum PeerMessageCheck {
    package static func check(_ m: Message, limits: ShardLimits, restores: ((Snapshot) -> Bool)? = nil) -> PeerRejection? {
        if let why = checkEntries(m, decodes: { (try? ShardRequest.check($0)) != nil }) { return why }
        if let s = m.snapshot {
            let ok = restores.map { $0(s) } ?? ((try? ShardState.restore(from: s.data, limits: limits)) != nil)
            if !ok { return .undecodableSnapshot(index: s.metadata.index) }
        }
        return nil
    }
}

extension PeerMessageCheck {
    /// Every entry of `m` decodes: a non-empty normal entry as `decodes` says (a shard command, a map change), a
    /// membership change as one. A new leader's empty entry passes.
    package static func checkEntries(_ m: Message, decodes: ([UInt8]) -> Bool) -> PeerRejection? {
        for e in m.entries {
            switch e.kind {
            case .normal:
                if e.data.isEmpty { continue }
                if !decodes(e.data) { return .undecodableEntry(index: e.index) }
            case .confChange:
                if ConfChange.decode(e.data) == nil { return .undecodableConfChange(index: e.index) }
            }
        }
        return nil
    }
}

/// At most one log line per peer per `interval` for refused messages; the rest are only counted.
package struct PeerRejectionLog {
    package let interval: UInt64
    private var lastLogged: [NodeID: UInt64] = [:]
    private var suppressed: [NodeID: UInt64] = [:]

    package init(intervalNanos: UInt64 = 10_000_000_000) { interval = intervalNanos }

    /// Whether to log a refusal from `peer` at `now`; if so, also how many were suppressed since the last line.
    package mutating func shouldLog(peer: NodeID, now: UInt64) -> (log: Bool, suppressed: UInt64) {
        if let last = lastLogged[peer], now &- last < interval {
            suppressed[peer, default: 0] += 1
            return (false, 0)
        }
        lastLogged[peer] = now
        let n = suppressed.removeValue(forKey: peer) ?? 0
        return (true, n)
    }
}

/// At most `lines` log lines per window of `windowMs`, whatever they say (refused connections of a flood vary
/// in wording); what a full window holds back is counted and reported when the next window opens. Pure.
package struct LogLineBudget {
    package let lines: Int
    package let windowMs: UInt64
    private var windowStart: UInt64?
    private var used = 0
    private var held = 0

    package init(lines: Int, windowMs: UInt64) {
        precondition(lines > 0 && windowMs > 0)
        self.lines = lines
        self.windowMs = windowMs
    }

    /// Whether a line may be logged at `now`, and how many the previous window held back (to say once).
    package mutating func admit(now: UInt64) -> (log: Bool, heldBack: Int) {
        var heldBack = 0
        if windowStart.map({ now >= $0 + windowMs }) ?? true {
            heldBack = held
            windowStart = now
            used = 0
            held = 0
        }
        guard used < lines else { held += 1; return (false, heldBack) }
        used += 1
        return (true, heldBack)
    }
}
