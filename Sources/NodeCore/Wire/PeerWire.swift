import ClusterMap
import Codec
import Raft
import Shard

/// The node-to-node wire format. Every frame is a u32 little-endian length of what follows, a kind byte, and
/// the kind's body. One TCP connection per node pair carries every shard's frames in both directions.
///
/// Hand-written over `Codec` rather than protobuf (the client protocol's encoding): Raft entries are byte
/// strings already, and this layout copies them once instead of twice (see docs/ARCHITECTURE.md).
/// Decoding refuses unknown kinds, unknown enum values, truncation and trailing bytes.
package enum PeerFrame: Equatable {
    /// First frame each way: who is speaking, which protocol versions it can speak, and where its clients
    /// connect (so a node can name the leader's address in a NOT_LEADER answer).
    case hello(PeerHello)
    /// A loop turn's Raft messages for this peer, for any number of shards.
    case raft([ShardMessage])
    /// Asks the peer (the shard's leader) to run a write or a ReadIndex round for us. `incarnation` names the
    /// asking process (a new one at every start; 0 from a version-1/2 peer, which sends none) and is echoed in
    /// the reply, so a reply can never be matched to another process's request that reused its id.
    case forward(incarnation: UInt64, id: UInt64, shard: UInt32, op: ForwardOp)
    case forwardReply(incarnation: UInt64, id: UInt64, ForwardResult)
    /// Version 2: a turn's heartbeats and heartbeat responses to this peer, every shard's, as one compact list
    /// (sender and receiver are the link's ends; entries, snapshots and rejections never travel here).
    case heartbeats([CoalescedHeartbeat])
    /// Version 4: the configuration the data depends on, sent once right after the hello on a link that speaks
    /// version 4 (an older peer never receives it). The link carries nothing else until both ends agree.
    case config(PeerConfig)
    /// Version 5: the sender is shutting down gracefully (SIGTERM) and is handing its leaderships away: hand it
    /// none (no rebalancing onto it, no transfer to it) until the link goes down. Sent again every few ticks
    /// while it drains, so a link that comes up meanwhile learns it too.
    case draining
    /// Version 7: a snapshot too big for one frame (over `--snapshot-chunk-bytes`) is streamed in chunks
    /// (`SnapshotStreams`). `begin` carries the Raft message with its image left out and the image's size; the
    /// receiver answers with an `ack` of the bytes it already holds of that very image (0, or where an earlier
    /// stream of it stopped: resumption), the sender then sends `chunk`s from there, a window at a time, each
    /// acknowledged. The completed message enters Raft as if it had come in one frame.
    case snapshotBegin(SnapshotStreamID, message: Message, total: UInt64)
    case snapshotChunk(SnapshotStreamID, offset: UInt64, bytes: [UInt8])
    case snapshotAck(SnapshotStreamID, received: UInt64)

    /// Versions of this wire format this build speaks. 1: hello, raft, forward, forward reply. 2: + heartbeats.
    /// 3: forwards and their replies carry the asking process's incarnation (kinds 6 and 7; kinds 3 and 4 are
    /// still read and sent to older peers, with incarnation 0). 4: + the configuration frame (kind 8).
    /// 5: + the draining announcement (kind 9). 6: + forwarded cross-shard writes (forward op 3), so any node
    /// answers a client's transaction. 7: + streamed snapshots (kinds 10–12). 8: + the meta group (Raft
    /// messages of "shard" = the shard count carry the cluster map's group) and forwarded map changes (forward
    /// op 4). 9: + the configuration frame with the replication factor (kind 13), forwarded shard reads
    /// (forward op 5, answered by reply status 4) and forwarded concept deletes (forward op 6).
    /// 10: + the shard-digest read (shard read kind 5, answer kind 5).
    /// A link speaks the lower of the two ends' maximum versions, so a rolling upgrade never sends a frame
    /// the older node does not know.
    package static let minVersion: UInt32 = 1
    package static let maxVersion: UInt32 = 10
    /// The first wire version that answers a shard's content digest for another node (a digest through a node
    /// that does not hold every shard).
    package static let shardDigestVersion: UInt32 = 10
    /// The first wire version that carries the replication factor in the configuration frame and answers
    /// forwarded shard reads (forward op 5): a node that holds only some shards reads the others there.
    package static let replicationVersion: UInt32 = 9
    /// The first wire version whose nodes run the meta group: its messages and map changes go to such peers only.
    package static let metaGroupVersion: UInt32 = 8
    /// The first wire version that streams big snapshots in chunks; an older peer gets them in one frame.
    package static let snapshotStreamVersion: UInt32 = 7
    /// The first wire version whose nodes apply backup fences (release 0.2): a backup is refused while a
    /// connected peer speaks an older one.
    package static let backupFenceVersion: UInt32 = 5
    /// The first wire version that takes a forwarded transaction: an older leader is not sent one (the client
    /// gets a 503 naming the leader to send it to).
    package static let forwardTransactionVersion: UInt32 = 6
    /// The first wire version whose nodes read the graph-integrity commands (`expectEdges`, `dropEdge`): a
    /// cascading delete or a lenient dissociation is proposed only while no connected peer speaks an older one.
    package static let graphIntegrityVersion: UInt32 = 6
    /// Largest frame accepted on a connection before its hello (and configuration) are accepted: a hello with
    /// strings at their 64 KiB limit is refused anyway, a real one is under 200 bytes.
    package static let maxHandshakeFrameBytes = 4096
}

