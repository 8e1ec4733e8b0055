/// Everything the application must do after feeding the core, in this order:
/// 1. install `snapshot` (if any) and append `entries` to durable storage (replacing any conflicting
///    suffix), and persist `hardState` — all made durable (fsync) before step 2;
/// 2. send `messages` (messages that need no persistence may also be taken earlier, any time, with
///    `takeImmediateMessages()` — then they are not repeated here);
/// 3. apply `committedEntries` to the state machine, then serve `readStates` once applied ≥ their index,
///    and fail `droppedReads` (retry at the leader);
/// 4. call `advance()`.
/// The core may be stepped and ticked between `ready()` and `advance()` (e.g. while an fsync runs), but
/// `ready()` may not be called again until `advance()`.
public struct Ready: Sendable {
    public var softState: SoftState?
    public var hardState: HardState?
    public var snapshot: Snapshot?
    public var entries: [Entry] = []
    public var committedEntries: [Entry] = []
    public var messages: [Message] = []
    public var readStates: [ReadState] = []
    public var droppedReads: [UInt64] = []

    /// True when something must be fsynced before `messages` may be sent.
    public var mustSync: Bool {
        !entries.isEmpty || snapshot != nil || hardState != nil
    }
}

struct PendingReady {
    var lastEntry: (index: LogIndex, term: Term)?
    var snapshotIndex: LogIndex?
    var committedHi: LogIndex?
    /// Membership changes among the committed entries handed out, with their log indexes (ascending).
    var confChanges: [(index: LogIndex, change: ConfChange)] = []
}

extension RaftNode {
    /// Whether `ready()` would return anything.
    public func hasReady() -> Bool {
        guard readyInFlight == nil else { return false }
        flushReplication()
        flushReads()
        return softState != prevSoftState || hardState != prevHardState
            || !log.unstable.entries.isEmpty || log.unstable.snapshot != nil
            || log.hasNextCommittedEntries || !messages.isEmpty || !immediateMessages.isEmpty
            || !readStates.isEmpty || !droppedReads.isEmpty
    }

    /// Collects the work for the application (see `Ready`). Call `advance()` once it is done.
    public func ready() -> Ready {
        precondition(readyInFlight == nil, "ready() called again before advance()")
        flushReplication()
        flushReads()
        var rd = Ready()
        var pending = PendingReady()
        let ss = softState
        if ss != prevSoftState { rd.softState = ss; prevSoftState = ss }
        let hs = hardState
        if hs != prevHardState { rd.hardState = hs; prevHardState = hs }
        if let snap = log.unstable.snapshot {
            rd.snapshot = snap
            pending.snapshotIndex = snap.metadata.index
        }
        if let last = log.unstable.entries.last {
            rd.entries = log.unstable.entries
            pending.lastEntry = (last.index, last.term)
        }
        if log.hasNextCommittedEntries {
            rd.committedEntries = log.nextCommittedEntries(maxBytes: config.maxCommittedSizePerReady)
            if let last = rd.committedEntries.last { pending.committedHi = last.index }
            for e in rd.committedEntries where e.kind == .confChange {
                guard let cc = ConfChange.decode(e.data) else {
                    // Refuse, never skip, an entry this version does not understand.
                    preconditionFailure("\(config.group.isEmpty ? "" : config.group + ": ")committed entry \(e.index) holds a membership change this version cannot decode")
                }
                pending.confChanges.append((e.index, cc))
            }
        }
        rd.messages = immediateMessages + messages
        immediateMessages = []
        messages = []
        rd.readStates = readStates
        readStates = []
        rd.droppedReads = droppedReads
        droppedReads = []
        readyInFlight = pending
        return rd
    }

    /// Messages that may be sent right now, even while a `Ready`'s fsync is in flight: heartbeats and their
    /// responses, the leader's appends, pre-votes, rejections (see `Message.canSendBeforePersisting`). Calling
    /// it is optional — whatever is not taken here is in the next `Ready.messages` — but a node that calls it
    /// after every `step`/`tick` never lets a slow disk delay a heartbeat (the etcd #7312 election storm).
    /// On a leader it first runs the batched replication and ReadIndex flush, like `ready()`.
    public func takeImmediateMessages() -> [Message] {
        flushReplication()
        flushReads()
        let out = immediateMessages
        immediateMessages = []
        return out
    }

    /// Linearizable reads confirmed or dropped since the last `Ready`, taken now instead of with the next one. A
    /// read state needs no persistence (it says only "serve once applied ≥ `index`"), so a node may take them
    /// while a `Ready`'s fsync is in flight — or stalled on a full disk — and go on serving reads. Calling it is
    /// optional: whatever is not taken here is in the next `Ready`.
    public func takeReadStates() -> (confirmed: [ReadState], dropped: [UInt64]) {
        flushReads()
        let out = (readStates, droppedReads)
        readStates = []
        droppedReads = []
        return out
    }

    /// The application finished the last `Ready`: its entries are durable and its committed entries applied.
    public func advance() {
        guard let p = readyInFlight else { preconditionFailure("advance() without ready()") }
        readyInFlight = nil
        if let si = p.snapshotIndex {
            log.stableSnapTo(si)
            log.appliedTo(si)
        }
        if let (i, t) = p.lastEntry { log.stableTo(i, t) }
        if let hi = p.committedHi {
            log.appliedTo(hi)
            // A snapshot restored since `ready()` carries the membership as of its index: a change at or below
            // that index is already part of it (or was undone after it) and must not be applied over it.
            for (index, cc) in p.confChanges where index > confIndex { applyConfChange(cc, at: index) }
        }
        if role == .leader, var me = progress[id] {
            if me.maybeUpdate(log.persistedLastIndex) {
                progress[id] = me
                maybeCommit()
            }
        }
    }

    func applyConfChange(_ cc: ConfChange, at index: LogIndex) {
        precondition(index > confIndex, "conf change at \(index) applied over the membership as of \(confIndex)")
        conf = cc.applied(to: conf)
        confIndex = index
        for n in conf.members where progress[n] == nil {
            var p = Progress(next: log.lastIndex + 1, maxInflight: config.maxInflightMsgs, isLearner: conf.isLearner(n))
            p.recentActive = true
            progress[n] = p
        }
        for n in Array(progress.keys) where !conf.contains(n) { progress[n] = nil }
        for n in conf.members { progress[n]!.isLearner = conf.isLearner(n) }
        guard role == .leader else { return }
        if leadTransferee != noNode && !conf.isVoter(leadTransferee) { leadTransferee = noNode }
        // Removed while leading: stepping down now could leave the remaining voters unable to elect anyone —
        // they may not know yet that the removal is committed (so they still count this node), and this node's
        // longer log makes it refuse their votes (Raft simulation seeds 1674, 15123, 23816, 30902). It goes on
        // leading, no longer counted in any quorum and taking no proposals, until the most caught-up remaining
        // voter takes over (`handOffAfterRemoval`, retried every tick).
        if !conf.isVoter(id) { handOffAfterRemoval() }
        maybeCommit()
        releaseConfirmedReads()
    }
}
