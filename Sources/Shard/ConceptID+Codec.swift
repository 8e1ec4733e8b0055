import Codec

/// A concept id in the binary formats (log entries, snapshots, vector files): its 16 bytes, big-endian — the
/// same bytes as `ConceptID.bytes` — written and read without building an array.
extension ByteWriter {
    public mutating func conceptID(_ id: ConceptID) {
        u64BigEndian(id.hi)
        u64BigEndian(id.lo)
    }
}

extension ByteReader {
    public mutating func conceptID() throws(Truncated) -> ConceptID {
        let hi = try u64BigEndian()
        return ConceptID(hi: hi, lo: try u64BigEndian())
    }
}
