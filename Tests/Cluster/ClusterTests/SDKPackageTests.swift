import Foundation
import XCTest

/// The SDK is light (issue 15 item 10): an app that depends on it *by a versioned URL*, as applications do, gets a
/// package SwiftPM accepts (no unsafe build flags anywhere in it) and builds only the SDK's closure — the model
/// leaf (`SutraModel`), the client protocol, libuv and TLS — never the server's Raft, WAL, shard state or hnswlib.
final class SDKPackageTests: XCTestCase {
    func testAnAppDependingOnTheSDKByVersionBuildsNoServerCode() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sutra-sdk-app-\(getpid())").path
        try? FileManager.default.removeItem(atPath: tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try FileManager.default.createDirectory(atPath: tmp + "/app/Sources/SDKApp", withIntermediateDirectories: true)

        // The committed tree, tagged as a release, reached by URL.
        let clone = try runProgram("/usr/bin/env", ["git", "clone", "--quiet", repo, tmp + "/sutra"])
        XCTAssertEqual(clone.status, 0, clone.output)
        let tag = try runProgram("/usr/bin/env", ["git", "-C", tmp + "/sutra", "tag", "0.2.0"])
        XCTAssertEqual(tag.status, 0, tag.output)
        try """
        // swift-tools-version:6.2
        import PackageDescription
        let package = Package(
            name: "SDKApp",
            dependencies: [.package(url: "file://\(tmp)/sutra", from: "0.2.0")],
            targets: [.executableTarget(name: "SDKApp", dependencies: [.product(name: "SutraClient", package: "sutra")])]
        )
        """.write(toFile: tmp + "/app/Package.swift", atomically: true, encoding: .utf8)
        try """
        import SutraClient
        let id = ConceptID(hi: 1, lo: 1)
        // The shard function is the server's own (SutraModel): shard 1 of 8 for this id, as ShardStateTests fixes.
        print("shard", id.shard(of: 8), "client type", SutraClient.self)
        """.write(toFile: tmp + "/app/Sources/SDKApp/main.swift", atomically: true, encoding: .utf8)

        let started = Date()
        let build = try runProgram("/usr/bin/env", ["swift", "build", "--package-path", tmp + "/app", "--scratch-path", tmp + "/app/.build"])
        XCTAssertEqual(build.status, 0, String(build.output.suffix(4000)))
        let seconds = Date().timeIntervalSince(started)
        let built = (try? FileManager.default.subpathsOfDirectory(atPath: tmp + "/app/.build")) ?? []
        // The modules compiled: a `NAME.build` folder with object files in it (SwiftPM plans a folder for every
        // target of the package, and compiles only what the product needs).
        let modules = Set(built.compactMap { p -> String? in
            let parts = p.split(separator: "/")
            guard p.hasSuffix(".o"), parts.count >= 2, parts[parts.count - 2].hasSuffix(".build") else { return nil }
            return String(parts[parts.count - 2].dropLast(6))
        })
        for server in ["CHNSW", "VectorIndex", "Raft", "WAL", "Shard", "NodeCore", "Txn2PC"] {
            XCTAssertFalse(modules.contains(server), "the app built the server module \(server): \(modules.sorted())")
        }
        XCTAssertTrue(modules.contains("SutraModel") && modules.contains("SutraClient"), "\(modules.sorted())")
        let run = try runProgram(tmp + "/app/.build/debug/SDKApp", [])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.hasPrefix("shard 1 client type SutraClient"), run.output)
        print(String(format: "an app depending on the SDK: clean debug build in %.1f s, modules: %@", seconds, modules.sorted().joined(separator: " ")))
    }
}
