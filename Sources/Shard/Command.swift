import Codec

/// One mutation of a shard, as replicated through its Raft log.
public enum ShardCommand: Sendable, Equatable {
    /// Create or replace a concept (its versions are set from the log index when applied).
    case putConcept(Concept)
    /// Delete a concept and the edges stored with it on this shard.
    case deleteConcept(ConceptID)
    /// Store one side of an association: `owner` is the source (outgoing) or the target (incoming).
    case putEdge(EdgeDirection, owner: ConceptID, Edge)
    case deleteEdge(EdgeDirection, owner: ConceptID, other: ConceptID, type: AssociationType)
    /// Up to `ShardLimits.maxBatch` commands applied all or nothing (no nested batches).
    case batch([ShardCommand])
    /// Create or replace a concept only if `condition` holds now (compare-and-set); otherwise rejected with
    /// `Rejection.preconditionFailed` and nothing changes.
    case putConceptIf(Concept, PutCondition)

    // Two-phase commit (driven by `Txn2PC`). Every one is idempotent: applying it again changes nothing.
    /// On the record shard: create the pending record holding every part, and prepare this shard's own part.
    case txnBegin(TxnID, recordShard: Int, parts: [TxnPart])
    /// On a participant: validate its part and hold it as an intent, locking what it touches.
    case txnPrepare(TxnID, recordShard: Int, commands: [ShardCommand])
    /// On the record shard: the decision. The first one written wins; later ones report it unchanged.
    case txnDecide(TxnID, commit: Bool, reason: String)
    /// On a participant: apply (commit) or discard (abort) these transactions' intents and release their
    /// locks (one entry for every transaction a coordinator resolved the same way in one loop turn).
    case txnResolve([TxnID], commit: Bool)
    /// On the record shard: drop decided records every participant has resolved.
    case txnForget([TxnID])

    // Backup fences (driven by `NodeCore+Backup`): while a shard holds one, it begins no cross-shard
    // transaction, so an online backup can wait for the ones already begun and then find none half done.
    /// Raise fence `id`. A leader that has held it for `ttlTicks` of its own ticks lifts it (a backup whose
    /// taker died never pauses cross-shard writes for longer than that).
    case backupFence(id: UInt64, ttlTicks: UInt32)
    /// Lift fence `id` (a no-op if it is not raised).
    case liftBackupFence(id: UInt64)

    // Graph integrity (release 0.2, wire 6: proposed only while every connected peer reads them).
    /// A guard that changes nothing: refused (`Rejection.conflict`) unless `owner` exists and the edges stored
    /// with it on this shard are exactly `outgoing` and `incoming`, as (other end, type) — as of before the
    /// batch or part holding it. A cascading delete reads a concept's edges, then deletes it and every twin of
    /// them in one transaction whose own-shard part starts with this guard: an edge that appeared or vanished
    /// in between aborts it instead of leaving a dangling twin.
    case expectEdges(owner: ConceptID, outgoing: [EdgeRef], incoming: [EdgeRef])
    /// Changes only the given fields of an existing concept (refused "not found" when there is none), if
    /// `condition` (content or version; never `absent`) holds — atomically at apply, so no concurrent write is
    /// lost between a read and the write. Release 0.2, wire 6, like the two below.
    case patchConcept(ConceptID, ConceptPatch, PutCondition?)
    /// Removes one stored edge record if it is there; never refused for a missing edge or owner (an edge whose
    /// other end is already gone — left dangling by an older release — can still be removed).
    case dropEdge(EdgeDirection, owner: ConceptID, other: ConceptID, type: AssociationType)

    /// Whether this is a plain data command (allowed inside a batch or a transaction part).
    public var isPlain: Bool {
        switch self {
        case .putConcept, .deleteConcept, .putEdge, .deleteEdge, .putConceptIf, .expectEdges, .dropEdge: return true
        default: return false
        }
    }
}

