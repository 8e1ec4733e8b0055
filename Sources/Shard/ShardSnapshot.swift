import Codec

/// Why a shard snapshot could not be read. Nothing is loaded from a snapshot that fails any check.
public enum ShardSnapshotError: Error, Equatable, Sendable {
    case notASnapshot
    case unsupportedVersion(UInt32)
    case checksumMismatch
    case truncated
    case invalid(String)
}

/// The shard's state-machine image — what the seeds call `storage.dat` — as bytes for a Raft snapshot.
///
/// Layout (little-endian): `"SUTRASHD"`, version u32, dimension u32, lastApplied u64, then concepts, out-edges,
/// in-edges, client sessions, (version 3) transaction records, intents and recently resolved transactions, and
/// (version 4) the raised backup fences, each as a count followed by records sorted by key, and a CRC32C of
/// everything before it. Version 4 is written only while a backup fence is raised (for seconds), so a
/// directory stays readable by a release that knows version 3 at every other moment; versions 2 (no
/// transaction tables) and 3 still load. Sorting makes the bytes a function of the state alone, so replicas at the same index produce
/// identical snapshots. (The HNSW index will be saved beside it, not inside.)
extension ShardState {
    static let snapshotMagic: [UInt8] = Array("SUTRASHD".utf8)
    /// The version written when no backup fence is raised (what a data directory's identity records).
    public static let snapshotVersion: UInt32 = 3
    /// The version written while a backup fence is raised: version 3 and the fences.
    public static let fencedSnapshotVersion: UInt32 = 4

    public func snapshotData() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + concepts.count * 160)
        w.raw(ShardState.snapshotMagic)
        w.u32(backupFences.isEmpty ? ShardState.snapshotVersion : ShardState.fencedSnapshotVersion)
        w.u32(UInt32(limits.dimension))
        w.u64(lastApplied)
        w.u64(UInt64(concepts.count))
        for id in concepts.keys.sorted() { w.concept(concepts[id]!, versions: true) }
        for table in [outEdges, inEdges] {
            w.u64(UInt64(table.count))
            for owner in table.keys.sorted() { w.edges(of: owner, table[owner]!) }
        }
        w.u64(UInt64(sessions.count))
        for client in sessions.keys.sorted() {
            let s = sessions[client]!
            w.u64(client); w.u64(s.ackedBelow); w.u32(UInt32(s.results.count))
            for seq in s.results.keys.sorted() {
                w.u64(seq)
                switch s.results[seq]! {
                case .applied(let v): w.u8(0); w.u64(v)
                case .rejected(let why):
                    let b = Array(why.utf8)
                    w.u8(1); w.u32(UInt32(b.count)); w.raw(b)
                case .pending:
                    preconditionFailure("a pending outcome is never remembered")
                }
            }
        }
        writeTxns(&w)
        if !backupFences.isEmpty {
            w.u32(UInt32(backupFences.count))
            for id in backupFences.keys.sorted() { w.u64(id); w.u32(backupFences[id]!) }
        }
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Rebuilds a shard from `snapshotData()`'s bytes. The cluster's dimension must match the snapshot's.
    public static func restore(from bytes: [UInt8], limits: ShardLimits) throws(ShardSnapshotError) -> ShardState {
        let r: Result<ShardState, ShardSnapshotError> = bytes.withUnsafeBytes { buf in
            do throws(ShardSnapshotError) { return .success(try restore(from: buf, limits: limits)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// Rebuilds a shard from an image wherever it is (a mapped file: nothing of it copied to the heap but the state).
    public static func restore(from buf: UnsafeRawBufferPointer, limits: ShardLimits) throws(ShardSnapshotError) -> ShardState {
        guard buf.count >= 8 + 4 + 4, Array(buf[0..<8]) == snapshotMagic else { throw .notASnapshot }
        var result: Result<ShardState, ShardSnapshotError> = .failure(.truncated)
        ({ () -> Void in
            var r = ByteReader(buf, from: 8, to: buf.count - 4)
            do {
                let version = try r.u32()
                guard (2...fencedSnapshotVersion).contains(version) else { result = .failure(.unsupportedVersion(version)); return }
                let stored = UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: buf.count - 4, as: UInt32.self))
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<(buf.count - 4)])) == stored else {
                    result = .failure(.checksumMismatch); return
                }
                let dim = Int(try r.u32())
                guard dim == limits.dimension else {
                    result = .failure(.invalid("snapshot dimension \(dim), cluster dimension \(limits.dimension)")); return
                }
                let s = ShardState(limits: limits)
                s.lastApplied = try r.u64()
                let n = try r.u64()
                for _ in 0..<n {
                    let id = try r.conceptID()
                    let content = try r.bytes(Int(try r.u32()))
                    var embedding: [Float]?
                    if try r.u8() == 1 {
                        embedding = try r.f32s(dim)
                    }
                    s.concepts[id] = Concept(id: id, content: content, embedding: embedding, strength: try r.f32(),
                                             confidence: try r.f32(), createdAt: try r.u64(), updatedAt: try r.u64())
                }
                for direction in [EdgeDirection.outgoing, .incoming] {
                    let owners = try r.u64()
                    for _ in 0..<owners {
                        let owner = try r.conceptID()
                        let count = try r.u32()
                        var set = Set<Edge>()
                        for _ in 0..<count {
                            let other = try r.conceptID()
                            let t = try r.u8()
                            guard let type = AssociationType(rawValue: t) else { result = .failure(.invalid("association type \(t)")); return }
                            set.insert(Edge(other: other, type: type, confidence: try r.f32()))
                        }
                        if direction == .outgoing { s.outEdges[owner] = set } else { s.inEdges[owner] = set }
                    }
                }
                let clients = try r.u64()
                for _ in 0..<clients {
                    let client = try r.u64()
                    var session = ClientSession(ackedBelow: try r.u64())
                    let count = try r.u32()
                    for _ in 0..<count {
                        let seq = try r.u64()
                        let kind = try r.u8()
                        let outcome: ApplyResult = kind == 0
                            ? .applied(version: try r.u64())
                            : .rejected(String(decoding: try r.bytes(Int(try r.u32())), as: UTF8.self))
                        // One below the acknowledged could never be asked for again (a retry of it is refused).
                        if seq >= session.ackedBelow { session.results[seq] = outcome }
                    }
                    s.sessions[client] = session
                }
                if version >= 3 {
                    do throws(ShardRequest.DecodeError) { try s.readTxns(&r) } catch {
                        result = .failure(.invalid("transaction tables: \(error)")); return
                    }
                }
                if version >= 4 {
                    let n = try r.u32()
                    guard n >= 1, n <= ShardState.maxBackupFences else { result = .failure(.invalid("\(n) backup fences")); return }
                    for _ in 0..<n { s.backupFences[try r.u64()] = try r.u32() }
                }
                guard r.remaining == 0 else { result = .failure(.invalid("\(r.remaining) unexpected bytes")); return }
                result = .success(s)
            } catch {
                result = .failure(.truncated)
            }
        })()
        return try result.get()
    }
}

