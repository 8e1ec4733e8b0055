import ChaosLab
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The lab network itself, probed with UDP datagrams from sockets inside the namespaces (no node processes):
/// creation and complete teardown, partitions that cut exactly their links and never the host's, healing,
/// shaping, cleanup after a dead process. Skipped where namespaces cannot be created.
final class NetworkLabTests: XCTestCase {
    override func setUpWithError() throws {
        try ChaosTestSupport.requireLab()
    }

    private func netnsList() -> String { Shell.run(["ip", "netns", "list"]).output }
    private func linkExists(_ name: String) -> Bool { Shell.run(["ip", "link", "show", "dev", name]).ok }

    /// Three namespaces with loopback up and an address each, a bridge with the host's address, everyone
    /// reaching everyone; `destroy` leaves no namespace, veth or bridge behind and is idempotent.
    func testLabCreatesAndFullyTearsDown() throws {
        let lab = try NetworkLab(nodes: 3)
        let (namespaces, interfaces) = lab.resourceNames
        XCTAssertEqual(namespaces.count, 3)
        XCTAssertEqual(interfaces.count, 4)
        for ns in namespaces { XCTAssertTrue(netnsList().contains(ns), "\(ns) listed") }
        for i in interfaces { XCTAssertTrue(linkExists(i), "\(i) exists") }
        XCTAssertTrue(lab.subnet.hasPrefix("10.") && lab.subnet.hasSuffix(".0/24"), lab.subnet)
        XCTAssertTrue(lab.hostAddress.hasSuffix(".254"))
        for n in 1...3 {
            let m = try lab.member(n)
            XCTAssertTrue(m.address.hasSuffix(".\(n)"))
            let inside = try Shell.check(["ip", "-n", m.namespace, "-o", "addr", "show"])
            XCTAssertTrue(inside.contains("lo ") && inside.contains("127.0.0.1"), "loopback up in \(m.namespace): \(inside)")
            XCTAssertTrue(inside.contains("eth0") && inside.contains(m.address), inside)
            XCTAssertTrue(try lab.reachable(from: nil, to: n), "host → node \(n)")
            XCTAssertTrue(try lab.reachable(from: n, to: nil), "node \(n) → host")
        }
        XCTAssertTrue(try lab.reachability().values.allSatisfy { $0 })

        XCTAssertEqual(lab.destroy(), [])
        for ns in namespaces { XCTAssertFalse(netnsList().contains(ns), "\(ns) removed") }
        for i in interfaces { XCTAssertFalse(linkExists(i), "\(i) removed") }
        XCTAssertEqual(lab.destroy(), [], "idempotent")
        XCTAssertThrowsError(try lab.block(DirectedLink(from: 1, to: 2)))
    }

    /// Bad node ids are refused before anything is created; a lab whose veth or namespace vanished behind its
    /// back still tears down cleanly (no problem reported for what is already gone).
    func testInvalidInputAndPartiallyRemovedLab() throws {
        let before = netnsList()
        XCTAssertThrowsError(try NetworkLab(nodeIDs: [1, 300]))
        XCTAssertThrowsError(try NetworkLab(nodeIDs: [2, 2]))
        XCTAssertEqual(netnsList(), before)
        let lab = try NetworkLab(nodes: 2)
        try Shell.check(["ip", "link", "del", lab.member(1).hostVeth])
        try Shell.check(["ip", "netns", "del", lab.namespace(of: 2)])
        XCTAssertEqual(lab.destroy(), [])
        for name in lab.resourceNames.namespaces { XCTAssertFalse(netnsList().contains(name)) }
        for name in lab.resourceNames.interfaces { XCTAssertFalse(linkExists(name), name) }
    }