/// What the shards' data depends on, exchanged after the hello (wire version 4): two nodes that disagree on
/// any of it must not replicate to each other.
package struct PeerConfig: Equatable {
    package var shardCount: UInt32
    package var dimension: UInt32
    /// `WALFormat.version`: this node's own log format (shown, never compared: no peer reads it).
    package var walFormat: UInt32
    /// `ShardState.snapshotVersion`: the newest snapshot image this node writes (and reads).
    package var snapshotFormat: UInt32
    /// `ShardRequest.version`: the newest log-entry encoding this node writes (and reads).
    package var entryFormat: UInt32
    /// Version 9: the replication factor the node was started with (`--replication`), which places a new
    /// cluster's replicas; 0 from an older peer (or sent to one), then not compared.
    package var replication: UInt32

    package init(shardCount: UInt32, dimension: UInt32, walFormat: UInt32, snapshotFormat: UInt32, entryFormat: UInt32, replication: UInt32 = 0) {
        self.shardCount = shardCount
        self.dimension = dimension
        self.walFormat = walFormat
        self.snapshotFormat = snapshotFormat
        self.entryFormat = entryFormat
        self.replication = replication
    }

    /// The configuration as a link of wire version `version` carries it (the replication factor from 9 on).
    package func forLink(version: UInt32) -> PeerConfig {
        var c = self
        if version < PeerFrame.replicationVersion { c.replication = 0 }
        return c
    }

    /// Why a link between a node configured as `self` and a peer configured as `peer` must be refused, naming
    /// both values; nil when they may replicate. Shard count and dimension must be equal; snapshot and entry
    /// formats too (the newer side would send images or entries the older cannot decode — refused by both ends,
    /// so a format change needs every node upgraded before it is written).
    package func mismatch(with peer: PeerConfig) -> String? {
        var out: [String] = []
        if shardCount != peer.shardCount { out.append("shard count \(shardCount) here, \(peer.shardCount) on the peer") }
        if dimension != peer.dimension { out.append("vector dimension \(dimension) here, \(peer.dimension) on the peer") }
        if snapshotFormat != peer.snapshotFormat { out.append("snapshot format \(snapshotFormat) here, \(peer.snapshotFormat) on the peer") }
        if entryFormat != peer.entryFormat { out.append("log entry format \(entryFormat) here, \(peer.entryFormat) on the peer") }
        // Two nodes that place a new cluster's replicas differently could each elect a leader of one shard
        // among different voters: refused, like a different shard count.
        if replication != 0, peer.replication != 0, replication != peer.replication {
            out.append("replication factor \(replication) here, \(peer.replication) on the peer")
        }
        return out.isEmpty ? nil : out.joined(separator: "; ")
    }
}

