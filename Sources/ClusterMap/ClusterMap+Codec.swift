import Codec

/// Why bytes were refused as a cluster map or a change. Nothing is loaded from bytes that fail any check.
public enum ClusterMapDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAMap
    case unsupportedVersion(UInt32)
    case checksumMismatch
    case truncated
    case invalid(String)

    public var description: String {
        switch self {
        case .notAMap: "not a cluster map"
        case .unsupportedVersion(let v): "cluster map format \(v) is newer than this build reads (\(ClusterMap.formatVersion))"
        case .checksumMismatch: "cluster map checksum mismatch"
        case .truncated: "cluster map truncated"
        case .invalid(let why): "invalid cluster map: \(why)"
        }
    }
}

/// The map's bytes (the meta group's snapshot, what a node tells the SDK) and a change's bytes (a meta-group log
/// entry). Little-endian; strings as a u8 length and UTF-8; lists as a u8 or u16 count. Map layout:
/// `"SUTRAMAP"`, format u32, cluster id, shard count u16, replication u8, version u64, nodes (u16 count; id u64,
/// three addresses, state u8 — by id), shards (voters, learners as u8 count + u64s; move flag u8, then from
/// (flag u8 + u64), to u64, phase u8; leader hint u64), CRC32C of everything before it. Every count and length
/// is bounded by the map's limits before anything is allocated; a decoded map must pass `checkInvariants()`.
extension ClusterMap {
    static let magic: [UInt8] = Array("SUTRAMAP".utf8)
    /// The newest map format this build writes and reads.
    public static let formatVersion: UInt32 = 1

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + nodes.count * 64 + shards.count * 48)
        w.raw(ClusterMap.magic)
        w.u32(ClusterMap.formatVersion)
        ClusterMap.string(clusterID, &w)
        w.u16(UInt16(shardCount)); w.u8(UInt8(replication)); w.u64(version)
        w.u16(UInt16(nodes.count))
        for id in nodes.keys.sorted() { ClusterMap.node(nodes[id]!, &w) }
        for p in shards {
            ClusterMap.ids(p.voters, &w); ClusterMap.ids(p.learners, &w)
            if let m = p.move {
                w.u8(1)
                if let f = m.from { w.u8(1); w.u64(f) } else { w.u8(0) }
                w.u64(m.to); w.u8(m.phase.rawValue)
            } else {
                w.u8(0)
            }
            w.u64(p.leaderHint)
        }
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) -> Result<ClusterMap, ClusterMapDecodeError> {
        guard bytes.count >= magic.count + 8, Array(bytes[0..<magic.count]) == magic else { return .failure(.notAMap) }
        return bytes.withUnsafeBytes { buf -> Result<ClusterMap, ClusterMapDecodeError> in
            var r = ByteReader(buf, from: magic.count, to: buf.count - 4)
            do {
                let format = try r.u32()
                guard format == formatVersion else { return .failure(.unsupportedVersion(format)) }
                let stored = UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: buf.count - 4, as: UInt32.self))
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<(buf.count - 4)])) == stored else { return .failure(.checksumMismatch) }
                let clusterID = try string(&r, max: maxClusterIDBytes)
                let shardCount = Int(try r.u16()), replication = Int(try r.u8()), version = try r.u64()
                guard (1...maxShards).contains(shardCount) else { return .failure(.invalid("shard count \(shardCount)")) }
                let nodeCount = Int(try r.u16())
                guard nodeCount <= maxNodes else { return .failure(.invalid("\(nodeCount) nodes")) }
                var nodes: [UInt64: Node] = [:]
                for _ in 0..<nodeCount {
                    let n = try node(&r)
                    guard nodes[n.id] == nil else { return .failure(.invalid("node \(n.id) listed twice")) }
                    nodes[n.id] = n
                }
                var shards: [ShardPlacement] = []
                for _ in 0..<shardCount {
                    let voters = try ids(&r), learners = try ids(&r)
                    var move: Move?
                    if try flag(&r) {
                        let from: UInt64? = try flag(&r) ? try r.u64() : nil
                        let to = try r.u64()
                        let raw = try r.u8()
                        guard let phase = Move.Phase(rawValue: raw) else { return .failure(.invalid("move phase \(raw)")) }
                        move = Move(from: from, to: to, phase: phase)
                    }
                    var p = ShardPlacement(voters: voters, learners: learners, move: move, leaderHint: try r.u64())
                    // Keep the bytes' order so checkInvariants sees a list that was not sorted.
                    p.voters = voters; p.learners = learners
                    shards.append(p)
                }
                guard r.remaining == 0 else { return .failure(.invalid("\(r.remaining) unexpected bytes")) }
                let map = ClusterMap(clusterID: clusterID, shardCount: shardCount, replication: replication, version: version, nodes: nodes, shards: shards)
                if let why = map.checkInvariants() { return .failure(.invalid(why)) }
                return .success(map)
            } catch let e as ClusterMapDecodeError {
                return .failure(e)
            } catch {
                return .failure(.truncated)
            }
        }
    }

    // MARK: pieces

    static func string(_ s: String, _ w: inout ByteWriter) {
        let b = Array(s.utf8)
        precondition(b.count <= 255, "strings in the map are at most 255 bytes")
        w.u8(UInt8(b.count)); w.raw(b)
    }

    static func string(_ r: inout ByteReader, max: Int) throws -> String {
        let n = Int(try r.u8())
        guard n <= max else { throw ClusterMapDecodeError.invalid("a string of \(n) bytes (at most \(max))") }
        guard let s = String(validating: try r.bytes(n), as: UTF8.self) else { throw ClusterMapDecodeError.invalid("a string that is not UTF-8") }
        return s
    }

    static func node(_ n: Node, _ w: inout ByteWriter) {
        w.u64(n.id)
        string(n.peerAddress, &w); string(n.clientAddress, &w); string(n.httpAddress, &w)
        w.u8(n.state.rawValue)
    }

    static func node(_ r: inout ByteReader) throws -> Node {
        let id = try r.u64()
        let peer = try string(&r, max: maxAddressBytes), client = try string(&r, max: maxAddressBytes), http = try string(&r, max: maxAddressBytes)
        let raw = try r.u8()
        guard let state = NodeState(rawValue: raw) else { throw ClusterMapDecodeError.invalid("node state \(raw)") }
        let n = Node(id: id, peerAddress: peer, clientAddress: client, httpAddress: http, state: state)
        if let why = addressProblem(n) { throw ClusterMapDecodeError.invalid(why) }
        return n
    }

    static func ids(_ ids: [UInt64], _ w: inout ByteWriter) {
        precondition(ids.count <= maxNodes && ids.count <= 255)
        w.u8(UInt8(ids.count))
        for i in ids { w.u64(i) }
    }

    static func ids(_ r: inout ByteReader) throws -> [UInt64] {
        let n = Int(try r.u8())
        guard n <= maxReplication + 1 else { throw ClusterMapDecodeError.invalid("a replica list of \(n)") }
        return try (0..<n).map { _ in try r.u64() }
    }

    static func flag(_ r: inout ByteReader) throws -> Bool {
        switch try r.u8() {
        case 0: return false
        case 1: return true
        case let b: throw ClusterMapDecodeError.invalid("flag byte \(b)")
        }
    }
}

