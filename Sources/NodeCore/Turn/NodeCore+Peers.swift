import Raft
import Shard
import WAL

/// Frames from peers, and requests forwarded to the shard's leader on another node.
extension NodeCore {
    /// One frame from `peer` (the transport has already checked who the peer is).
    package func receive(_ frame: PeerFrame, from peer: NodeID, now: UInt64) {
        advanceClock(to: now)
        switch frame {
        case .raft(let msgs):
            for m in msgs { step(m, from: peer) }
        case .snapshotBegin(let id, let message, let total):
            guard Int(id.shard) < replicas.count, message.from == peer, message.to == config.nodeID else {
                refused(.misaddressed, shard: id.shard, from: peer, detail: "a snapshot stream from \(message.from) to \(message.to)")
                break
            }
            if haveImage(id) {
                // This very image is here already (being restored, or waiting for its install to be durable): the
                // leader sent it again meanwhile. Answered as whole at once, rather than streamed a second time.
                _ = io.send(.snapshotAck(id, received: total), to: peer)
                break
            }
            if let why = imageWouldNotFit(total) {
                assembled(id, .failedHere(why), from: peer)
                break
            }
            let log = logs[Int(id.shard)]
            assembled(id, snapshotAssembler.begin(id, message: message, total: total, from: peer, now: ticks,
                                                   spool: { (m, total) throws(WALError) in try log.receiveImage(m, total: total) }), from: peer)
        case .snapshotChunk(let id, let offset, let bytes):
            metrics.snapshotBytesStreamedIn += UInt64(bytes.count)
            assembled(id, snapshotAssembler.chunk(id, offset: offset, bytes: bytes, from: peer, now: ticks), from: peer)
        case .snapshotAck(let id, let received):
            if snapshotSender.ack(id, received: received, from: peer, now: ticks) == .complete, Int(id.shard) < replicas.count {
                metrics.snapshotStreamsSent += 1
                replicas[Int(id.shard)].raft.reportSnapshot(to: peer, failed: false)
            }
        case .heartbeats(let beats):
            for h in beats {
                guard Int(h.shard) <= metaGroup else {
                    refused(.misaddressed, shard: h.shard, from: peer, detail: "a heartbeat")
                    continue
                }
                if let why = groupRaft(Int(h.shard)).step(h.message(from: peer, to: config.nodeID)) {
                    refused(.raft(why), shard: h.shard, from: peer, detail: "a heartbeat at term \(h.term)")
                }
            }
        case .forward(let incarnation, let id, let shard, let op):
            serveForward(op, shard: shard, from: peer, incarnation: incarnation, id: id)
        case .forwardReply(let incarnation, let id, let result):
            if let done = forwards.takeReply(from: peer, incarnation: incarnation, id: id) {
                done(result)
            } else {
                logger.debug("node \(peer) answered forward \(id) of incarnation \(incarnation), which nothing here waits for; dropped")
            }
        case .draining:
            guard io.isConnected(peer) else { break }   // from a link already down: its process is gone
            if drainingHeard.updateValue(ticks, forKey: peer) == nil {
                logger.info("node \(peer) is shutting down: no leadership is handed to it")
            }
        case .hello, .config:
            break   // the transport's handshake
        }
    }

    /// One Raft message from `peer`: checked (addressed here, every entry and snapshot image applicable), then
    /// stepped into its shard's core.
    /// `imageChecked`: a streamed snapshot whose image (not in the message) `assembled` has restored already.
    func step(_ m: ShardMessage, from peer: NodeID, imageChecked: Bool = false) {
        guard Int(m.shard) <= metaGroup, m.message.from == peer, m.message.to == config.nodeID else {
            refused(.misaddressed, shard: m.shard, from: peer,
                    detail: "a message for shard \(m.shard) from \(m.message.from) to \(m.message.to)")
            return
        }
        if Int(m.shard) == metaGroup {
            if let why = meta.check(m.message) {
                refused(why, shard: m.shard, from: peer, detail: "meta-group \(m.message.type) at term \(m.message.term)")
            } else if let why = meta.raft.step(m.message) {
                refused(.raft(why), shard: m.shard, from: peer, detail: "meta-group \(m.message.type) at term \(m.message.term)")
            }
            return
        }
        // Nothing this node could not apply enters its log: check every entry and snapshot first.
        let restores: (Snapshot) -> Bool = imageChecked ? { _ in true } : replicas[Int(m.shard)].checkSnapshot
        if let why = PeerMessageCheck.check(m.message, limits: limits, restores: restores) {
            refused(why, shard: m.shard, from: peer, detail: "\(m.message.type) at term \(m.message.term)")
            return
        }
        // Draining: a peer's rebalancer (an older one, or one that has not heard yet) may hand a shard
        // back. The retiring Raft core ignores it (its transfer times out); counted and said here.
        if stopping, m.message.type == .timeoutNow {
            metrics.transfersRefusedWhileStopping += 1
            logger.info("shard \(m.shard): node \(peer) hands leadership here, but this node is stopping; refused")
        }
        if m.message.type == .appendResponse, !m.message.reject {
            diskHealth.acknowledged(by: peer, shard: Int(m.shard), index: m.message.index, now: now)
        }
        if let why = replicas[Int(m.shard)].raft.step(m.message) {
            refused(.raft(why), shard: m.shard, from: peer, detail: "\(m.message.type) at term \(m.message.term)")
        }
        if m.message.snapshot != nil { replicas[Int(m.shard)].keepCheckedSnapshotOnlyIfPending() }
    }

