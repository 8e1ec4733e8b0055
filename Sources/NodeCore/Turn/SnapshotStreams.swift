import Raft
import WAL

/// The sending end of streamed snapshots (wire version 7): a Raft snapshot message whose image is bigger than one
/// chunk leaves as a `snapshotBegin` (the message without its image, and the image's size), then `snapshotChunk`s
/// of at most `chunkBytes`, at most `windowChunks` of them unacknowledged at a time — flow control: a slow
/// receiver holds the sender back instead of filling its socket buffers, and no loop turn seals more than a window.
/// The image is read by range from its file (`SnapshotImage`) as chunks leave: only the window's chunks are ever in
/// memory, whatever the shard's size.
///
/// Resumption: the receiver answers a begin with the bytes it already holds of that very image from this sender
/// (`SnapshotAssembler`), so a stream cut by a dropped link or a lost frame continues where it stopped. Lost
/// frames: a stream that made no progress for `resendTicks` sends its begin again (the answer says where to go on
/// from); one that made none for `giveUpTicks` is abandoned, and the caller tells Raft the snapshot failed.
///
/// Owns only its streams: one per (peer, shard); a new snapshot for the same pair replaces the old stream.
/// Deterministic: ticks in, frames out (the image's reads are its only I/O).
struct SnapshotSender {
    struct Key: Hashable {
        var peer: NodeID
        var shard: UInt32
    }

    private struct Outgoing {
        let id: SnapshotStreamID
        /// The Raft message without its image; the image, read by range.
        let header: Message
        let image: SnapshotImage
        var total: UInt64 { image.size }
        /// Bytes the receiver said it holds; bytes sent so far (acknowledged or not).
        var acked: UInt64 = 0
        var sent: UInt64 = 0
        /// Whether the receiver answered the begin (chunks go only after it says where to start).
        var answered = false
        /// Acknowledgements in a row that repeated `acked` while more was sent: a chunk was lost or overtaken.
        var repeatedAcks = 0
        var lastProgress: UInt64
        var beginSentAt: UInt64?
        let startedAt: UInt64
    }

    /// One stream as `sutra status` shows it: bytes the receiver holds of how many, since which tick.
    struct Progress: Equatable {
        var peer: NodeID
        var shard: UInt32
        var acknowledged: UInt64
        var total: UInt64
        var startedAt: UInt64
    }

    /// The outcome of an acknowledgement.
    enum AckOutcome: Equatable {
        /// The receiver holds the whole image: the stream is over (tell Raft the snapshot went).
        case complete
        case progress
        /// For no stream of this sender (finished, replaced, abandoned): dropped.
        case stale
    }

    let chunkBytes: Int
    let windowChunks = 4
    static let resendTicks: UInt64 = 25
    static let giveUpTicks: UInt64 = 500
    private var streams: [Key: Outgoing] = [:]

    init(chunkBytes: Int) {
        precondition(chunkBytes > 0, "a chunk holds at least a byte")
        self.chunkBytes = chunkBytes
    }

    var count: Int { streams.count }

    /// Whether an image of `size` bytes is streamed rather than sent in one frame.
    func shouldStream(size: UInt64) -> Bool { size > UInt64(chunkBytes) }

    /// Starts streaming `image`, the image of snapshot message `m` (sent without it) of `shard`, to `peer`;
    /// returns whether it replaced a stream to that peer for that shard (abandoned: its snapshot failed).
    mutating func start(_ m: Message, image: SnapshotImage, shard: UInt32, to peer: NodeID, now: UInt64) -> Bool {
        guard var header = m.snapshot.map({ _ in m }) else { preconditionFailure("only a snapshot message is streamed") }
        precondition(m.to == peer, "a stream goes to the message's recipient")
        precondition(image.metadata == m.snapshot!.metadata && image.size > 0, "the image streamed is the message's snapshot's")
        header.snapshot!.data = []
        let id = SnapshotStreamID(shard: shard, index: image.metadata.index, term: image.metadata.term)
        let replaced = streams.updateValue(Outgoing(id: id, header: header, image: image, lastProgress: now, startedAt: now),
                                           forKey: Key(peer: peer, shard: shard)) != nil
        return replaced
    }

    /// Every stream in progress, by peer then shard.
    func progress() -> [Progress] {
        streams.sorted { ($0.key.peer, $0.key.shard) < ($1.key.peer, $1.key.shard) }.map {
            Progress(peer: $0.key.peer, shard: $0.key.shard, acknowledged: $0.value.acked, total: $0.value.total, startedAt: $0.value.startedAt)
        }
    }

