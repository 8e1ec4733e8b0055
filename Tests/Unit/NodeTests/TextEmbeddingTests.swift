@testable import Node
import NodeCore
import Shard
import XCTest

/// The embedding service's client, its pure parts: which texts an operation needs and where their vectors go,
/// the URL setting, and the checks on an answer (count, order, dimension, finiteness).
final class TextEmbeddingTests: XCTestCase {
    private let id = ConceptID(hi: 1, lo: 2)

    func testTextsComeFromConceptsWithoutEmbeddingsAndSearchesByTextInOrder() {
        let text = Concept(id: id, content: Array("a cat".utf8))
        let given = Concept(id: id, content: Array("has one".utf8), embedding: [1, 0])
        let binary = Concept(id: id, content: [0xFF, 0x00])
        let control = Concept(id: id, content: [0x41, 0x01])
        XCTAssertEqual(TextEmbedding.texts(for: .put(text), maxBytes: 100), ["a cat"])
        XCTAssertEqual(TextEmbedding.texts(for: .put(given), maxBytes: 100), [], "an embedding given is kept")
        XCTAssertEqual(TextEmbedding.texts(for: .put(binary), maxBytes: 100), [], "binary content is not text")
        XCTAssertEqual(TextEmbedding.texts(for: .put(control), maxBytes: 100), [], "control bytes: not text")
        XCTAssertEqual(TextEmbedding.texts(for: .put(Concept(id: id, content: [])), maxBytes: 100), [])
        let batch = ClientOp.batch([.put(text), .delete(id), .put(given), .put(Concept(id: id, content: Array("two".utf8)))])
        XCTAssertEqual(TextEmbedding.texts(for: batch, maxBytes: 100), ["a cat", "two"])
        guard case .batch(let items) = TextEmbedding.filled(batch, with: [[1, 1], [2, 2]]) else { return XCTFail() }
        let embeddings = items.map { item -> [Float]? in if case .put(let c) = item { return c.embedding }; return nil }
        XCTAssertEqual(embeddings, [[1, 1], nil, [1, 0], [2, 2]])

        let patch = ClientOp.patch(id, ConceptPatch(content: Array("new text".utf8)), nil)
        XCTAssertEqual(TextEmbedding.texts(for: patch, maxBytes: 100), ["new text"])
        XCTAssertEqual(TextEmbedding.texts(for: .patch(id, ConceptPatch(strength: 0.5), nil), maxBytes: 100), [], "content unchanged")
        guard case .patch(_, let p, _) = TextEmbedding.filled(patch, with: [[3, 3]]) else { return XCTFail() }
        XCTAssertEqual(p.embedding, [3, 3])

        let search = ClientOp.search(vector: [], VectorQuery(k: 3, text: "find me"), .stale)
        XCTAssertEqual(TextEmbedding.texts(for: search, maxBytes: 4), ["find"], "cut to the byte limit")
        guard case .search(let v, let q, _) = TextEmbedding.filled(search, with: [[4, 4]]) else { return XCTFail() }
        XCTAssertEqual(v, [4, 4])
        XCTAssertNil(q.text, "the core never sees the text")
        XCTAssertEqual(TextEmbedding.texts(for: .get(id, .stale), maxBytes: 100), [])
    }

    func testCutKeepsWholeCharacters() {
        XCTAssertEqual(TextEmbedding.cut("héllo", 2), "h", "é is two bytes: not split")
        XCTAssertEqual(TextEmbedding.cut("héllo", 3), "hé")
        XCTAssertEqual(TextEmbedding.cut("abc", 10), "abc")
    }

    func testServiceURLs() throws {
        let plain = try EmbeddingServiceConfig(url: "http://127.0.0.1:7300")
        XCTAssertEqual([plain.host, "\(plain.port)", plain.path], ["127.0.0.1", "7300", "/v1/embeddings"])
        XCTAssertEqual(try EmbeddingServiceConfig(url: "http://ollama.internal:11434/v1").path, "/v1/embeddings")
        XCTAssertEqual(try EmbeddingServiceConfig(url: "http://tei/embed/embeddings/").path, "/embed/embeddings")
        XCTAssertEqual(try EmbeddingServiceConfig(url: "http://tei").port, 80)
        XCTAssertEqual(try EmbeddingServiceConfig(url: "http://[::1]:8080").host, "::1")
        for bad in ["https://x:1", "ftp://x", "http://:80", "http://x:0", "http://x:99999", "http://x:1/a b", "http://x/?q=1", "http://[::1"] {
            XCTAssertThrowsError(try EmbeddingServiceConfig(url: bad), bad)
        }
        XCTAssertThrowsError(try EmbeddingServiceConfig(url: "http://x", timeoutSeconds: 0))
    }

    func testAnswersAreCheckedForCountOrderDimensionAndValues() {
        func decode(_ json: String, count: Int = 2, dimension: Int = 2) -> Result<[[Float]], EmbeddingFailure> {
            EmbeddingClient.decode(Array(json.utf8), count: count, dimension: dimension)
        }
        let ordered = decode(#"{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}]}"#)
        XCTAssertEqual(try ordered.get(), [[1, 2], [3, 4]], "placed by index")
        XCTAssertEqual(try decode(#"{"data":[{"embedding":[1,2]},{"embedding":[3,4]}]}"#).get(), [[1, 2], [3, 4]], "no index: in order")
        func why(_ r: Result<[[Float]], EmbeddingFailure>) -> String { if case .failure(let f) = r { return f.why }; return "accepted" }
        XCTAssertTrue(why(decode(#"{"data":[{"embedding":[1,2,3]},{"embedding":[3,4,5]}]}"#)).contains("3-dimensional embeddings; this cluster's dimension is 2"))
        XCTAssertTrue(why(decode(#"{"data":[{"embedding":[1,2]}]}"#)).contains("1 embeddings for 2 texts"))
        XCTAssertTrue(why(decode(#"{"data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}]}"#)).contains("repeated"))
        XCTAssertTrue(why(decode(#"{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,"x"]}]}"#)).contains("not a finite number"))
        XCTAssertTrue(why(decode(#"{"data":[{"embedding":"AAAA"},{"embedding":[1,2]}]}"#)).contains("not an array"))
        XCTAssertTrue(why(decode(#"[1,2]"#)).contains("not an embeddings object"))
        XCTAssertTrue(why(decode(#"{"data":[{"embedding":[1,1e39]},{"embedding":[1,2]}]}"#)).contains("finite"))
    }
}
