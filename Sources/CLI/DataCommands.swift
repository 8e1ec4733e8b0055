import ArgumentParser
import Foundation
import SutraClient

/// Data commands through the SDK: each prints its answer as one line of JSON (scripts can parse it) — the read
/// commands as a table with `--output table` — and exits non-zero with the node's message when the request fails.
struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Write a concept.")
    @OptionGroup var target: SDKTarget
    @Option(help: "Concept id (32 hex digits); default: a random one.") var id: String?
    @Option(help: "Content (UTF-8 text).") var content: String = ""
    @Option(help: "Embedding: comma-separated numbers (the cluster's dimension).") var embedding: String?
    @Option(help: "Strength.") var strength: Float?
    @Option(help: "Confidence.") var confidence: Float?

    func run() async throws {
        let cid = try id.map(parseID) ?? ConceptID.random()
        let e = try embedding.map(parseVector)
        let v = try await withClient(target) {
            try await $0.put(NewConcept(id: cid, text: content, embedding: e, strength: strength, confidence: confidence))
        }
        printJSON(["id": cid.description, "version": v])
    }
}

struct PatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "patch", abstract: "Change only the given fields of a concept.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "Concept id (32 hex digits).") var id: String
    @Option(help: "New content (UTF-8 text).") var content: String?
    @Option(help: "New embedding: comma-separated numbers (the cluster's dimension).") var embedding: String?
    @Flag(help: "Remove the embedding.") var removeEmbedding = false
    @Option(help: "New strength, in [0, 1].") var strength: Float?
    @Option(help: "New confidence, in [0, 1].") var confidence: Float?
    @Option(help: "Only if the concept is at this version (its updated_version).") var ifVersion: UInt64?

    func run() async throws {
        let cid = try parseID(id)
        let e = try embedding.map(parseVector)
        let v = try await withClient(target) {
            try await $0.patch(cid, content: content.map { Array($0.utf8) }, embedding: e, removeEmbedding: removeEmbedding,
                               strength: strength, confidence: confidence, if: ifVersion.map { .version($0) })
        }
        printJSON(["id": cid.description, "version": v])
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Read a concept.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "Concept id (32 hex digits).") var id: String
    @Flag(help: "Read this node's replica (may lag) instead of a linearizable read.") var stale = false
    @Option(help: "json or table.") var output: OutputFormat = .json

    func run() async throws {
        let cid = try parseID(id)
        guard let c = try await withClient(target, { try await $0.get(cid, consistency: stale ? .stale : .linearizable) }) else {
            throw CLIError("concept \(cid) not found")
        }
        if output == .table {
            let e = c.embedding.map { "\($0.count) numbers: " + $0.prefix(4).map { "\($0)" }.joined(separator: ", ") + ($0.count > 4 ? ", …" : "") } ?? "none"
            print(renderTable(["field", "value"], [["id", c.id.description], ["content", c.text], ["strength", "\(c.strength)"],
                                                   ["confidence", "\(c.confidence)"], ["created_version", "\(c.createdVersion)"],
                                                   ["updated_version", "\(c.updatedVersion)"], ["embedding", e]], rightAlignNumbers: false))
            return
        }
        var o: [String: Any] = ["id": c.id.description, "content": c.text, "strength": Double(c.strength),
                                "confidence": Double(c.confidence), "created_version": c.createdVersion, "updated_version": c.updatedVersion]
        if let e = c.embedding { o["embedding"] = e.map { Double($0) } }
        printJSON(o)
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a concept.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "Concept id (32 hex digits).") var id: String

    func run() async throws {
        let cid = try parseID(id)
        printJSON(["version": try await withClient(target) { try await $0.delete(cid) }])
    }
}

/// `--type`'s value as an association type, or a clear refusal naming the allowed ones.
func parseAssociationType(_ name: String) throws -> AssociationType {
    guard let t = AssociationType.allCases.first(where: { "\($0)" == name }) else {
        throw ValidationError("--type must be one of \(AssociationType.allCases.map { "\($0)" }.joined(separator: ", "))")
    }
    return t
}

/// An association's identity on the command line: source, target and type.
struct AssociationArguments: ParsableArguments {
    @Argument(help: "Source concept id.") var source: String
    @Argument(help: "Target concept id.") var targetID: String
    @Option(help: "semantic, causal, temporal, hierarchical or compositional.") var type = "semantic"

    func parsed() throws -> (source: ConceptID, target: ConceptID, type: AssociationType) {
        (try parseID(source), try parseID(targetID), try parseAssociationType(type))
    }
}

struct AssociateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "associate", abstract: "Associate two concepts.")
    @OptionGroup var target: SDKTarget
    @OptionGroup var edge: AssociationArguments
    @Option(help: "Confidence (weight), in [0, 1].") var confidence: Float = 1

    func run() async throws {
        let e = try edge.parsed()
        printJSON(["version": try await withClient(target) { try await $0.associate(source: e.source, target: e.target, type: e.type, confidence: confidence) }])
    }
}

struct DissociateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dissociate", abstract: "Remove one association (both sides, atomically).")
    @OptionGroup var target: SDKTarget
    @OptionGroup var edge: AssociationArguments

    func run() async throws {
        let e = try edge.parsed()
        printJSON(["version": try await withClient(target) { try await $0.dissociate(source: e.source, target: e.target, type: e.type) }])
    }
}

