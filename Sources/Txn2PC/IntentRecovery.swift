import Raft
import Shard

/// Resolves intents whose coordinator went quiet, from the leader of the participant shard holding them.
///
/// An intent this leader has watched for longer than `TxnTimeouts.intentTicks` makes it write an abort
/// decision to the record shard — which keeps the decision already there if one was written first (the
/// first decision wins) — and then apply that decision to its own intent. Ages are counted from when this
/// node, as leader, first saw the intent; a new leader starts counting afresh (it may wait longer, never
/// less). Not thread-safe: one per node, driven from the node's loop.
public final class IntentRecovery {
    private struct Key: Hashable, Comparable {
        var shard: Int
        var id: TxnID
        static func < (a: Key, b: Key) -> Bool { (a.shard, a.id) < (b.shard, b.id) }
    }

    unowned let host: TxnHost
    public let timeouts: TxnTimeouts
    private var firstSeen: [Key: UInt64] = [:]
    private var asking: Set<Key> = []
    public private(set) var now: UInt64 = 0
    /// Intents resolved by this recovery path (their coordinator did not resolve them in time).
    public private(set) var recovered: UInt64 = 0

    public init(host: TxnHost, timeouts: TxnTimeouts = TxnTimeouts()) {
        self.host = host
        self.timeouts = timeouts
    }

    /// Age in ticks of the oldest intent held by a shard this node leads (0 if none).
    public var oldestTicks: UInt64 { firstSeen.values.map { now - $0 }.max() ?? 0 }

    /// Intents held by shards this node leads, as last counted.
    public private(set) var held = 0

    public func tick() {
        now += 1
        var present: Set<Key> = []
        for shard in 0..<host.shardCount where host.isLeader(of: shard) {
            for (id, intent) in host.state(of: shard).txns.intents where intent.recordShard != shard {
                let key = Key(shard: shard, id: id)
                present.insert(key)
                if firstSeen[key] == nil { firstSeen[key] = now }
            }
        }
        held = present.count
        for key in Array(firstSeen.keys) where !present.contains(key) { firstSeen[key] = nil }
        for key in firstSeen.keys.sorted() where !asking.contains(key) && now - firstSeen[key]! >= UInt64(timeouts.intentTicks) {
            guard let intent = host.state(of: key.shard).txns.intents[key.id] else { continue }
            ask(key, recordShard: intent.recordShard)
        }
    }

    /// Lets `key` be asked about again after the retry interval (not at the next tick).
    private func askAgainLater(_ key: Key) {
        asking.remove(key)
        guard firstSeen[key] != nil else { return }
        let back = UInt64(max(0, timeouts.intentTicks - timeouts.retryTicks))
        firstSeen[key] = now >= back ? now - back : 0
    }

    private func ask(_ key: Key, recordShard: Int) {
        asking.insert(key)
        let reason = "shard \(key.shard) gave up waiting for the decision"
        let req = ShardRequest(clientID: 0, sequence: 0, command: .txnDecide(key.id, commit: false, reason: reason))
        host.proposeAnywhere(shard: recordShard, req) { [weak self] result in
            guard let self else { return }
            let commit: Bool
            switch result {
            case .success: commit = true
            case .failure(.rejected(let why)) where why.hasPrefix(Rejection.forgotten):
                // The record shard forgot the transaction only after every participant, this one included,
                // had applied its decision: this leader's state lags its log. The intent goes once that entry
                // applies; resolving it here would only guess. Ask again later if it is still there.
                self.askAgainLater(key)
                return
            case .failure(.rejected): commit = false
            case .failure:
                // Not reachable now: try again after the retry interval.
                self.askAgainLater(key)
                return
            }
            guard self.host.isLeader(of: key.shard) else { self.asking.remove(key); return }
            let resolve = ShardRequest(clientID: 0, sequence: 0, command: .txnResolve([key.id], commit: commit))
            self.host.proposeLocal(shard: key.shard, resolve) { [weak self] r in
                guard let self else { return }
                self.asking.remove(key)
                if case .success = r { self.recovered += 1 }
            }
        }
    }
}
