extension HistoryEvent {
    /// This event as one JSON line (without the trailing newline), fields in the documented order,
    /// `value`/`expected` as explicit `null` when absent, `items` only when present. Hand-written rather than
    /// `JSONEncoder` so recording stays cheap on the runner's hot path; `HistoryReader` reads it back.
    public var jsonLine: String {
        var s = "{\"process\":"
        s += String(process)
        s += ",\"type\":\""
        s += type.rawValue
        s += "\",\"f\":\""
        s += f.rawValue
        s += "\",\"key\":"
        appendJSONString(key, to: &s)
        s += ",\"value\":"
        appendJSONValue(value, to: &s)
        s += ",\"expected\":"
        appendJSONValue(expected, to: &s)
        if let items {
            s += ",\"items\":["
            for (i, item) in items.enumerated() {
                s += i == 0 ? "{\"f\":\"" : ",{\"f\":\""
                s += item.f.rawValue
                s += "\",\"key\":"
                appendJSONString(item.key, to: &s)
                s += ",\"value\":"
                appendJSONValue(item.value, to: &s)
                s += "}"
            }
            s += "]"
        }
        s += ",\"time\":"
        s += String(time)
        s += "}"
        return s
    }
}

private func appendJSONValue(_ value: String?, to s: inout String) {
    if let value { appendJSONString(value, to: &s) } else { s += "null" }
}

/// RFC 8259 string escaping: quote, backslash and the C0 control characters; everything else verbatim (UTF-8).
func appendJSONString(_ value: String, to s: inout String) {
    s += "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": s += "\\\""
        case "\\": s += "\\\\"
        case "\n": s += "\\n"
        case "\r": s += "\\r"
        case "\t": s += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            s += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: s.unicodeScalars.append(scalar)
        }
    }
    s += "\""
}
