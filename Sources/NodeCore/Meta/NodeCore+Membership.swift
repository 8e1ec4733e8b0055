import ClusterMap
import Raft

/// Replica moves: how each Raft group's membership follows the cluster map, one step at a time.
///
/// The map (the meta group's state) says where replicas should be; each group's leader makes its own Raft
/// configuration match it, one single-server change at a time (Raft refuses a second while one is
/// uncommitted, and any before the leader committed an entry of its own term), and tells the map how far each
/// move got. Every step is decided from the map and the group's configuration as they are now, so a move
/// interrupted by a crash of any node simply goes on from where the map and the configuration stand:
///
/// - a move's target joins as a learner (`addLearner`), receives the shard (snapshot, then log);
/// - caught up (its match within `caughtUpMargin` of the commit index, not abstaining), the map promotes it
///   (`promoteMove`), and the leader makes it a voter (`addVoter`);
/// - the source leaves (`remove`) — if it leads, it first hands its leadership to another voter of the map;
/// - once the source is out of the configuration, the map finishes the move (`finishMove`).
///
/// The meta group's leader likewise keeps the meta group's own membership on the map's nodes (voters: active and
/// draining nodes; learners: joining ones) and starts the moves the map's planner asks for.
extension NodeCore {
    /// How far behind the commit index a learner may be and still count as caught up.
    static let caughtUpMargin: LogIndex = 64
    /// Moves the meta group's leader starts at once (each on its own shard).
    static let concurrentMoves = 2

    /// What one group's leader does next to bring its membership to the map's, if anything.
    enum MembershipStep: Equatable, CustomStringConvertible {
        case change(ConfChange)
        case transferLeadership(to: NodeID)
        case tellMap(ClusterMapChange)

        var description: String {
            switch self {
            case .change(let c): "\(c)"
            case .transferLeadership(let to): "hand leadership to node \(to)"
            case .tellMap(let c): "tell the map \(c)"
            }
        }
    }

