import Raft

/// The global record the invariants are checked against: who led each term, the identity of every
/// (index, term) ever written, the committed term and applied-state hash at every index, and the
/// acknowledged writes.
final class Checker {
    private var leaderOfTerm: [Term: NodeID] = [:]
    private struct Key: Hashable { var index: LogIndex; var term: Term }
    private var identity: [Key: (payload: UInt64, prevTerm: Term?)] = [:]
    /// committedTerms[i] = term of the committed entry at i (0 = not yet known).
    private var committedTerms: [Term] = [0]
    /// appliedHashes[i] = state-machine hash after applying entry i (0 = not yet known).
    private var appliedHashes: [UInt64] = [0]
    private(set) var acked: [(index: LogIndex, term: Term)] = []
    /// The highest index of any acknowledged write.
    private(set) var maxAcked: LogIndex = 0

    /// The highest index known to be committed (0 if none).
    var highestCommitted: LogIndex { LogIndex(committedTerms.count - 1) }

    func committedTerm(_ i: LogIndex) -> Term? {
        Int(i) < committedTerms.count && committedTerms[Int(i)] != 0 ? committedTerms[Int(i)] : nil
    }

    /// Election safety: at most one leader per term. Leader completeness: the new leader holds every
    /// entry known to be committed (those it has not compacted into its snapshot).
    func newLeader(_ n: SimNode, term: Term, sim: Simulation) {
        if let other = leaderOfTerm[term], other != n.id {
            sim.fail("election safety: nodes \(other) and \(n.id) both leaders of term \(term)")
            return
        }
        leaderOfTerm[term] = n.id
        let r = n.raft!
        var i = max(r.firstIndex, 1)
        while Int(i) < committedTerms.count {
            let want = committedTerms[Int(i)]
            if want != 0 {
                let have = r.term(at: i)
                if have != want {
                    sim.fail("leader completeness: new leader \(n.id) (term \(term)) has \(have.map { "term \($0)" } ?? "no entry") at \(i), but the committed entry there has term \(want)")
                    return
                }
            }
            i += 1
        }
    }

    /// Log matching, checked inductively: an (index, term) pair always names the same payload and the same
    /// predecessor term, so two logs that share an entry share everything before it.
    func checkLogMatching(_ entries: [Entry], node n: SimNode, sim: Simulation) {
        for e in entries {
            let prev: Term? = e.index <= 1 ? 0 : (try? n.storage.term(e.index - 1))
            let key = Key(index: e.index, term: e.term)
            let payload = SimNode.payloadHash(e)
            if let seen = identity[key] {
                if seen.payload != payload {
                    sim.fail("log matching: node \(n.id) holds a different entry at (\(e.index), \(e.term)) than another node")
                    return
                }
                if let a = seen.prevTerm, let b = prev, a != b {
                    sim.fail("log matching: at (\(e.index), \(e.term)) node \(n.id) has previous term \(b), another node \(a)")
                    return
                }
            } else {
                identity[key] = (payload, prev)
            }
        }
    }

    /// State machine safety: every replica's state after applying index i is the same.
    func checkApplied(index: LogIndex, hash: UInt64, node: NodeID, sim: Simulation) {
        if let first = Checker.recordFirst(hash, at: index, in: &appliedHashes), first != hash {
            sim.fail("state machine safety: node \(node) applied a different entry at \(index) than another node")
        }
    }

    /// No committed entry is ever replaced: once index i is committed with term t, it stays t everywhere.
    func recordCommitted(index: LogIndex, term: Term, node: NodeID, sim: Simulation) {
        if let first = Checker.recordFirst(term, at: index, in: &committedTerms), first != term {
            sim.fail("committed entry lost: index \(index) was committed with term \(first), node \(node) now commits term \(term)")
        }
    }

    /// Stores `value` at `index` if nothing (0) is recorded there yet; otherwise returns what was recorded first.
    private static func recordFirst(_ value: UInt64, at index: LogIndex, in table: inout [UInt64]) -> UInt64? {
        let i = Int(index)
        if i >= table.count { table.append(contentsOf: repeatElement(0, count: i - table.count + 1)) }
        if table[i] == 0 {
            table[i] = value
            return nil
        }
        return table[i]
    }

    func acknowledge(index: LogIndex, term: Term) {
        acked.append((index, term))
        maxAcked = max(maxAcked, index)
    }

    /// Durability at the end: every acknowledged write is still in the leader's log (or its snapshot).
    func checkAcknowledgedWritesPresent(in l: SimNode, sim: Simulation) {
        let r = l.raft!
        for (i, t) in acked {
            if i < r.firstIndex { continue }   // compacted into the snapshot, whose hash was checked
            if r.term(at: i) != t {
                sim.fail("acknowledged write at (\(i), \(t)) is missing from leader \(l.id)'s log")
                return
            }
        }
    }
}