package struct PeerHello: Equatable {
    package var clusterID: String
    package var node: NodeID
    package var minVersion: UInt32 = PeerFrame.minVersion
    package var maxVersion: UInt32 = PeerFrame.maxVersion
    /// host:port of the node's binary client protocol and of its HTTP API.
    package var clientAddress: String
    package var httpAddress: String

    package init(clusterID: String, node: NodeID, minVersion: UInt32 = PeerFrame.minVersion, maxVersion: UInt32 = PeerFrame.maxVersion,
                 clientAddress: String, httpAddress: String) {
        self.clusterID = clusterID
        self.node = node
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.clientAddress = clientAddress
        self.httpAddress = httpAddress
    }
}

/// One shard's heartbeat (leader → follower: term, commit, read round) or heartbeat response (term, round).
package struct CoalescedHeartbeat: Equatable {
    package var shard: UInt32
    package var isResponse: Bool
    package var term: Term
    package var commit: LogIndex
    package var context: UInt64

    /// The compact form of `m`, if it is a plain heartbeat or heartbeat response.
    package init?(shard: UInt32, _ m: Message) {
        guard (m.type == .heartbeat || m.type == .heartbeatResponse), m.entries.isEmpty, m.snapshot == nil, !m.reject,
              m.logTerm == 0, m.index == 0, m.rejectHint == 0 else { return nil }
        self.init(shard: shard, isResponse: m.type == .heartbeatResponse, term: m.term, commit: m.commit, context: m.context)
    }

    package init(shard: UInt32, isResponse: Bool, term: Term, commit: LogIndex, context: UInt64) {
        self.shard = shard
        self.isResponse = isResponse
        self.term = term
        self.commit = commit
        self.context = context
    }

    package func message(from: NodeID, to: NodeID) -> Message {
        Message(type: isResponse ? .heartbeatResponse : .heartbeat, to: to, from: from, term: term, commit: commit, context: context)
    }
}

/// Names one streamed snapshot image: the shard, and the index and term the image was taken at. A resumed stream
/// continues only an image of the same name, size and sender (`SnapshotStreams`).
package struct SnapshotStreamID: Hashable, CustomStringConvertible {
    package var shard: UInt32
    package var index: LogIndex
    package var term: Term

    package init(shard: UInt32, index: LogIndex, term: Term) {
        self.shard = shard
        self.index = index
        self.term = term
    }

    package var description: String { "shard \(shard)'s snapshot at \(index) (term \(term))" }
}

package struct ShardMessage: Equatable {
    package var shard: UInt32
    package var message: Message

    package init(shard: UInt32, message: Message) {
        self.shard = shard
        self.message = message
    }
}

package enum ForwardOp: Equatable {
    case propose(ShardRequest)
    /// Confirm leadership and return the read index (a linearizable read served by the asking node).
    case readIndex
    /// Version 6: coordinate a client's cross-shard write whose record shard is the frame's shard (the asking
    /// node does not lead it); the reply is the transaction's outcome.
    case transaction(ForwardedTransaction)
    /// Version 8: propose a change of the cluster map to the meta group's leader (the frame's shard is the
    /// meta group's: the shard count); the reply's value is the map's version after it.
    case mapChange(ClusterMapChange)
    /// Version 9: a read of shards the asking node holds no replica of (`ShardRead`), answered `.answer`.
    case read(ShardRead)
    /// Version 9: a client's delete of a concept (with every association touching it) for the leader of the
    /// concept's shard (the frame's), from a node that holds no replica of it: the cascade reads the concept's
    /// edges, which only a holder has. The client's session makes a retry through any node the same delete.
    case deleteConcept(ConceptID, clientID: UInt64, sequence: UInt64, ackedBelow: UInt64)
}

