import VectorIndex

/// What a vector search is asked for, beyond its query vector: how many, how hard to look, and which concepts
/// may be answers.
public struct VectorQuery: Sendable, Equatable {
    /// Answers wanted (1…1000).
    public var k: Int
    /// HNSW beam width; 0: the default for `k` (`SearchPolicy.defaultEf`). A larger value than the default is
    /// honoured; a smaller one is too (the caller trades recall for speed on purpose).
    public var ef: Int
    /// Compare the query with every (allowed) vector instead of walking the graph: recall 1, cost linear.
    public var exact: Bool
    /// Only concepts passing this filter are answers; nil: all.
    public var filter: SearchFilter?
    /// A text to search by instead of a vector: the node's front end embeds it through the embedding service
    /// before the search runs (the core never sees it set: a search still holding text is refused).
    public var text: String?

    public init(k: Int, ef: Int = 0, exact: Bool = false, filter: SearchFilter? = nil, text: String? = nil) {
        self.k = k
        self.ef = ef
        self.exact = exact
        self.filter = filter
        self.text = text
    }
}

extension SearchFilter {
    /// Whether `concept` (with `hasAssociation` telling whether it has an edge of a type) passes.
    public func admits(_ concept: Concept, hasAssociation: (AssociationType) -> Bool) -> Bool {
        if let m = minStrength, concept.strength < m { return false }
        if let m = minConfidence, concept.confidence < m { return false }
        if let t = associationType, !hasAssociation(t) { return false }
        return true
    }
}

/// How a search is answered: the choices that make the default right without tuning (issue 15 item 9).
///
/// Uniform random vectors are HNSW's hard case: at `ef` 64, recall@10 over 20,000 × 128-d was 0.48. So, as Qdrant
/// does with its `full_scan_threshold`, an index small enough to scan in about a millisecond is scanned exactly;
/// above that the beam width grows with k; a filter that passes few concepts scans those exactly instead of
/// walking a graph that is mostly rejections.
public enum SearchPolicy {
    /// Indexes of at most this many floats (live vectors × dimension: 10 MiB, e.g. 20,000 × 128-d or
    /// 3,333 × 768-d) are scanned exactly.
    public static let exactScanFloats = 2_560_000
    /// The default beam width for `k` answers.
    public static func defaultEf(k: Int) -> Int { max(defaultEfFloor, defaultEfPerAnswer * k) }
    public static let defaultEfFloor = 256
    public static let defaultEfPerAnswer = 16

    /// The method for a search over `live` vectors of `dimension` with beam `ef`, of which `passing` pass the
    /// filter (nil: no filter). A filtered graph walk holds `ef` passing vectors, so it reads about ef / (passing /
    /// live) of them and their neighbours (32 each at the base layer): when that is more than the passing ones
    /// themselves, scanning those is cheaper (and exact).
    public static func method(exact: Bool, live: Int, dimension: Int, passing: Int?, ef: Int = defaultEfFloor) -> SearchMethod {
        if exact { return .exact }
        let candidates = passing ?? live
        let (floats, overflow) = candidates.multipliedReportingOverflow(by: dimension)
        if !overflow && floats <= exactScanFloats { return .exact }
        guard let passing else { return .graph }
        let (square, o1) = passing.multipliedReportingOverflow(by: passing)
        let (walk, o2) = (32 * max(ef, 1)).multipliedReportingOverflow(by: live)
        if !o1 && !o2 && square <= walk { return .exact }
        return .filteredGraph
    }
}

/// The way one search was answered (counted in `sutra_vector_searches_total{method}`).
public enum SearchMethod: String, Sendable, CaseIterable {
    case exact, graph, filteredGraph = "filtered_graph"
}

extension ConceptVectors {
    /// The `query.k` nearest concepts to `vector` by cosine distance, nearest first, among those `admits` accepts
    /// (nil: every concept); `method` says how they were found. `admits` is the authoritative test of
    /// `query.filter`: the concepts passing are listed first — strength and confidence read from the attributes
    /// indexed with each vector, `admits` asked only past them when an association type is wanted (or for
    /// unknown attributes) — then either scanned exactly (only their vectors are read) or found by a graph walk
    /// that holds only them.
    /// `within` restricts the answers to the concepts it accepts whatever the filter (a node searching only
    /// some of the shards its index holds); `admits` decides what the filter's attributes here cannot.
    public func search(_ vector: [Float], _ query: VectorQuery, admits: ((ConceptID) -> Bool)? = nil,
                       within: ((ConceptID) -> Bool)? = nil) throws(VectorIndexError) -> (hits: [(id: ConceptID, distance: Float)], method: SearchMethod) {
        precondition(query.k > 0, "k is checked at the edge")
        guard let index, !labelOf.isEmpty else { return ([], .exact) }
        let live = labelOf.count
        let k = min(query.k, live)
        let ef = query.ef == 0 ? SearchPolicy.defaultEf(k: k) : max(query.ef, k)
        guard admits != nil || within != nil else {
            let method = SearchPolicy.method(exact: query.exact, live: live, dimension: dimension, passing: nil, ef: ef)
            let hits = method == .exact ? try index.exactSearch(vector, k: k) : try index.search(vector, k: k, ef: ef)
            return (mapped(hits), method)
        }
        let candidates = passing(query.filter ?? SearchFilter(), admits ?? { _ in true }, within: within)
        let method = SearchPolicy.method(exact: query.exact, live: live, dimension: dimension, passing: candidates.count, ef: ef)
        if method == .exact { return (mapped(try index.exactSearch(vector, k: k, among: candidates)), .exact) }
        var allowed = [Bool](repeating: false, count: Int(nextLabel))
        for label in candidates { allowed[Int(label)] = true }
        let hits = try index.search(vector, k: k, ef: ef) { label in label < allowed.count && allowed[Int(label)] }
        // The walk can run out of reachable passing vectors before k; the scan of the candidates cannot.
        if hits.count < min(k, candidates.count) { return (mapped(try index.exactSearch(vector, k: k, among: candidates)), .exact) }
        return (mapped(hits), method)
    }

    /// The labels of the indexed concepts passing `filter`, by one pass over the attributes; `admits` decides what
    /// they cannot (an association type, unknown attributes).
    func passing(_ filter: SearchFilter, _ admits: (ConceptID) -> Bool, within: ((ConceptID) -> Bool)? = nil) -> [UInt64] {
        var out: [UInt64] = []
        let byAttributes = filter.associationType == nil
        for label in 0..<nextLabel {
            if let within {
                guard let id = idOf[label], within(id) else { continue }
            }
            let a = attributes[Int(label)]
            if a.known {
                if let m = filter.minStrength, a.strength < m { continue }
                if let m = filter.minConfidence, a.confidence < m { continue }
                if byAttributes { out.append(label); continue }
            }
            if let id = idOf[label], admits(id) { out.append(label) }
        }
        return out
    }

    private func mapped(_ hits: [(label: UInt64, distance: Float)]) -> [(id: ConceptID, distance: Float)] {
        hits.compactMap { hit in idOf[hit.label].map { (id: $0, distance: hit.distance) } }
    }
}
