import Foundation
import Shard
import SutraClient
import XCTest

/// Host names instead of addresses: peers and SDK endpoints named in /etc/hosts (added by the test, removed
/// after it; `localhost` when /etc/hosts cannot be written) reach the nodes through the resolver, and a peer
/// whose name does not resolve is logged and shown, not silently retried.
final class ClusterNamesTests: XCTestCase {
    var cluster: LocalTestCluster!
    private var savedHosts: String?

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        if let savedHosts { try? savedHosts.write(toFile: "/etc/hosts", atomically: false, encoding: .utf8) }
        savedHosts = nil
    }

    /// Names for nodes 1…n: fresh entries in /etc/hosts for 127.0.0.1 when it can be written, else localhost.
    private func names(_ n: Int) -> [Int: String] {
        let tag = "sutra-names-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let wanted = Dictionary(uniqueKeysWithValues: (1...n).map { ($0, "\(tag)-node\($0)") })
        guard let hosts = try? String(contentsOfFile: "/etc/hosts", encoding: .utf8),
              let handle = FileHandle(forWritingAtPath: "/etc/hosts") else {
            return Dictionary(uniqueKeysWithValues: (1...n).map { ($0, "localhost") })
        }
        savedHosts = hosts
        handle.seekToEndOfFile()
        let lines = (hosts.hasSuffix("\n") ? "" : "\n") + wanted.values.sorted().map { "127.0.0.1 \($0)\n" }.joined()
        handle.write(Data(lines.utf8))
        try? handle.close()
        return wanted
    }

    func testPeersAndClientsReachTheNodesByName() async throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4)
        cluster.hostNames = names(3)
        try cluster.startAll()
        try cluster.waitLeadersPlaced()
        // Every link came up through a name.
        for id in 1...3 {
            let view = cluster.http(id, "GET", "/v1/cluster").json?["nodes"] as? [[String: Any]] ?? []
            let peers = view.filter { ($0["id"] as? NSNumber)?.intValue != id }
            XCTAssertEqual(peers.filter { ($0["link"] as? String) == "connected" }.count, 2, "node \(id): \(view)")
        }
        let client = try SutraClient(endpoints: cluster.clientEndpoints)
        XCTAssertTrue(cluster.clientEndpoints.allSatisfy { !$0.hasPrefix("127.") }, "\(cluster.clientEndpoints)")
        let ids = (0..<20).map { ConceptID(hi: 0xA11CE, lo: UInt64($0)) }
        for id in ids { _ = try await client.put(NewConcept(id: id, text: "by name")) }
        for id in ids {
            let text = try await client.get(id)?.text
            XCTAssertEqual(text, "by name")
        }
        await client.close()
    }

    func testAPeerWhoseNameDoesNotResolveIsLoggedAndShown() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 2)
        cluster.hostNames = [3: "sutra-no-such-node.invalid"]
        try cluster.start(1)
        try cluster.start(2)
        try cluster.waitReady()
        let deadline = Date().addingTimeInterval(10)
        var link = ""
        repeat {
            let view = cluster.http(1, "GET", "/v1/cluster").json?["nodes"] as? [[String: Any]] ?? []
            link = view.first { ($0["id"] as? NSNumber)?.intValue == 3 }?["link"] as? String ?? ""
            if link.contains("resolve") { break }
            usleep(100_000)
        } while Date() < deadline
        XCTAssertTrue(link.hasPrefix("connecting (last attempt: resolve sutra-no-such-node.invalid"), link)
        let log = cluster.log(1)
        XCTAssertTrue(log.contains("cannot reach node 3 at sutra-no-such-node.invalid:"), log.suffix(1500).description)
        XCTAssertEqual(log.components(separatedBy: "cannot reach node 3 at").count - 1, 1, "said once, not at every redial")
    }
}