    /// The frames due now, by peer: a begin not answered yet (again every `resendTicks`), then chunks up to the
    /// window. A stream stuck for `resendTicks` asks again where to go on from (its begin, once more). A stream
    /// whose image cannot be read (its file damaged or gone) is removed and returned in `failed`, with why.
    mutating func due(now: UInt64) -> (frames: [(peer: NodeID, frame: PeerFrame)], failed: [(key: Key, why: String)]) {
        var out: [(peer: NodeID, frame: PeerFrame)] = []
        var failed: [(key: Key, why: String)] = []
        streamLoop: for key in streams.keys.sorted(by: { ($0.peer, $0.shard) < ($1.peer, $1.shard) }) {
            var s = streams[key]!
            if s.answered, now >= s.lastProgress + SnapshotSender.resendTicks, now >= (s.beginSentAt ?? 0) + SnapshotSender.resendTicks {
                s.answered = false   // a chunk or an ack was lost, or the receiver restarted: ask again
            }
            if !s.answered {
                if s.beginSentAt.map({ now >= $0 + SnapshotSender.resendTicks }) ?? true {
                    out.append((key.peer, .snapshotBegin(s.id, message: s.header, total: s.total)))
                    s.beginSentAt = now
                }
                streams[key] = s
                continue
            }
            assert(s.acked <= s.sent && s.sent <= s.total, "stream of \(s.id): acknowledged \(s.acked), sent \(s.sent), image \(s.total)")
            let window = UInt64(windowChunks * chunkBytes)
            while s.sent < s.total, s.sent - s.acked < window {
                let end = min(s.sent + UInt64(chunkBytes), s.total)
                let bytes: [UInt8]
                do { bytes = try s.image.read(offset: s.sent, count: Int(end - s.sent)) } catch {
                    streams[key] = nil
                    failed.append((key, "\(error)"))
                    continue streamLoop
                }
                out.append((key.peer, .snapshotChunk(s.id, offset: s.sent, bytes: bytes)))
                s.sent = end
            }
            assert(s.sent - s.acked <= UInt64(windowChunks * chunkBytes), "a stream sent past its window")
            streams[key] = s
        }
        return (out, failed)
    }

    /// `peer` holds `received` bytes of image `id`.
    mutating func ack(_ id: SnapshotStreamID, received: UInt64, from peer: NodeID, now: UInt64) -> AckOutcome {
        let key = Key(peer: peer, shard: id.shard)
        guard var s = streams[key], s.id == id, received <= s.total else { return .stale }
        if received == s.total {
            streams[key] = nil
            return .complete
        }
        if !s.answered {
            // The answer to a begin: go on from what the receiver holds (less than was sent, if chunks were lost).
            s.answered = true
            s.acked = received
            s.sent = received
            s.lastProgress = now
        } else if received > s.acked {
            s.acked = received
            s.sent = max(s.sent, received)
            s.repeatedAcks = 0
            s.lastProgress = now
        } else if received == s.acked && s.sent > received {
            // The receiver took a chunk that was not the next one (it keeps only the bytes in order): on the second
            // such answer, send again from where it stands instead of waiting `resendTicks` (a network that
            // reorders frames made every chunk wait for the timer in the simulation).
            s.repeatedAcks += 1
            if s.repeatedAcks >= 2 {
                s.sent = received
                s.repeatedAcks = 0
            }
        }
        streams[key] = s
        return .progress
    }

    /// Removes every stream to `peer` (its link went down); returns their shards.
    mutating func cancel(peer: NodeID) -> [UInt32] {
        let gone = streams.keys.filter { $0.peer == peer }.map(\.shard).sorted()
        for s in gone { streams[Key(peer: peer, shard: s)] = nil }
        return gone
    }

    /// Removes the streams of shards `keep` rejects (this node no longer leads them); returns them.
    mutating func cancel(unless keep: (UInt32) -> Bool) -> [Key] {
        let gone = streams.keys.filter { !keep($0.shard) }.sorted { ($0.peer, $0.shard) < ($1.peer, $1.shard) }
        for k in gone { streams[k] = nil }
        return gone
    }

    /// Removes and returns the streams without progress for `giveUpTicks`.
    mutating func expire(now: UInt64) -> [Key] {
        let gone = streams.filter { now >= $0.value.lastProgress + SnapshotSender.giveUpTicks }.map(\.key)
            .sorted { ($0.peer, $0.shard) < ($1.peer, $1.shard) }
        for k in gone { streams[k] = nil }
        return gone
    }
}