/// A client's cross-shard write, forwarded to the leader of its record shard: the parts (plain commands per
/// shard) and the client's session, so a retry through any node is the same transaction.
package struct ForwardedTransaction: Equatable {
    package var parts: [TxnPart]
    package var clientID: UInt64
    package var sequence: UInt64
    package var ackedBelow: UInt64

    package init(parts: [TxnPart], clientID: UInt64, sequence: UInt64, ackedBelow: UInt64) {
        self.parts = parts
        self.clientID = clientID
        self.sequence = sequence
        self.ackedBelow = ackedBelow
    }

    /// Why the leader of `recordShard` cannot coordinate this (nil when it can): at least two parts on distinct
    /// shards of `shardCount`, one of them the record shard, each non-empty with plain commands only, at most
    /// `maxCommands` in all. The asking node built it the same way; a peer that sends anything else is refused.
    package func problem(recordShard: Int, shardCount: Int, maxCommands: Int) -> String? {
        guard parts.count >= 2 else { return "a transaction of \(parts.count) part(s)" }
        guard Set(parts.map(\.shard)).count == parts.count else { return "two parts on one shard" }
        guard parts.allSatisfy({ $0.shard >= 0 && $0.shard < shardCount }) else { return "a part on a shard this cluster does not have" }
        guard parts.contains(where: { $0.shard == recordShard }) else { return "no part on the record shard \(recordShard)" }
        guard parts.allSatisfy({ !$0.commands.isEmpty && $0.commands.allSatisfy(\.isPlain) }) else { return "an empty part or a command that is not plain" }
        let total = parts.reduce(0) { $0 + $1.commands.count }
        guard total <= maxCommands else { return "\(total) commands; the limit is \(maxCommands)" }
        return nil
    }
}

package enum ForwardResult: Equatable {
    /// Write: the version applied. ReadIndex: the index the asker must apply up to before reading.
    case ok(UInt64)
    case failed(ReplicaError)
    /// Version 9: a shard read's answer.
    case answer(ShardReadAnswer)

    /// A write's version or a read index; a read's answer here (a peer that answered the wrong question) fails.
    package var value: Result<UInt64, ReplicaError> {
        switch self {
        case .ok(let v): .success(v)
        case .failed(let e): .failure(e)
        case .answer: .failure(.rejected("the peer answered a read where a write's version or a read index was asked"))
        }
    }
}

package struct PeerWireError: Error, Equatable, CustomStringConvertible {
    package var description: String
    package init(description: String) { self.description = description }
}