struct NeighborsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "neighbors", abstract: "List a concept's associations.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "Concept id.") var id: String
    @Option(help: "out, in or both.") var direction = "both"
    @Option(help: "json or table.") var output: OutputFormat = .json

    func run() async throws {
        let cid = try parseID(id)
        let dir: Direction
        switch direction {
        case "out": dir = .outgoing
        case "in": dir = .incoming
        case "both": dir = .both
        default: throw ValidationError("--direction must be out, in or both")
        }
        let ns = try await withClient(target) { try await $0.neighbors(of: cid, direction: dir) }
        if output == .table {
            print(renderTable(["direction", "type", "confidence", "id"],
                              ns.map { [$0.direction == .outgoing ? "out" : "in", "\($0.type)", "\($0.confidence)", $0.other.description] }))
            return
        }
        printJSON(["neighbors": ns.map { ["id": $0.other.description, "type": "\($0.type)", "confidence": Double($0.confidence),
                                          "direction": $0.direction == .outgoing ? "out" : "in"] as [String: Any] }])
    }
}

struct PathCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "path", abstract: "Shortest path along outgoing associations.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "From concept id.") var from: String
    @Argument(help: "To concept id.") var to: String
    @Option(help: "Maximum hops, 1…20.") var maxDepth = 6
    @Option(help: "json or table.") var output: OutputFormat = .json

    func run() async throws {
        let f = try parseID(from), t = try parseID(to)
        let r = try await withClient(target) { try await $0.findPath(from: f, to: t, maxDepth: maxDepth) }
        if output == .table {
            print(r.path == nil ? "no path within \(maxDepth) hops (\(r.visited) concepts visited)" : "path of \(r.path!.count - 1) hop(s) (\(r.visited) concepts visited)")
            if let p = r.path { print(renderTable(["hop", "id"], p.enumerated().map { ["\($0.offset)", $0.element.description] })) }
            return
        }
        printJSON(["found": r.path != nil, "path": (r.path ?? []).map(\.description), "visited": r.visited])
    }
}

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "k nearest concepts to a vector.")
    @OptionGroup var target: SDKTarget
    @Argument(help: "Query vector: comma-separated numbers (or --text).") var vector: String?
    @Option(help: "Search by this text instead (the node embeds it through its embedding service).") var text: String?
    @Option(help: "Neighbours, 1…1000.") var k = 10
    @Option(help: "Search breadth (0: the node's default for k).") var ef = 0
    @Flag(help: "Compare with every vector (recall 1, cost linear in the number of vectors).") var exact = false
    @Option(help: "Only concepts whose strength is at least this (0…1).") var minStrength: Float?
    @Option(help: "Only concepts whose confidence is at least this (0…1).") var minConfidence: Float?
    @Option(help: "Only concepts with an association of this type (either direction).") var associationType: String?
    @Option(help: "json or table.") var output: OutputFormat = .json

    func run() async throws {
        guard (vector == nil) != (text == nil) else { throw ValidationError("give a query vector or --text, one of them") }
        let v = try vector.map(parseVector)
        let filter = SearchFilter(minStrength: minStrength, minConfidence: minConfidence,
                                  associationType: try associationType.map(parseAssociationType))
        let hits = try await withClient(target) { client in
            if let text { return try await client.search(text: text, k: k, ef: ef, exact: exact, filter: filter.isEmpty ? nil : filter) }
            return try await client.search(vector: v!, k: k, ef: ef, exact: exact, filter: filter.isEmpty ? nil : filter)
        }
        if output == .table {
            print(renderTable(["rank", "distance", "id"], hits.enumerated().map { ["\($0.offset + 1)", "\($0.element.distance)", $0.element.id.description] }))
            return
        }
        printJSON(["results": hits.map { ["id": $0.id.description, "distance": Double($0.distance)] as [String: Any] }])
    }
}

struct FlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flush", abstract: "Snapshot every shard on a node and compact its log.")
    @OptionGroup var target: SDKTarget

    func run() async throws {
        try await withClient(target) { try await $0.flush() }
        printJSON(["flushed": true])
    }
}

private func parseID(_ s: String) throws -> ConceptID {
    guard let id = ConceptID(hex: s) else { throw ValidationError("'\(s)' is not a concept id (32 hex digits)") }
    return id
}

private func parseVector(_ s: String) throws -> [Float] {
    try s.split(separator: ",").map {
        guard let f = Float($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("'\($0)' is not a number") }
        return f
    }
}

private func withClient<T: Sendable>(_ target: SDKTarget, _ body: @Sendable (SutraClient) async throws -> T) async throws -> T {
    let client = try SutraClient(endpoints: try target.resolve(), options: try target.options())
    do {
        let r = try await body(client)
        await client.close()
        return r
    } catch let e as SutraError {
        await client.close()
        throw CLIError("\(e)")
    } catch {
        await client.close()
        throw error
    }
}

private func printJSON(_ o: [String: Any]) {
    if let d = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) { print(String(decoding: d, as: UTF8.self)) }
}
