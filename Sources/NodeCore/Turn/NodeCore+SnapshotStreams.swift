import Raft
import Shard
import WAL

/// Snapshots between nodes: images read by range from their files as they are streamed (`SnapshotSender`),
/// images received into files (`SnapshotAssembler`), restored from the mapped file, and adopted by the WAL when
/// Raft's install of them is made durable — no shard's image is ever held whole in memory at either end.
extension NodeCore {
    /// Readies snapshot message `m` to `peer` for sending: the core built it from the log without its image, so the
    /// image is streamed from its file (bigger than a chunk, to a peer that streams; the message is taken out of
    /// the frame) or read into the message (small images, the meta group's, an older peer). True: send `m` in the
    /// frame. False: it left as a stream, or its image could not be read (Raft learns the snapshot failed).
    func prepareSnapshot(_ m: inout ShardMessage, to peer: NodeID) -> Bool {
        let shard = Int(m.shard)
        guard var snap = m.message.snapshot, !snap.isEmpty else { return true }
        let image: SnapshotImage
        if !snap.data.isEmpty {
            // Raft's own snapshot not saved yet (installed from a leader an instant ago): in memory already.
            image = SnapshotImage(group: UInt64(shard), metadata: snap.metadata, bytes: snap.data)
        } else {
            do {
                guard let saved = try logs[shard].snapshotImage(), saved.metadata == snap.metadata else {
                    snapshotUnsendable(shard: shard, to: peer, why: "the snapshot at \(snap.metadata.index) is no longer the newest saved")
                    return false
                }
                image = saved
            } catch {
                snapshotUnsendable(shard: shard, to: peer, why: "\(error)")
                return false
            }
        }
        if shard != metaGroup, io.wireVersion(of: peer) >= PeerFrame.snapshotStreamVersion, snapshotSender.shouldStream(size: image.size) {
            if !snapshotSender.start(m.message, image: image, shard: m.shard, to: peer, now: ticks) {
                logger.info("shard \(m.shard): streaming the snapshot at \(snap.metadata.index) (\(image.size) bytes) to node \(peer) in chunks of \(snapshotSender.chunkBytes) bytes")
            }
            metrics.snapshotStreamsStarted += 1
            return false
        }
        if snap.data.isEmpty {
            do { snap.data = try image.readAll() } catch {
                snapshotUnsendable(shard: shard, to: peer, why: "\(error)")
                return false
            }
            m.message.snapshot = snap
        }
        assert(UInt64(m.message.snapshot!.data.count) == image.size, "shard \(shard): a snapshot sent whole without its whole image")
        return true
    }

    /// A snapshot that cannot go to `peer` (its saved image unreadable or replaced): Raft learns it failed and
    /// sends the newest again later; a damaged file is said, naming it, at most once per shard every 10 s.
    private func snapshotUnsendable(shard: Int, to peer: NodeID, why: String) {
        metrics.snapshotStreamsFailed += 1
        groupRaft(shard).reportSnapshot(to: peer, failed: true)
        if snapshotReadLog.shouldLog(peer: NodeID(shard), now: now).log {
            logger.error("shard \(shard): the snapshot for node \(peer) cannot be sent: \(why)")
        }
    }

    /// Whether image `id` is here whole already: being restored off the loop, or restored and waiting for the
    /// write that makes its install durable.
    func haveImage(_ id: SnapshotStreamID) -> Bool {
        let shard = Int(id.shard)
        func named(_ m: SnapshotMetadata) -> Bool { m.index == id.index && m.term == id.term }
        return restoring[shard].map { named($0.image.metadata) } == true || receivedImages[shard].map { named($0.metadata) } == true
    }

