import ChaosCheck
import ChaosLab
import Foundation

/// Everything a chaos run found, for the terminal and for `--report FILE.json`. `valid` is true only when every
/// checker passed: the history is linearizable (per key, batch items included), no read missed an acknowledged
/// earlier write, no acknowledged write is missing from the final reads, every cross-shard association is
/// whole, and the cluster recovered within the bound after the faults healed.
public struct ChaosReport: Codable, Sendable {
    /// Operations of the register workload by outcome (a batch counts once).
    public struct Counts: Codable, Sendable, Equatable {
        public var ok = 0, fail = 0, info = 0
        public var total: Int { ok + fail + info }
    }

    /// Operations invoked while one fault was in force, and how many succeeded.
    public struct Availability: Codable, Sendable {
        public var step: Int
        public var kind: String
        public var nodes: [Int]
        public var startSeconds: Double
        public var healSeconds: Double?
        public var counts: Counts
        /// Operations that got a definite answer (ok, or a refusal such as a failed compare-and-set) over all
        /// invoked (1 when nothing was invoked); timeouts count against it.
        public var ratio: Double
        /// Operations completed per second during the fault over the whole run's rate (the SDK retries through
        /// a failover, so a fault shows as slower operations more than as failed ones).
        public var throughputRatio: Double?
    }

    /// Recovery time objective of one leader kill: until every shard took a write again.
    public struct RTO: Codable, Sendable {
        public var step: Int
        public var killedNode: Int
        /// Milliseconds from the kill to the first acknowledged write, invoked after the kill, on the last
        /// shard to take one; nil if some shard saw no write in time.
        public var milliseconds: Double?
    }

    /// Cross-shard associations: attempted pairs, acknowledged ones, and any with exactly one edge (or an
    /// acknowledged one missing an edge).
    public struct Associations: Codable, Sendable {
        public var attempted = 0
        public var acknowledged = 0
        public var broken: [String] = []
    }

    /// Cross-shard batches of register puts and deletes: by outcome, their items, how many acknowledged ones
    /// were read back at once by their process (read-your-writes), and the stale reads of batch items found.
    public struct Batches: Codable, Sendable {
        public var counts = Counts()
        public var items = 0
        public var readsAfterAcknowledgement = 0
        /// Stale reads (`CheckReport.staleReads`) whose missed write was a batch item, and those of them by the
        /// batch's own process.
        public var staleReadsOfItems = 0
        public var staleReadsOfOwnItems = 0
    }

    public var seed: UInt64
    public var durationSeconds: Double
    public var faults: [String]
    public var processes: Int
    public var keys: Int
    public var networkLab: String
    public var schedule: [String]
    public var faultRecords: [FaultRecord]
    public var operations: Counts
    public var operationsByFunction: [String: Counts]
    public var availability: [Availability]
    public var rto: [RTO]
    public var rtoP50Ms: Double?
    public var rtoP99Ms: Double?
    public var recoverySeconds: Double?
    public var recoveryProblem: String?
    public var associations: Associations
    public var batches: Batches
    public var check: CheckReport
    public var verdicts: [String: Bool]
    public var valid: Bool

    /// The terminal summary.
    public func summary() -> String {
        var s = "chaos run: seed \(seed), \(String(format: "%.0f", durationSeconds)) s, faults \(faults.joined(separator: ",")), \(processes) processes over \(keys) keys (\(networkLab))\n"
        s += "operations: \(operations.total) (ok \(operations.ok), fail \(operations.fail), info \(operations.info))"
        for (f, c) in operationsByFunction.sorted(by: { $0.key < $1.key }) { s += "; \(f) \(c.ok)/\(c.fail)/\(c.info)" }
        s += "\nfaults injected: \(faultRecords.filter { !$0.skipped }.count) (skipped \(faultRecords.filter(\.skipped).count))\n"
        for a in availability {
            s += String(format: "  #%d %@ on %@ at %.1f s: availability %.1f%% of %d ops, throughput %.0f%% of the run's\n", a.step, a.kind as NSString,
                        a.nodes.map(String.init).joined(separator: ",") as NSString, a.startSeconds, a.ratio * 100, a.counts.total,
                        (a.throughputRatio ?? 0) * 100)
        }
        if !rto.isEmpty {
            s += "RTO of leader kills: " + (rtoP50Ms.map { String(format: "p50 %.0f ms", $0) } ?? "-") + ", " +
                (rtoP99Ms.map { String(format: "p99 %.0f ms", $0) } ?? "-") + " over \(rto.count) kills\n"
        }
        s += "recovery after healing: " + (recoverySeconds.map { String(format: "%.2f s", $0) } ?? "FAILED: \(recoveryProblem ?? "?")") + "\n"
        s += "cross-shard associations: \(associations.attempted) pairs, \(associations.acknowledged) acknowledged, \(associations.broken.count) broken\n"
        s += "cross-shard batches: \(batches.counts.total) (ok \(batches.counts.ok), fail \(batches.counts.fail), info \(batches.counts.info)), "
            + "\(batches.items) items, \(batches.readsAfterAcknowledgement) read back at once; "
            + "stale reads of acknowledged items: \(batches.staleReadsOfItems) (\(batches.staleReadsOfOwnItems) by the writing process)\n"
        for b in associations.broken.prefix(5) { s += "  \(b)\n" }
        s += "linearizability: \(check.linearizability.verdict.rawValue) (\(check.linearizability.operationsChecked) operations)"
        if let f = check.finalReads { s += "; final reads: \(f.verdict.rawValue)" }
        s += "; stale reads: \(check.staleReads.count); lost writes: \(check.lostWrites.count); reads of never-written values: \(check.neverWrittenReads.count)\n"
        for r in check.staleReads.prefix(3) { s += "  \(r.message)\n" }
        for f in (check.linearizability.failures + (check.finalReads?.failures ?? [])).prefix(3) {
            s += f.text.split(separator: "\n").prefix(24).map { "  " + $0 }.joined(separator: "\n") + "\n"
        }
        for (name, ok) in verdicts.sorted(by: { $0.key < $1.key }) { s += "  \(ok ? "PASS" : "FAIL")  \(name)\n" }
        s += valid ? "VERDICT: valid\n" : "VERDICT: INVALID\n"
        return s
    }
}
