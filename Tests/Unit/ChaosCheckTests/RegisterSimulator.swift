@testable import ChaosCheck

/// A deterministic random stream for the tests (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 { splitmix64(&state) }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

/// Generates histories from a simulated linearizable store of registers: `processes` clients run concurrently;
/// every operation takes effect atomically at some step between its invoke and its completion, so the history
/// is linearizable by construction. Some operations fail (without effect) and some end `info` — their effect
/// lands before the timeout, within `ghostSteps` steps after it, or never — after which the client continues as
/// a fresh process. With `deleteRate`/`batchRate`, some operations are deletes, and some are batches of 2–3
/// puts and deletes of distinct keys applied together at one step (0: none, and the same stream as before).
struct RegisterSimulator {
    var operations = 200_000
    var keys = 50
    var processes = 8
    var seed: UInt64 = 1
    var failRate = 0.02
    var infoRate = 0.01
    /// How many steps a timed-out write may stay in flight before it lands or is lost (a Raft write lands within
    /// a few election timeouts, or never).
    var ghostSteps = 500
    var deleteRate = 0.0
    var batchRate = 0.0

    private enum Phase { case idle, invoked, applied }
    private struct Client {
        var process: Int
        var phase: Phase = .idle
        var f: OpFunction = .get
        var key = ""
        var value: String?
        var expected: String?
        var items: [BatchItemRecord]?
        var result: String?
        var succeeded = true
    }
    private struct Ghost {
        var f: OpFunction; var key: String; var value: String?; var expected: String?; var items: [BatchItemRecord]?; var step: Int
    }

    func events() -> [HistoryEvent] {
        var rng = TestRandom(seed: seed)
        var store = [String: String]()
        var written = [String: [String]]()
        var clients = (0..<processes).map { Client(process: $0) }
        var nextProcess = processes
        var ghosts = [Ghost]()   // info writes that will land later (or never)
        var events = [HistoryEvent]()
        events.reserveCapacity(2 * operations)
        var time: Int64 = 0
        var started = 0
        var nextValue = 0

        func apply(_ f: OpFunction, _ key: String, _ value: String?, _ expected: String?,
                   _ items: [BatchItemRecord]?) -> (String?, Bool) {
            switch f {
            case .get: return (store[key], true)
            case .put, .delete:
                store[key] = value
                return (value, true)
            case .cas:
                guard store[key] == expected else { return (value, false) }
                store[key] = value
                return (value, true)
            case .batch:
                for item in items ?? [] { store[item.key] = item.value }
                return (nil, true)
            }
        }

        var step = 0
        while started < operations || clients.contains(where: { $0.phase != .idle }) {
            step += 1
            time += Int64(1 + rng.below(20))
            // A timed-out write still in flight takes effect (or is dropped) within `ghostSteps` steps.
            while let i = ghosts.firstIndex(where: { $0.step <= step }) {
                let g = ghosts.remove(at: i)
                if rng.chance(0.5) { _ = apply(g.f, g.key, g.value, g.expected, g.items) }
            }
            let c = rng.below(processes)
            var client = clients[c]
            switch client.phase {
            case .idle:
                guard started < operations else { continue }
                started += 1
                client.key = "k\(rng.below(keys))"
                client.value = nil
                client.expected = nil
                client.items = nil
                if batchRate > 0 && rng.chance(batchRate) && keys >= 2 {
                    var chosen = ["k\(rng.below(keys))"]
                    while chosen.count < min(keys, 2 + rng.below(2)) {
                        let k = "k\(rng.below(keys))"
                        if !chosen.contains(k) { chosen.append(k) }
                    }
                    let items = chosen.map { k -> BatchItemRecord in
                        if rng.chance(0.2) { return .delete(k) }
                        nextValue += 1
                        written[k, default: []].append("v\(nextValue)")
                        return .put(k, "v\(nextValue)")
                    }
                    client.f = .batch
                    client.items = items
                    client.key = HistoryEvent.batchKey(items)
                    events.append(.batch(process: client.process, .invoke, items: items, time: time))
                    client.phase = .invoked
                    clients[c] = client
                    continue
                }
                if deleteRate > 0 && rng.chance(deleteRate) {
                    client.f = .delete
                } else {
                    let roll = rng.below(10)
                    client.f = roll < 4 ? .put : roll < 8 ? .get : .cas
                }
                if client.f != .get && client.f != .delete {
                    nextValue += 1
                    client.value = "v\(nextValue)"
                }
                if client.f == .cas {
                    let history = written[client.key] ?? []
                    client.expected = rng.chance(0.6) || history.isEmpty ? store[client.key]
                        : history[rng.below(history.count)]
                }
                if let v = client.value { written[client.key, default: []].append(v) }
                events.append(HistoryEvent(process: client.process, type: .invoke, f: client.f, key: client.key,
                                           value: client.value, expected: client.expected, time: time))
                client.phase = .invoked
            case .invoked:
                if rng.chance(infoRate) {
                    // Timed out: the effect lands now, later, or never.
                    if client.f != .get {
                        if rng.chance(0.4) {
                            _ = apply(client.f, client.key, client.value, client.expected, client.items)
                        } else {
                            ghosts.append(Ghost(f: client.f, key: client.key, value: client.value, expected: client.expected,
                                                items: client.items, step: step + 1 + rng.below(ghostSteps)))
                        }
                    }
                    events.append(HistoryEvent(process: client.process, type: .info, f: client.f, key: client.key,
                                               value: client.value, expected: client.expected, items: client.items, time: time))
                    client = Client(process: nextProcess)
                    nextProcess += 1
                } else if client.f != .cas && rng.chance(failRate) {
                    events.append(HistoryEvent(process: client.process, type: .fail, f: client.f, key: client.key,
                                               value: client.value, expected: client.expected, items: client.items, time: time))
                    client.phase = .idle
                } else {
                    (client.result, client.succeeded) = apply(client.f, client.key, client.value, client.expected, client.items)
                    client.phase = .applied
                }
            case .applied:
                let type: EventType = client.succeeded ? .ok : .fail
                events.append(HistoryEvent(process: client.process, type: type, f: client.f, key: client.key,
                                           value: client.f == .get ? client.result : client.value,
                                           expected: client.expected, items: client.items, time: time))
                client.phase = .idle
            }
            clients[c] = client
        }
        return events
    }
}