    /// Why an image of `total` bytes is not received now: the disk is below its free-space floor, or the image
    /// would take it there (by the free space last measured). Nil: receive it. A leader's stream then makes no
    /// progress and Raft sends the snapshot again later, when space may have returned.
    func imageWouldNotFit(_ total: UInt64) -> String? {
        if diskLow { return "the disk is below its free-space floor (--min-free-disk-bytes)" }
        let free = metrics.diskFreeBytes, floor = config.minFreeDiskBytes
        guard floor > 0, free > 0, total > free || free - total < floor else { return nil }
        return "an image of \(total) bytes would leave \(free > total ? free - total : 0) of \(free) bytes free, below the floor of \(floor) (--min-free-disk-bytes)"
    }

    /// The streamed snapshots' frames due now (begins, chunks within each stream's window).
    func sendSnapshotChunks() {
        guard snapshotSender.count > 0 else { return }
        var unreachable: Set<NodeID> = []
        let (frames, failed) = snapshotSender.due(now: ticks)
        for (key, why) in failed { snapshotUnsendable(shard: Int(key.shard), to: key.peer, why: why) }
        for (peer, frame) in frames where !unreachable.contains(peer) {
            if io.send(frame, to: peer) {
                if case .snapshotChunk(_, _, let bytes) = frame { metrics.snapshotBytesStreamedOut += UInt64(bytes.count) }
            } else {
                unreachable.insert(peer)
            }
        }
        for peer in unreachable.sorted() { snapshotStreamsEnded(to: peer) }
    }

    /// The streams to `peer` cannot go on (its link is down): each shard's Raft learns its snapshot failed.
    func snapshotStreamsEnded(to peer: NodeID) {
        for s in snapshotSender.cancel(peer: peer) {
            metrics.snapshotStreamsFailed += 1
            replicas[Int(s)].raft.reportSnapshot(to: peer, failed: true)
        }
    }

    /// Once a tick: streams without progress for too long are abandoned (their snapshot failed), streams of
    /// shards this node no longer leads are dropped, images not added to for long are forgotten, and received
    /// images Raft no longer means to install are removed.
    func tickSnapshotStreams() {
        for k in snapshotSender.expire(now: ticks) {
            metrics.snapshotStreamsFailed += 1
            logger.warning("shard \(k.shard): the snapshot streamed to node \(k.peer) made no progress for \(SnapshotSender.giveUpTicks) ticks; abandoned (Raft sends it again)")
            replicas[Int(k.shard)].raft.reportSnapshot(to: k.peer, failed: true)
        }
        _ = snapshotSender.cancel { s in replicas[Int(s)].isLeader }
        for id in snapshotAssembler.expire(now: ticks) {
            logger.info("\(id): the stream stopped long ago; the part received is dropped")
        }
        for s in receivedImages.keys.sorted() where !installPending(receivedImages[s]!, shard: s) {
            receivedImages.removeValue(forKey: s)?.discard()
        }
    }

    /// Whether shard `shard`'s Raft holds `image`'s snapshot to install (not yet durable).
    private func installPending(_ image: SnapshotImage, shard: Int) -> Bool {
        guard let p = replicas[shard].raft.pendingSnapshot else { return false }
        return p.index == image.metadata.index && p.term == image.metadata.term
    }

    /// What the assembler made of a streamed snapshot's frame: an answer to its sender, and once whole, the image
    /// checked (restored from the mapped file) and the snapshot message stepped without it; the image waits in
    /// `receivedImages` for the write that makes the install durable, which adopts its file.
    func assembled(_ id: SnapshotStreamID, _ outcome: SnapshotAssembler.Outcome, from peer: NodeID) {
        switch outcome {
        case .ack(let received):
            _ = io.send(.snapshotAck(id, received: received), to: peer)
        case .complete(let header, let image):
            _ = io.send(.snapshotAck(id, received: image.size), to: peer)
            metrics.snapshotStreamsReceived += 1
            logger.info("\(id): received whole from node \(peer) (\(image.size) bytes)")
            assert(Int(id.shard) < replicas.count && header.snapshot?.metadata == image.metadata, "\(id): a whole image for another shard or snapshot")
            restoreOffLoop(id, header, image, from: peer)
        case .unknown:
            break
        case .refused(let why):
            refused(.malformedSnapshotStream(why), shard: id.shard, from: peer, detail: "\(id)")
        case .failedHere(let why):
            metrics.snapshotStreamsFailed += 1
            if snapshotReadLog.shouldLog(peer: NodeID(id.shard), now: now).log {
                logger.error("\(id) from node \(peer): the image cannot be kept here: \(why); dropped (the leader sends it again)")
            }
        }
    }

