import ClusterMap
import NodeCore
import Raft

/// The cluster grown by one machine the way an operator does it — `sutra node add`, the node started with
/// `--join`, `sutra rebalance` — under every other fault of the run: replicas move onto the new node (balance
/// moves: learner, caught up, voter, the most loaded node's replica removed) until no two active nodes differ by
/// more than one replica. The nodes that gave a replica up go on answering its reads and writes through the
/// nodes that hold it. Checked: the rebalance finishes, and every invariant of the run holds throughout.
/// An operator of the simulation: the membership request it has in flight, and when it may ask again.
protocol SimOperator: AnyObject {
    var asked: (node: NodeID, incarnation: UInt64, tick: UInt64)? { get set }
    var retryAt: UInt64 { get set }
}

final class SimGrowth: SimOperator {
    enum Phase: String { case waiting, adding, rebalancing, moving, done }
    let newNode: NodeID
    /// The tick the operator starts (once no node is down).
    let at: UInt64
    var phase = Phase.waiting
    var asked: (node: NodeID, incarnation: UInt64, tick: UInt64)?
    var retryAt: UInt64 = 0
    var startedTick: UInt64 = 0

    init(newNode: NodeID, at: UInt64) {
        self.newNode = newNode
        self.at = at
    }

    var done: Bool { phase == .done }
}

extension ClusterSimulation {
    /// One step of the growth, every tick.
    func driveGrowth() {
        guard let g = growth, !g.done, mayAsk(g) else { return }
        switch g.phase {
        case .waiting:
            guard tick >= g.at, members.allSatisfy({ $0.alive && !$0.lostState && $0.crashAgainAt == nil && $0.core?.stopping != true }) else { return }
            g.phase = .adding
            g.startedTick = tick
            stats.growthsBegun += 1
            note("GROW: node \(g.newNode) added")
        case .adding:
            let id = g.newNode
            askMembership(.addNode(id: id, peerAddress: "sim-\(id):7300", clientAddress: "sim-\(id):7100", httpAddress: "sim-\(id):7200"),
                          for: g, excluding: [id], treatAsDone: "is already a member") { [unowned self] in
                let n = self.node(id)
                n.spare = false
                n.start(incarnation: self.newIncarnation())
                note("start \(id) --join")
                g.phase = .rebalancing
            }
        case .rebalancing:
            // `rebalance` activates only a joining node the asked node is linked to: asked again until the map
            // shows it active.
            if let map = newestMap(), map.nodes[g.newNode]?.state == .active {
                g.phase = .moving
                return
            }
            askMembership(.rebalance, for: g, excluding: [g.newNode]) { g.retryAt = self.tick + 10 }
        case .moving:
            guard let map = newestMap(), map.moving.isEmpty else { return }
            let load = map.voterLoad().filter { map.nodes[$0.key]?.state == .active }
            guard let most = load.values.max(), let least = load.values.min(), most - least <= 1, (load[g.newNode] ?? 0) > 0 else { return }
            g.phase = .done
            stats.growths += 1
            note("node \(g.newNode) holds \(load[g.newNode]!) replicas: grown in \(tick - g.startedTick) ticks")
        case .done:
            break
        }
    }

    /// The map of the node that applied the most changes.
    func newestMap() -> ClusterMap? { members.compactMap { $0.core?.clusterMap }.max { $0.version < $1.version } }

    /// Sends `request` to a random live member not in `excluding`, for `op` (which tracks the request in flight);
    /// `then` once taken (or refused as `treatAsDone` says: an earlier attempt took effect but its answer was
    /// lost); refused otherwise, asked again 10 ticks later. Both operators of the simulation (replacement,
    /// growth) send their requests through it.
    func askMembership(_ request: MembershipRequest, for op: SimOperator, excluding: Set<NodeID>, treatAsDone: String? = nil,
                       then: @escaping () -> Void) {
        let alive = members.filter { $0.alive && $0.core?.stopping != true && !excluding.contains($0.id) }
        guard !alive.isEmpty else { return }
        let n = alive[rng.below(alive.count)]
        op.asked = (n.id, n.incarnation, tick)
        let incarnation = n.incarnation
        n.core!.execute(.membership(request), session: ClientSession()) { [unowned self] result in
            guard let a = op.asked, a.node == n.id, a.incarnation == incarnation else { return }
            op.asked = nil
            switch result {
            case .success:
                then()
            case .failure(let e):
                if let done = treatAsDone, e.message.contains(done) { then(); return }
                note("\(request) through node \(n.id): \(e.message); asking again")
                op.retryAt = self.tick + 10
            }
        }
    }

    /// Whether `op` may send its next request now: none in flight (one whose process died, or unanswered for
    /// 200 ticks, is forgotten) and its retry time reached.
    func mayAsk(_ op: SimOperator) -> Bool {
        if let a = op.asked {
            if node(a.node).incarnation != a.incarnation || !node(a.node).alive || tick > a.tick + 200 { op.asked = nil } else { return false }
        }
        return tick >= op.retryAt
    }
}
