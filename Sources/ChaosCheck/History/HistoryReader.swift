import Foundation

/// Parses a chaos history: JSON lines, one `HistoryEvent` per line.
///
/// Guarantees: returns the events in file order; blank lines (and a final line without `\n`) are accepted;
/// any other line that is not a valid event stops the parse with a `HistoryReadError` naming the 1-based line
/// number, what was wrong, and the start of the offending line.
public enum HistoryReader {
    /// Reads and parses the history file at `path`.
    public static func read(path: String) throws -> [HistoryEvent] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HistoryReadError(line: 0, message: "cannot read history file \(path): \(error)", text: "")
        }
        return try parse(data)
    }

    /// Parses JSON lines from memory.
    public static func parse(_ data: Data) throws -> [HistoryEvent] {
        let bytes = [UInt8](data)
        return try bytes.withUnsafeBufferPointer { try parse($0) }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> [HistoryEvent] {
        let decoder = JSONDecoder()
        var events = [HistoryEvent]()
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            var last = end
            if last > start && bytes[last - 1] == UInt8(ascii: "\r") { last -= 1 }
            if let event = EventLineParser.parse(bytes, start..<last) {
                events.append(event)
            } else {
                let line = bytes[start..<last]
                if line.contains(where: { !isJSONWhitespace($0) }) {
                    // Unusual or invalid: the decoder gives the event or the precise error.
                    do {
                        events.append(try decoder.decode(HistoryEvent.self, from: Data(line)))
                    } catch {
                        throw HistoryReadError(line: lineNumber, message: describe(error),
                                               text: String(decoding: line.prefix(200), as: UTF8.self))
                    }
                }
            }
            start = end + 1
        }
        return events
    }

    /// Parses JSON lines from a string.
    public static func parse(_ text: String) throws -> [HistoryEvent] {
        try parse(Data(text.utf8))
    }

    private static func isJSONWhitespace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r")
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? "" : " at \"\(p)\""
        }
        switch error {
        case .keyNotFound(let key, _):
            return "missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "wrong type\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "null\(path(context)) where \(type) is required"
        case .dataCorrupted(let context):
            return "invalid value\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// A history line that could not be parsed (`line` is 1-based; 0 when the file itself could not be read).
public struct HistoryReadError: Error, CustomStringConvertible, Sendable, Equatable {
    public let line: Int
    public let message: String
    /// The start of the offending line (at most 200 bytes).
    public let text: String

    public var description: String {
        line == 0 ? message : "history line \(line): \(message): \(text)"
    }
}
