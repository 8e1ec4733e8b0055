import Raft
import Shard

/// A cross-shard write held back while its record shard has a backup fence raised.
struct HeldTransaction {
    var parts: [TxnPart]
    var recordShard: Int
    var session: ClientSession
    var done: NodeCore.TxnCompletion
    /// Past this tick it is answered `unavailable` instead (a fence is never lifted only by a crashed taker's
    /// TTL for this long).
    var until: UInt64
}

/// Online, consistent backup: every shard's data at a committed index, taken so that no cross-shard
/// transaction is half in it, while the cluster serves reads and writes.
///
/// How (all decisions here, in ticks; the driver only encodes and ships the images):
/// 1. Raise fence `id` on every shard (a Raft entry on each, `ShardCommand.backupFence`). From its index on, a
///    shard begins no transaction with its record there: `ShardState.begin` refuses it, and this node holds new
///    ones back (`hold`) until the fence is lifted. Transactions begun before go on to their end.
/// 2. Repeat passes of "read barrier on every shard → resolve the intents seen → take every shard's image"
///    (`contentImages`) until a pass finds no transaction record on any shard, and a LATER pass finds neither
///    records nor intents. The first says every transaction begun before the fences was decided, resolved at
///    every participant and forgotten — each forget comes after all its resolutions are committed, so all of
///    them are committed before that pass ended. The later pass's barriers are taken after that, so its images
///    hold every such resolution; and no transaction began after the fences. Its images are the backup.
/// 3. Lift the fences. A taker that dies leaves them to the shard leaders, which lift a fence they have held
///    for its TTL (`liftExpiredFences`).
/// Single-shard writes never wait; cross-shard ones wait for at most the fence's life.
extension NodeCore {
    /// Largest number of cross-shard writes held back at once; more are answered `unavailable`.
    static let maxHeldTransactions = 10_000

    /// Takes a backup's images (see the type's comment). `fenceTicks` bounds how long cross-shard writes may be
    /// held back if this node dies mid-way; `waitTicks` how long transactions begun before the fence may take to
    /// end before the backup gives up (and lifts its fences). `done` runs once, on the loop.
    package func captureBackup(id: UInt64, fenceTicks: UInt32, waitTicks: UInt64,
                               _ done: @escaping (Result<[ShardContentImage], ClientError>) -> Void) {
        precondition(id != 0 && fenceTicks > 0, "a backup fence has an id and a life")
        guard !stopping else { done(.failure(ClientError(.unavailable, "the node is shutting down; take the backup at another node"))); return }
        if let refusal = notEveryShardHere("a backup") { done(.failure(refusal)); return }
        guard !backupInProgress else { done(.failure(ClientError(.unavailable, "a backup is already being taken through this node; retry when it ends"))); return }
        if let (peer, v) = connectedPeer(below: PeerFrame.backupFenceVersion) {
            done(.failure(ClientError(.unavailable, "node \(peer) speaks peer wire \(v), a release that cannot read backup fences; finish the upgrade (every node on wire \(PeerFrame.backupFenceVersion) or later) before taking a backup")))
            return
        }
        backupInProgress = true
        metrics.backupsStarted += 1
        let deadline = ticks + waitTicks
        let finish: (Result<[ShardContentImage], ClientError>) -> Void = { [weak self] result in
            guard let self else { return }
            self.backupInProgress = false
            self.forEachShard(.liftBackupFence(id: id)) { _ in }
            if case .success = result { self.metrics.backupsTaken += 1 }
            done(result)
        }
        forEachShard(.backupFence(id: id, ttlTicks: fenceTicks)) { [weak self] failure in
            guard let self else { return }
            if let failure { finish(.failure(failure)); return }
            self.backupPass(recordsCleared: false, deadline: deadline, finish)
        }
    }

    /// Proposes `command` on every shard (at its leader, wherever it is); `done(nil)` once every shard applied
    /// it, else with the first failure.
    private func forEachShard(_ command: ShardCommand, _ done: @escaping (ClientError?) -> Void) {
        let req = ShardRequest(clientID: 0, sequence: 0, command: command)
        onEveryShard({ s, answered in self.proposeAnywhere(shard: s, req) { answered($0.map { _ in () }) } }, done)
    }

