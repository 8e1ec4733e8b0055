import Auth
import Foundation
import Shard
import SutraClient
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Client authentication on real nodes: the role matrix over HTTP and the binary protocol (through the SDK),
/// open health routes, and tokens added and revoked by SIGHUP without a restart.
final class ClusterAuthTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    /// A tokens file with one token per role, written through the library (`sutra tokens add` is exercised below).
    static func writeTokens(_ path: String, _ tokens: [(String, Role, String)]) throws {
        try? FileManager.default.removeItem(atPath: path)
        for (name, role, token) in tokens {
            try TokenFile.append(TokenEntry(name: name, role: role, digest: TokenDigest(token: Array(token.utf8))), to: path)
        }
    }

    /// Runs the `sutra` CLI built beside the tests; returns (exit status, stdout).
    static func sutra(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LocalTestCluster.nodeBinary).deletingLastPathComponent().appendingPathComponent("sutra")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func waitUntil(_ timeout: Double = 10, _ what: String, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !cond() {
            if Date() > deadline { XCTFail("timed out waiting for \(what)"); return }
            usleep(50_000)
        }
    }

    func testHTTPRoleMatrixAndSIGHUPReload() throws {
        let dir = NSTemporaryDirectory() + "sutra-auth-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/tokens"
        // `sutra tokens add` prints a fresh token once and stores only its hash.
        var tokens: [String: String] = [:]
        for (name, role) in [("reader", "read"), ("writer", "write"), ("ops", "admin")] {
            let (st, out) = try Self.sutra(["tokens", "add", name, "--role", role, "--file", file])
            XCTAssertEqual(st, 0)
            tokens[name] = out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let text = try String(contentsOfFile: file, encoding: .utf8)
        for t in tokens.values { XCTAssertTrue(t.hasPrefix("sutra_")); XCTAssertFalse(text.contains(t), "no plaintext token in the file") }
        XCTAssertEqual(try Self.sutra(["tokens", "add", "ops", "--role", "read", "--file", file]).0 == 0, false, "a duplicate name is refused")
        let (reader, writer, ops) = (tokens["reader"]!, tokens["writer"]!, tokens["ops"]!)

        cluster = try LocalTestCluster(nodes: 3, shards: 2, flags: ["--tokens-file", file])
        try cluster.startAll()
        let id = conceptID(7)
        let body = #"{"id":"\#(id)","content":"secret"}"#

        // Open routes.
        XCTAssertEqual(cluster.http(1, "GET", "/health").status, 200)
        XCTAssertEqual(cluster.http(1, "GET", "/ready").status, 200)
        XCTAssertEqual(cluster.http(1, "GET", "/metrics").status, 200, "/metrics is open by default")
        // No token: 401 on reads and writes, with a Bearer challenge.
        for (m, p, b) in [("POST", "/v1/concepts", body), ("GET", "/v1/concepts/\(id)", ""), ("GET", "/v1/cluster", ""),
                          ("POST", "/v1/flush", ""), ("POST", "/v1/admin/transfer-leader?shard=0", ""), ("GET", "/v1/nothing-here", "")] {
            let r = cluster.http(1, m, p, b)
            XCTAssertEqual(r.status, 401, "\(m) \(p) without a token")
            XCTAssertEqual(r.errorCode, "UNAUTHENTICATED")
            XCTAssertEqual(r.headers["www-authenticate"], #"Bearer realm="sutra""#)
        }
        let forged = cluster.http(1, "GET", "/v1/concepts/\(id)", token: "sutra_forged")
        XCTAssertEqual(forged.status, 401)
        XCTAssertTrue(forged.headers["www-authenticate"]?.contains("invalid_token") == true)
        // read: reads yes, writes no.
        XCTAssertEqual(cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(id)", token: reader).status, 404, "authorized, not found")
        XCTAssertEqual(cluster.http(1, "GET", "/v1/cluster", token: reader).status, 200)
        let denied = cluster.http(1, "POST", "/v1/concepts", body, token: reader)
        XCTAssertEqual(denied.status, 403)
        XCTAssertEqual(denied.errorCode, "PERMISSION_DENIED")
        XCTAssertTrue(denied.headers["www-authenticate"]?.contains("insufficient_scope") == true)
        // write: writes yes, admin routes no.
        XCTAssertEqual(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", body, token: writer).status, 200)
        XCTAssertEqual(cluster.httpToLeader(via: 2, "GET", "/v1/concepts/\(id)", token: reader).json?["content"] as? String, "secret")
        XCTAssertEqual(cluster.http(1, "POST", "/v1/flush", token: writer).status, 403)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/admin/transfer-leader?shard=0", token: writer).status, 403)
        XCTAssertEqual(cluster.http(1, "POST", "/v1/admin/fault/fsync-delay?ms=0", token: writer).status, 403)
        // admin: everything.
        XCTAssertEqual(cluster.http(1, "POST", "/v1/flush", token: ops).status, 200)
        XCTAssertEqual(cluster.httpToLeader(via: 1, "POST", "/v1/concepts", body, token: ops).status, 200)
        let transfer = cluster.http(1, "POST", "/v1/admin/transfer-leader?shard=0", token: ops)
        XCTAssertFalse([0, 401, 403].contains(transfer.status), "admin passes authorization (got \(transfer.status))")
        let metrics = String(decoding: cluster.http(1, "GET", "/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains(#"sutra_client_auth_refusals_total{node="1",reason="missing_token"} 6"#), metrics)
        XCTAssertTrue(metrics.contains(#"sutra_client_auth_refusals_total{node="1",reason="role_too_low"} 4"#))
        XCTAssertTrue(cluster.log(1).contains("client request refused from http 127.0.0.1"), "refusals are logged")

        // SIGHUP: add a token, revoke one, without a restart.
        let (st, late) = try Self.sutra(["tokens", "add", "late", "--role", "write", "--file", file])
        XCTAssertEqual(st, 0)
        let lateToken = late.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(cluster.http(1, "GET", "/v1/cluster", token: lateToken).status, 401, "not before the reload")
        let kept = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("reader ") }
        try (kept.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        cluster.signalAll(SIGHUP)
        waitUntil(5, "every node to accept the new token") { (1...3).allSatisfy { cluster.http($0, "GET", "/v1/cluster", token: lateToken).status == 200 } }
        for n in 1...3 { XCTAssertEqual(cluster.http(n, "GET", "/v1/cluster", token: reader).status, 401, "node \(n) revoked reader") }
        var lateWrite = cluster.httpToLeader(via: 3, "POST", "/v1/concepts", body, token: lateToken)
        for _ in 0..<20 where lateWrite.status == 503 {  // the leadership transfer above may still be settling
            usleep(100_000)
            lateWrite = cluster.httpToLeader(via: 3, "POST", "/v1/concepts", body, token: lateToken)
        }
        XCTAssertEqual(lateWrite.status, 200)

        // A bad file keeps the tokens in force and says why.
        try "ops admin sha256:nothex\n".write(toFile: file, atomically: true, encoding: .utf8)
        cluster.signalAll(SIGHUP)
        waitUntil(5, "the failed reload to be logged") { cluster.log(2).contains("tokens file not reloaded") }
        XCTAssertEqual(cluster.http(2, "GET", "/v1/cluster", token: lateToken).status, 200, "old tokens stay after a bad reload")
        XCTAssertTrue(cluster.log(2).contains("line 1"), "the log names the bad line")
        XCTAssertEqual(cluster.terminate(1), 0, "the node never stopped serving")
    }

    func testBinaryProtocolRoleMatrixThroughTheSDK() async throws {
        let dir = NSTemporaryDirectory() + "sutra-auth-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/tokens"
        let (r, w, a) = (TokenGenerator.newToken()!, TokenGenerator.newToken()!, TokenGenerator.newToken()!)
        try Self.writeTokens(file, [("r", .read, r), ("w", .write, w), ("a", .admin, a)])
        cluster = try LocalTestCluster(nodes: 3, shards: 2, flags: ["--tokens-file", file])
        try cluster.startAll()
        let options = SutraClient.Options(requestTimeout: .seconds(5))
        func client(_ token: String?) throws -> SutraClient {
            var o = options
            o.token = token
            return try SutraClient(endpoints: cluster.clientEndpoints, options: o)
        }
        let id = conceptID(11)
        let concept = NewConcept(id: id, text: "x")

        func expect(_ what: String, _ body: () async throws -> Void, _ check: (SutraError) -> Bool) async {
            let started = ContinuousClock.now
            do {
                try await body()
                XCTFail("\(what): succeeded")
            } catch let e as SutraError {
                XCTAssertTrue(check(e), "\(what): \(e)")
                print("auth refusal \(what): \(e) after \(ContinuousClock.now - started)")
            } catch {
                XCTFail("\(what): \(error)")
            }
        }
        func isUnauthenticated(_ e: SutraError) -> Bool { if case .unauthenticated = e { return true } else { return false } }
        func isDenied(_ e: SutraError) -> Bool { if case .permissionDenied = e { return true } else { return false } }

        let none = try client(nil), forged = try client("sutra_forged"), reader = try client(r), writer = try client(w), admin = try client(a)
        await expect("put without a token", { try await none.put(concept) }, isUnauthenticated)
        await expect("get without a token", { _ = try await none.get(id) }, isUnauthenticated)
        await expect("get with a forged token", { _ = try await forged.get(id) }, isUnauthenticated)
        let absent = try await reader.get(id)
        XCTAssertNil(absent, "read token reads")
        await expect("put with a read token", { try await reader.put(concept) }, isDenied)
        try await writer.put(concept)
        let back = try await reader.get(id)
        XCTAssertEqual(back?.text, "x")
        await expect("flush with a write token", { try await writer.flush() }, isDenied)
        try await admin.flush()
        try await admin.delete(id)

        // Revocation reaches open connections: the reader's connection stays, its token goes.
        try Self.writeTokens(file, [("w", .write, w), ("a", .admin, a)])
        cluster.signalAll(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        var revoked = false
        while !revoked && Date() < deadline {
            do { _ = try await reader.get(id); try await Task.sleep(for: .milliseconds(50)) } catch let e as SutraError { revoked = isUnauthenticated(e) }
        }
        XCTAssertTrue(revoked, "the reader's token stops working on its open connections after SIGHUP")
        try await writer.put(concept)
        for c in [none, forged, reader, writer, admin] { await c.close() }
    }

    /// Without a tokens file the node serves everyone, as before, and says so; an SDK without a token works.
    func testNoTokensFileIsOpenAndLogged() async throws {
        cluster = try LocalTestCluster(nodes: 1, shards: 1)
        try cluster.startAll()
        XCTAssertTrue(cluster.log(1).contains("clients are NOT authenticated"))
        XCTAssertEqual(cluster.http(1, "POST", "/v1/flush").status, 200)
        let c = try SutraClient(endpoints: cluster.clientEndpoints)
        try await c.put(NewConcept(id: conceptID(1), text: "open"))
        await c.close()
        // A bad tokens file stops the node at start with one line naming the file and line.
        let bad = cluster.dir + "/bad-tokens"
        try "x read sha256:00\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let other = try LocalTestCluster(nodes: 1, shards: 1, flags: ["--tokens-file", bad])
        defer { other.destroy() }
        XCTAssertThrowsError(try other.startAll())
        XCTAssertTrue(other.log(1).contains("\(bad) line 1"), other.log(1))
    }
}
