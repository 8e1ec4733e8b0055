/// The operation a history event is about: a plain write, a read, a compare-and-set, a delete (a write that
/// makes the register absent), or a batch of puts and deletes on several keys applied all or nothing.
public enum OpFunction: String, Codable, Sendable, CaseIterable {
    case put, get, cas, delete, batch
}

/// What a history event records: the start of an operation (`invoke`) or its completion. `ok` means it took
/// effect, `fail` that it definitely did not, `info` that its outcome is unknown (it may take effect at any time
/// after its invocation, or never).
public enum EventType: String, Codable, Sendable, CaseIterable {
    case invoke, ok, fail, info
}

/// One write of a batch event: a `put` of `value` or a `delete` (`value` null) of `key`.
/// JSON: `{"f":"put"|"delete","key":string,"value":string|null}`.
public struct BatchItemRecord: Codable, Sendable, Hashable {
    public var f: OpFunction
    public var key: String
    public var value: String?

    public init(f: OpFunction, key: String, value: String? = nil) {
        self.f = f
        self.key = key
        self.value = value
    }

    /// A put of `value` to `key`.
    public static func put(_ key: String, _ value: String) -> BatchItemRecord { BatchItemRecord(f: .put, key: key, value: value) }

    /// A delete of `key`.
    public static func delete(_ key: String) -> BatchItemRecord { BatchItemRecord(f: .delete, key: key) }

    private enum CodingKeys: String, CodingKey { case f, key, value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        f = try c.decode(OpFunction.self, forKey: .f)
        key = try c.decode(String.self, forKey: .key)
        value = try c.decodeIfPresent(String.self, forKey: .value)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(f, forKey: .f)
        try c.encode(key, forKey: .key)
        if let value { try c.encode(value, forKey: .value) } else { try c.encodeNil(forKey: .value) }
    }
}

/// One line of a chaos history (JSON lines, one object per event):
/// `{"process":int,"type":"invoke"|"ok"|"fail"|"info","f":"put"|"get"|"cas"|"delete"|"batch","key":string,
/// "value":string|null,"expected":string|null[,"items":[item,…]],"time":int_nanoseconds}`.
///
/// Guarantees: encodes exactly those field names, in that order when written by `jsonLine` or `HistoryWriter`,
/// with `value` and `expected` always present (explicit `null` when absent) and `items` present exactly when it
/// is non-nil; decoding accepts a missing `value`/`expected`/`items` as `null`. `time` is nanoseconds on one
/// monotonic clock shared by every process.
/// For `put` and `cas`, `value` is the value written (on the invoke, and echoed on the completion); for a `get`,
/// `value` on the `ok` event is the value read (`null` = the key is absent). `expected` is the value a `cas`
/// compares against (`null` = "absent"). A `delete` writes "absent" (`value` null). A `batch` carries its
/// writes in `items` (`BatchItemRecord`: puts and deletes, on the invoke and echoed on the completion); its
/// `key` is the items' keys joined by `,` (for people: the items are what counts), `value`/`expected` null.
public struct HistoryEvent: Codable, Sendable, Hashable {
    public var process: Int
    public var type: EventType
    public var f: OpFunction
    public var key: String
    public var value: String?
    public var expected: String?
    /// The writes of a `batch` (nil for every other function).
    public var items: [BatchItemRecord]?
    public var time: Int64

    public init(process: Int, type: EventType, f: OpFunction, key: String, value: String? = nil,
                expected: String? = nil, items: [BatchItemRecord]? = nil, time: Int64) {
        self.process = process
        self.type = type
        self.f = f
        self.key = key
        self.value = value
        self.expected = expected
        self.items = items
        self.time = time
    }

    /// A `batch` event: its `key` is the items' keys joined by `,`.
    public static func batch(process: Int, _ type: EventType, items: [BatchItemRecord], time: Int64) -> HistoryEvent {
        HistoryEvent(process: process, type: type, f: .batch, key: batchKey(items), items: items, time: time)
    }

    /// The `key` of a batch event with these items.
    public static func batchKey(_ items: [BatchItemRecord]) -> String { items.map(\.key).joined(separator: ",") }

    private enum CodingKeys: String, CodingKey {
        case process, type, f, key, value, expected, items, time
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        process = try c.decode(Int.self, forKey: .process)
        type = try c.decode(EventType.self, forKey: .type)
        f = try c.decode(OpFunction.self, forKey: .f)
        key = try c.decode(String.self, forKey: .key)
        value = try c.decodeIfPresent(String.self, forKey: .value)
        expected = try c.decodeIfPresent(String.self, forKey: .expected)
        items = try c.decodeIfPresent([BatchItemRecord].self, forKey: .items)
        time = try c.decode(Int64.self, forKey: .time)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(process, forKey: .process)
        try c.encode(type, forKey: .type)
        try c.encode(f, forKey: .f)
        try c.encode(key, forKey: .key)
        // Explicit nulls: the format says value/expected are always present.
        if let value { try c.encode(value, forKey: .value) } else { try c.encodeNil(forKey: .value) }
        if let expected { try c.encode(expected, forKey: .expected) } else { try c.encodeNil(forKey: .expected) }
        try c.encodeIfPresent(items, forKey: .items)
        try c.encode(time, forKey: .time)
    }
}
