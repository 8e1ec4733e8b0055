import ArgumentParser

/// How a read command prints its answer: `json` (one line, keys sorted — what scripts parse) or `table` (aligned
/// columns for a terminal).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, table
}

/// Aligned columns under a header row, two spaces between columns: numbers right-aligned (unless
/// `rightAlignNumbers` is false: a field/value listing), text left-aligned.
func renderTable(_ headers: [String], _ rows: [[String]], rightAlignNumbers: Bool = true) -> String {
    var widths = headers.map(\.count)
    for r in rows {
        precondition(r.count == headers.count, "a table row has one cell per column")
        for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) }
    }
    func isNumber(_ s: String) -> Bool { !s.isEmpty && Double(s) != nil }
    func line(_ cells: [String], header: Bool) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return !header && rightAlignNumbers && isNumber(c) ? pad + c : c + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    return ([line(headers, header: true)] + rows.map { line($0, header: false) }).joined(separator: "\n")
}
