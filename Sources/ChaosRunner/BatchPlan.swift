import Raft

/// Which writes one batch of the chaos workload makes, drawn from the process's seeded generator: 2 or 3
/// distinct registers, the first two on different shards whenever the registers span more than one (so the
/// batch is a cross-shard two-phase-commit transaction, coordinated by the first item's shard), each a put of a
/// fresh value or — for a register the process last saw present — sometimes a delete (a delete of an absent
/// concept fails the whole batch, so only likely-present registers are deleted). `readKey` is the item to read
/// right after an acknowledgement: one on a shard other than the coordinator's, where the write arrives as a
/// 2PC intent — the read that catches a participant answering before the intent is applied.
struct BatchPlan: Equatable {
    /// One write: a put (the caller picks its fresh value) or a delete of `key`.
    struct Item: Equatable {
        var key: String
        var delete: Bool
    }

    var items: [Item]
    var readKey: String

    /// Chance that an item on a register seen present is a delete.
    static let deleteChance = 0.3

    /// A plan over `keys` (at least two; nil otherwise). `shard` gives a register's shard, `present` whether
    /// the process last saw it present.
    static func draw(_ rng: inout SplitMix64, keys: [String], shard: (String) -> Int,
                     present: (String) -> Bool) -> BatchPlan? {
        guard keys.count >= 2 else { return nil }
        let first = rng.pick(keys)
        let home = shard(first)
        let elsewhere = keys.filter { shard($0) != home }
        var chosen = [first, rng.pick(elsewhere.isEmpty ? keys.filter { $0 != first } : elsewhere)]
        let rest = keys.filter { !chosen.contains($0) }
        if !rest.isEmpty && rng.chance(0.5) { chosen.append(rng.pick(rest)) }
        let items = chosen.map { Item(key: $0, delete: present($0) && rng.chance(deleteChance)) }
        let participants = chosen.filter { shard($0) != home }
        return BatchPlan(items: items, readKey: participants.isEmpty ? chosen.last! : rng.pick(participants))
    }
}
