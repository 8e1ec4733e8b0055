import NodeCore
import Raft

/// A node replaced by a spare machine, driven through the production operator requests (`ClientOp.membership`)
/// as `sutra node add | replace | remove` send them, each to a random live node, retried until taken — under every
/// other fault of the run. Half the time the node is dead (killed for good first); otherwise it is a planned
/// replacement of a live node (its leaderships are handed on before its replicas leave), stopped for good once
/// removed. With a `backup`, the spare itself dies for good while the replicas move to it (some moves promoted,
/// some not), and is replaced in turn by the backup: the unpromoted moves roll back, everything goes to the
/// backup, and both the victim and the dead spare are removed.
final class SimReplacement: SimOperator {
    enum Phase: String { case waiting, adding, replacing, moving, addingBackup, replacingSpare, removing, removingSpare, leavingMeta, done }
    let victim: NodeID
    /// The node the replicas go to: the spare, or the backup once the spare died.
    var spare: NodeID
    /// A second spare that replaces the first when it dies mid-move.
    let backup: NodeID?
    /// The first spare, once it died for good.
    var deadSpare: NodeID?
    /// The tick the spare dies (set when the moves begin).
    var spareDiesAt: UInt64?
    /// The tick the victim is killed (once no other node is down).
    let at: UInt64
    /// A planned replacement: the node runs until it is removed.
    let live: Bool
    var phase = Phase.waiting
    /// The request in flight: the node asked, its process, when.
    var asked: (node: NodeID, incarnation: UInt64, tick: UInt64)?
    var retryAt: UInt64 = 0
    var tookTicks: UInt64 = 0
    var startedTick: UInt64 = 0

    init(victim: NodeID, spare: NodeID, at: UInt64, live: Bool, backup: NodeID? = nil) {
        self.victim = victim
        self.spare = spare
        self.at = at
        self.live = live
        self.backup = backup
    }

    /// The nodes it takes out for good, once done.
    var leaving: [NodeID] { [victim] + (deadSpare.map { [$0] } ?? []) }
    /// Dead nodes it has made so far (counted as down by the fault budget until done).
    var deadNodes: Int { done ? 0 : (victimDown ? 1 : 0) + (deadSpare == nil ? 0 : 1) }

    var victimDown: Bool { !live && phase != .waiting }
    var done: Bool { phase == .done }
}

extension ClusterSimulation {
    /// One step of the replacement, every tick.
    func driveReplacement() {
        // A request whose process died (or that went unanswered for long) is asked again elsewhere.
        guard let r = replacement, !r.done, mayAsk(r) else { return }
        switch r.phase {
        case .waiting:
            guard tick >= r.at, members.allSatisfy({ $0.alive && !$0.lostState && $0.crashAgainAt == nil && $0.core?.stopping != true }) else { return }
            if !r.live { retire(r.victim) }
            r.phase = .adding
            r.startedTick = tick
            stats.replacementsBegun += 1
            note(r.live ? "REPLACE \(r.victim) (alive) by node \(r.spare)" : "RETIRE \(r.victim): its machine is gone for good; node \(r.spare) will replace it")
        case .adding:
            ask(.addNode(id: r.spare, peerAddress: "sim-\(r.spare):7300", clientAddress: "sim-\(r.spare):7100", httpAddress: "sim-\(r.spare):7200"),
                treatAsDone: "is already a member") { [unowned self] in
                let s = self.node(r.spare)
                s.spare = false
                s.start(incarnation: self.newIncarnation())
                note("start \(r.spare) --join")
                r.phase = .replacing
            }
        case .replacing:
            ask(.replace(r.victim, with: r.spare)) { [unowned self] in
                r.phase = .moving
                if r.backup != nil, r.deadSpare == nil { r.spareDiesAt = self.tick + UInt64(self.rng.below(60)) }
            }
        case .moving:
            if let at = r.spareDiesAt, tick >= at, r.deadSpare == nil, let backup = r.backup,
               members.allSatisfy({ $0.id == r.victim || ($0.alive && !$0.lostState && $0.crashAgainAt == nil) }) {
                retire(r.spare)
                note("RETIRE \(r.spare) mid-move: the replacement died for good too; node \(backup) will replace it")
                r.deadSpare = r.spare
                r.phase = .addingBackup
                return
            }
            if let map = members.compactMap({ $0.core?.clusterMap }).max(by: { $0.version < $1.version }),
               r.leaving.allSatisfy({ map.shards(on: $0).isEmpty }) {
                note("nodes \(r.leaving) hold no replica any more")
                r.phase = .removing
            }
        case .addingBackup:
            let b = r.backup!
            ask(.addNode(id: b, peerAddress: "sim-\(b):7300", clientAddress: "sim-\(b):7100", httpAddress: "sim-\(b):7200"),
                treatAsDone: "is already a member") { [unowned self] in
                let s = self.node(b)
                s.spare = false
                s.start(incarnation: self.newIncarnation())
                note("start \(b) --join")
                r.phase = .replacingSpare
            }
        case .replacingSpare:
            ask(.replace(r.deadSpare!, with: r.backup!)) {
                r.spare = r.backup!
                r.phase = .moving
            }
        case .removing:
            ask(.remove(r.victim), treatAsDone: "was removed") { r.phase = r.deadSpare == nil ? .leavingMeta : .removingSpare }
        case .removingSpare:
            ask(.remove(r.deadSpare!), treatAsDone: "was removed") { r.phase = .leavingMeta }
        case .leavingMeta:
            // Removed from the map, it leaves the meta group's Raft membership next: until then it still counts
            // toward that group's quorum (stopping it earlier, with another node down, stalled the group).
            let metas = members.filter { !r.leaving.contains($0.id) }.compactMap { $0.core?.meta.raft }
            guard !metas.isEmpty, metas.allSatisfy({ m in r.leaving.allSatisfy { !m.confState.contains($0) } }) else { return }
            if r.live { retire(r.victim) }
            r.phase = .done
            r.tookTicks = tick - r.startedTick
            stats.replacements += 1
            if r.deadSpare != nil { stats.replacementsOfDeadReplacements += 1 }
            note("nodes \(r.leaving) removed: replaced by node \(r.spare) in \(r.tookTicks) ticks")
        case .done:
            break
        }
    }

    /// Kills node `id` for good: never restarted, no longer a member.
    private func retire(_ id: NodeID) {
        let v = node(id)
        if v.alive { v.crash() }
        v.retired = true
        v.restartAt = nil
        v.crashAgainAt = nil
    }

    /// Sends `request` through a live member that is neither the spare nor a node leaving (`askMembership`).
    private func ask(_ request: MembershipRequest, treatAsDone: String? = nil, then: @escaping () -> Void) {
        guard let r = replacement else { return }
        askMembership(request, for: r, excluding: Set([r.spare] + r.leaving), treatAsDone: treatAsDone, then: then)
    }
}
