/// Appends little-endian values to a growing byte buffer (the encoding of WAL records and shard commands;
/// no per-value allocation).
public struct ByteWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u16(_ v: UInt16) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    /// A big-endian UInt64 (the halves of a concept id).
    public mutating func u64BigEndian(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Overwrites 4 bytes at `offset` (to patch a length or checksum after the body is known).
    public mutating func patchU32(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<4 { bytes[offset + i] = src[i] }
        }
    }
}

/// Reads little-endian values from a byte range; every read is bounds-checked and throws on truncation.
public struct ByteReader {
    public let buffer: UnsafeRawBufferPointer
    public var offset: Int
    public let end: Int

    public init(_ buffer: UnsafeRawBufferPointer, from: Int = 0, to end: Int? = nil) {
        self.buffer = buffer
        self.offset = from
        self.end = end ?? buffer.count
    }

    public struct Truncated: Error {}

    public var remaining: Int { end - offset }

    public mutating func u8() throws(Truncated) -> UInt8 {
        guard remaining >= 1 else { throw Truncated() }
        defer { offset += 1 }
        return buffer[offset]
    }

    public mutating func u16() throws(Truncated) -> UInt16 {
        guard remaining >= 2 else { throw Truncated() }
        defer { offset += 2 }
        return UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    public mutating func u32() throws(Truncated) -> UInt32 {
        guard remaining >= 4 else { throw Truncated() }
        defer { offset += 4 }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    public mutating func u64() throws(Truncated) -> UInt64 {
        guard remaining >= 8 else { throw Truncated() }
        defer { offset += 8 }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A big-endian UInt64 (the halves of a concept id).
    public mutating func u64BigEndian() throws(Truncated) -> UInt64 {
        guard remaining >= 8 else { throw Truncated() }
        defer { offset += 8 }
        return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Steps over `n` bytes (bounds-checked like `bytes(_:)`, without copying them).
    public mutating func skip(_ n: Int) throws(Truncated) {
        guard n >= 0, remaining >= n else { throw Truncated() }
        offset += n
    }

    public mutating func bytes(_ n: Int) throws(Truncated) -> [UInt8] {
        guard n >= 0, remaining >= n else { throw Truncated() }
        defer { offset += n }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + n)]))
    }
}

extension ByteWriter {
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }
}

extension ByteReader {
    public mutating func f32() throws(Truncated) -> Float { Float(bitPattern: try u32()) }
}

extension ByteWriter {
    /// `vs` as consecutive little-endian f32s, in one copy (an embedding is 768+ of them).
    public mutating func f32s(_ vs: [Float]) {
        #if _endian(little)
        vs.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for v in vs { f32(v) }
        #endif
    }
}

extension ByteReader {
    /// `count` consecutive little-endian f32s, in one copy.
    public mutating func f32s(_ count: Int) throws(Truncated) -> [Float] {
        guard count >= 0, remaining >= count * 4 else { throw Truncated() }
        let start = offset
        offset += count * 4
        #if _endian(little)
        return [Float](unsafeUninitializedCapacity: count) { out, n in
            UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + count * 4)]))
            n = count
        }
        #else
        var r = ByteReader(buffer, from: start, to: start + count * 4)
        return (0..<count).map { _ in Float(bitPattern: UInt32(littleEndian: try! r.u32())) }
        #endif
    }
}