extension PeerFrame {
    package func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u32(0)
        switch self {
        case .hello(let h):
            w.u8(1)
            writeString(h.clusterID, &w)
            w.u64(h.node); w.u32(h.minVersion); w.u32(h.maxVersion)
            writeString(h.clientAddress, &w)
            writeString(h.httpAddress, &w)
        case .raft(let msgs):
            w.u8(2)
            w.u32(UInt32(msgs.count))
            for m in msgs { w.u32(m.shard); PeerFrame.encode(m.message, &w) }
        case .forward(let incarnation, let id, let shard, let op):
            if incarnation == 0 { w.u8(3) } else { w.u8(6); w.u64(incarnation) }
            w.u64(id); w.u32(shard)
            switch op {
            case .propose(let r):
                w.u8(1)
                let b = r.encode()
                w.u32(UInt32(b.count)); w.raw(b)
            case .readIndex:
                w.u8(2)
            case .transaction(let t):
                w.u8(3)
                w.u64(t.clientID); w.u64(t.sequence); w.u64(t.ackedBelow)
                w.u32(UInt32(t.parts.count))
                for part in t.parts {
                    w.u32(UInt32(part.shard))
                    let b = ShardRequest(clientID: 0, sequence: 0, command: .batch(part.commands)).encode()
                    w.u32(UInt32(b.count)); w.raw(b)
                }
            case .mapChange(let c):
                w.u8(4)
                let b = c.encode()
                w.u32(UInt32(b.count)); w.raw(b)
            case .read(let read):
                w.u8(5)
                read.encode(&w)
            case .deleteConcept(let id, let client, let sequence, let acked):
                w.u8(6)
                w.conceptID(id); w.u64(client); w.u64(sequence); w.u64(acked)
            }
        case .heartbeats(let hbs):
            w.u8(5)
            w.u32(UInt32(hbs.count))
            for h in hbs { w.u32(h.shard); w.u8(h.isResponse ? 1 : 0); w.u64(h.term); w.u64(h.commit); w.u64(h.context) }
        case .config(let c):
            // Kind 13 (v9) carries the replication factor too; kind 8 for a link to an older peer.
            w.u8(c.replication == 0 ? 8 : 13)
            w.u32(c.shardCount); w.u32(c.dimension); w.u32(c.walFormat); w.u32(c.snapshotFormat); w.u32(c.entryFormat)
            if c.replication != 0 { w.u32(c.replication) }
        case .draining:
            w.u8(9)
        case .snapshotBegin(let id, let m, let total):
            w.u8(10)
            PeerFrame.encode(id, &w)
            w.u64(total)
            PeerFrame.encode(m, &w)
        case .snapshotChunk(let id, let offset, let bytes):
            w.u8(11)
            PeerFrame.encode(id, &w)
            w.u64(offset)
            w.u32(UInt32(bytes.count)); w.raw(bytes)
        case .snapshotAck(let id, let received):
            w.u8(12)
            PeerFrame.encode(id, &w)
            w.u64(received)
        case .forwardReply(let incarnation, let id, let result):
            if incarnation == 0 { w.u8(4) } else { w.u8(7); w.u64(incarnation) }
            w.u64(id)
            switch result {
            case .ok(let v): w.u8(0); w.u64(v)
            case .failed(.notLeader(let l)): w.u8(1); w.u64(l)
            case .failed(.unavailable(let s)): w.u8(2); writeString(s, &w)
            case .failed(.rejected(let s)): w.u8(3); writeString(s, &w)
            case .answer(let a): w.u8(4); a.encode(&w)
            }
        }
        w.patchU32(UInt32(w.bytes.count - 4), at: 0)
        return w.bytes
    }

    /// The bytes `m` takes inside a `.raft` frame (its shard number included), to split a turn's messages into
    /// frames under the link's limit.
    package static func encodedSize(_ m: Message) -> Int {
        var n = 75
        for e in m.entries { n += 21 + e.data.count }
        if let s = m.snapshot { n += 28 + 8 * (s.metadata.confState.voters.count + s.metadata.confState.learners.count) + s.data.count }
        return n
    }

    private static func encode(_ id: SnapshotStreamID, _ w: inout ByteWriter) {
        w.u32(id.shard); w.u64(id.index); w.u64(id.term)
    }

    private static func decodeStreamID(_ r: inout ByteReader) throws -> SnapshotStreamID {
        SnapshotStreamID(shard: try r.u32(), index: try r.u64(), term: try r.u64())
    }

    private static func encode(_ m: Message, _ w: inout ByteWriter) {
        w.u8(m.type.rawValue)
        w.u64(m.to); w.u64(m.from); w.u64(m.term); w.u64(m.logTerm); w.u64(m.index); w.u64(m.commit)
        w.u8(m.reject ? 1 : 0)
        w.u64(m.rejectHint); w.u64(m.context)
        w.u32(UInt32(m.entries.count))
        for e in m.entries {
            w.u64(e.term); w.u64(e.index); w.u8(e.kind.rawValue)
            w.u32(UInt32(e.data.count)); w.raw(e.data)
        }
        if let s = m.snapshot {
            w.u8(1)
            w.u64(s.metadata.index); w.u64(s.metadata.term)
            w.u32(UInt32(s.metadata.confState.voters.count))
            for v in s.metadata.confState.voters { w.u64(v) }
            w.u32(UInt32(s.metadata.confState.learners.count))
            for v in s.metadata.confState.learners { w.u64(v) }
            w.u32(UInt32(s.data.count)); w.raw(s.data)
        } else {
            w.u8(0)
        }
    }

    /// Decodes one frame body (after the length prefix).
    package static func decode(_ body: UnsafeRawBufferPointer) throws(PeerWireError) -> PeerFrame {
        var r = ByteReader(body)
        do {
            let frame: PeerFrame
            let kind = try r.u8()
            switch kind {
            case 1:
                let cluster = try readString(&r)
                let node = try r.u64(), lo = try r.u32(), hi = try r.u32()
                frame = .hello(PeerHello(clusterID: cluster, node: node, minVersion: lo, maxVersion: hi,
                                         clientAddress: try readString(&r), httpAddress: try readString(&r)))
            case 2:
                let n = Int(try r.u32())
                // Each message takes at least 75 bytes: a count beyond that cannot be true (and is not reserved).
                guard n <= r.remaining / 75 else { throw PeerWireError(description: "message count \(n) exceeds the frame") }
                var out: [ShardMessage] = []
                out.reserveCapacity(n)
                for _ in 0..<n {
                    let shard = try r.u32()
                    out.append(ShardMessage(shard: shard, message: try decodeMessage(&r)))
                }
                frame = .raft(out)
            case 3, 6:
                let incarnation = kind == 6 ? try r.u64() : 0
                guard kind == 3 || incarnation != 0 else { throw PeerWireError(description: "forward with incarnation 0") }
                let id = try r.u64(), shard = try r.u32()
                switch try r.u8() {
                case 1:
                    let b = try r.bytes(Int(try r.u32()))
                    do {
                        frame = .forward(incarnation: incarnation, id: id, shard: shard, op: .propose(try ShardRequest.decode(b)))
                    } catch {
                        throw PeerWireError(description: "forwarded write: \(error)")
                    }
                case 2: frame = .forward(incarnation: incarnation, id: id, shard: shard, op: .readIndex)
                case 3:
                    let client = try r.u64(), sequence = try r.u64(), acked = try r.u64()
                    let n = Int(try r.u32())
                    // Each part takes at least 8 bytes: a count beyond that cannot be true (and is not reserved).
                    guard n <= r.remaining / 8 else { throw PeerWireError(description: "part count \(n) exceeds the frame") }
                    var parts: [TxnPart] = []
                    for _ in 0..<n {
                        let partShard = try r.u32()
                        let b = try r.bytes(Int(try r.u32()))
                        let req: ShardRequest
                        do { req = try ShardRequest.decode(b) } catch { throw PeerWireError(description: "forwarded transaction part: \(error)") }
                        guard case .batch(let commands) = req.command else {
                            throw PeerWireError(description: "forwarded transaction part of shard \(partShard) is not a list of commands")
                        }
                        parts.append(TxnPart(shard: Int(partShard), commands: commands))
                    }
                    frame = .forward(incarnation: incarnation, id: id, shard: shard,
                                     op: .transaction(ForwardedTransaction(parts: parts, clientID: client, sequence: sequence, ackedBelow: acked)))
                case 4:
                    let b = try r.bytes(Int(try r.u32()))
                    switch ClusterMapChange.decode(b) {
                    case .success(let c): frame = .forward(incarnation: incarnation, id: id, shard: shard, op: .mapChange(c))
                    case .failure(let e): throw PeerWireError(description: "forwarded map change: \(e)")
                    }
                case 5:
                    frame = .forward(incarnation: incarnation, id: id, shard: shard, op: .read(try ShardRead.decode(&r)))
                case 6:
                    let concept = try r.conceptID()
                    frame = .forward(incarnation: incarnation, id: id, shard: shard,
                                     op: .deleteConcept(concept, clientID: try r.u64(), sequence: try r.u64(), ackedBelow: try r.u64()))
                case let t: throw PeerWireError(description: "unknown forward op \(t)")
                }
            case 4, 7:
                let incarnation = kind == 7 ? try r.u64() : 0
                guard kind == 4 || incarnation != 0 else { throw PeerWireError(description: "forward reply with incarnation 0") }
                let id = try r.u64()
                switch try r.u8() {
                case 0: frame = .forwardReply(incarnation: incarnation, id: id, .ok(try r.u64()))
                case 1: frame = .forwardReply(incarnation: incarnation, id: id, .failed(.notLeader(leader: try r.u64())))
                case 2: frame = .forwardReply(incarnation: incarnation, id: id, .failed(.unavailable(try readString(&r))))
                case 3: frame = .forwardReply(incarnation: incarnation, id: id, .failed(.rejected(try readString(&r))))
                case 4: frame = .forwardReply(incarnation: incarnation, id: id, .answer(try ShardReadAnswer.decode(&r)))
                case let t: throw PeerWireError(description: "unknown forward status \(t)")
                }
            case 5:
                let n = Int(try r.u32())
                guard n <= r.remaining / 29 else { throw PeerWireError(description: "heartbeat count \(n) exceeds the frame") }
                var hbs: [CoalescedHeartbeat] = []
                hbs.reserveCapacity(n)
                for _ in 0..<n {
                    let shard = try r.u32()
                    let kind = try r.u8()
                    guard kind <= 1 else { throw PeerWireError(description: "unknown heartbeat kind \(kind)") }
                    hbs.append(CoalescedHeartbeat(shard: shard, isResponse: kind == 1, term: try r.u64(), commit: try r.u64(), context: try r.u64()))
                }
                frame = .heartbeats(hbs)
            case 8, 13:
                var c = PeerConfig(shardCount: try r.u32(), dimension: try r.u32(), walFormat: try r.u32(),
                                   snapshotFormat: try r.u32(), entryFormat: try r.u32())
                // Kind 13 (version 9) adds the replication factor (an older peer sends kind 8, without it).
                if kind == 13 {
                    c.replication = try r.u32()
                    guard c.replication != 0 else { throw PeerWireError(description: "a configuration with replication factor 0") }
                }
                frame = .config(c)
            case 9:
                frame = .draining
            case 10:
                let id = try decodeStreamID(&r), total = try r.u64()
                let m = try decodeMessage(&r)
                // The message of a stream: a snapshot of that very image, its bytes left out.
                guard m.type == .snapshot, let s = m.snapshot, s.data.isEmpty, s.metadata.index == id.index, s.metadata.term == id.term else {
                    throw PeerWireError(description: "a snapshot stream's message is not the snapshot it names")
                }
                frame = .snapshotBegin(id, message: m, total: total)
            case 11:
                let id = try decodeStreamID(&r), offset = try r.u64()
                frame = .snapshotChunk(id, offset: offset, bytes: try r.bytes(Int(try r.u32())))
            case 12:
                frame = .snapshotAck(try decodeStreamID(&r), received: try r.u64())
            case let k:
                throw PeerWireError(description: "unknown frame kind \(k)")
            }
            guard r.remaining == 0 else { throw PeerWireError(description: "\(r.remaining) trailing bytes") }
            return frame
        } catch let e as PeerWireError {
            throw e
        } catch {
            throw PeerWireError(description: "truncated frame")
        }
    }

    private static func decodeMessage(_ r: inout ByteReader) throws -> Message {
        let t = try r.u8()
        guard let type = MessageType(rawValue: t) else { throw PeerWireError(description: "unknown message type \(t)") }
        var m = Message(type: type, to: try r.u64(), from: try r.u64(), term: try r.u64(), logTerm: try r.u64(),
                        index: try r.u64(), commit: try r.u64())
        m.reject = try readFlag(&r, "reject")
        m.rejectHint = try r.u64()
        m.context = try r.u64()
        let n = Int(try r.u32())
        guard n <= r.remaining / 21 else { throw PeerWireError(description: "entry count \(n) exceeds the frame") }
        m.entries.reserveCapacity(n)
        for _ in 0..<n {
            let term = try r.u64(), index = try r.u64(), k = try r.u8()
            guard let kind = EntryKind(rawValue: k) else { throw PeerWireError(description: "unknown entry kind \(k)") }
            m.entries.append(Entry(term: term, index: index, kind: kind, data: try r.bytes(Int(try r.u32()))))
        }
        if try readFlag(&r, "snapshot") {
            let index = try r.u64(), term = try r.u64()
            let voters = try readMembers(&r, "voters")
            let learners = try readMembers(&r, "learners")
            guard Set(voters).isDisjoint(with: learners) else { throw PeerWireError(description: "a node both voter and learner") }
            let data = try r.bytes(Int(try r.u32()))
            m.snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term, confState: ConfState(voters: voters, learners: learners)), data: data)
        }
        return m
    }
}

