import Raft
import Shard

/// Content digests (`GET /v1/digest`, `sutra digest`) through any node, whether or not it holds every shard.
extension NodeCore {
    /// Every shard's content digest, each at an index at or past every write acknowledged before the call: the
    /// shards held here after a read barrier and with the intents they held then resolved, hashed off the loop
    /// from copy-on-write images; every other shard asked of a node that holds it (shard read `.digest`, wire 10),
    /// which does the same there. Fails with the first failure (a shard without a reachable leader, a holder of an
    /// older release).
    package func contentDigests(_ done: @escaping (Result<[ShardDigest], ClientError>) -> Void) {
        let here = heldShards
        let elsewhere = replicas.indices.filter { !here.contains($0) }
        var digests: [Int: ShardDigest] = [:]
        var failure: ClientError?
        var remaining = 1 + elsewhere.count
        func finished(_ part: Result<[ShardDigest], ClientError>) {
            switch part {
            case .success(let ds): for d in ds { digests[d.shard] = d }
            case .failure(let e): failure = failure ?? e
            }
            remaining -= 1
            guard remaining == 0 else { return }
            if let failure { done(.failure(failure)); return }
            assert(digests.keys.sorted() == Array(replicas.indices), "a digest of every shard, once")
            done(.success(replicas.indices.map { digests[$0]! }))
        }
        digestsHere(here, finished)
        for s in elsewhere {
            readElsewhere(ShardRead(.digest, .linearizable), shard: s) { result in
                switch result {
                case .success(.digest(let d)) where d.shard == s: finished(.success([d]))
                case .success: finished(.failure(ClientError(.unavailable, "the node asked for shard \(s)'s digest answered something else")))
                case .failure(let e): finished(.failure(e))
                }
            }
        }
    }

    /// The digests of `shards` (held here) after a linearizable barrier and their intents resolved, hashed off
    /// the loop.
    func digestsHere(_ shards: [Int], _ done: @escaping (Result<[ShardDigest], ClientError>) -> Void) {
        guard !shards.isEmpty else { done(.success([])); return }
        barrier(shards, .linearizable) { [weak self] failure in
            guard let self else { return }
            if let failure { done(.failure(failure)); return }
            self.settleIntents(of: shards) { [weak self] settled in
                guard let self else { return }
                if case .failure(let e) = settled { done(.failure(e)); return }
                let images = shards.map { self.replicas[$0].state.contentImage(shard: $0) }
                self.io.runOffLoop({ images.map(ShardDigest.compute) }) { done(.success($0)) }
            }
        }
    }
}
