import NodeCore
import Raft

/// A node killed for good and replaced by a spare machine, driven through the production operator requests
/// (`ClientOp.membership`) as `sutra node add | replace | remove` send them, each to a random live node, retried
/// until taken — under every other fault of the run.
final class SimReplacement {
    enum Phase: String { case waiting, adding, replacing, moving, removing, done }
    let victim: NodeID
    let spare: NodeID
    /// The tick the victim is killed (once no other node is down).
    let at: UInt64
    var phase = Phase.waiting
    /// The request in flight: the node asked, its process, when.
    var asked: (node: NodeID, incarnation: UInt64, tick: UInt64)?
    var retryAt: UInt64 = 0
    var tookTicks: UInt64 = 0
    var startedTick: UInt64 = 0

    init(victim: NodeID, spare: NodeID, at: UInt64) {
        self.victim = victim
        self.spare = spare
        self.at = at
    }

    var victimDown: Bool { phase != .waiting }
    var done: Bool { phase == .done }
}

extension ClusterSimulation {
    /// One step of the replacement, every tick.
    func driveReplacement() {
        guard let r = replacement, !r.done else { return }
        if let a = r.asked {
            // A request whose process died (or that went unanswered for long) is asked again elsewhere.
            if node(a.node).incarnation != a.incarnation || !node(a.node).alive || tick > a.tick + 200 { r.asked = nil } else { return }
        }
        guard tick >= r.retryAt else { return }
        switch r.phase {
        case .waiting:
            guard tick >= r.at, members.allSatisfy({ $0.alive && !$0.lostState && $0.crashAgainAt == nil && $0.core?.stopping != true }) else { return }
            let v = node(r.victim)
            v.crash()
            v.retired = true
            v.restartAt = nil
            v.crashAgainAt = nil
            r.phase = .adding
            r.startedTick = tick
            stats.replacementsBegun += 1
            note("RETIRE \(r.victim): its machine is gone for good; node \(r.spare) will replace it")
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
            ask(.replace(r.victim, with: r.spare)) { r.phase = .moving }
        case .moving:
            if let map = members.compactMap({ $0.core?.clusterMap }).max(by: { $0.version < $1.version }), map.shards(on: r.victim).isEmpty {
                note("node \(r.victim) holds no replica any more")
                r.phase = .removing
            }
        case .removing:
            ask(.remove(r.victim), treatAsDone: "was removed") { [unowned self] in
                r.phase = .done
                r.tookTicks = self.tick - r.startedTick
                self.stats.replacements += 1
                note("node \(r.victim) removed: replaced by node \(r.spare) in \(r.tookTicks) ticks")
            }
        case .done:
            break
        }
    }

    /// Sends `request` to a random live member; runs `then` when it is taken (or refused as `treatAsDone` says:
    /// an earlier attempt took effect but its answer was lost).
    private func ask(_ request: MembershipRequest, treatAsDone: String? = nil, then: @escaping () -> Void) {
        guard let r = replacement else { return }
        let alive = members.filter { $0.alive && $0.core?.stopping != true && $0.id != r.spare }
        guard !alive.isEmpty else { return }
        let n = alive[rng.below(alive.count)]
        r.asked = (n.id, n.incarnation, tick)
        let incarnation = n.incarnation
        n.core!.execute(.membership(request), session: ClientSession()) { [unowned self] result in
            guard let a = r.asked, a.node == n.id, a.incarnation == incarnation else { return }
            r.asked = nil
            switch result {
            case .success:
                then()
            case .failure(let e):
                if let done = treatAsDone, e.message.contains(done) { then(); return }
                note("\(request) through node \(n.id): \(e.message); asking again")
                r.retryAt = self.tick + 10
            }
        }
    }
}
