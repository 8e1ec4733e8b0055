import NodeCore
import Shard

/// `GET /v1/digest`: the content digest of every shard replica on this node, at an index at or past every write
/// acknowledged before the request (`NodeCore.contentImages`), hashed on the thread pool so the loop keeps its
/// heartbeats. One at a time per node: a second request while one runs is refused (503), not queued.
extension NodeServer {
    func contentDigests(_ done: @escaping (Result<[ShardDigest], ClientError>) -> Void) {
        guard !digestInFlight else {
            done(.failure(ClientError(.unavailable, "a digest is already being computed on this node; retry when it finishes")))
            return
        }
        digestInFlight = true
        core.advanceClock(to: nanos)
        core.contentImages { [unowned self] result in
            switch result {
            case .failure(let e):
                self.digestInFlight = false
                done(.failure(e))
            case .success(let images):
                do {
                    try self.loop.queueWork({ images.map(ShardDigest.compute) }, completion: { [unowned self] digests in
                        self.digestInFlight = false
                        done(.success(digests))
                    })
                } catch {
                    self.digestInFlight = false
                    done(.failure(ClientError(.unavailable, "cannot hash the shards: \(error)")))
                }
            }
        }
    }
}
