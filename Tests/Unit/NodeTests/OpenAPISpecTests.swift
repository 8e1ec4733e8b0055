import Foundation
@testable import Node
import XCTest

/// docs/openapi.json describes the HTTP API the node serves, and this test keeps the two in step, both ways, from
/// the server's own tables (no running node):
/// - every (path, method) the front end routes (`HTTPFrontEnd.methods`, through `HTTPFrontEnd.route`) is in the
///   spec, and every spec operation is routed — a new route, a new method on a route, or a spec path the server
///   does not know (a typo, a removed route) fails;
/// - every query parameter a route accepts (`HTTPFrontEnd.queryParameters`) is declared on it, and no other;
/// - every JSON body the server reads strictly (`onlyFields`) has `additionalProperties: false` and exactly the
///   field names the server accepts (`JSONBody.*Fields`, `SeedRoutes.*Fields`, the batch items and the search
///   filter) — a field added to the server but not documented, or documented but refused, fails;
/// - every operation's `x-sutra-role` is the role `AccessPolicy` asks for, and the open ones say so in `security`.
/// The answers themselves are checked against a live node by scripts/test-openapi.sh (schemathesis).
final class OpenAPISpecTests: XCTestCase {
    private static let httpMethods = ["get", "head", "post", "put", "patch", "delete", "options", "trace"]

    // MARK: the spec

    private struct Spec {
        let root: [String: Any]

        var paths: [String: [String: Any]] { (root["paths"] as? [String: [String: Any]]) ?? [:] }

