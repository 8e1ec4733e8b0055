import ClusterMap
import Raft
import Shard

/// The meta group inside the node's turn: its id, proposing map changes from any node (forwarded to the
/// group's leader), and what every node tells the map by itself — where it listens, and which shards it leads.
extension NodeCore {
    /// The meta group's id on the wire and in the WAL: the shard count (just past the last shard).
    package var metaGroup: Int { config.numShards }

    /// The first map of a cluster of this configuration: its node ids, each shard's replicas placed by the
    /// replication factor (`ClusterMap.create`), addresses announced later (`tellTheMap`). The meta group's first leader proposes it (`.create`); every replica
    /// applies that entry, whatever its own flags say.
    package static func bootstrapMap(_ config: NodeConfig) -> ClusterMap {
        switch ClusterMap.bootstrap(clusterID: config.clusterID, nodeIDs: config.peers.keys.sorted(), shardCount: config.numShards,
                                    replication: config.replicationFactor) {
        case .success(let m): return m
        case .failure(let why): preconditionFailure("a validated configuration makes a valid map: \(why)")
        }
    }

    /// The Raft core of group `g`: a shard's, or the meta group's.
    func groupRaft(_ g: Int) -> RaftNode {
        g == metaGroup ? meta.raft : replicas[g].raft
    }

    /// The cluster map as this node applied it (it may be behind the meta group's leader); nil until created.
    package var clusterMap: ClusterMap? { meta.map }

    /// Proposes `change` to the meta group wherever its leader is: here, or forwarded to the leader's node.
    /// `done` gets the map's version after the change, or why not (`ReplicaError.rejected`: the map refused it).
    /// Refused while the group's leadership is in flux, it is sent again (`untilLeaderSettles`).
    package func proposeMapChange(_ change: ClusterMapChange, _ done: @escaping (Result<UInt64, ReplicaError>) -> Void) {
        let g = metaGroup
        untilLeaderSettles({ [unowned self] in self.refusedInFlux($0, shard: g) }, { [unowned self] (tried: @escaping (Result<UInt64, ReplicaError>) -> Void) in
            if self.meta.isLeader {
                self.meta.propose(change) { tried($0.map(\.version).mapError(NodeCore.replicaError)) }
                return
            }
            let leader = self.meta.raft.leader
            if leader != noNode, leader != self.config.nodeID, case let v = self.io.wireVersion(of: leader), v > 0, v < PeerFrame.metaGroupVersion {
                tried(.failure(.unavailable("the meta group's leader, node \(leader), runs an older release; retry once it is upgraded")))
                return
            }
            self.forward(.mapChange(change), shard: g) { result in
                tried(result.value)
            }
        }, done)
    }

    static func replicaError(_ e: MetaError) -> ReplicaError {
        switch e {
        case .notLeader(let l): .notLeader(leader: l)
        case .unavailable(let why): .unavailable(why)
        case .refused(let why): .rejected(why)
        }
    }

    /// A forwarded map change, served here as the meta group's leader.
    func serveMapChange(_ change: ClusterMapChange, reply: @escaping (ForwardResult) -> Void) {
        meta.propose(change) { result in
            switch result {
            case .success(let m): reply(.ok(m.version))
            case .failure(let e): reply(.failed(NodeCore.replicaError(e)))
            }
        }
    }

    /// After the meta group applied changes: the driver links to the nodes the map names, at its addresses.
    func mapApplied() {
        guard let map = meta.map else { return }
        var peers: [NodeID: String] = [:]
        for n in map.nodes.values where n.id != config.nodeID && n.state != .removed && !n.peerAddress.isEmpty { peers[n.id] = n.peerAddress }
        guard peers != peersTold else { return }
        peersTold = peers
        io.peersChanged(peers)
    }

    /// What this process still waits on (simulation diagnostics: a request never answered names its wait).
    package var waitingSummary: String {
        "forwards \(forwards.count), held transactions \(heldTransactions.count), timers \(tickTimers.count), coordinating \(coordinator.inFlight), map change in flight \(mapChangeInFlight), leaders of \(replicas.filter(\.isLeader).map(\.shard)), reads \(waiters.summary), applied \(replicas.map(\.appliedIndex)), members \(replicas.map { $0.raft.confState.members }), replicas waiting \(replicas.map(\.waiting))"
    }

    /// Where this node listens, as the map should say.
    var ownAddresses: (peer: String, client: String, http: String) {
        let p = config.peers[config.nodeID]!
        return ("\(p.host):\(p.port)", config.clientAddress, config.httpAddress)
    }

    /// Every 25 ticks, what this node tells the map by itself, one change at a time: as the meta group's leader of
    /// a group without a map, the first map (from its flags; never a joining node); its addresses when the map
    /// has none or others; and for a shard it leads whose leader hint names another node, that it leads it (each
    /// shard at most every 100 ticks). Nothing while the meta group has no leader, or while this node stops.
    func tellTheMap() {
        guard !stopping, !mapChangeInFlight, meta.raft.leader != noNode else { return }
        guard let map = meta.map else {
            if meta.isLeader && !config.join { send(.create(NodeCore.bootstrapMap(config))) }
            return
        }
        guard let me = map.nodes[config.nodeID], me.state != .removed else { return }
        let own = ownAddresses
        if me.peerAddress != own.peer || me.clientAddress != own.client || me.httpAddress != own.http {
            send(.setAddresses(node: config.nodeID, peer: own.peer, client: own.client, http: own.http))
            return
        }
        for r in replicas where r.isLeader && map.shards[r.shard].leaderHint != config.nodeID && map.shards[r.shard].voters.contains(config.nodeID) {
            if let last = leaderHintToldAt[r.shard], ticks < last + 100 { continue }
            leaderHintToldAt[r.shard] = ticks
            send(.setLeaderHint(shard: r.shard, node: config.nodeID))
            return
        }

        func send(_ change: ClusterMapChange) {
            mapChangeInFlight = true
            proposeMapChange(change) { [weak self] result in
                guard let self else { return }
                self.mapChangeInFlight = false
                if case .failure(let e) = result, case .rejected = e {
                    self.logger.warning("the cluster map refused \(change): \(e)")
                }
            }
        }
    }
}