extension ShardState {
    func writeTxns(_ w: inout ByteWriter) {
        w.u64(UInt64(txns.records.count))
        for id in txns.records.keys.sorted() {
            let r = txns.records[id]!
            ShardRequest.txn(id, &w)
            w.u8(r.status.rawValue); w.u64(r.createdAt); w.u64(r.decidedAt)
            let b = Array(r.reason.utf8)
            w.u32(UInt32(b.count)); w.raw(b)
            w.u32(UInt32(r.parts.count))
            for p in r.parts { w.u32(UInt32(p.shard)); ShardRequest.commands(p.commands, &w) }
        }
        w.u64(UInt64(txns.intents.count))
        for id in txns.intents.keys.sorted() {
            let i = txns.intents[id]!
            ShardRequest.txn(id, &w)
            w.u32(UInt32(i.recordShard)); w.u64(i.preparedAt)
            ShardRequest.commands(i.commands, &w)
        }
        w.u64(UInt64(txns.finished.count))
        for id in txns.finished.keys.sorted() {
            ShardRequest.txn(id, &w)
            w.u64(txns.finished[id]!)
        }
    }

    func readTxns(_ r: inout ByteReader) throws(ShardRequest.DecodeError) {
        func read<T>(_ f: () throws -> T) throws(ShardRequest.DecodeError) -> T {
            do { return try f() } catch { throw .truncated }
        }
        for _ in 0..<(try read { try r.u64() }) {
            let id = try ShardRequest.txn(&r)
            let raw = try read { try r.u8() }
            guard let status = TxnStatus(rawValue: raw) else { throw .unknownValue("transaction status \(raw)") }
            let created = try read { try r.u64() }, decided = try read { try r.u64() }
            let n = Int(try read { try r.u32() })
            let reason = String(decoding: try read { try r.bytes(n) }, as: UTF8.self)
            var parts: [TxnPart] = []
            for _ in 0..<(try read { try r.u32() }) {
                let shard = Int(try read { try r.u32() })
                parts.append(TxnPart(shard: shard, commands: try ShardRequest.commands(&r, keep: true)))
            }
            txns.records[id] = TxnRecord(status: status, parts: parts, createdAt: created, decidedAt: decided, reason: reason)
        }
        for _ in 0..<(try read { try r.u64() }) {
            let id = try ShardRequest.txn(&r)
            let record = Int(try read { try r.u32() })
            let prepared = try read { try r.u64() }
            txns.intents[id] = TxnIntent(recordShard: record, commands: try ShardRequest.commands(&r, keep: true), preparedAt: prepared)
        }
        for _ in 0..<(try read { try r.u64() }) {
            let id = try ShardRequest.txn(&r)
            txns.finished[id] = try read { try r.u64() }
        }
        txns.relock()
    }
}

/// The canonical record layouts shared by the snapshot image and the content digest (`ShardDigest`), so the two
/// can never disagree on what a concept or an edge is.
extension ByteWriter {
    /// Id, content (u32 length), embedding (flag, then the cluster dimension's floats), strength, confidence,
    /// and with `versions` the creation and update indexes.
    mutating func concept(_ k: Concept, versions: Bool) {
        conceptID(k.id)
        u32(UInt32(k.content.count))
        raw(k.content)
        if let e = k.embedding {
            u8(1)
            f32s(e)
        } else {
            u8(0)
        }
        f32(k.strength); f32(k.confidence)
        if versions { u64(k.createdAt); u64(k.updatedAt) }
    }

    /// One owner's edge records, sorted by (other, type): owner, u32 count, then (other, type, confidence) each.
    /// Returns how many.
    @discardableResult
    mutating func edges(of owner: ConceptID, _ set: Set<Edge>) -> Int {
        let edges = set.sorted { ($0.other, $0.type.rawValue) < ($1.other, $1.type.rawValue) }
        conceptID(owner)
        u32(UInt32(edges.count))
        for e in edges { conceptID(e.other); u8(e.type.rawValue); f32(e.confidence) }
        return edges.count
    }
}
