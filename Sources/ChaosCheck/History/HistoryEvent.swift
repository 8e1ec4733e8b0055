/// The operation a history event is about: a plain write, a read, or a compare-and-set.
public enum OpFunction: String, Codable, Sendable, CaseIterable {
    case put, get, cas
}

/// What a history event records: the start of an operation (`invoke`) or its completion. `ok` means it took
/// effect, `fail` that it definitely did not, `info` that its outcome is unknown (it may take effect at any time
/// after its invocation, or never).
public enum EventType: String, Codable, Sendable, CaseIterable {
    case invoke, ok, fail, info
}

/// One line of a chaos history (JSON lines, one object per event):
/// `{"process":int,"type":"invoke"|"ok"|"fail"|"info","f":"put"|"get"|"cas","key":string,
/// "value":string|null,"expected":string|null,"time":int_nanoseconds}`.
///
/// Guarantees: encodes exactly those field names, in that order when written by `jsonLine` or `HistoryWriter`,
/// with `value` and `expected` always present (explicit `null` when absent); decoding accepts a missing
/// `value`/`expected` as `null`. `time` is nanoseconds on one monotonic clock shared by every process.
/// For `put` and `cas`, `value` is the value written (on the invoke, and echoed on the completion); for a `get`,
/// `value` on the `ok` event is the value read (`null` = the key is absent). `expected` is the value a `cas`
/// compares against (`null` = "absent").
public struct HistoryEvent: Codable, Sendable, Hashable {
    public var process: Int
    public var type: EventType
    public var f: OpFunction
    public var key: String
    public var value: String?
    public var expected: String?
    public var time: Int64

    public init(process: Int, type: EventType, f: OpFunction, key: String, value: String? = nil,
                expected: String? = nil, time: Int64) {
        self.process = process
        self.type = type
        self.f = f
        self.key = key
        self.value = value
        self.expected = expected
        self.time = time
    }

    private enum CodingKeys: String, CodingKey {
        case process, type, f, key, value, expected, time
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        process = try c.decode(Int.self, forKey: .process)
        type = try c.decode(EventType.self, forKey: .type)
        f = try c.decode(OpFunction.self, forKey: .f)
        key = try c.decode(String.self, forKey: .key)
        value = try c.decodeIfPresent(String.self, forKey: .value)
        expected = try c.decodeIfPresent(String.self, forKey: .expected)
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
        try c.encode(time, forKey: .time)
    }
}