        /// Follows a local `$ref` ("#/components/…") until the object is not a reference.
        func resolve(_ value: Any?) -> [String: Any]? {
            guard var object = value as? [String: Any] else { return nil }
            var hops = 0
            while let ref = object["$ref"] as? String {
                guard ref.hasPrefix("#/"), hops < 16 else { return nil }
                var node: Any? = root
                for key in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(key)] }
                guard let next = node as? [String: Any] else { return nil }
                object = next
                hops += 1
            }
            return object
        }

        /// (path, lowercased method, operation object) for every operation.
        var operations: [(path: String, method: String, op: [String: Any])] {
            var out: [(path: String, method: String, op: [String: Any])] = []
            for (path, item) in paths.sorted(by: { $0.key < $1.key }) {
                for m in OpenAPISpecTests.httpMethods { if let op = item[m] as? [String: Any] { out.append((path: path, method: m, op: op)) } }
            }
            return out
        }

        /// The names of an operation's parameters in `location` (path-level parameters included).
        func parameters(_ path: String, _ op: [String: Any], in location: String) -> Set<String> {
            let all = ((paths[path]?["parameters"] as? [Any]) ?? []) + ((op["parameters"] as? [Any]) ?? [])
            return Set(all.compactMap { resolve($0) }.filter { ($0["in"] as? String) == location }.compactMap { $0["name"] as? String })
        }

        /// The JSON request body schema of an operation, resolved; nil when it has none.
        func bodySchema(_ op: [String: Any]) -> [String: Any]? {
            guard let body = resolve(op["requestBody"]), let content = body["content"] as? [String: Any] else { return nil }
            return resolve((content["application/json"] as? [String: Any])?["schema"])
        }
    }

    private func loadSpec(file: StaticString = #filePath, line: UInt = #line) throws -> Spec {
        // Tests/Unit/NodeTests/OpenAPISpecTests.swift → the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], "docs/openapi.json is not a JSON object", file: file, line: line)
        XCTAssertEqual(object["openapi"] as? String, "3.0.3", file: file, line: line)
        let spec = Spec(root: object)
        XCTAssertFalse(spec.paths.isEmpty, "docs/openapi.json has no paths", file: file, line: line)
        return spec
    }

    /// The route the server gives a spec path (its `{placeholders}` filled with valid values), nil when unrouted.
    private func route(of path: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let samples = ["{id}": "000000000000000a000000000000000a", "{backup_id}": "0123456789abcdef", "{shard}": "0", "{node_id}": "3"]
        var concrete = path
        for (placeholder, value) in samples { concrete = concrete.replacingOccurrences(of: placeholder, with: value) }
        if concrete.contains("{") {
            XCTFail("\(path): a path parameter this test has no sample value for (add it to `samples`)", file: file, line: line)
            return nil
        }
        return HTTPFrontEnd.route(concrete.split(separator: "/").map(String.init)).0
    }

    // MARK: routes and methods

    func testTheSpecHasExactlyTheRoutesAndMethodsTheServerServes() throws {
        let spec = try loadSpec()
        var specMethods: [String: Set<String>] = [:]
        var pathOfRoute: [String: String] = [:]
        for (path, item) in spec.paths {
            guard let r = route(of: path) else { XCTFail("spec path \(path) is not routed by HTTPFrontEnd.route"); continue }
            if let other = pathOfRoute[r] { XCTFail("spec paths \(other) and \(path) are both route '\(r)'") }
            pathOfRoute[r] = path
            let methods = OpenAPISpecTests.httpMethods.filter { item[$0] != nil }.map { $0.uppercased() }
            XCTAssertFalse(methods.isEmpty, "spec path \(path) has no operation")
            specMethods[r, default: []].formUnion(methods)
        }
        let served = HTTPFrontEnd.methods.mapValues { Set($0) }
        for (r, methods) in served.sorted(by: { $0.key < $1.key }) {
            guard let documented = specMethods[r] else { XCTFail("route '\(r)' (\(methods.sorted())) is not in docs/openapi.json"); continue }
            XCTAssertEqual(documented, methods, "route '\(r)' (\(pathOfRoute[r] ?? "?")): spec methods \(documented.sorted()), server \(methods.sorted())")
        }
        for r in specMethods.keys where served[r] == nil {
            XCTFail("docs/openapi.json documents route '\(r)' (\(pathOfRoute[r] ?? "?")), which HTTPFrontEnd.methods does not serve")
        }
    }

    // MARK: query parameters

    func testEveryRoutesQueryParametersAreDeclaredAndNoOthers() throws {
        let spec = try loadSpec()
        var declared: [String: Set<String>] = [:]
        for (path, method, op) in spec.operations {
            guard let r = route(of: path) else { continue }   // reported by the routes test
            let names = spec.parameters(path, op, in: "query")
            let accepted = Set(HTTPFrontEnd.queryParameters[r] ?? [])
            // An operation may declare fewer (the server reads a route's parameters whatever its method), never more.
            XCTAssertTrue(names.isSubset(of: accepted),
                          "\(method.uppercased()) \(path) declares query parameters \(names.subtracting(accepted).sorted()) that the server refuses (400)")
            declared[r, default: []].formUnion(names)
        }
        for (r, accepted) in HTTPFrontEnd.queryParameters {
            XCTAssertEqual(declared[r] ?? [], Set(accepted), "route '\(r)': the spec declares \((declared[r] ?? []).sorted()), the server reads \(accepted.sorted())")
        }
        for (r, names) in declared where HTTPFrontEnd.queryParameters[r] == nil {
            XCTAssertTrue(names.isEmpty, "route '\(r)' takes no query parameters, the spec declares \(names.sorted())")
        }
    }

    // MARK: bodies

    /// The field names a strict object schema declares; fails unless it refuses others (`additionalProperties: false`).
    private func strictFields(_ schema: [String: Any]?, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Set<String> {
        guard let schema else { XCTFail("\(what): no schema", file: file, line: line); return [] }
        XCTAssertEqual(schema["additionalProperties"] as? Bool, false,
                       "\(what): the server refuses unknown fields (400), so the schema must say additionalProperties: false", file: file, line: line)
        return Set((schema["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
    }

    func testStrictBodiesDeclareExactlyTheFieldsTheServerAccepts() throws {
        let spec = try loadSpec()
        // (path, method) → the names the server's `onlyFields` call for that body accepts. Where the server spells
        // the list inline (the batch envelope, /query, the PATCH list derived from conceptFields) it is mirrored here.
        let accepted: [String: [String]] = [
            "POST /v1/concepts": JSONBody.conceptFields + JSONBody.conditionFields,
            "PATCH /v1/concepts/{id}": Array(JSONBody.conceptFields.dropFirst()) + JSONBody.conditionFields,
            "POST /v1/associations": JSONBody.associationFields,
            "POST /v1/search": JSONBody.searchFields,
            "POST /v1/batch": ["items"],
            "POST /learn": SeedRoutes.learnFields,
            "POST /query": ["concept_id"],
            "POST /search": SeedRoutes.searchFields,
            "POST /v1/admin/nodes": JSONBody.nodeFields,
        ]
        XCTAssertFalse(JSONBody.conceptFields.dropFirst().contains("id"), "PATCH's list drops `id`, the first concept field")
        var withBody: Set<String> = []
        for (path, method, op) in spec.operations {
            guard let schema = spec.bodySchema(op) else {
                XCTAssertNil(op["requestBody"], "\(method.uppercased()) \(path): a request body that is not application/json")
                continue
            }
            let key = "\(method.uppercased()) \(path)"
            withBody.insert(key)
            guard let fields = accepted[key] else { XCTFail("\(key) documents a JSON body this test does not know the server's fields for"); continue }
            XCTAssertEqual(strictFields(schema, key), Set(fields), "\(key): spec properties vs the server's accepted fields")
            // The search filter is strict too (unknown filter fields: 400).
            if let filter = (schema["properties"] as? [String: Any])?["filter"] {
                XCTAssertEqual(strictFields(spec.resolve(filter), "\(key) filter"), Set(JSONBody.searchFilterFields), "\(key): filter fields")
            }
        }
        XCTAssertEqual(withBody, Set(accepted.keys), "operations with a JSON body")

        // The batch's items: one schema per op, each strict (mirrors `JSONBody.batchItems`).
        let batch = try XCTUnwrap(spec.bodySchema(try XCTUnwrap(spec.paths["/v1/batch"]?["post"] as? [String: Any])))
        let items = try XCTUnwrap(spec.resolve((batch["properties"] as? [String: Any])?["items"]))
        let variants = try XCTUnwrap(spec.resolve(items["items"])?["oneOf"] as? [Any], "batch items are a oneOf of put, delete, associate")
        var byOp: [String: Set<String>] = [:]
        for v in variants {
            let schema = spec.resolve(v)
            let op = try XCTUnwrap(((spec.resolve((schema?["properties"] as? [String: Any])?["op"]))?["enum"] as? [String])?.first, "a batch item schema without an op enum")
            byOp[op] = strictFields(schema, "batch \(op) item")
        }
        XCTAssertEqual(byOp["put"], Set(["op"] + JSONBody.conceptFields))
        XCTAssertEqual(byOp["delete"], Set(["op", "id"]))
        XCTAssertEqual(byOp["associate"], Set(["op"] + JSONBody.associationFields))
        XCTAssertEqual(Set(byOp.keys), ["put", "delete", "associate"])
    }

    // MARK: roles

    func testEveryOperationNamesTheRoleTheServerAsksFor() throws {
        let spec = try loadSpec()
        for (path, method, op) in spec.operations {
            guard let r = route(of: path) else { continue }
            let parts = path.split(separator: "/").map(String.init)
            let needed = AccessPolicy.role(httpMethod: method.uppercased(), route: r, parts: parts, metricsNeedToken: false)
                .map { String(describing: $0) } ?? "none"
            XCTAssertEqual(op["x-sutra-role"] as? String, needed, "\(method.uppercased()) \(path): x-sutra-role")
            // `security: []` or a `{}` among the alternatives: no token needed. Absent: the document's bearerAuth.
            let security = op["security"] as? [[String: Any]]
            let open = security.map { $0.isEmpty || $0.contains(where: { $0.isEmpty }) } ?? false
            if needed == "none" {
                XCTAssertTrue(open, "\(method.uppercased()) \(path) is open: its security must allow no token (`[]`, or `{}` among them)")
            } else {
                XCTAssertFalse(open, "\(method.uppercased()) \(path) needs '\(needed)' but its security allows no token")
            }
        }
    }
}
