import Raft
import ChaosCheck
import ChaosLab
import Foundation
import SutraClient
import UV

/// The client side of a chaos run: processes that each issue one operation at a time through the SDK — gets,
/// puts and compare-and-sets on a small set of registers (concepts whose content is the value), and
/// cross-shard associations — recording every invocation and completion in the history.
///
/// Jepsen conventions: every put/cas writes a value never written before; `fail` only when the operation
/// certainly did not take effect (a refusal: precondition failed, conflict, not found, invalid); `info` when
/// the outcome is unknown (the SDK gave up: timeout) — that process then continues under a new process id.
final class Workload: Sendable {
    let options: ChaosOptions
    let history: HistoryWriter
    let clients: [SutraClient]
    let keyIDs: [String: ConceptID]
    let keyNames: [String]
    let pairs: [(ConceptID, ConceptID)]
    /// Per pair index: whether some attempt was acknowledged.
    let associationOutcomes = Locked([Int: Bool]())
    let counts = Locked(ChaosReport.Counts())
    let stop = Locked(false)

    init(options: ChaosOptions, history: HistoryWriter, clients: [SutraClient], pairs: [(ConceptID, ConceptID)]) {
        self.options = options
        self.history = history
        self.clients = clients
        keyNames = (0..<options.keys).map { "k\($0)" }
        var ids: [String: ConceptID] = [:]
        for (i, k) in keyNames.enumerated() { ids[k] = Workload.registerID(i, seed: options.seed) }
        keyIDs = ids
        self.pairs = pairs
    }

    static func registerID(_ i: Int, seed: UInt64) -> ConceptID {
        ConceptID(hi: 0xC4A0_5000_0000_0000 | (seed & 0xFFFF_FFFF) << 8 | UInt64(i & 0xFF), lo: UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
    }

    static func now() -> Int64 { Int64(Monotonic.nanoseconds()) }

    /// Runs every process until `stop` is set.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<options.processes {
                group.addTask { await self.process(w) }
            }
        }
    }

    private func process(_ w: Int) async {
        var rng = SplitMix64(seed: options.seed &* 0x9E37_79B9 &+ UInt64(w) &+ 17)
        var process = w
        var written = 0
        var lastSeen: [String: String?] = [:]
        let client = clients[w % clients.count]
        while !stop.withLock({ $0 }) {
            let roll = Double(rng.below(1000)) / 1000
            if !pairs.isEmpty && roll < options.associationShare {
                await associate(client, rng.below(pairs.count))
                continue
            }
            let key = keyNames[rng.below(keyNames.count)]
            let id = keyIDs[key]!
            let r = (roll - options.associationShare) / max(0.0001, 1 - options.associationShare)
            if r < 0.45 {
                history.record(process: process, .invoke, .get, key: key, time: Workload.now())
                do {
                    let c = try await client.get(id)
                    let v = c.map { String(decoding: $0.content, as: UTF8.self) }
                    history.record(process: process, .ok, .get, key: key, value: v, time: Workload.now())
                    lastSeen[key] = .some(v)
                    counts.withLock { $0.ok += 1 }
                } catch let e as SutraError where Workload.definitelyNotApplied(e) {
                    history.record(process: process, .fail, .get, key: key, time: Workload.now())
                    counts.withLock { $0.fail += 1 }
                } catch {
                    // No answer: the read's outcome is unknown (it changes nothing either way).
                    history.record(process: process, .info, .get, key: key, time: Workload.now())
                    counts.withLock { $0.info += 1 }
                    process += options.processes
                    lastSeen = [:]
                }
                continue
            }
            written += 1
            let value = "p\(w)-\(process)-\(written)"
            let isCAS = r >= 0.75
            let expected: String?? = isCAS ? (lastSeen[key] ?? .some(nil)) : nil
            let f: OpFunction = isCAS ? .cas : .put
            history.record(process: process, .invoke, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
            do {
                let concept = NewConcept(id: id, content: Array(value.utf8))
                if let expected {
                    _ = try await client.put(concept, if: expected.map { .content(Array($0.utf8)) } ?? .absent)
                } else {
                    _ = try await client.put(concept)
                }
                history.record(process: process, .ok, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
                lastSeen[key] = .some(value)
                counts.withLock { $0.ok += 1 }
            } catch let e as SutraError {
                if Workload.definitelyNotApplied(e) {
                    history.record(process: process, .fail, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
                    counts.withLock { $0.fail += 1 }
                    if case .preconditionFailed = e { lastSeen[key] = nil }
                } else {
                    history.record(process: process, .info, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
                    counts.withLock { $0.info += 1 }
                    process += options.processes
                    lastSeen = [:]
                }
            } catch {
                history.record(process: process, .info, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
                counts.withLock { $0.info += 1 }
                process += options.processes
            }
        }
    }

    /// Errors that prove the write was not applied; everything else (a timeout) leaves its fate unknown.
    static func definitelyNotApplied(_ e: SutraError) -> Bool {
        switch e {
        case .preconditionFailed, .conflict, .invalidArgument, .notFound, .tooLarge, .unsupportedVersion, .closed, .invalidEndpoint:
            return true
        default:
            return false
        }
    }

    private func associate(_ client: SutraClient, _ i: Int) async {
        let (s, t) = pairs[i]
        do {
            try await client.associate(source: s, target: t, type: .causal, confidence: 1)
            associationOutcomes.withLock { $0[i] = true }
        } catch {
            associationOutcomes.withLock { if $0[i] == nil { $0[i] = false } }
        }
    }
}
