import NodeCore
import Shard

/// `GET /v1/digest`: the content digest of every shard, at an index at or past every write acknowledged before
/// the request (`NodeCore.contentDigests`: the shards held here hashed on the thread pool so the loop keeps its
/// heartbeats, the others by a node that holds them). One at a time per node: a second request while one runs
/// is refused (503), not queued.
extension NodeServer {
    func contentDigests(_ done: @escaping (Result<[ShardDigest], ClientError>) -> Void) {
        guard !digestInFlight else {
            done(.failure(ClientError(.unavailable, "a digest is already being computed on this node; retry when it finishes")))
            return
        }
        digestInFlight = true
        core.advanceClock(to: nanos)
        core.contentDigests { [unowned self] result in
            self.digestInFlight = false
            done(result)
        }
    }
}