/// A command with the client identity that makes retries idempotent: a shard applies each
/// (clientID, sequence) at most once and answers a retry with the first outcome.
///
/// A client may have many requests in flight at once (sequences arrive in any order). `ackedBelow` is the
/// client's promise that it holds an answer for every sequence below it and will never retry them, which lets
/// the shard forget those outcomes: the remembered outcomes per client are only the ones still in flight.
public struct ShardRequest: Sendable, Equatable {
    public var clientID: UInt64
    public var sequence: UInt64
    public var ackedBelow: UInt64
    public var command: ShardCommand

    public init(clientID: UInt64, sequence: UInt64, ackedBelow: UInt64 = 0, command: ShardCommand) {
        self.clientID = clientID
        self.sequence = sequence
        self.ackedBelow = ackedBelow
        self.command = command
    }

    /// Log-entry encoding version. A replica refuses entries of any version it does not know rather than
    /// skipping them. Version 2 added `ackedBelow` (no version-1 log was ever released); version 3 added
    /// conditional puts and the transaction commands; tags 12 and 13 (backup fences, release 0.2) came
    /// later within version 3: a 0.1 node refuses them as an unknown command, so backups are refused while
    /// such a node is connected. Version 2 entries still decode (a rolling upgrade
    /// replays an older node's log); a version-2 node refuses version 3 (it stops rather than skip).
    public static let version: UInt8 = 3

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(ShardRequest.version)
        w.u64(clientID)
        w.u64(sequence)
        w.u64(ackedBelow)
        ShardRequest.encode(command, into: &w)
        return w.bytes
    }

    static func encode(_ c: ShardCommand, into w: inout ByteWriter) {
        switch c {
        case .putConcept(let k):
            w.u8(1)
            w.conceptID(k.id)
            w.u32(UInt32(k.content.count))
            w.raw(k.content)
            if let e = k.embedding {
                w.u8(1)
                w.u32(UInt32(e.count))
                w.f32s(e)
            } else {
                w.u8(0)
            }
            w.f32(k.strength)
            w.f32(k.confidence)
        case .deleteConcept(let id):
            w.u8(2)
            w.conceptID(id)
        case .putEdge(let dir, let owner, let e):
            w.u8(3)
            w.u8(dir.rawValue)
            w.conceptID(owner)
            w.conceptID(e.other)
            w.u8(e.type.rawValue)
            w.f32(e.confidence)
        case .patchConcept(let id, let p, let cond):
            w.u8(16)
            w.conceptID(id)
            let mask: UInt8 = (p.content != nil ? 1 : 0) | (p.embedding != nil ? 2 : 0) | (p.strength != nil ? 4 : 0) | (p.confidence != nil ? 8 : 0)
            w.u8(mask)
            if let b = p.content { w.u32(UInt32(b.count)); w.raw(b) }
            if let e = p.embedding { w.u32(UInt32(e.count)); w.f32s(e) }
            if let v = p.strength { w.f32(v) }
            if let v = p.confidence { w.f32(v) }
            switch cond {
            case nil: w.u8(0)
            case .content(let b)?: w.u8(1); w.u32(UInt32(b.count)); w.raw(b)
            case .version(let v)?: w.u8(2); w.u64(v)
            case .absent?: preconditionFailure("a patch changes an existing concept: no 'absent' condition")
            }
        case .deleteEdge(let dir, let owner, let other, let type), .dropEdge(let dir, let owner, let other, let type):
            // The same layout under two tags: 4 (the owner must exist) and 15 (never refused).
            if case .deleteEdge = c { w.u8(4) } else { w.u8(15) }
            w.u8(dir.rawValue)
            w.conceptID(owner)
            w.conceptID(other)
            w.u8(type.rawValue)
        case .batch(let cs):
            w.u8(5)
            commands(cs, &w)
        case .putConceptIf(let k, let cond):
            w.u8(6)
            encode(.putConcept(k), into: &w)
            switch cond {
            case .absent: w.u8(0)
            case .content(let b): w.u8(1); w.u32(UInt32(b.count)); w.raw(b)
            case .version(let v): w.u8(2); w.u64(v)
            }
        case .txnBegin(let id, let record, let parts):
            w.u8(7)
            txn(id, &w)
            w.u32(UInt32(record))
            w.u32(UInt32(parts.count))
            for p in parts { w.u32(UInt32(p.shard)); commands(p.commands, &w) }
        case .txnPrepare(let id, let record, let cs):
            w.u8(8)
            txn(id, &w)
            w.u32(UInt32(record))
            commands(cs, &w)
        case .txnDecide(let id, let commit, let reason):
            w.u8(9)
            txn(id, &w)
            w.u8(commit ? 1 : 0)
            let b = Array(reason.utf8)
            w.u32(UInt32(b.count)); w.raw(b)
        case .txnResolve(let ids, let commit):
            w.u8(10)
            w.u32(UInt32(ids.count))
            for id in ids { txn(id, &w) }
            w.u8(commit ? 1 : 0)
        case .txnForget(let ids):
            w.u8(11)
            w.u32(UInt32(ids.count))
            for id in ids { txn(id, &w) }
        case .backupFence(let id, let ttl):
            w.u8(12)
            w.u64(id)
            w.u32(ttl)
        case .liftBackupFence(let id):
            w.u8(13)
            w.u64(id)
        case .expectEdges(let owner, let outgoing, let incoming):
            w.u8(14)
            w.conceptID(owner)
            for refs in [outgoing, incoming] {
                w.u32(UInt32(refs.count))
                for e in refs { w.conceptID(e.other); w.u8(e.type.rawValue) }
            }
        }
    }

    static func commands(_ cs: [ShardCommand], _ w: inout ByteWriter) {
        w.u32(UInt32(cs.count))
        for c in cs { encode(c, into: &w) }
    }

    static func txn(_ id: TxnID, _ w: inout ByteWriter) {
        w.u64(id.client)
        w.u64(id.sequence)
    }

    /// Why a log entry could not be decoded. The replica must stop rather than skip the entry.
    public enum DecodeError: Error, Equatable, Sendable {
        case unsupportedVersion(UInt8)
        case unknownCommand(UInt8)
        case unknownValue(String)
        case truncated
        case trailingBytes(Int)
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ShardRequest {
        try decode(bytes, keepPayloads: true)
    }

    /// Refuses exactly what `decode` refuses, without copying out contents, embeddings and content conditions
    /// (the check of entries a peer sends, before they enter the log: they are decoded for real when applied).
    public static func check(_ bytes: [UInt8]) throws(DecodeError) {
        _ = try decode(bytes, keepPayloads: false)
    }

    /// `keepPayloads` false: contents, embeddings and content conditions are checked and stepped over, and the
    /// request returned holds empty ones in their place — only `check` uses it.
    private static func decode(_ bytes: [UInt8], keepPayloads: Bool) throws(DecodeError) -> ShardRequest {
        var result: Result<ShardRequest, DecodeError> = .failure(.truncated)
        bytes.withUnsafeBytes { buf in
            var r = ByteReader(buf)
            do throws(DecodeError) {
                let version = try read { try r.u8() }
                guard version == ShardRequest.version || version == 2 else { throw .unsupportedVersion(version) }
                let client = try read { try r.u64() }
                let seq = try read { try r.u64() }
                let acked = try read { try r.u64() }
                let command = try decodeCommand(&r, nested: false, keep: keepPayloads)
                guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
                result = .success(ShardRequest(clientID: client, sequence: seq, ackedBelow: acked, command: command))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Runs one bounds-checked read; running out of bytes is a truncated entry.
    private static func read<T>(_ f: () throws -> T) throws(DecodeError) -> T {
        do { return try f() } catch { throw .truncated }
    }

    private static func id(_ r: inout ByteReader) throws(DecodeError) -> ConceptID {
        try read { try r.conceptID() }
    }

    private static func direction(_ r: inout ByteReader) throws(DecodeError) -> EdgeDirection {
        let v = try read { try r.u8() }
        guard let d = EdgeDirection(rawValue: v) else { throw .unknownValue("edge direction \(v)") }
        return d
    }

    private static func type(_ r: inout ByteReader) throws(DecodeError) -> AssociationType {
        let v = try read { try r.u8() }
        guard let t = AssociationType(rawValue: v) else { throw .unknownValue("association type \(v)") }
        return t
    }

    /// A list of plain commands (a batch's or a transaction part's).
    static func commands(_ r: inout ByteReader, keep: Bool) throws(DecodeError) -> [ShardCommand] {
        let n = Int(try read { try r.u32() })
        guard n <= r.remaining else { throw .truncated }
        var cs: [ShardCommand] = []
        for _ in 0..<n { cs.append(try decodeCommand(&r, nested: true, keep: keep)) }
        return cs
    }

    static func txn(_ r: inout ByteReader) throws(DecodeError) -> TxnID {
        let client = try read { try r.u64() }
        let seq = try read { try r.u64() }
        guard client != 0 else { throw .unknownValue("transaction without a client") }
        return TxnID(client: client, sequence: seq)
    }

    private static func flag(_ r: inout ByteReader) throws(DecodeError) -> Bool {
        let v = try read { try r.u8() }
        guard v <= 1 else { throw .unknownValue("flag \(v)") }
        return v == 1
    }

    /// `inCondition`: decoding the put of a conditional put, which may only be a plain put (a condition inside a
    /// condition would nest without bound: a hostile entry of repeated tag 6 overflowed the stack — found by
    /// FuzzShardCommand).
    /// `n` payload bytes: copied out when `keep`, else only stepped over.
    private static func payload(_ r: inout ByteReader, _ n: Int, keep: Bool) throws(DecodeError) -> [UInt8] {
        if keep { return try read { try r.bytes(n) } }
        try read { try r.skip(n) }
        return []
    }

    private static func decodeCommand(_ r: inout ByteReader, nested: Bool, inCondition: Bool = false, keep: Bool) throws(DecodeError) -> ShardCommand {
        let tag = try read { try r.u8() }
        switch tag {
        case 1:
            let cid = try id(&r)
            let n = Int(try read { try r.u32() })
            let content = try payload(&r, n, keep: keep)
            var embedding: [Float]?
            let has = try read { try r.u8() }
            if has == 1 {
                let dim = Int(try read { try r.u32() })
                guard dim <= ShardLimits.maxDimension, dim * 4 <= r.remaining else { throw .truncated }
                if keep { embedding = try read { try r.f32s(dim) } } else { try read { try r.skip(dim * 4) }; embedding = [] }
            } else if has != 0 {
                throw .unknownValue("embedding flag \(has)")
            }
            let strength = try read { try r.f32() }
            let confidence = try read { try r.f32() }
            return .putConcept(Concept(id: cid, content: content, embedding: embedding, strength: strength, confidence: confidence))
        case 2:
            return .deleteConcept(try id(&r))
        case 3:
            let d = try direction(&r)
            let owner = try id(&r), other = try id(&r)
            let t = try type(&r)
            let c = try read { try r.f32() }
            return .putEdge(d, owner: owner, Edge(other: other, type: t, confidence: c))
        case 4:
            let d = try direction(&r)
            let owner = try id(&r), other = try id(&r)
            return .deleteEdge(d, owner: owner, other: other, type: try type(&r))
        case 5 where !nested:
            return .batch(try commands(&r, keep: keep))
        case 6 where !inCondition:
            guard case .putConcept(let k) = try decodeCommand(&r, nested: true, inCondition: true, keep: keep) else { throw .unknownValue("conditional put without a put") }
            let kind = try read { try r.u8() }
            switch kind {
            case 0: return .putConceptIf(k, .absent)
            case 1:
                let n = Int(try read { try r.u32() })
                return .putConceptIf(k, .content(try payload(&r, n, keep: keep)))
            case 2: return .putConceptIf(k, .version(try read { try r.u64() }))
            default: throw .unknownValue("put condition \(kind)")
            }
        case 7 where !nested:
            let id = try txn(&r)
            let record = Int(try read { try r.u32() })
            let n = Int(try read { try r.u32() })
            guard n <= r.remaining else { throw .truncated }
            var parts: [TxnPart] = []
            for _ in 0..<n {
                let shard = Int(try read { try r.u32() })
                parts.append(TxnPart(shard: shard, commands: try commands(&r, keep: keep)))
            }
            return .txnBegin(id, recordShard: record, parts: parts)
        case 8 where !nested:
            let id = try txn(&r)
            let record = Int(try read { try r.u32() })
            return .txnPrepare(id, recordShard: record, commands: try commands(&r, keep: keep))
        case 9 where !nested:
            let id = try txn(&r)
            let commit = try flag(&r)
            let n = Int(try read { try r.u32() })
            return .txnDecide(id, commit: commit, reason: String(decoding: try read { try r.bytes(n) }, as: UTF8.self))
        case 10 where !nested:
            let n = Int(try read { try r.u32() })
            guard n * 16 <= r.remaining else { throw .truncated }
            var ids: [TxnID] = []
            for _ in 0..<n { ids.append(try txn(&r)) }
            return .txnResolve(ids, commit: try flag(&r))
        case 11 where !nested:
            let n = Int(try read { try r.u32() })
            guard n * 16 <= r.remaining else { throw .truncated }
            var ids: [TxnID] = []
            for _ in 0..<n { ids.append(try txn(&r)) }
            return .txnForget(ids)
        case 12 where !nested:
            let id = try read { try r.u64() }
            return .backupFence(id: id, ttlTicks: try read { try r.u32() })
        case 13 where !nested:
            return .liftBackupFence(id: try read { try r.u64() })
        case 14 where !inCondition:
            let owner = try id(&r)
            var lists: [[EdgeRef]] = []
            for _ in 0..<2 {
                let n = Int(try read { try r.u32() })
                guard n * 17 <= r.remaining else { throw .truncated }
                var refs: [EdgeRef] = []
                refs.reserveCapacity(n)
                for _ in 0..<n { refs.append(EdgeRef(other: try id(&r), type: try type(&r))) }
                lists.append(refs)
            }
            return .expectEdges(owner: owner, outgoing: lists[0], incoming: lists[1])
        case 16 where !nested:
            let cid = try id(&r)
            let mask = try read { try r.u8() }
            guard mask & ~0x0F == 0 else { throw .unknownValue("patch field mask \(mask)") }
            var p = ConceptPatch()
            if mask & 1 != 0 { p.content = try payload(&r, Int(try read { try r.u32() }), keep: keep) }
            if mask & 2 != 0 {
                let dim = Int(try read { try r.u32() })
                guard dim <= ShardLimits.maxDimension, dim * 4 <= r.remaining else { throw .truncated }
                if keep { p.embedding = try read { try r.f32s(dim) } } else { try read { try r.skip(dim * 4) }; p.embedding = [] }
            }
            if mask & 4 != 0 { p.strength = try read { try r.f32() } }
            if mask & 8 != 0 { p.confidence = try read { try r.f32() } }
            let kind = try read { try r.u8() }
            switch kind {
            case 0: return .patchConcept(cid, p, nil)
            case 1: return .patchConcept(cid, p, .content(try payload(&r, Int(try read { try r.u32() }), keep: keep)))
            case 2: return .patchConcept(cid, p, .version(try read { try r.u64() }))
            default: throw .unknownValue("patch condition \(kind)")
            }
        case 15 where !inCondition:
            let d = try direction(&r)
            let owner = try id(&r), other = try id(&r)
            return .dropEdge(d, owner: owner, other: other, type: try type(&r))
        default:
            throw .unknownCommand(tag)
        }
    }
}