    private func backupPass(recordsCleared: Bool, deadline: UInt64,
                            _ finish: @escaping (Result<[ShardContentImage], ClientError>) -> Void) {
        contentImages { [weak self] result in
            guard let self else { return }
            var cleared = recordsCleared
            var why = ""
            switch result {
            case .success(let images):
                let records = images.reduce(0) { $0 + $1.openRecords }, intents = images.reduce(0) { $0 + $1.openIntents }
                if cleared && records == 0 && intents == 0 { finish(.success(images)); return }
                if records == 0 { cleared = true }
                let busy = images.filter { $0.openRecords + $0.openIntents > 0 }.map { "shard \($0.shard): \($0.openRecords) records, \($0.openIntents) intents" }
                why = "cross-shard transactions begun before the fence are still open (\(busy.joined(separator: "; ")))"
            case .failure(let e):
                why = e.message
            }
            guard self.ticks < deadline, !self.stopping else {
                finish(.failure(ClientError(.unavailable, "no consistent moment for a backup within the wait: \(why); nothing was taken, retry")))
                return
            }
            self.after(ticks: cleared ? 1 : 5) { [weak self] in self?.backupPass(recordsCleared: cleared, deadline: deadline, finish) }
        }
    }

    // MARK: holding cross-shard writes back

    func hold(_ parts: [TxnPart], recordShard: Int, session: ClientSession, _ done: @escaping TxnCompletion) {
        guard heldTransactions.count < NodeCore.maxHeldTransactions else {
            done(.failure(.unavailable("a backup is being taken and \(NodeCore.maxHeldTransactions) cross-shard writes already wait for it; retry")))
            return
        }
        metrics.heldForBackup += 1
        let life = replicas[recordShard].state.backupFences.values.max().map(UInt64.init) ?? 0
        heldTransactions.append(HeldTransaction(parts: parts, recordShard: recordShard, session: session, done: done,
                                                until: ticks + life + NodeCore.forwardTimeoutTicks))
    }

    /// Begins the held transactions whose record shard has no fence any more; answers the ones held too long.
    func releaseHeldTransactions() {
        let held = heldTransactions
        heldTransactions = []
        for h in held {
            if replicas[h.recordShard].state.backupFences.isEmpty || !replicas[h.recordShard].isLeader {
                coordinate(h.parts, recordShard: h.recordShard, session: h.session, h.done)
            } else if ticks > h.until {
                h.done(.failure(.unavailable("a backup fence on shard \(h.recordShard) held this cross-shard write back too long; retry")))
            } else {
                heldTransactions.append(h)
            }
        }
    }

    // MARK: fences left behind

    /// As leader, lifts a fence this node has watched for its whole life (its taker died or lost its way). The
    /// life is counted from when this node saw it as leader: a new leader starts counting afresh.
    func liftExpiredFences() {
        for r in replicas {
            let fences = r.state.backupFences
            guard r.isLeader, !fences.isEmpty else { fenceSeenAt[r.shard] = nil; continue }
            var seen = (fenceSeenAt[r.shard] ?? [:]).filter { fences[$0.key] != nil }
            for (id, life) in fences.sorted(by: { $0.key < $1.key }) {
                let since = seen[id] ?? ticks
                seen[id] = since
                guard ticks - since >= UInt64(life) else { continue }
                seen[id] = ticks  // propose again only after another life
                logger.warning("shard \(r.shard): backup fence \(id) outlived its \(life) ticks (its backup ended without lifting it); lifting it")
                metrics.fencesExpired += 1
                r.propose(ShardRequest(clientID: 0, sequence: 0, command: .liftBackupFence(id: id))) { _ in }
            }
            fenceSeenAt[r.shard] = seen
        }
    }

    // MARK: timers

    func after(ticks n: UInt64, _ run: @escaping () -> Void) {
        tickTimers.append((ticks + n, run))
    }

    func runDueTimers() {
        let due = tickTimers.filter { $0.at <= ticks }
        tickTimers.removeAll { $0.at <= ticks }
        for t in due { t.run() }
    }
}
