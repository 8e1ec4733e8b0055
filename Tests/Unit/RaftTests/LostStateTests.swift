@testable import Raft
import XCTest

/// A replica that lost its durable state (a wiped data directory) and restarts with the same id: it is caught up
/// again, and until it is it neither votes nor counts toward commits (RaftNode+LostState.swift).
final class LostStateTests: XCTestCase {
    /// Replaces `id` by a blank replica over blank storage of the group's creation membership.
    private func wipe(_ c: TestCluster, _ id: NodeID, voters: [NodeID] = [1, 2, 3]) {
        let s = MemoryStorage(confState: ConfState(voters: voters))
        c.storages[id] = s
        var cfg = RaftConfig(id: id, seed: 77)
        c.configure(&cfg)
        c.nodes[id] = RaftNode(config: cfg, storage: s)
        c.applied[id] = []
    }

    private func data(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// An idle group (nothing new to replicate) still notices the wiped follower from its heartbeat answer and
    /// sends it everything again; the follower stops abstaining once caught up.
    func testAWipedFollowerOfAnIdleGroupIsCaughtUp() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        for k in 0..<5 { try! c[1].propose(data("w\(k)")) }
        c.settle()
        c.tickAll(1)
        XCTAssertEqual(c.appliedData(3).count, 5)
        let last = c[1].lastIndex
        wipe(c, 3)
        XCTAssertEqual(c[1].progressState(of: 3)?.match, last, "the leader still believes 3 holds everything")
        c.tickAll(3)
        XCTAssertEqual(c[3].lastIndex, last, "the wiped follower holds the whole log again")
        XCTAssertEqual(c[3].commitIndex, last)
        XCTAssertEqual(c.appliedData(3), (0..<5).map { data("w\($0)") })
        XCTAssertFalse(c[3].isAbstaining, "caught up: it votes again")
        XCTAssertEqual(c[3].vote, 1, "it records the leader as its vote of the term it may have voted in before")
    }

    /// The Raft simulation's seeds 9314, 18855, 21271…: the wiped replica catches up in several appends. After the
    /// first, it holds a committed entry of the leader's term — which used to end its abstention — but not the
    /// later entries it had acknowledged before the wipe. Voting then, it elected a node missing those committed
    /// entries. It must abstain until the leader has seen it reach the leader's log as of its first abstaining
    /// answer, and say so in an append.
    func testAReplicaCaughtUpOnlyPartlyStillAbstains() {
        let c = TestCluster([1, 2, 3]) { cfg in classic(&cfg); cfg.maxSizePerMsg = 16 }
        c.elect(1)
        for k in 0..<4 { try! c[1].propose(data("early\(k)")) }
        c.settle()
        c.tickAll(1)
        c.cut = [[1, 2], [2, 1]]
        var late: [LogIndex] = []
        for k in 0..<4 { late.append(try! c[1].propose(data("late\(k)"))) }
        c.settle()
        XCTAssertEqual(c[1].commitIndex, late.last!, "the late entries are committed on {1, 3}")
        XCTAssertLessThan(c[2].lastIndex, late.first!, "node 2 lacks them")
        wipe(c, 3)
        // Node 3 gets the early entries back, then every further append to it is lost.
        let earlyEnd = late.first! - 1
        c.filter = { m in !(m.type == .append && m.to == 3 && (m.entries.last?.index ?? m.index) > earlyEnd) }
        c.tickAll(4)
        XCTAssertEqual(c[3].lastIndex, earlyEnd)
        XCTAssertEqual(c[3].term(at: c[3].commitIndex), c[1].term, "it holds a committed entry of the leader's term")
        XCTAssertTrue(c[3].isAbstaining, "but not every one it acknowledged: it still abstains")
        // The leader dies. Node 2 lacks the late entries: it must not be elected with node 3's vote.
        c.filter = { _ in true }
        c.cut = []
        c.isolate(1)
        for _ in 0..<60 { c.tickAll(1) }
        XCTAssertFalse(c.leaders.contains(2), "elected without committed entries \(late)")
        XCTAssertTrue(c[3].isAbstaining)
        // Node 1 returns: node 3 is caught up completely, told so, and votes again.
        c.heal()
        for _ in 0..<100 where !(c.leaders == [1] && !c[3].isAbstaining) { c.tickAll(1) }
        XCTAssertEqual(c.leaders, [1])
        XCTAssertFalse(c[3].isAbstaining)
        XCTAssertEqual(c.appliedData(3).suffix(4), (0..<4).map { data("late\($0)") })
    }