private func writeString(_ s: String, _ w: inout ByteWriter) {
    let b = Array(s.utf8)
    w.u32(UInt32(b.count)); w.raw(b)
}

private func readString(_ r: inout ByteReader) throws -> String {
    let n = Int(try r.u32())
    guard n <= 1 << 16 else { throw PeerWireError(description: "string of \(n) bytes") }
    guard let s = String(validating: try r.bytes(n), as: UTF8.self) else { throw PeerWireError(description: "a string that is not UTF-8") }
    return s
}

/// A membership list as `ConfState` keeps it: at most 1,024 real node ids, strictly ascending.
private func readMembers(_ r: inout ByteReader, _ what: String) throws -> [NodeID] {
    let n = Int(try r.u32())
    guard n <= 1024 else { throw PeerWireError(description: "\(n) \(what)") }
    var out: [NodeID] = []
    for _ in 0..<n {
        let v = try r.u64()
        guard v != noNode, out.last.map({ $0 < v }) ?? true else { throw PeerWireError(description: "\(what) not ascending node ids") }
        out.append(v)
    }
    return out
}

/// A boolean byte: 0 or 1, nothing else (every decoded frame re-encodes to the bytes it came from).
private func readFlag(_ r: inout ByteReader, _ what: String) throws -> Bool {
    switch try r.u8() {
    case 0: return false
    case 1: return true
    case let b: throw PeerWireError(description: "\(what) flag \(b)")
    }
}

