import ClusterMap
import NodeCore
import Raft

/// Replicas moved by hand the way an operator does it — `sutra move-replica S --from A --to B` — under every
/// other fault of the run, in clusters where some node lacks a shard (a replication factor below the node count):
/// a voter of a random shard, the leader's replica as often as not, moves to an active node that lacks the shard
/// (learner, caught up, promoted, leadership handed off, the source removed). Checked: every move asked and taken
/// ends (finished, or rolled back by a crash), and every invariant of the run holds throughout — no acknowledged
/// write lost across the moves, the replica sets the map's once settled.
final class SimMoves: SimOperator {
    enum Phase: String { case waiting, asking, moving, done }
    /// Moves still to make.
    var left: Int
    var phase = Phase.waiting
    var asked: (node: NodeID, incarnation: UInt64, tick: UInt64)?
    var retryAt: UInt64
    /// The move taken by the map: its shard, source and target, and the map version before it.
    var current: (shard: Int, from: NodeID, to: NodeID, before: UInt64)?

    init(moves: Int, at: UInt64) {
        left = moves
        retryAt = at
    }

    var done: Bool { phase == .done }
}

extension ClusterSimulation {
    /// One step of the operator's moves, every tick; new moves are asked for only while faults run (`asking`),
    /// and one asked for is followed to its end in any case.
    func driveMoves(asking: Bool) {
        guard let op = mover, !op.done, mayAsk(op) else { return }
        switch op.phase {
        case .waiting, .asking:
            guard asking, let map = newestMap(), map.moving.isEmpty else { return }
            // A move from a shard's leader half the time (the handoff), else from any voter, to an active
            // member that lacks the shard and is up.
            let up = Set(members.filter { $0.alive && $0.core?.stopping != true }.map(\.id))
            var choices: [(shard: Int, from: NodeID, to: NodeID)] = []
            for (s, p) in map.shards.enumerated() {
                let targets = map.nodeIDs(.active).filter { !p.holds($0) && up.contains($0) }
                for from in p.voters where map.nodes[from]?.state == .active {
                    for to in targets { choices.append((s, from, to)) }
                }
            }
            guard !choices.isEmpty else { return }
            var pick = choices[rng.below(choices.count)]
            if rng.chance(0.5), let l = leader(of: pick.shard)?.id, let c = choices.first(where: { $0.shard == pick.shard && $0.from == l }) { pick = c }
            op.phase = .asking
            let before = map.version
            stats.manualMovesAsked += 1
            note("MOVE-REPLICA: shard \(pick.shard) from node \(pick.from) to node \(pick.to)")
            askMembership(.moveReplica(shard: pick.shard, from: pick.from, to: pick.to), for: op, excluding: []) { [unowned self] in
                op.current = (pick.shard, pick.from, pick.to, before)
                op.phase = .moving
                self.stats.manualMovesTaken += 1
            }
        case .moving:
            guard let c = op.current, let map = newestMap(), map.version > c.before, map.shards[c.shard].move == nil else { return }
            let p = map.shards[c.shard]
            if p.voters.contains(c.to) && !p.voters.contains(c.from) {
                stats.manualMovesFinished += 1
                note("shard \(c.shard) moved from node \(c.from) to node \(c.to)")
            } else {
                note("the move of shard \(c.shard) from node \(c.from) to node \(c.to) ended without it (rolled back or moved on): voters \(p.voters)")
            }
            op.current = nil
            op.left -= 1
            op.phase = op.left > 0 ? .waiting : .done
            op.retryAt = tick + 20
        case .done:
            break
        }
    }
}
