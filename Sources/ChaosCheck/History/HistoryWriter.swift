import Foundation

/// Records a chaos history as JSON lines, from any number of tasks or threads at once.
///
/// Guarantees: every `append` becomes exactly one complete line (`HistoryEvent.jsonLine` + `\n`); lines from
/// concurrent callers never interleave, and their order in the output is the order in which `append` took the
/// lock. File output is buffered (`bufferBytes`) and reaches the file on a full buffer, `flush()` or `close()`;
/// a write error does not throw from `append` (the runner's tasks should not have to handle it) but is kept, and
/// the first one is thrown by the next `flush()`/`close()`. The in-memory form keeps the events themselves.
public final class HistoryWriter: Sendable {
    private enum Sink {
        case memory([HistoryEvent])
        case file(FileHandle, buffer: [UInt8], ownsHandle: Bool)
    }

    private struct State {
        var sink: Sink
        var count = 0
        var error: (any Error)?
        var closed = false
    }

    private let state: Guarded<State>
    private let bufferBytes: Int

    /// An in-memory writer: read the events back with `events` or the JSON lines with `data()`.
    public init() {
        state = Guarded(State(sink: .memory([])))
        bufferBytes = 0
    }

    /// A writer appending to `handle` (which the caller keeps open and closes, unless `closesHandle`).
    public init(handle: FileHandle, bufferBytes: Int = 64 << 10, closesHandle: Bool = false) {
        state = Guarded(State(sink: .file(handle, buffer: [], ownsHandle: closesHandle)))
        self.bufferBytes = max(0, bufferBytes)
    }

    /// A writer to a new file at `path` (created, or truncated if it exists); `close()` closes it.
    public convenience init(path: String, bufferBytes: Int = 64 << 10) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw HistoryWriterError(message: "cannot create history file \(path)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.init(handle: handle, bufferBytes: bufferBytes, closesHandle: true)
    }

    /// Records one event. Events appended after `close()` are dropped (and counted as an error).
    public func append(_ event: HistoryEvent) {
        state.withLock { s in
            guard !s.closed else {
                if s.error == nil { s.error = HistoryWriterError(message: "append after close") }
                return
            }
            s.count += 1
            switch s.sink {
            case .memory(var events):
                s.sink = .memory([])  // keep `events` uniquely referenced while appending
                events.append(event)
                s.sink = .memory(events)
            case .file(let handle, var buffer, let owns):
                s.sink = .file(handle, buffer: [], ownsHandle: owns)
                buffer.append(contentsOf: event.jsonLine.utf8)
                buffer.append(UInt8(ascii: "\n"))
                if buffer.count >= bufferBytes { Self.write(&buffer, to: handle, error: &s.error) }
                s.sink = .file(handle, buffer: buffer, ownsHandle: owns)
            }
        }
    }

    /// Records one event built from its fields.
    public func record(process: Int, _ type: EventType, _ f: OpFunction, key: String, value: String? = nil,
                       expected: String? = nil, time: Int64) {
        append(HistoryEvent(process: process, type: type, f: f, key: key, value: value, expected: expected, time: time))
    }

    /// Records one `batch` event (`HistoryEvent.batch`).
    public func recordBatch(process: Int, _ type: EventType, items: [BatchItemRecord], time: Int64) {
        append(.batch(process: process, type, items: items, time: time))
    }

    /// How many events have been appended.
    public var count: Int { state.withLock { $0.count } }

    /// The events recorded by an in-memory writer (empty for a file writer).
    public var events: [HistoryEvent] {
        state.withLock { s in
            if case .memory(let events) = s.sink { return events }
            return []
        }
    }

    /// The JSON lines recorded by an in-memory writer (empty for a file writer).
    public func data() -> Data {
        var bytes = [UInt8]()
        for event in events {
            bytes.append(contentsOf: event.jsonLine.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
        return Data(bytes)
    }

    /// Writes buffered lines to the file (no fsync); throws the first write error seen so far.
    public func flush() throws {
        try state.withLock { s in
            if case .file(let handle, var buffer, let owns) = s.sink {
                Self.write(&buffer, to: handle, error: &s.error)
                s.sink = .file(handle, buffer: buffer, ownsHandle: owns)
            }
            if let error = s.error { throw error }
        }
    }

    /// Flushes, closes the file if this writer owns it, and refuses further events.
    public func close() throws {
        try state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            if case .file(let handle, var buffer, let owns) = s.sink {
                Self.write(&buffer, to: handle, error: &s.error)
                if owns {
                    do { try handle.close() } catch { if s.error == nil { s.error = error } }
                }
                s.sink = .file(handle, buffer: [], ownsHandle: false)
            }
            if let error = s.error { throw error }
        }
    }

    private static func write(_ buffer: inout [UInt8], to handle: FileHandle, error firstError: inout (any Error)?) {
        guard !buffer.isEmpty else { return }
        do { try handle.write(contentsOf: buffer) } catch { if firstError == nil { firstError = error } }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A `HistoryWriter` failure: the file could not be created, a write failed, or an event came after `close()`.
public struct HistoryWriterError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