/// Splits a byte stream into length-prefixed frames (the prefix counts the bytes after it). A declared length
/// over `maxFrame` is a protocol violation: the stream cannot be trusted after it.
package struct LengthPrefixedFrames {
    private var buffer: [UInt8] = []
    private var start = 0
    package let maxFrame: Int

    package init(maxFrame: Int) { self.maxFrame = maxFrame }

    package mutating func append(_ bytes: [UInt8]) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Calls `body` with each complete frame's bytes (without the prefix), in order.
    package mutating func drain(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let limit = maxFrame
        try drain(limit: { limit }, body)
    }

    /// Like `drain(_:)`, with the limit asked again before each frame (a link raises it once its handshake is
    /// accepted, possibly between two frames of one read). Never more than `maxFrame`.
    package mutating func drain(limit: () -> Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while buffer.count - start >= 4 {
            let len = Int(UInt32(buffer[start]) | UInt32(buffer[start + 1]) << 8 | UInt32(buffer[start + 2]) << 16 | UInt32(buffer[start + 3]) << 24)
            let cap = min(limit(), maxFrame)
            guard len <= cap else { throw PeerWireError(description: "frame of \(len) bytes exceeds the limit of \(cap)") }
            guard buffer.count - start - 4 >= len else { break }
            let s = start + 4
            start = s + len
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[s..<(s + len)])) }
        }
        if start > 0 && start > (1 << 20) {
            buffer.removeFirst(start)
            start = 0
        }
    }
}