    /// Counts a refused message and logs it, at most once per peer every 10 s (a hostile peer cannot flood
    /// the log; the counter `sutra_peer_rejected_messages_total` has every one).
    func refused(_ why: PeerRejection, shard: UInt32, from peer: NodeID, detail: String) {
        metrics.peerRejectedMessages[why.reason, default: 0] += 1
        let (log, suppressed) = peerRejectionLog.shouldLog(peer: peer, now: now)
        guard log else { return }
        let more = suppressed > 0 ? " (\(suppressed) more refused since the last report)" : ""
        logger.warning("refused \(detail) from node \(peer) for shard \(shard): \(why)\(more)")
    }

    /// Replies that matched no forward of this process (a previous process's, an expired one's): dropped.
    package var unmatchedForwardReplies: UInt64 { forwards.unmatchedReplies }

    private func serveForward(_ op: ForwardOp, shard: UInt32, from peer: NodeID, incarnation: UInt64, id: UInt64) {
        let reply: (ForwardResult) -> Void = { [weak self] result in
            _ = self?.io.send(.forwardReply(incarnation: incarnation, id: id, result), to: peer)
        }
        if case .mapChange(let change) = op {
            guard Int(shard) == metaGroup else {
                refused(.malformedForward("a map change for shard \(shard)"), shard: shard, from: peer, detail: "a forwarded map change")
                reply(.failed(.rejected("a map change goes to the meta group (\(metaGroup)), not shard \(shard)")))
                return
            }
            serveMapChange(change, reply: reply)
            return
        }
        guard Int(shard) < replicas.count else { reply(.failed(.rejected("no shard \(shard)"))); return }
        let r = replicas[Int(shard)]
        switch op {
        case .mapChange:
            preconditionFailure("served above")
        case .read(let read):
            serveRead(read, shard: Int(shard), from: peer, reply: reply)
        case .deleteConcept(let id, let client, let sequence, let acked):
            guard self.shard(of: id) == Int(shard) else {
                refused(.malformedForward("a delete of a concept of shard \(self.shard(of: id))"), shard: shard, from: peer, detail: "a forwarded delete")
                reply(.failed(.rejected("malformed forwarded delete: concept \(id) lives on shard \(self.shard(of: id)), not \(shard)")))
                return
            }
            // Served as the shard's leader only (a client that routes by itself): NOT_LEADER sends the asker on.
            deleteConcept(id, session: ClientSession(clientID: client, sequence: sequence, ackedBelow: acked, mayForward: false)) { result in
                switch result {
                case .success(.write(let v)): reply(.ok(v))
                case .success: reply(.failed(.rejected("a delete answered with something other than a version")))
                case .failure(let e):
                    switch e.code {
                    case .notLeader: reply(.failed(.notLeader(leader: e.leader)))
                    case .unavailable, .timeout, .diskFull: reply(.failed(.unavailable(e.message)))
                    default: reply(.failed(.rejected(e.message)))
                    }
                }
            }
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
        case .transaction(let t):
            if let why = t.problem(recordShard: Int(shard), shardCount: replicas.count, maxCommands: 2 * limits.maxBatch) {
                refused(.malformedForward(why), shard: shard, from: peer, detail: "a forwarded transaction")
                reply(.failed(.rejected("malformed forwarded transaction: \(why)")))
                return
            }
            let session = ClientSession(clientID: t.clientID, sequence: t.sequence, ackedBelow: t.ackedBelow)
            coordinate(t.parts, recordShard: Int(shard), session: session) { result in
                switch result {
                case .success(let v): reply(.ok(v))
                case .failure(let e): reply(.failed(e))
                }
            }
        }
    }

    /// A connected peer whose link speaks a wire version below `version` (a rolling upgrade is under way), with
    /// that version; nil when every connected peer speaks `version` or later. Commands and frames a version
    /// introduced are proposed or sent only while this is nil.
    func connectedPeer(below version: UInt32) -> (NodeID, UInt32)? {
        for peer in otherNodes {
            let v = io.wireVersion(of: peer)
            if v != 0 && v < version { return (peer, v) }
        }
        return nil
    }

