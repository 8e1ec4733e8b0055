import NodeCore
import Raft
import Shard

extension ClusterSimulation {
    /// Once settled: a content digest asked through every live node (`NodeCore.contentDigests` — shards held
    /// elsewhere hashed by a node that holds them) answers, and every node's answer is the same and is each
    /// shard's most advanced replica's data hashed here. A node that left a shard, or hashed the wrong replica, shows.
    func checkDigestsThroughEveryNode() {
        let asked = members.filter { $0.alive && $0.core?.stopping == false }
        var answers: [NodeID: Result<[ShardDigest], ClientError>] = [:]
        for n in asked {
            let id = n.id, incarnation = n.incarnation
            n.core!.contentDigests { [unowned self] result in
                guard self.node(id).incarnation == incarnation else { return }
                answers[id] = result
            }
        }
        let end = now + 300 * ClusterSimulation.unitsPerTick
        while answers.count < asked.count, now < end, !failed { step(faults: false) }
        guard !failed else { return }
        guard answers.count == asked.count else {
            fail("settled, but a digest through nodes \(asked.map(\.id).filter { answers[$0] == nil }) did not answer in 300 ticks")
            return
        }
        var truth: [ShardDigest] = []
        // Each shard's most advanced member replica (nothing is written once settled: every member holds the same
        // data at the commit index; a leadership may move meanwhile, so the leader is not asked for).
        for s in 0..<config.shards {
            let holders = members.compactMap { $0.core?.replicas[s] }.filter { $0.raft.confState.voters.contains($0.raft.id) }
            guard let r = holders.max(by: { $0.appliedIndex < $1.appliedIndex }) else { fail("settled, but shard \(s) has no replica to hash"); return }
            truth.append(ShardDigest.compute(r.state.contentImage(shard: s)))
        }
        for (id, result) in answers.sorted(by: { $0.key < $1.key }) {
            switch result {
            case .failure(let e):
                fail("settled, but the digest through node \(id) failed: \(e.message)")
                return
            case .success(let ds):
                for (got, want) in zip(ds, truth) where got.digest != want.digest || got.concepts != want.concepts || got.edges != want.edges {
                    fail("settled, but node \(id)'s digest of shard \(got.shard) (\(got.concepts) concepts, \(got.edges) edges, \(got.hex.prefix(12))) is not its leader's (\(want.concepts), \(want.edges), \(want.hex.prefix(12)))")
                    return
                }
                stats.digestsChecked += 1
            }
        }
    }
}