    /// The next step for a shard led here: pure, from the shard's placement in the map, its Raft configuration
    /// and its followers' progress. Nil: nothing to do now.
    static func nextStep(placement p: ClusterMap.ShardPlacement, conf: ConfState, me: NodeID, commit: LogIndex,
                         reachable: (NodeID) -> Bool = { _ in true },
                         progress: (NodeID) -> (match: LogIndex, abstains: Bool)?) -> MembershipStep? {
        // The configuration the map asks for now: in a promoted move, the source is on its way out.
        var voters = Set(p.voters)
        if let m = p.move, m.phase == .promoted, let from = m.from { voters.remove(from) }
        let learners = Set(p.learners)
        func caughtUp(_ n: NodeID) -> Bool {
            guard let pr = progress(n) else { return false }
            return !pr.abstains && pr.match > 0 && pr.match + caughtUpMargin >= commit
        }
        // 1. Learners first (a move's target), then promotions the map decided — only of a learner that caught
        // up: a voter that cannot acknowledge yet shrinks what the group survives (a new meta-group voter with a
        // node of the group dead stalled it in the simulation) — then voters never added.
        for l in p.learners.sorted() where !conf.contains(l) { return .change(.addLearner(l)) }
        // Removing `x` must leave voters that can still commit: a majority of the rest reachable and not
        // abstaining. Otherwise the removal itself never commits — and once applied (on append) it shuts out `x`,
        // the voter that could have formed a quorum again (seed 118: a dead source removed while another voter
        // was down; it came back with a wiped disk and abstained, and the shard had no leader for good).
        func quorumWithout(_ x: NodeID) -> Bool {
            let rest = conf.voters.filter { $0 != x }
            let able = rest.filter { $0 == me || (reachable($0) && progress($0).map { !$0.abstains } == true) }
            return able.count * 2 > rest.count
        }
        // A promoted move whose source cannot be reached (a dead machine being replaced): the source leaves first.
        // The new replica then joins a quorum of the live voters instead of one that needs every live node and
        // it — its own loop busy installing other shards' snapshots, it slowed every commit (bench-replace.sh).
        if let m = p.move, m.phase == .promoted, let from = m.from, from != me, conf.isVoter(from), !reachable(from),
           conf.isLearner(m.to), conf.voters.count > 1, quorumWithout(from) {
            return .change(.remove(from))
        }
        // Likewise any voter the placement dropped that cannot be reached leaves before a learner is promoted
        // (the meta group, whose placement drops a dead draining node): four voters with two dead stall a group.
        if conf.voters.count > 1,
           let gone = conf.voters.first(where: { $0 != me && !voters.contains($0) && !learners.contains($0) && !reachable($0) }),
           voters.contains(where: { conf.isLearner($0) }), quorumWithout(gone) {
            return .change(.remove(gone))
        }
        // A move's target that has not caught up holds the rest back (its source stays until it votes); any
        // other learner that is not caught up — a machine that never came up, say — holds nothing back. No
        // learner becomes a voter while a voter cannot be reached: with one dead already, the newcomer's death
        // would leave half the group, and nothing could remove the dead ones again (the meta group stalled so).
        let voterUnreachable = conf.voters.contains { $0 != me && !reachable($0) }
        for v in voters.sorted() where conf.isLearner(v) {
            if caughtUp(v) && !voterUnreachable { return .change(.addVoter(v)) }
            if p.move?.to == v { return nil }
        }
        for v in voters.sorted() where !conf.contains(v) { return .change(.addLearner(v)) }
        // 2. Members the map no longer lists leave; a leaving leader first hands its leadership on.
        for m in conf.members.sorted() where !voters.contains(m) && !learners.contains(m) {
            if m == me {
                let heirs = voters.filter { $0 != me && conf.isVoter($0) && progress($0).map { !$0.abstains } == true }
                guard let best = heirs.max(by: { (progress($0)?.match ?? 0, $1) < (progress($1)?.match ?? 0, $0) }) else { return nil }
                return .transferLeadership(to: best)
            }
            return .change(.remove(m))
        }
        // 3. The configuration is the map's: move the map on.
        guard let move = p.move else { return nil }
        switch move.phase {
        case .catchingUp:
            guard conf.isLearner(move.to), caughtUp(move.to) else { return nil }
            // Not while a voter other than the source cannot be reached: Raft would not make the target a voter
            // then (above), and a map that says promoted could no longer roll the move back cleanly — a dead voter
            // being replaced would wait behind it for good (the simulation's seed 199). Caught up but waiting, the
            // move can still be rolled back (`ClusterMap.movesToAbort`) for the repair.
            guard !conf.voters.contains(where: { $0 != me && $0 != move.from && !reachable($0) }) else { return nil }
            return .tellMap(.promoteMove(shard: -1))
        case .promoted:
            return .tellMap(.finishMove(shard: -1))
        }
    }

    /// Every 10 ticks: one membership step for every group led here, and the meta leader's planning.
    func reconcileMembership() {
        guard !stopping, let map = meta.map else { return }
        for r in replicas where r.isLeader && r.shard < map.shardCount {
            let raft = r.raft
            let step = NodeCore.nextStep(placement: map.shards[r.shard], conf: raft.confState, me: config.nodeID, commit: raft.commitIndex,
                                         reachable: { [unowned self] in self.io.isConnected($0) }) { n in
                raft.progressState(of: n).map { ($0.match, raft.peerAbstains(n)) }
            }
            guard let step else { continue }
            take(step, shard: r.shard, raft: raft)
        }
        if meta.isLeader {
            reconcileMetaMembership(map)
            startPlannedMoves(map)
        }
    }