    /// Each partition kind cuts exactly its directed links (checked by datagrams both ways on every pair),
    /// never the host's traffic to or from a node, and `heal` restores every link.
    func testPartitionsCutExactlyTheirLinksAndHeal() throws {
        let lab = try NetworkLab(nodes: 3)
        defer { XCTAssertEqual(lab.destroy(), []) }
        let partitions: [Partition] = [.isolate(1), .split([3], [1, 2]), .oneWay(from: [2], to: [1, 3]),
                                       .oneWay(from: [1, 3], to: [2]), .bridge(2), .majorityRing([2, 3, 1])]
        for p in partitions {
            try lab.apply(p)
            let expected = p.blockedLinks(among: lab.nodes)
            XCTAssertEqual(lab.blockedLinks, expected, "\(p)")
            for (link, ok) in try lab.reachability() {
                XCTAssertEqual(ok, !expected.contains(link), "\(p): \(link) should be \(expected.contains(link) ? "cut" : "open")")
            }
            for n in lab.nodes {
                XCTAssertTrue(try lab.reachable(from: nil, to: n), "\(p): host → node \(n) still works")
                XCTAssertTrue(try lab.reachable(from: n, to: nil), "\(p): node \(n) → host still works")
            }
            XCTAssertEqual(lab.heal(), [])
            XCTAssertEqual(lab.blockedLinks, [])
            XCTAssertTrue(try lab.reachability().values.allSatisfy { $0 }, "\(p) healed")
        }
        // A route added behind the lab's back is flushed by heal too.
        try Shell.check(["ip", "-n", lab.namespace(of: 2), "route", "add", "blackhole", "\(lab.address(of: 3))/32"])
        XCTAssertFalse(try lab.reachable(from: 2, to: 3))
        XCTAssertEqual(lab.heal(), [])
        XCTAssertTrue(try lab.reachable(from: 2, to: 3))
    }

    /// A rate limit (tbf) applies and is removed; delay needs netem, which either works or is reported as
    /// missing from the kernel.
    func testShaping() throws {
        let lab = try NetworkLab(nodes: 2)
        defer { XCTAssertEqual(lab.destroy(), []) }
        let ns = try lab.namespace(of: 1)
        try lab.shape(1, LinkShape(rateKbit: 10_000))
        XCTAssertTrue(try Shell.check(["tc", "-n", ns, "qdisc", "show", "dev", "eth0"]).contains("tbf"))
        XCTAssertEqual(lab.shapedNodes, [1])
        XCTAssertTrue(try lab.reachable(from: 1, to: 2))
        lab.unshape(1)
        XCTAssertFalse(try Shell.check(["tc", "-n", ns, "qdisc", "show", "dev", "eth0"]).contains("tbf"))
        do {
            try lab.shape(2, LinkShape(delayMs: 30, lossPercent: 1))
            XCTAssertTrue(try Shell.check(["tc", "-n", lab.namespace(of: 2), "qdisc", "show", "dev", "eth0"]).contains("netem"))
            lab.unshapeAll()
        } catch LabError.unavailable(let why) {
            XCTAssertTrue(why.contains("netem"), why)
            print("netem is not available here: \(why)")
        }
    }

    /// `removeStale` removes namespaces and bridges named after a process that no longer exists, and nothing
    /// of a live lab.
    func testRemoveStaleTouchesOnlyDeadCreators() throws {
        let live = try NetworkLab(nodes: 1)
        defer { live.destroy() }
        // A pid no process has (high, so rarely ever used).
        var deadPID: Int32 = 0
        for candidate in stride(from: Int32(4_000_000), to: 4_100_000, by: 7) where kill(candidate, 0) != 0 && errno == ESRCH {
            deadPID = candidate
            break
        }
        XCTAssertNotEqual(deadPID, 0)
        let ns = "sutra-\(deadPID)-9-1", bridge = "sb\(String(deadPID, radix: 36))-9"
        try Shell.check(["ip", "netns", "add", ns])
        try Shell.check(["ip", "link", "add", bridge, "type", "bridge"])
        let removed = NetworkLab.removeStale()
        XCTAssertTrue(removed.contains(ns) && removed.contains(bridge), "\(removed)")
        XCTAssertFalse(netnsList().contains(ns))
        XCTAssertFalse(linkExists(bridge))
        for name in live.resourceNames.namespaces { XCTAssertTrue(netnsList().contains(name), "live lab kept \(name)") }
        for name in live.resourceNames.interfaces { XCTAssertTrue(linkExists(name), "live lab kept \(name)") }
    }
}