    /// Whether a client's request for shard `s` goes to its leader's node (counted in
    /// `sutra_client_requests_forwarded_total`) rather than being served here.
    func forwardsClientRequest(shard s: Int) -> Bool {
        let forwarded = !replicas[s].isLeader
        if forwarded { metrics.clientRequestsForwarded += 1 }
        return forwarded
    }

    /// Hands a client's cross-shard write to the leader of its record shard (this node does not lead it).
    /// A leader of an older release cannot take one (a rolling upgrade): refused, naming the node to send it to.
    func forwardTransaction(_ parts: [TxnPart], recordShard s: Int, session: ClientSession, _ done: @escaping TxnCompletion) {
        let leader = knownLeader(of: s)
        let version = leader == noNode || leader == config.nodeID ? 0 : io.wireVersion(of: leader)
        // 0: no link to it now (the forward below says so); 1…5: a link to an older release.
        if version > 0, version < PeerFrame.forwardTransactionVersion {
            done(.failure(.unavailable("shard \(s)'s leader, node \(leader), runs an older release that takes no forwarded transaction; send this write to node \(leader) or retry once it is upgraded")))
            return
        }
        let t = ForwardedTransaction(parts: parts, clientID: session.clientID, sequence: session.sequence, ackedBelow: session.ackedBelow)
        forward(.transaction(t), shard: s) { result in
            done(result.value)
        }
    }

    // MARK: leadership in flux

    /// How long a request bound for a shard's leader waits out leadership in flux — no leader known, the leader
    /// handing its leadership on, the node asked no longer leading — before its client is told to retry: three
    /// election timeouts and a little more (an election after a leader's crash takes one or two).
    var leaderWaitTicks: UInt64 { 3 * UInt64(config.electionTicks) + 10 }

    /// Whether `e` refused a request before anything was proposed, because shard `s`'s leadership is in flux:
    /// sending it again cannot apply it twice. (A write whose outcome is unknown — leadership lost after it was
    /// proposed, a forward unanswered — is not one: only its client, with its sequence, may retry it.)
    func refusedInFlux(_ e: ReplicaError, shard s: Int) -> Bool {
        switch e {
        case .notLeader: return true
        case .transferringLeadership, NodeCore.noLeader(s): return true
        case .unavailable(let why): return why.hasPrefix(NodeCore.unreachableLeaderPrefix(s))
        case .rejected: return false
        }
    }

    /// Runs `attempt` until it succeeds, fails for a reason `retryable` does not admit, or `leaderWaitTicks`
    /// pass — trying again every tick — so a request that meets an election or a leadership handoff waits for
    /// the new leader instead of failing. Each try is a fresh one (routed anew to the leader known then).
    func untilLeaderSettles<T>(_ retryable: @escaping (ReplicaError) -> Bool,
                               _ attempt: @escaping (@escaping (Result<T, ReplicaError>) -> Void) -> Void,
                               _ done: @escaping (Result<T, ReplicaError>) -> Void) {
        let deadline = ticks + leaderWaitTicks
        func run() {
            attempt { [weak self] result in
                guard let self, case .failure(let e) = result, retryable(e), !self.stopping, self.ticks < deadline else {
                    done(result)
                    return
                }
                self.metrics.leaderWaitRetries += 1
                self.after(ticks: 1, run)
            }
        }
        run()
    }

    static func noLeader(_ s: Int) -> ReplicaError { .unavailable("shard \(s) has no leader right now; retry") }
    static func unreachableLeaderPrefix(_ s: Int) -> String { "the leader of shard \(s) " }

    /// Runs a write on shard `s` wherever its leader is: here, or forwarded to the leader's node.
    /// Refused while the leadership is in flux, it is sent again (`untilLeaderSettles`).
    package func proposeAnywhere(shard s: Int, _ req: ShardRequest, _ done: @escaping (Result<UInt64, ReplicaError>) -> Void) {
        untilLeaderSettles({ [unowned self] in self.refusedInFlux($0, shard: s) }, { [unowned self] (tried: @escaping (Result<UInt64, ReplicaError>) -> Void) in
            let r = self.replicas[s]
            if r.isLeader { r.propose(req, tried); return }
            self.forward(.propose(req), shard: s) { result in
                tried(result.value)
            }
        }, done)
    }

