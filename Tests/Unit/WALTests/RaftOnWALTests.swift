import Foundation
import Raft
@testable import WAL
import XCTest

/// The consensus core running on the durable log: three replicas, each persisting every Ready through its own
/// LogEngine (one frame + fdatasync per Ready), then one replica restarted from its WAL alone.
final class RaftOnWALTests: WALTestCase {
    func testThreeReplicasPersistThroughTheWALAndOneRestarts() throws {
        let ids: [NodeID] = [1, 2, 3]
        var engines: [LogEngine] = []
        for id in ids {
            var o = LogEngine.Options()
            o.segmentSize = 4 << 10
            let e = try LogEngine(directory: dir + "/n\(id)", options: o)
            var b = WriteBatch()
            b.setInitialMembership(group: 5, ConfState(voters: ids))
            try e.write(b)
            engines.append(e)
        }
        var nodes = ids.map { RaftNode(config: RaftConfig(id: $0, seed: 1), storage: engines[Int($0 - 1)].group(5)) }
        var applied: [[Entry]] = [[], [], []]

        func pump() throws {
            var busy = true
            var inbox: [Message] = []
            while busy {
                busy = false
                for (k, n) in nodes.enumerated() where n.hasReady() {
                    busy = true
                    let rd = n.ready()
                    var b = WriteBatch()
                    b.add(rd, group: 5)
                    if !b.isEmpty { try engines[k].write(b) }
                    inbox += rd.messages
                    applied[k] += rd.committedEntries.filter { !$0.data.isEmpty }
                    n.advance()
                }
                if !inbox.isEmpty {
                    busy = true
                    let m = inbox
                    inbox = []
                    for msg in m { nodes[Int(msg.to - 1)].step(msg) }
                }
            }
        }

        nodes[0].campaign()
        try pump()
        XCTAssertEqual(nodes[0].role, .leader)
        for k in 0..<300 {
            try nodes[0].propose(Array("value-\(k)".utf8))
            if k % 7 == 0 { try pump() }
        }
        try pump()
        XCTAssertEqual(applied[2].count, 300)
        let before = (nodes[2].term, nodes[2].lastIndex, nodes[2].commitIndex)
        XCTAssertGreaterThan(engines[2].segmentCount, 1, "the log rotated segments")

        // Restart replica 3 from its WAL: same term, log and commit; it re-applies the committed entries.
        engines[2].close()
        var o = LogEngine.Options()
        o.segmentSize = 4 << 10
        engines[2] = try LogEngine(directory: dir + "/n3", options: o)
        nodes[2] = RaftNode(config: RaftConfig(id: 3, seed: 2), storage: engines[2].group(5))
        XCTAssertEqual(nodes[2].term, before.0)
        XCTAssertEqual(nodes[2].lastIndex, before.1)
        XCTAssertEqual(nodes[2].commitIndex, before.2)
        applied[2] = []
        try nodes[0].propose(Array("after-restart".utf8))
        try pump()
        XCTAssertEqual(applied[2].map(\.data), applied[0].map(\.data), "the restarted replica re-applied the same entries and the new one")
        XCTAssertEqual(applied[2].last?.data, Array("after-restart".utf8))
    }
}