    /// Restores a whole received image off the loop (a shard of gigabytes takes seconds to decode: the loop goes on
    /// with heartbeats and every other shard meanwhile); `restored` takes it back. One per shard: a newer image
    /// replaces one still being restored (whose result is then dropped).
    private func restoreOffLoop(_ id: SnapshotStreamID, _ header: Message, _ image: SnapshotImage, from peer: NodeID) {
        let shard = Int(id.shard)
        if let cur = restoring[shard], cur.image.metadata == image.metadata {
            // The same snapshot again (the leader sent it once more while this node restored it): the restore under
            // way serves it. Restarting it would drop that work, and a leader that re-sends faster than a big
            // image restores would never see it installed.
            image.discard()
            return
        }
        if let old = restoring.updateValue((image, header, peer), forKey: shard), old.image !== image { old.image.discard() }
        let job = OffLoopRestore(image: image), limits = self.limits
        io.runOffLoop({ job.run(limits: limits) }) { [weak self] done in self?.restored(done, id: id) }
    }

    /// A received image restored off the loop: kept for Raft's install (the message stepped without its image),
    /// or refused. Dropped if a newer image of the shard replaced it meanwhile.
    private func restored(_ job: OffLoopRestore, id: SnapshotStreamID) {
        let shard = Int(id.shard)
        guard let cur = restoring[shard], cur.image === job.image else { return }
        restoring[shard] = nil
        guard let state = job.state else {
            job.image.discard()
            refused(.undecodableSnapshot(index: id.index), shard: id.shard, from: cur.peer, detail: "\(id): \(job.error ?? "?")")
            return
        }
        replicas[shard].adoptCheckedSnapshot(job.image.metadata, state: state)
        step(ShardMessage(shard: id.shard, message: cur.header), from: cur.peer, imageChecked: true)
        if installPending(job.image, shard: shard) {
            if let old = receivedImages.updateValue(job.image, forKey: shard), old !== job.image { old.discard() }
        } else {
            job.image.discard()
        }
    }

    /// The received image a Ready's streamed snapshot (one without data) installs: taken for the write that
    /// adopts its file. Only ever asked for a snapshot stepped by `assembled`, whose image waits here.
    func takeReceivedImage(shard: Int, for snap: Snapshot) -> SnapshotImage {
        guard let image = receivedImages.removeValue(forKey: shard), image.metadata == snap.metadata else {
            preconditionFailure("shard \(shard): Raft installs the streamed snapshot at \(snap.metadata.index), whose image is not here")
        }
        return image
    }
}

/// A received image and the shard state restored from it off the loop. `@unchecked Sendable` because ownership
/// moves, never shared: while the work runs the loop only holds the image in `restoring` (it reads nothing of it,
/// and `discard` only unlinks its file); the state is built by the work and first touched by the loop once
/// handed back.
struct OffLoopRestore: @unchecked Sendable {
    let image: SnapshotImage
    private(set) var state: ShardState?
    private(set) var error: String?

    init(image: SnapshotImage) { self.image = image }

    /// The restore (on the thread pool).
    func run(limits: ShardLimits) -> OffLoopRestore {
        var done = self
        do { done.state = try ShardReplica.restoreImage(image, limits: limits) } catch { done.error = "\(error)" }
        return done
    }
}