    /// Makes this node's replica of shard `s` safe for a linearizable read: confirms the index with the
    /// shard's leader (here or on its node), then waits until this replica has applied that far.
    /// A read has no effect: refused or dropped for any reason, it is tried again while the leadership settles.
    func readBarrier(shard s: Int, _ done: @escaping (Result<Void, ReplicaError>) -> Void) {
        // A node that holds no replica of the shard (it joined and the shard has not moved here yet) has nothing
        // to read: the client is sent elsewhere.
        guard holds(s) else {
            let hint = meta.map.map { $0.shards[s].leaderHint } ?? noNode
            done(.failure(.unavailable("this node holds no replica of shard \(s) (yet)\(hint == noNode ? "" : "; node \(hint) leads it"); read through another node")))
            return
        }
        untilLeaderSettles({ _ in true }, { [unowned self] (tried: @escaping (Result<LogIndex, ReplicaError>) -> Void) in
            let r = self.replicas[s]
            if r.isLeader { r.linearizableRead { tried($0.map { LogIndex(0) }) }; return }
            self.forward(.readIndex, shard: s) { result in
                tried(result.value)
            }
        }) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let e): done(.failure(e))
            case .success(let index):
                if self.replicas[s].appliedIndex >= index { done(.success(())) }
                else { self.waiters.waitApplied(shard: s, index: index) { done($0) } }
            }
        }
    }

    /// Who leads group `s` as far as this node can tell: its replica's Raft core — unless this node is outside
    /// the shard's group (the map lists no replica here, or its core no longer counts itself a member: a
    /// replica that moved away, whose core remembers the last leader it heard for good), then the map's hint.
    /// Outside the group, the hint may name a node that died: then the leader a voter named in a NOT_LEADER
    /// answer (`outsideLeaders`), or else any voter this node is linked to — it answers NOT_LEADER naming the
    /// leader it knows.
    func knownLeader(of s: Int) -> NodeID {
        let heard = groupRaft(s).leader
        guard s < metaGroup, let map = meta.map, s < map.shardCount else { return heard }
        let outside = !map.shards[s].holds(config.nodeID) || !replicas[s].raft.confState.contains(config.nodeID)
        guard outside else { return heard }
        let p = map.shards[s]
        if let learned = outsideLeaders[s], p.voters.contains(learned), io.isConnected(learned) { return learned }
        if p.leaderHint != noNode, io.isConnected(p.leaderHint) { return p.leaderHint }
        if let voter = p.voters.first(where: { $0 != config.nodeID && io.isConnected($0) }) { return voter }
        return p.leaderHint != noNode ? p.leaderHint : heard
    }

    /// Sends `op` for group `s` to `target`, or (nil) to the group's leader as this node knows it; `done` gets the
    /// answer, or a failure if the link is down or no answer comes within `forwardTimeoutTicks`.
    func forward(_ op: ForwardOp, shard s: Int, to target: NodeID? = nil, _ done: @escaping (ForwardResult) -> Void) {
        let leader = target ?? knownLeader(of: s)
        // A NOT_LEADER answer for a shard this node is outside of names the leader: remembered for the next try.
        let done: (ForwardResult) -> Void = { [weak self] result in
            if case .failed(.notLeader(let l)) = result, l != noNode, s < (self?.metaGroup ?? 0) { self?.outsideLeaders[s] = l }
            done(result)
        }
        guard leader != noNode, leader != config.nodeID else {
            done(.failed(NodeCore.noLeader(s)))
            return
        }
        let id = forwards.nextForwardID()
        // A peer of wire version 3 or later echoes the incarnation; an older one only the id (incarnation 0).
        let stamp = io.wireVersion(of: leader) >= 3 ? incarnation : 0
        guard io.send(.forward(incarnation: stamp, id: id, shard: UInt32(s), op: op), to: leader) else {
            done(.failed(.unavailable(NodeCore.unreachableLeaderPrefix(s) + "(node \(leader)) is unreachable from here; retry")))
            return
        }
        if let probe = forwardProbe {
            let token = probe.willSend(op, shard: s, to: leader)
            forwards.register(id: id, peer: leader, stamp: stamp, deadline: ticks + NodeCore.forwardTimeoutTicks) { result in
                probe.answered(op, shard: s, token: token, result: result)
                done(result)
            }
        } else {
            forwards.register(id: id, peer: leader, stamp: stamp, deadline: ticks + NodeCore.forwardTimeoutTicks, done)
        }
    }

    func expireForwards() {
        for f in forwards.expire(now: ticks) {
            f.done(.failed(.unavailable("node \(f.peer) did not answer a forwarded request in time; retry")))
        }
    }

    /// The link to `peer` went down: its forwards will not be answered.
    package func linkDown(_ peer: NodeID) {
        drainingHeard[peer] = nil
        snapshotStreamsEnded(to: peer)
        for f in forwards.fail(peer: peer) {
            f.done(.failed(.unavailable("the link to node \(peer) went down; retry")))
        }
    }
}
