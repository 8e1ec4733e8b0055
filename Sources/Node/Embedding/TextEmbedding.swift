import NodeCore
import Shard

/// Which texts a client operation needs embedded before it runs, and the operation with the vectors in place.
/// Pure: the node's driver asks the embedding service for `texts(for:)` and hands the answer to `filled`.
///
/// A concept written without an embedding whose content is UTF-8 text gets the embedding of that text (a put,
/// a batch's puts, a partial update that changes the content and gives no embedding); a search by `text`
/// gets the embedding of its text as its vector. Binary content (not UTF-8, or holding control bytes) and empty
/// content are stored without one, as before.
enum TextEmbedding {
    /// The texts `op` needs embedded, in the order `filled` consumes them (each cut to `maxBytes` on a character
    /// boundary); empty when it needs none.
    static func texts(for op: ClientOp, maxBytes: Int) -> [String] {
        var out: [String] = []
        func concept(_ c: Concept) { if c.embedding == nil, let t = text(c.content, maxBytes) { out.append(t) } }
        switch op {
        case .put(let c), .putIf(let c, _): concept(c)
        case .patch(_, let p, _):
            if p.embedding == nil, let content = p.content, let t = text(content, maxBytes) { out.append(t) }
        case .batch(let items):
            for case .put(let c) in items { concept(c) }
        case .search(_, let q, _):
            if let t = q.text { out.append(cut(t, maxBytes)) }
        default: break
        }
        return out
    }

    /// `op` with `vectors` (one per text of `texts(for:)`, same order) in place.
    static func filled(_ op: ClientOp, with vectors: [[Float]]) -> ClientOp {
        var next = vectors.makeIterator()
        func concept(_ c: Concept) -> Concept {
            guard c.embedding == nil, text(c.content, 1) != nil else { return c }
            var d = c
            d.embedding = next.next()
            return d
        }
        let result: ClientOp
        switch op {
        case .put(let c): result = .put(concept(c))
        case .putIf(let c, let condition): result = .putIf(concept(c), condition)
        case .patch(let id, var p, let condition):
            if p.embedding == nil, let content = p.content, text(content, 1) != nil { p.embedding = next.next() }
            result = .patch(id, p, condition)
        case .batch(let items):
            result = .batch(items.map { item in
                if case .put(let c) = item { return .put(concept(c)) }
                return item
            })
        case .search(let vector, var q, let consistency):
            guard q.text != nil, let v = next.next() else { return op }
            q.text = nil
            result = .search(vector: v, q, consistency)
            _ = vector
        default: result = op
        }
        precondition(next.next() == nil, "every embedding is used by the operation that asked for it")
        return result
    }

    /// `content` as text to embed: non-empty UTF-8 without control bytes (tab and line breaks aside), cut to
    /// `maxBytes`; nil for binary or empty content.
    private static func text(_ content: [UInt8], _ maxBytes: Int) -> String? {
        guard !content.isEmpty, !content.contains(where: { ($0 < 0x20 && $0 != 9 && $0 != 10 && $0 != 13) || $0 == 0x7F }),
              let s = String(validating: content, as: UTF8.self) else { return nil }
        return cut(s, maxBytes)
    }

    /// `s` cut to at most `maxBytes` UTF-8 bytes, on a character boundary.
    static func cut(_ s: String, _ maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var end = s.startIndex
        var bytes = 0
        for i in s.indices {
            let n = s[i].utf8.count
            if bytes + n > maxBytes { break }
            bytes += n
            end = s.index(after: i)
        }
        return String(s[..<end])
    }
}