/// The receiving end of streamed snapshots: writes each image, in order, as its chunks arrive, to a spool (a file
/// under the WAL's `snap/incoming/`, or memory in the simulation) — never more of it in memory than a chunk — and
/// hands back the Raft message without its image, and the image, once the last byte is in. At most one image per
/// shard at a time (a begin for another image replaces it); each bounded by `maxBytes`, grown only as bytes
/// arrive (a claimed size reserves nothing), and forgotten `keepTicks` after its last chunk — kept that long
/// across a dropped link, so a stream resumes. A chunk out of place (duplicated, reordered, after a restart)
/// changes nothing: the answer says where the image stands. Deterministic: ticks in, acknowledgements and
/// images out (the spools' writes are its only I/O).
struct SnapshotAssembler {
    private struct Incoming {
        let peer: NodeID
        let id: SnapshotStreamID
        let header: Message
        let spool: SnapshotSpool
        var total: UInt64 { spool.total }
        var touched: UInt64
    }

    enum Outcome {
        /// Answer the sender: this many bytes of the image are here.
        case ack(UInt64)
        /// The image is whole: the message to step (without its image), and the image (answer the sender with
        /// the total).
        case complete(Message, SnapshotImage)
        /// Nothing here for such a chunk (no begin seen, or forgotten): no answer; the sender asks again.
        case unknown
        /// A protocol violation, said in words; the image is dropped.
        case refused(String)
        /// This node could not keep what arrived (its disk), said in words: the image is dropped, nothing is
        /// answered, and the sender's stream stops for want of progress (Raft tries again later).
        case failedHere(String)
    }

    let maxBytes: UInt64
    static let keepTicks: UInt64 = 3000
    /// Images being assembled, by shard. A completed image is not remembered: a begin for it again means its
    /// sender wants it again (its final answer was lost, or Raft did not take it), so it starts over.
    private var incoming: [UInt32: Incoming] = [:]
    /// Bytes received across every image being assembled (on disk, or in the simulation's memory).
    var bytesReceived: UInt64 { incoming.values.reduce(0) { $0 + $1.spool.received } }

    init(maxBytes: UInt64) { self.maxBytes = maxBytes }

    /// A begin for image `id` of `total` bytes: answered with the bytes already here of that very image from
    /// `peer`, or a new spool (`spool(metadata, total)`, the shard's log's) replaces whatever this shard had.
    mutating func begin(_ id: SnapshotStreamID, message: Message, total: UInt64, from peer: NodeID, now: UInt64,
                        spool: (SnapshotMetadata, UInt64) throws(WALError) -> SnapshotSpool) -> Outcome {
        guard total > 0 else { return .refused("an empty snapshot image streamed") }
        guard total <= maxBytes else {
            return .refused("a snapshot image of \(total) bytes, over the limit of \(maxBytes) (--max-snapshot-bytes)")
        }
        guard let meta = message.snapshot?.metadata, meta.index == id.index, meta.term == id.term else {
            return .refused("a stream named \(id) for a message that is not its snapshot")
        }
        if var cur = incoming[id.shard], cur.peer == peer, cur.id == id, cur.total == total {
            cur.touched = now
            incoming[id.shard] = cur
            return .ack(cur.spool.received)
        }
        incoming.removeValue(forKey: id.shard)?.spool.discard()
        do {
            incoming[id.shard] = Incoming(peer: peer, id: id, header: message, spool: try spool(meta, total), touched: now)
        } catch {
            return .failedHere("\(error)")
        }
        return .ack(0)
    }

    mutating func chunk(_ id: SnapshotStreamID, offset: UInt64, bytes: [UInt8], from peer: NodeID, now: UInt64) -> Outcome {
        guard var cur = incoming[id.shard], cur.peer == peer, cur.id == id else { return .unknown }
        let have = cur.spool.received
        guard offset == have else { return .ack(have) }
        guard !bytes.isEmpty, offset + UInt64(bytes.count) <= cur.total else {
            incoming.removeValue(forKey: id.shard)?.spool.discard()
            return .refused("a chunk of \(bytes.count) bytes at \(offset) of an image of \(cur.total)")
        }
        do {
            try cur.spool.append(bytes)
        } catch {
            incoming.removeValue(forKey: id.shard)?.spool.discard()
            return .failedHere("\(error)")
        }
        assert(cur.spool.received <= cur.total, "an image grew past its size")
        cur.touched = now
        if cur.spool.received == cur.total {
            incoming[id.shard] = nil
            do {
                return .complete(cur.header, try cur.spool.finish())
            } catch {
                cur.spool.discard()
                return .failedHere("\(error)")
            }
        }
        incoming[id.shard] = cur
        return .ack(cur.spool.received)
    }

    /// Forgets images not added to for `keepTicks` (their spools removed); returns their names.
    mutating func expire(now: UInt64) -> [SnapshotStreamID] {
        let old = incoming.values.filter { now >= $0.touched + SnapshotAssembler.keepTicks }.map(\.id)
            .sorted { $0.shard < $1.shard }
        for id in old { incoming.removeValue(forKey: id.shard)?.spool.discard() }
        return old
    }
}
