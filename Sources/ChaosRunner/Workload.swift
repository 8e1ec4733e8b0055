import Raft
import ChaosCheck
import ChaosLab
import Foundation
import SutraClient
import UV

/// The client side of a chaos run: processes that each issue one operation at a time through the SDK — gets,
/// puts and compare-and-sets on a small set of registers (concepts whose content is the value), cross-shard
/// batches of puts and deletes of those registers (each acknowledged one read back at once, `Workload+Batch`),
/// and cross-shard associations — recording every invocation and completion in the history.
///
/// Jepsen conventions: every put/cas/batch put writes a value never written before; `fail` only when the
/// operation certainly did not take effect (a refusal: precondition failed, conflict, not found, invalid);
/// `info` when the outcome is unknown (the SDK gave up: timeout) — that process then continues under a new
/// process id. Registers are spread over the shards (register i on shard i mod shards), so batches can always
/// span two shards when there are two registers and two shards.
final class Workload: Sendable {
    let options: ChaosOptions
    let history: HistoryWriter
    let clients: [SutraClient]
    let keyIDs: [String: ConceptID]
    let keyNames: [String]
    let pairs: [(ConceptID, ConceptID)]
    /// Per pair index: whether some attempt was acknowledged.
    let associationOutcomes = Locked([Int: Bool]())
    /// Every operation by outcome (a batch counts once; the progress line).
    let counts = Locked(ChaosReport.Counts())
    /// Batches by outcome, and how many reads of an item followed an acknowledged batch at once.
    let batchCounts = Locked(ChaosReport.Counts())
    let readsAfterBatch = Locked(0)
    let stop = Locked(false)

    init(options: ChaosOptions, history: HistoryWriter, clients: [SutraClient], pairs: [(ConceptID, ConceptID)]) {
        self.options = options
        self.history = history
        self.clients = clients
        keyNames = (0..<options.keys).map { "k\($0)" }
        var ids: [String: ConceptID] = [:]
        for (i, k) in keyNames.enumerated() { ids[k] = Workload.registerID(i, shards: options.shards, seed: options.seed) }
        keyIDs = ids
        self.pairs = pairs
    }

    /// Register `i`'s concept: distinct for every `i` and seed, on shard `i % shards`.
    static func registerID(_ i: Int, shards: Int, seed: UInt64) -> ConceptID {
        let hi = 0xC4A0_5000_0000_0000 | (seed & 0xFFFF_FFFF) << 8 | UInt64(i & 0xFF)
        var attempt: UInt64 = 0
        while true {
            let id = ConceptID(hi: hi, lo: UInt64(i) << 32 | attempt)
            if id.shard(of: max(1, shards)) == i % max(1, shards) { return id }
            attempt += 1
        }
    }

    static func now() -> Int64 { Int64(Monotonic.nanoseconds()) }

    /// One client process's state: its process id (a new one after an unknown outcome), how many values it has
    /// written, and what it last saw of each register (`.some(nil)`: absent).
    struct ProcessState {
        let worker: Int
        let processes: Int
        var process: Int
        var written = 0
        var lastSeen: [String: String?] = [:]

        init(worker: Int, processes: Int) {
            self.worker = worker
            self.processes = processes
            process = worker
        }

        /// A value no one has written before.
        mutating func freshValue() -> String {
            written += 1
            return "p\(worker)-\(process)-\(written)"
        }

        /// After an unknown outcome: go on as a new process that knows nothing.
        mutating func lostTrack() {
            process += processes
            lastSeen = [:]
        }
    }

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
        var state = ProcessState(worker: w, processes: options.processes)
        let client = clients[w % clients.count]
        let shards = max(1, options.shards)
        while !stop.withLock({ $0 }) {
            let roll = Double(rng.below(1000)) / 1000
            if !pairs.isEmpty && roll < options.associationShare {
                await associate(client, rng.below(pairs.count))
                continue
            }
            let special = options.associationShare + options.batchShare
            if roll >= options.associationShare && roll < special,
               let plan = BatchPlan.draw(&rng, keys: keyNames, shard: { self.keyIDs[$0]!.shard(of: shards) },
                                         present: { state.lastSeen[$0].map { $0 != nil } ?? false }) {
                await batch(client, plan, &state)
                continue
            }
            let key = keyNames[rng.below(keyNames.count)]
            let r = (roll - special) / max(0.0001, 1 - special)
            if r < 0.45 {
                await read(client, key, &state)
            } else {
                await write(client, key, cas: r >= 0.75, &state)
            }
        }
    }

    /// A linearizable get of `key`, recorded.
    func read(_ client: SutraClient, _ key: String, _ s: inout ProcessState) async {
        history.record(process: s.process, .invoke, .get, key: key, time: Workload.now())
        do {
            let c = try await client.get(keyIDs[key]!)
            let v = c.map { String(decoding: $0.content, as: UTF8.self) }
            history.record(process: s.process, .ok, .get, key: key, value: v, time: Workload.now())
            s.lastSeen[key] = .some(v)
            counts.withLock { $0.ok += 1 }
        } catch let e as SutraError where Workload.definitelyNotApplied(e) {
            history.record(process: s.process, .fail, .get, key: key, time: Workload.now())
            counts.withLock { $0.fail += 1 }
        } catch {
            // No answer: the read's outcome is unknown (it changes nothing either way).
            history.record(process: s.process, .info, .get, key: key, time: Workload.now())
            counts.withLock { $0.info += 1 }
            s.lostTrack()
        }
    }

    /// A put, or a compare-and-set expecting what this process last saw, of a fresh value; recorded.
    private func write(_ client: SutraClient, _ key: String, cas isCAS: Bool, _ s: inout ProcessState) async {
        let value = s.freshValue()
        let expected: String?? = isCAS ? (s.lastSeen[key] ?? .some(nil)) : nil
        let f: OpFunction = isCAS ? .cas : .put
        history.record(process: s.process, .invoke, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
        do {
            let concept = NewConcept(id: keyIDs[key]!, content: Array(value.utf8))
            if let expected {
                _ = try await client.put(concept, if: expected.map { .content(Array($0.utf8)) } ?? .absent)
            } else {
                _ = try await client.put(concept)
            }
            history.record(process: s.process, .ok, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
            s.lastSeen[key] = .some(value)
            counts.withLock { $0.ok += 1 }
        } catch let e as SutraError where Workload.definitelyNotApplied(e) {
            history.record(process: s.process, .fail, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
            counts.withLock { $0.fail += 1 }
            if case .preconditionFailed = e { s.lastSeen[key] = nil }
        } catch {
            history.record(process: s.process, .info, f, key: key, value: value, expected: expected ?? nil, time: Workload.now())
            counts.withLock { $0.info += 1 }
            s.lostTrack()
        }
    }

    /// Errors that prove the write was not applied; everything else (a timeout) leaves its fate unknown.
    static func definitelyNotApplied(_ e: SutraError) -> Bool {
        switch e {
        case .preconditionFailed, .conflict, .invalidArgument, .notFound, .tooLarge, .unsupportedVersion, .closed, .invalidEndpoint,
             .unauthenticated, .permissionDenied:
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
