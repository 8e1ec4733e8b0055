import Raft
import Shard

/// Leader placement: shards are dealt round-robin over the nodes; a leader hands a shard back to its preferred
/// node once that node is connected and caught up. Graceful shutdown hands every leadership away first and tells
/// the peers it is draining, so none hands one back; a node that is draining is never a transfer target.
extension NodeCore {
    /// Connected peers that may take a leadership now (not draining), in id order.
    var transferCandidates: [NodeID] {
        otherNodes.filter { io.isConnected($0) && !isDraining($0) }
    }

    /// Whether `peer` said it is shutting down, on its current link, within the last `drainingMemoryTicks`.
    package func isDraining(_ peer: NodeID) -> Bool {
        guard let heard = drainingHeard[peer] else { return false }
        return ticks - heard <= NodeCore.drainingMemoryTicks
    }

    /// Called every 50 ticks: at most one transfer per call, so leadership moves calmly.
    func rebalanceLeaders() {
        guard !stopping else { return }
        for r in replicas where r.isLeader {
            let preferred = preferredLeader(of: r.shard)
            guard preferred != config.nodeID, io.isConnected(preferred), !isDraining(preferred),
                  !diskHealth.isSlow(peer: preferred, now: now),
                  let p = r.raft.progressState(of: preferred), p.match == r.raft.lastIndex else { continue }
            try? r.raft.transferLeadership(to: preferred)
            logger.info("shard \(r.shard): handing leadership to its preferred node \(preferred)")
            return
        }
    }

    /// Every 25 ticks: while this node's disk is much slower than a connected peer's (see `DiskHealth`), hand
    /// every shard it leads to that peer. A slow leader delays every write of its shards (it acknowledges only
    /// after its own WAL write), while a slow follower costs nothing. The rebalancer does not give the shards
    /// back while the disk stays slow; once it recovers, placement returns to normal.
    func moveLeadershipOffASlowDisk() {
        guard !stopping else { return }
        guard let target = diskHealth.evictionTarget(connected: transferCandidates, now: now) else { return }
        var moved: [Int] = []
        for r in replicas where r.isLeader && r.raft.leadTransferee == noNode {
            if (try? r.raft.transferLeadership(to: target)) != nil { moved.append(r.shard) }
        }
        guard !moved.isEmpty else { return }
        metrics.slowDiskTransfers += UInt64(moved.count)
        let own = Int(diskHealth.ownSlowness ?? 0), theirs = Int(diskHealth.ackMs(target, now: now) ?? 0)
        logger.warning("slow disk: WAL writes here take \(own) ms (recent writes) while node \(target) acknowledges appends in \(theirs) ms; handing shard(s) \(moved) to it")
    }

    /// An operator's (or the chaos runner's) request to move a shard's leadership away from this node.
    package func transferLeader(shard s: Int, to: NodeID?) -> Result<ClientReply, ClientError> {
        guard (0..<replicas.count).contains(s) else {
            return .failure(ClientError(.invalidArgument, "shard \(s) does not exist; allowed: 0…\(replicas.count - 1)"))
        }
        let r = replicas[s]
        guard r.isLeader else { return .failure(notLeader(s)) }
        let candidates = transferCandidates
        guard let target = to ?? candidates.max(by: { (r.raft.progressState(of: $0)?.match ?? 0) < (r.raft.progressState(of: $1)?.match ?? 0) }) else {
            return .failure(ClientError(.unavailable, "no connected peer to hand shard \(s) to"))
        }
        guard target != config.nodeID, otherNodes.contains(target) else {
            return .failure(ClientError(.invalidArgument, "node \(target) is not another member of this cluster"))
        }
        guard !isDraining(target) else {
            return .failure(ClientError(.unavailable, "node \(target) is shutting down; choose another node"))
        }
        do {
            try r.raft.transferLeadership(to: target)
        } catch {
            return .failure(ClientError(.unavailable, "shard \(s): cannot transfer to node \(target) now (\(error)); retry"))
        }
        logger.info("shard \(s): transferring leadership to node \(target) on request")
        return .success(.transferring(shard: s, to: target))
    }

    /// SIGTERM: stop leading (transfer every leadership to the most caught-up connected peer), then stop.
    package func beginShutdown() {
        guard !stopping else { return }
        stopping = true
        for r in replicas { r.raft.retiring = true }   // no new campaigns: what is handed away stays away
        shutdownStartedAt = ticks
        shutdownDeadline = ticks + UInt64(max(1, 3000 / config.tickMs))
        continueShutdown()
    }

    func continueShutdown() {
        // Every 10 ticks (and at once): peers that speak version 5 learn that this node drains.
        if (ticks - shutdownStartedAt) % 10 == 0 {
            for p in otherNodes where io.isConnected(p) && io.wireVersion(of: p) >= 5 { _ = io.send(.draining, to: p) }
        }
        var leading = 0
        let candidates = transferCandidates
        for r in replicas where r.isLeader {
            leading += 1
            guard r.raft.leadTransferee == noNode else { continue }
            let best = candidates.filter { r.raft.confState.isVoter($0) }.max { (r.raft.progressState(of: $0)?.match ?? 0) < (r.raft.progressState(of: $1)?.match ?? 0) }
            if let best { try? r.raft.transferLeadership(to: best) }
        }
        // The meta group's leadership too (no peer of an older release runs the meta group).
        // Waited for only while a peer can take it.
        let metaCandidates = candidates.filter { io.wireVersion(of: $0) >= PeerFrame.metaGroupVersion }
        if meta.isLeader, !metaCandidates.isEmpty {
            leading += 1
            if meta.raft.leadTransferee == noNode,
               let best = metaCandidates.max(by: { (meta.raft.progressState(of: $0)?.match ?? 0) < (meta.raft.progressState(of: $1)?.match ?? 0) }) {
                try? meta.raft.transferLeadership(to: best)
            }
        }
        if leading == 0 || ticks >= shutdownDeadline {
            if leading > 0 { logger.warning("stopping while still leading \(leading) group(s): no peer took over in time") }
            finalStop()
        }
    }

    private func finalStop() {
        failEverything("the node is shutting down; retry at another node")
        io.saveVectorIndex()
        // Let the last frames (timeoutNow, answers) go out, then close everything so the loop ends.
        endOfTurn(now: now)
        io.shutdownFinished()
        logger.notice("stopped")
    }
}
