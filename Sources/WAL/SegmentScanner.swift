import Codec
/// Reads one segment file's frames and decides what a bad frame means.
///
/// Rules (see docs/WAL.md): a frame that is incomplete or fails its checksum is a **torn tail** only if it is in
/// the last segment and no valid frame follows it anywhere in the file (a crash mid-write can only damage the
/// last write, because the next write starts only after the previous fsync). Anything else is **corruption**
/// and is refused with the file and byte offset.
///
/// A segment whose header records a preallocation chunk (`chunk > 0`) is extended, durably and before any data
/// is written there, in whole chunks: a crash never makes it shorter than its data or cuts a frame at the end
/// of the file. So in such a segment a frame that runs past the end of the file, or frames that end exactly at
/// the end of a file whose size is not a whole number of chunks, mean the file was **cut** (truncated): refused,
/// never trimmed as a torn write.
struct SegmentScanner {
    struct Frame {
        var offset: Int
        var seq: UInt64
        var payload: Range<Int>
    }

    struct Result {
        var frames: [Frame] = []
        /// Where the torn tail starts (the file should be truncated there), if there is one.
        var tornAt: Int?
        /// Where the frames end when only preallocated zeros follow them (the file keeps its size).
        var dataEnd: Int?
        var tornDetail = ""
        /// The preallocation chunk recorded in the segment header (0: a segment without that guarantee).
        var chunk = 0
    }

    static func scan(_ bytes: UnsafeRawBufferPointer, path: String, isLast: Bool) throws(WALError) -> Result {
        var result = Result()
        let h = WALFormat.segmentHeaderSize
        if bytes.count < h || !Array(bytes[0..<8]).elementsEqual(WALFormat.segmentMagic) {
            // A segment whose header never reached the disk (crash while creating it) holds nothing.
            if isLast && findValidFrame(bytes, after: 0) == nil {
                result.tornAt = 0
                result.tornDetail = "incomplete segment header"
                return result
            }
            throw .corruption(path: path, offset: 0, detail: "bad segment header")
        }
        let version = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == WALFormat.version else { throw .unsupportedVersion(path: path, version: version) }
        let chunk = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        guard chunk == 0 || chunk >= WALFormat.minChunk else {
            throw .corruption(path: path, offset: 12, detail: "segment header gives a preallocation chunk of \(chunk) bytes (at least \(WALFormat.minChunk), or 0)")
        }
        result.chunk = chunk
        var p = h
        while p < bytes.count {
            let parsed = parseFrame(bytes, at: p)
            switch parsed {
            case .frame(let f):
                result.frames.append(f)
                p = f.payload.upperBound
            case .bad(let detail), .cut(let detail):
                if isAllZero(bytes, from: p) {
                    // Preallocated space after the last frame: the end of the data, not damage. (A frame never
                    // starts with a zero byte; a lost frame in an older segment shows as a sequence gap.)
                    result.dataEnd = p
                    return result
                }
                if case .cut = parsed, chunk > 0 {
                    throw .corruption(path: path, offset: p, detail: detail + ": the file ends inside this frame, so it was cut short (a crash never makes a preallocated segment shorter than its data; this is not a torn write)")
                }
                if isLast, findValidFrame(bytes, after: p) == nil {
                    result.tornAt = p
                    result.tornDetail = detail
                    return result
                }
                throw .corruption(path: path, offset: p, detail: detail + (isLast ? "; valid frames follow it, so it is not a torn write" : " in a segment that is not the last"))
            }
        }
        if chunk > 0 && bytes.count % chunk != 0 {
            throw .corruption(path: path, offset: bytes.count, detail: "the segment is \(bytes.count) bytes, not a whole number of its \(chunk)-byte preallocation chunks, and its last frame ends exactly at the end of the file: it was cut after that frame (a crash never makes a preallocated segment shorter)")
        }
        return result
    }

    static func isAllZero(_ b: UnsafeRawBufferPointer, from p: Int) -> Bool {
        var q = p
        while q < b.count {
            if b[q] != 0 { return false }
            q += 1
        }
        return true
    }

    /// A frame, a frame that is damaged where it lies (`bad`), or one that runs past the end of the file (`cut`).
    enum Parsed { case frame(Frame), bad(String), cut(String) }

    static func parseFrame(_ b: UnsafeRawBufferPointer, at p: Int) -> Parsed {
        let hs = WALFormat.frameHeaderSize
        guard b.count - p >= hs else { return .cut("incomplete frame header (\(b.count - p) bytes)") }
        let magic = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: p, as: UInt32.self))
        guard magic == WALFormat.frameMagic else { return .bad("bad frame magic") }
        let len = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: p + 4, as: UInt32.self)))
        guard len <= WALFormat.maxFrameSize else { return .bad("frame length \(len) too large") }
        guard b.count - p - hs >= len else { return .cut("frame of \(len) bytes cut short at \(b.count - p - hs)") }
        let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self))
        let covered = UnsafeRawBufferPointer(rebasing: b[(p + 12)..<(p + hs + len)])
        guard CRC32C.checksum(covered) == crc else { return .bad("checksum mismatch") }
        let seq = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: p + 12, as: UInt64.self))
        return .frame(Frame(offset: p, seq: seq, payload: (p + hs)..<(p + hs + len)))
    }

    /// The offset of the first intact frame strictly after `p`, if any (byte-by-byte search for its magic).
    static func findValidFrame(_ b: UnsafeRawBufferPointer, after p: Int) -> Int? {
        var q = p + 1
        while q + WALFormat.frameHeaderSize <= b.count {
            if b[q] == 0x57, case .frame = parseFrame(b, at: q) { return q }   // 0x57: first byte of the magic
            q += 1
        }
        return nil
    }
}