extension ClusterMapChange {
    /// Kind byte, then the fields (node ids u64, shards u16).
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        switch self {
        case .addNode(let n): w.u8(1); ClusterMap.node(n, &w)
        case .setNodeState(let id, let state): w.u8(2); w.u64(id); w.u8(state.rawValue)
        case .beginMove(let s, let from, let to):
            w.u8(3); w.u16(UInt16(s))
            if let from { w.u8(1); w.u64(from) } else { w.u8(0) }
            w.u64(to)
        case .promoteMove(let s): w.u8(4); w.u16(UInt16(s))
        case .finishMove(let s): w.u8(5); w.u16(UInt16(s))
        case .abortMove(let s): w.u8(6); w.u16(UInt16(s))
        case .removeReplica(let s, let n): w.u8(7); w.u16(UInt16(s)); w.u64(n)
        case .setLeaderHint(let s, let n): w.u8(8); w.u16(UInt16(s)); w.u64(n)
        case .create(let m):
            w.u8(10); w.raw(m.encode())
        case .setAddresses(let id, let peer, let client, let http):
            w.u8(9); w.u64(id)
            for a in [peer, client, http] {
                let b = Array(a.utf8.prefix(ClusterMap.maxAddressBytes))
                w.u8(UInt8(b.count)); w.raw(b)
            }
        }
        return w.bytes
    }

    /// The change these bytes hold, or why not (an unknown kind names itself: a newer release's change).
    public static func decode(_ bytes: [UInt8]) -> Result<ClusterMapChange, ClusterMapDecodeError> {
        bytes.withUnsafeBytes { buf -> Result<ClusterMapChange, ClusterMapDecodeError> in
            var r = ByteReader(buf)
            do {
                let change: ClusterMapChange
                switch try r.u8() {
                case 1: change = .addNode(try ClusterMap.node(&r))
                case 2:
                    let id = try r.u64(), raw = try r.u8()
                    guard let state = ClusterMap.NodeState(rawValue: raw) else { return .failure(.invalid("node state \(raw)")) }
                    change = .setNodeState(node: id, state)
                case 3:
                    let s = Int(try r.u16())
                    let from: UInt64? = try ClusterMap.flag(&r) ? try r.u64() : nil
                    change = .beginMove(shard: s, from: from, to: try r.u64())
                case 4: change = .promoteMove(shard: Int(try r.u16()))
                case 5: change = .finishMove(shard: Int(try r.u16()))
                case 6: change = .abortMove(shard: Int(try r.u16()))
                case 7: change = .removeReplica(shard: Int(try r.u16()), node: try r.u64())
                case 8: change = .setLeaderHint(shard: Int(try r.u16()), node: try r.u64())
                case 10:
                    let rest = try r.bytes(r.remaining)
                    switch ClusterMap.decode(rest) {
                    case .success(let m): change = .create(m)
                    case .failure(let e): return .failure(e)
                    }
                case 9:
                    let id = try r.u64()
                    let peer = try ClusterMap.string(&r, max: ClusterMap.maxAddressBytes)
                    let client = try ClusterMap.string(&r, max: ClusterMap.maxAddressBytes)
                    change = .setAddresses(node: id, peer: peer, client: client, http: try ClusterMap.string(&r, max: ClusterMap.maxAddressBytes))
                case let k: return .failure(.invalid("unknown change kind \(k) (written by a newer release?)"))
                }
                guard r.remaining == 0 else { return .failure(.invalid("\(r.remaining) unexpected bytes")) }
                return .success(change)
            } catch let e as ClusterMapDecodeError {
                return .failure(e)
            } catch {
                return .failure(.truncated)
            }
        }
    }
}
