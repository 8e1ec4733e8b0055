import Auth
import Foundation
import XCTest

final class TokenFileTests: XCTestCase {
    func digest(_ s: String) -> TokenDigest { TokenDigest(token: Array(s.utf8)) }

    func testSHA256KnownAnswer() {
        // FIPS 180-2 example "abc".
        XCTAssertEqual(digest("abc").hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(TokenDigest(hex: digest("abc").hex)?.hex, digest("abc").hex)
        XCTAssertNil(TokenDigest(hex: "zz"))
        XCTAssertNil(TokenDigest(hex: String(repeating: "g", count: 64)))
    }

    func testConstantTimeMatch() {
        XCTAssertTrue(digest("a").matches(digest("a")))
        XCTAssertFalse(digest("a").matches(digest("b")))
    }

    func testNewTokensAreDistinctAndWellFormed() throws {
        let a = try XCTUnwrap(TokenGenerator.newToken()), b = try XCTUnwrap(TokenGenerator.newToken())
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(a.hasPrefix("sutra_"))
        XCTAssertEqual(a.count, 6 + 43)
        XCTAssertNotNil(BearerToken.parse("Bearer " + a), "a generated token must be a valid bearer token")
    }

    func testParseAcceptsCommentsAndRoles() throws {
        let text = "# comment\n\nalice admin sha256:\(digest("t1").hex)\r\nbob\tread sha256:\(digest("t2").hex.uppercased())\n"
        let e = try TokenFile.parse(Array(text.utf8), path: "f")
        XCTAssertEqual(e.map(\.name), ["alice", "bob"])
        XCTAssertEqual(e.map(\.role), [.admin, .read])
        XCTAssertTrue(e[1].digest.matches(digest("t2")))
    }

    func problem(_ text: String) -> TokenFileProblem? {
        do { _ = try TokenFile.parse(Array(text.utf8), path: "f"); return nil } catch { return error }
    }

    func testParseRefusesMalformedWithLineNumbers() {
        let h = digest("x").hex
        XCTAssertEqual(problem("a read sha256:\(h)\nb root sha256:\(h)\n")?.line, 2)
        XCTAssertTrue(problem("b root sha256:\(h)")!.message.contains("role"))
        XCTAssertTrue(problem("a read \(h)")!.message.contains("sha256:"))
        XCTAssertTrue(problem("a read sha256:abc")!.message.contains("64 hex"))
        XCTAssertTrue(problem("a read sutra_abcdef")!.message.contains("plaintext"))
        XCTAssertTrue(problem("a read sha256:\(h)\na write sha256:\(h)")!.message.contains("twice"))
        XCTAssertTrue(problem("bad/name read sha256:\(h)")!.message.contains("name"))
        XCTAssertTrue(problem("a read sha256:\(h) extra")!.message.contains("fields"))
        XCTAssertEqual(problem("a read sha256:\(h) extra")?.description, "f line 1: expected NAME ROLE sha256:HEX, found 4 fields")
        XCTAssertNotNil(problem(String(repeating: "#", count: TokenFile.maxBytes + 1)))
        var bytes = Array("a read sha256:\(h)\n".utf8)
        bytes[0] = 0xFF
        XCTAssertTrue(problem(String(decoding: bytes, as: UTF8.self)) != nil)
        let many = (0...TokenFile.maxTokens).map { "n\($0) read sha256:\(h)" }.joined(separator: "\n")
        XCTAssertTrue(problem(many)!.message.contains("more than"))
    }

    func testAppendCreatesPrivateFileAndRefusesDuplicates() throws {
        let path = NSTemporaryDirectory() + "sutra-tokens-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TokenFile.append(TokenEntry(name: "ops", role: .admin, digest: digest("plain-token-one")), to: path)
        try TokenFile.append(TokenEntry(name: "app", role: .write, digest: digest("two")), to: path)
        let entries = try TokenFile.load(path: path)
        XCTAssertEqual(entries.map(\.name), ["ops", "app"])
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600)
        XCTAssertThrowsError(try TokenFile.append(TokenEntry(name: "ops", role: .read, digest: digest("three")), to: path))
        XCTAssertFalse(try String(contentsOfFile: path, encoding: .utf8).contains("plain-token-one"), "no plaintext token is written")
        XCTAssertThrowsError(try TokenFile.load(path: path + ".missing"))
    }
}

final class AccessDecisionTests: XCTestCase {
    func digest(_ s: String) -> TokenDigest { TokenDigest(token: Array(s.utf8)) }

    func testRoleOrder() {
        XCTAssertTrue(Role.admin.allows(.write) && Role.admin.allows(.read) && Role.write.allows(.read))
        XCTAssertFalse(Role.read.allows(.write) || Role.write.allows(.admin))
    }

    func testDecisions() {
        let set = TokenSet([TokenEntry(name: "r", role: .read, digest: digest("R")), TokenEntry(name: "w", role: .write, digest: digest("W")),
                            TokenEntry(name: "a", role: .admin, digest: digest("A"))])
        XCTAssertEqual(set.decide(presented: nil, needed: .read), .unauthenticated(missing: true))
        XCTAssertEqual(set.decide(presented: digest("nope"), needed: .read), .unauthenticated(missing: false))
        XCTAssertEqual(set.decide(presented: digest("R"), needed: .read), .allowed(name: "r"))
        XCTAssertEqual(set.decide(presented: digest("R"), needed: .write), .forbidden(name: "r", role: .read, needed: .write))
        XCTAssertEqual(set.decide(presented: digest("W"), needed: .admin), .forbidden(name: "w", role: .write, needed: .admin))
        XCTAssertEqual(set.decide(presented: digest("A"), needed: .admin), .allowed(name: "a"))
        XCTAssertEqual(TokenSet([]).decide(presented: digest("A"), needed: .read), .unauthenticated(missing: false))
    }

    func testBearerParsing() {
        XCTAssertEqual(BearerToken.parse("Bearer abc").map { String(decoding: $0, as: UTF8.self) }, "abc")
        XCTAssertEqual(BearerToken.parse("bearer   abc-_.~+/=  ").map { String(decoding: $0, as: UTF8.self) }, "abc-_.~+/=")
        XCTAssertNil(BearerToken.parse(nil))
        XCTAssertNil(BearerToken.parse("Basic abc"))
        XCTAssertNil(BearerToken.parse("Bearer"))
        XCTAssertNil(BearerToken.parse("Bearer "))
        XCTAssertNil(BearerToken.parse("Bearer a b"))
        XCTAssertNil(BearerToken.parse("Bearer a, Bearer b"), "two Authorization headers joined are refused")
        XCTAssertNil(BearerToken.parse("Bearer " + String(repeating: "a", count: BearerToken.maxLength + 1)))
    }

    func testRefusalLogLimiter() {
        var l = RefusalLogLimiter(windowNanos: 100, maxSources: 2)
        XCTAssertEqual(l.shouldLog(source: "a", now: 0).log, true)
        XCTAssertEqual(l.shouldLog(source: "a", now: 50).log, false)
        XCTAssertEqual(l.shouldLog(source: "a", now: 60).log, false)
        let again = l.shouldLog(source: "a", now: 100)
        XCTAssertTrue(again.log)
        XCTAssertEqual(again.suppressed, 2)
        XCTAssertTrue(l.shouldLog(source: "b", now: 101).log)
        XCTAssertTrue(l.shouldLog(source: "c", now: 102).log)
        XCTAssertLessThanOrEqual(l.trackedSources, 2, "memory is bounded by maxSources")
    }
}
