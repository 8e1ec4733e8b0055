// Framing of the client protocol: every message is a 4-byte little-endian length N, then N bytes of a serialized
// `Sutra_V1_Request` (client → node) or `Sutra_V1_Response` (node → client). See proto/sutra/v1/client.proto.

/// The default limit on one frame's payload: 100 MiB, the node's default.
public let defaultMaxFrameSize = 100 << 20

/// Encodes one frame: the payload's length as 4 little-endian bytes, then the payload.
///
/// - Precondition: `payload.count` fits in 32 bits. Callers that take payloads from users check them against
///   their frame limit (≤ 100 MiB by default) before framing.
public func frame(_ payload: [UInt8]) -> [UInt8] {
    precondition(payload.count <= Int(UInt32.max), "a frame payload must fit in 32 bits")
    let n = UInt32(payload.count)
    var out = [UInt8]()
    out.reserveCapacity(4 + payload.count)
    out.append(UInt8(truncatingIfNeeded: n))
    out.append(UInt8(truncatingIfNeeded: n >> 8))
    out.append(UInt8(truncatingIfNeeded: n >> 16))
    out.append(UInt8(truncatingIfNeeded: n >> 24))
    out.append(contentsOf: payload)
    return out
}

/// Splits a byte stream into frame payloads. Pure: no I/O, no clock; feed it whatever the socket delivered, in
/// any split, and it yields each complete frame exactly once, in order.
///
/// A frame whose declared length exceeds `maxFrameSize` yields `.tooLarge(length)` as soon as its header is
/// seen; its payload is then discarded as it arrives (never buffered), and decoding carries on with the next
/// frame, so one oversize message does not cost the connection. Memory held is bounded by `maxFrameSize` plus
/// the bytes of one feed.
public struct FrameDecoder: Sendable {
    /// What one feed produces, in stream order.
    public enum Event: Equatable, Sendable {
        /// A complete frame's payload (possibly empty).
        case frame([UInt8])
        /// A frame declared `length` bytes, over the limit; its payload is being skipped.
        case tooLarge(Int)
    }

    /// The largest payload accepted, in bytes.
    public let maxFrameSize: Int

    private var buffer: [UInt8] = []
    /// Start of the unconsumed bytes in `buffer` (consumed bytes are dropped lazily, in bulk).
    private var start = 0
    /// Payload bytes of an oversize frame still to be discarded.
    private var skipping = 0

    /// - Parameter maxFrameSize: the largest payload accepted (default 100 MiB); must not be negative.
    public init(maxFrameSize: Int = defaultMaxFrameSize) {
        precondition(maxFrameSize >= 0, "maxFrameSize must not be negative")
        self.maxFrameSize = maxFrameSize
    }

    /// Bytes received but not yet part of a yielded frame (excluding bytes being skipped).
    public var bufferedByteCount: Int { buffer.count - start }

    /// Whether the decoder is discarding the payload of an oversize frame.
    public var isSkipping: Bool { skipping > 0 }

    /// Adds `bytes` and returns every event they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Event] {
        var events: [Event] = []
        var input = bytes[...]
        if skipping > 0 {
            let n = min(skipping, input.count)
            skipping -= n
            input = input.dropFirst(n)
        }
        if !input.isEmpty { buffer.append(contentsOf: input) }
        while true {
            if skipping > 0 {
                // Only reachable when an oversize header was parsed from `buffer` in this loop.
                let n = min(skipping, buffer.count - start)
                skipping -= n
                start += n
                if skipping > 0 { break }
            }
            guard buffer.count - start >= 4 else { break }
            let length = Int(buffer[start]) | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2]) << 16
                | Int(buffer[start + 3]) << 24
            if length > maxFrameSize {
                events.append(.tooLarge(length))
                start += 4
                skipping = length
                continue
            }
            guard buffer.count - start - 4 >= length else { break }
            events.append(.frame(Array(buffer[(start + 4)..<(start + 4 + length)])))
            start += 4 + length
        }
        compact()
        return events
    }

    /// Drops consumed bytes once they are at least half of the buffer (amortized O(1) per byte).
    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
        } else if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
    }
}