    private func take(_ step: MembershipStep, shard s: Int, raft: RaftNode) {
        switch step {
        case .change(let cc):
            do {
                try raft.proposeConfChange(cc)
                metrics.membershipChanges += 1
                logger.notice("shard \(s): proposing \(cc) (the cluster map asks for it)")
            } catch {
                // One change at a time: the previous one (or this leader's first entry) is not applied yet.
                if error != .confChangePending { logger.info("shard \(s): \(cc) not proposed now: \(error)") }
            }
        case .transferLeadership(let to):
            if raft.leadTransferee == noNode {
                logger.notice("shard \(s): this node leaves the shard; handing its leadership to node \(to) first")
                try? raft.transferLeadership(to: to)
            }
        case .tellMap(let change):
            let c: ClusterMapChange
            switch change {
            case .promoteMove: c = .promoteMove(shard: s)
            case .finishMove: c = .finishMove(shard: s)
            default: c = change
            }
            guard !movesTold.contains(s) else { return }
            movesTold.insert(s)
            proposeMapChange(c) { [weak self] result in
                self?.movesTold.remove(s)
                if case .success = result { self?.logger.notice("shard \(s): the cluster map took \(c)") }
            }
        }
    }

    /// The meta group's membership on the map's nodes: active and draining nodes vote, joining nodes learn,
    /// removed nodes leave (the leader hands its leadership on first if it is the one leaving). A draining node
    /// this leader cannot reach — a dead machine being replaced — leaves at once: kept, it would count toward the
    /// quorum with its replacement added, and one more death (the replacement's) would stall the group that
    /// every later membership change goes through.
    private func reconcileMetaMembership(_ map: ClusterMap) {
        let draining = map.nodeIDs(.draining).filter { $0 == config.nodeID || io.isConnected($0) }
        var placement = ClusterMap.ShardPlacement(voters: map.nodeIDs(.active) + draining, learners: map.nodeIDs(.joining))
        if placement.voters.isEmpty { placement.voters = [config.nodeID] }
        let raft = meta.raft
        let step = NodeCore.nextStep(placement: placement, conf: raft.confState, me: config.nodeID, commit: raft.commitIndex,
                                     reachable: { [unowned self] in self.io.isConnected($0) }) { n in
            raft.progressState(of: n).map { ($0.match, raft.peerAbstains(n)) }
        }
        guard let step else { return }
        switch step {
        case .change(let cc):
            if (try? raft.proposeConfChange(cc)) != nil { logger.notice("meta group: proposing \(cc) (the cluster map's nodes changed)") }
        case .transferLeadership(let to):
            if raft.leadTransferee == noNode { try? raft.transferLeadership(to: to) }
        case .tellMap:
            break   // the meta group has no moves of its own
        }
    }

    /// As the meta group's leader: begins the moves the planner asks for — drains, repairs, then balance (an
    /// active node holding two replicas more than another gives one up: after `sutra rebalance` activated a new
    /// node, or a replacement) — only to nodes this leader is connected to. A move whose target stopped being
    /// active before it caught up is rolled back first.
    private func startPlannedMoves(_ map: ClusterMap) {
        guard !mapChangeInFlight else { return }
        if let s = map.movesToAbort.first {
            mapChangeInFlight = true
            proposeMapChange(.abortMove(shard: s)) { [weak self] result in
                guard let self else { return }
                self.mapChangeInFlight = false
                if case .success = result { self.logger.notice("shard \(s): move rolled back (its target is no longer an active node, or another replica of the shard is being drained: that repair goes first)") }
            }
            return
        }
        guard map.moving.count < NodeCore.concurrentMoves else { return }
        let me = config.nodeID
        guard let move = map.planMoves(limit: 1, usable: { [unowned self] in $0 == me || self.io.isConnected($0) }).first else { return }
        mapChangeInFlight = true
        proposeMapChange(move.change) { [weak self] result in
            guard let self else { return }
            self.mapChangeInFlight = false
            switch result {
            case .success: self.logger.notice("moving \(move)")
            case .failure(let e): self.logger.info("could not begin moving \(move): \(e)")
            }
        }
    }
}
