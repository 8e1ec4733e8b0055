import Foundation
import Raft
import Shard

/// Frames from peers, and requests forwarded to the shard's leader on another node.
extension NodeServer {
    /// How long a forwarded request may wait for the leader's answer.
    static let forwardTimeoutTicks: UInt64 = 150

    func receive(_ frame: PeerFrame, from peer: NodeID) {
        switch frame {
        case .raft(let msgs):
            for m in msgs {
                guard Int(m.shard) < replicas.count, m.message.from == peer else {
                    logger.warning("node \(peer) sent a message for shard \(m.shard) from \(m.message.from); dropped")
                    continue
                }
                if m.message.type == .appendResponse, !m.message.reject {
                    diskHealth.acknowledged(by: peer, shard: Int(m.shard), index: m.message.index, now: DispatchTime.now().uptimeNanoseconds)
                }
                replicas[Int(m.shard)].raft.step(m.message)
            }
        case .heartbeats(let beats):
            for h in beats {
                guard Int(h.shard) < replicas.count else {
                    logger.warning("node \(peer) sent a heartbeat for shard \(h.shard); dropped")
                    continue
                }
                replicas[Int(h.shard)].raft.step(h.message(from: peer, to: config.nodeID))
            }
        case .forward(let id, let shard, let op):
            guard Int(shard) < replicas.count else {
                transport.send(.forwardReply(id: id, .failed(.rejected("no shard \(shard)"))), to: peer)
                return
            }
            let r = replicas[Int(shard)]
            let reply: (ForwardResult) -> Void = { [weak self] result in
                self?.transport.send(.forwardReply(id: id, result), to: peer)
            }
            switch op {
            case .propose(let req):
                r.propose(req) { result in
                    switch result {
                    case .success(let v): reply(.ok(v))
                    case .failure(let e): reply(.failed(e))
                    }
                }
            case .readIndex:
                r.linearizableRead { [weak r] result in
                    switch result {
                    case .success: reply(.ok(r?.appliedIndex ?? 0))
                    case .failure(let e): reply(.failed(e))
                    }
                }
            }
        case .forwardReply(let id, let result):
            forwards.removeValue(forKey: id)?.done(result)
        case .hello:
            break
        }
    }

    /// Runs a write on shard `s` wherever its leader is: here, or forwarded to the leader's node.
    public func proposeAnywhere(shard s: Int, _ req: ShardRequest, _ done: @escaping (Result<UInt64, ReplicaError>) -> Void) {
        let r = replicas[s]
        if r.isLeader { r.propose(req, done); return }
        forward(.propose(req), shard: s) { result in
            switch result {
            case .ok(let v): done(.success(v))
            case .failed(let e): done(.failure(e))
            }
        }
    }

    /// Makes this node's replica of shard `s` safe for a linearizable read: confirms the index with the
    /// shard's leader (here or on its node), then waits until this replica has applied that far.
    func readBarrier(shard s: Int, _ done: @escaping (Result<Void, ReplicaError>) -> Void) {
        let r = replicas[s]
        if r.isLeader { r.linearizableRead(done); return }
        forward(.readIndex, shard: s) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failed(let e): done(.failure(e))
            case .ok(let index):
                if self.replicas[s].appliedIndex >= index { done(.success(())) }
                else { self.appliedWaiters[s].append((index, { done(.success(())) })) }
            }
        }
    }

    private func forward(_ op: ForwardOp, shard s: Int, _ done: @escaping (ForwardResult) -> Void) {
        let leader = replicas[s].raft.leader
        guard leader != noNode, leader != config.nodeID else {
            done(.failed(.unavailable("shard \(s) has no leader right now; retry")))
            return
        }
        let id = nextForwardID
        nextForwardID += 1
        guard transport.send(.forward(id: id, shard: UInt32(s), op: op), to: leader) else {
            done(.failed(.unavailable("the leader of shard \(s) (node \(leader)) is unreachable from here; retry")))
            return
        }
        forwards[id] = (leader, ticks + NodeServer.forwardTimeoutTicks, done)
    }

    func expireForwards() {
        for (id, f) in forwards where f.deadline <= ticks {
            forwards[id] = nil
            f.done(.failed(.unavailable("node \(f.peer) did not answer a forwarded request in time; retry")))
        }
    }

    func failForwards(to peer: NodeID) {
        for (id, f) in forwards where f.peer == peer {
            forwards[id] = nil
            f.done(.failed(.unavailable("the link to node \(peer) went down; retry")))
        }
    }
}
