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

    /// Log-entry encoding version. A replica refuses entries of any other version rather than skipping them.
    /// Version 2 added `ackedBelow` (no version-1 log was ever released).
    public static let version: UInt8 = 2

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
            w.raw(k.id.bytes)
            w.u32(UInt32(k.content.count))
            w.raw(k.content)
            if let e = k.embedding {
                w.u8(1)
                w.u32(UInt32(e.count))
                for f in e { w.f32(f) }
            } else {
                w.u8(0)
            }
            w.f32(k.strength)
            w.f32(k.confidence)
        case .deleteConcept(let id):
            w.u8(2)
            w.raw(id.bytes)
        case .putEdge(let dir, let owner, let e):
            w.u8(3)
            w.u8(dir.rawValue)
            w.raw(owner.bytes)
            w.raw(e.other.bytes)
            w.u8(e.type.rawValue)
            w.f32(e.confidence)
        case .deleteEdge(let dir, let owner, let other, let type):
            w.u8(4)
            w.u8(dir.rawValue)
            w.raw(owner.bytes)
            w.raw(other.bytes)
            w.u8(type.rawValue)
        case .batch(let cs):
            w.u8(5)
            w.u32(UInt32(cs.count))
            for c in cs { encode(c, into: &w) }
        }
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
        var result: Result<ShardRequest, DecodeError> = .failure(.truncated)
        bytes.withUnsafeBytes { buf in
            var r = ByteReader(buf)
            do throws(DecodeError) {
                let version = try read { try r.u8() }
                guard version == ShardRequest.version else { throw .unsupportedVersion(version) }
                let client = try read { try r.u64() }
                let seq = try read { try r.u64() }
                let acked = try read { try r.u64() }
                let command = try decodeCommand(&r, nested: false)
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
        let b = try read { try r.bytes(16) }
        return ConceptID(bytes: b)!
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

    private static func decodeCommand(_ r: inout ByteReader, nested: Bool) throws(DecodeError) -> ShardCommand {
        let tag = try read { try r.u8() }
        switch tag {
        case 1:
            let cid = try id(&r)
            let n = Int(try read { try r.u32() })
            let content = try read { try r.bytes(n) }
            var embedding: [Float]?
            let has = try read { try r.u8() }
            if has == 1 {
                let dim = Int(try read { try r.u32() })
                guard dim <= ShardLimits.maxDimension, dim * 4 <= r.remaining else { throw .truncated }
                var e: [Float] = []
                e.reserveCapacity(dim)
                for _ in 0..<dim { e.append(try read { try r.f32() }) }
                embedding = e
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
            let n = Int(try read { try r.u32() })
            guard n <= r.remaining else { throw .truncated }
            var cs: [ShardCommand] = []
            for _ in 0..<n { cs.append(try decodeCommand(&r, nested: true)) }
            return .batch(cs)
        default:
            throw .unknownCommand(tag)
        }
    }
}