    /// The entry `x` lives on {1, 3} only; 3 is wiped and 1 is down. Node 2, which lacks `x`, must not be elected
    /// with the wiped node's vote (that would lose an acknowledged write): the group waits for node 1.
    func testAWipedReplicaDoesNotElectACandidateMissingCommittedEntries() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.tickAll(1)
        c.cut = [[1, 2], [2, 1]]
        let x = try! c[1].propose(data("x"))
        c.settle()
        XCTAssertEqual(c[1].commitIndex, x, "committed on {1, 3}")
        wipe(c, 3)
        c.isolate(1)
        // 3 learns nothing from a leader first: its evidence of history is 2's non-empty log.
        c.elect(2)
        XCTAssertNotEqual(c[2].role, .leader, "no leader without the entry x")
        XCTAssertTrue(c[3].isAbstaining)
        c.tick(2, 40)
        c.settle()
        XCTAssertNotEqual(c[2].role, .leader)
        // Node 1 comes back: a leader with x is elected and 3 catches up.
        c.heal()
        // Node 1 still believes it leads term 1 (classic Raft: nobody tells it); wait for a leader of the newest term.
        func settled() -> Bool { c.leaders.count == 1 && c[c.leaders[0]].term == [1, 2, 3].map { c[$0].term }.max() }
        for _ in 0..<300 where !settled() { c.tickAll(1) }
        c.tickAll(3)
        XCTAssertEqual(c.leaders, [1], "only node 1 holds x")
        XCTAssertEqual(c.appliedData(3), [data("x")])
        XCTAssertFalse(c[3].isAbstaining)
    }

    /// A new leader whose first entry is not yet committed cannot commit it with the acknowledgement of a replica
    /// that abstains: that replica may have acknowledged entries before its wipe that this count would forget.
    func testAbstainingAcknowledgementsDoNotCountTowardCommit() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        try! c[1].propose(data("x"))
        c.settle()
        c.tickAll(1)
        let before = c[1].commitIndex
        wipe(c, 3)
        c.isolate(3)
        c.filter = { !($0.type == .append && $0.from == 2 && $0.to == 1) }
        c.elect(2)
        XCTAssertEqual(c[2].role, .leader)
        let own = c[2].lastIndex
        XCTAssertEqual(c[2].commitIndex, before, "its empty entry needs a second copy")
        c.heal()
        // The leader's word that node 3 may rejoin is held back: node 3 keeps abstaining.
        c.filter = { !($0.type == .append && $0.from == 2 && $0.to == 1) && $0.context != Message.rejoinContext }
        c.tickAll(3)
        XCTAssertEqual(c[3].lastIndex, own, "the wiped replica received the new leader's entry…")
        XCTAssertTrue(c[3].isAbstaining, "…but was not told it holds everything the leader had")
        XCTAssertEqual(c[2].commitIndex, before, "…and its acknowledgement is not counted")
        // Told (it holds the leader's log through the leader's last index of its first abstaining answer, so every
        // entry ever committed), it votes and acknowledges again: the entry commits on {2, 3}.
        c.filter = { !($0.type == .append && $0.from == 2 && $0.to == 1) }
        c.tickAll(3)
        XCTAssertFalse(c[3].isAbstaining)
        XCTAssertEqual(c[3].vote, 2)
        XCTAssertEqual(c[2].commitIndex, own)
        c.filter = { _ in true }
        c.tickAll(3)
        XCTAssertEqual(c.appliedData(3), [data("x")])
    }

    /// A blank replica that hears of a history grants no vote, and its abstention survives a restart (it is the
    /// hard state's vote).
    func testABlankReplicaThatHearsOfAHistoryAbstainsDurably() {
        let s = Solo(id: 3)
        s.node.step(Message(type: .vote, to: 3, from: 2, term: 5, logTerm: 4, index: 7))
        let rd = s.drain()
        XCTAssertTrue(s.node.isAbstaining)
        XCTAssertEqual(rd.hardState?.vote, RaftNode.abstainVote)
        XCTAssertEqual(rd.messages.filter { $0.type == .voteResponse }.map(\.reject), [true])
        var cfg = RaftConfig(id: 3, seed: 4)
        classic(&cfg)
        let restarted = RaftNode(config: cfg, storage: s.storage)
        XCTAssertTrue(restarted.isAbstaining, "restarted mid catch-up: still abstaining")
        restarted.step(Message(type: .vote, to: 3, from: 1, term: 6, logTerm: 4, index: 9))
        XCTAssertEqual(restarted.ready().messages.filter { $0.type == .voteResponse }.map(\.reject), [true])
        for _ in 0..<100 { restarted.tick() }
        XCTAssertEqual(restarted.role, .follower, "an abstaining replica never campaigns")
    }

    /// A group's first election (every replica at term 0 with an empty log) is no evidence of a history.
    func testTheFirstElectionOfANewGroupIsNoEvidence() {
        let s = Solo(id: 3)
        s.node.step(Message(type: .vote, to: 3, from: 1, term: 1, logTerm: 0, index: 0))
        XCTAssertFalse(s.node.isAbstaining)
        XCTAssertEqual(s.drain().messages.filter { $0.type == .voteResponse }.map(\.reject), [false])
    }

    /// Leadership is never transferred to a replica that abstains (it could not campaign).
    func testNoTransferToAnAbstainingReplica() {
        let c = TestCluster([1, 2, 3], configure: classic)
        c.elect(1)
        c.tickAll(1)
        wipe(c, 3)
        c.filter = { !($0.type == .append && $0.to == 3) }
        c.tickAll(2)
        XCTAssertTrue(c[3].isAbstaining)
        XCTAssertThrowsError(try c[1].transferLeadership(to: 3))
    }
}
