import ArgumentParser
import Dispatch
import Raft

/// `sutra-bench raft`: the consensus core alone — 3 in-memory replicas in one thread, no I/O — measuring
/// committed entries per second. Each "loop turn" the leader takes a batch of proposals, then every
/// replica's Ready is persisted to MemoryStorage, its messages delivered, and `advance()` called.
struct RaftBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft", abstract: "Raft core throughput: 3 in-memory nodes, one thread, no I/O.")

    @Option(help: "Committed entries per run.")
    var entries: Int = 1_000_000

    @Option(help: "Entry payload size in bytes.")
    var size: Int = 100

    @Option(help: "Proposals per loop turn, comma-separated.")
    var batches: String = "1,16,256,1024"

    @Option(help: "Runs per batch size (the median is reported).")
    var runs: Int = 5

    func run() throws {
        let sizes = batches.split(separator: ",").compactMap { Int($0) }
        print("Raft core, 3 replicas in one thread, \(size)-byte entries, \(entries) committed entries per run, median of \(runs) runs")
        print("batch/turn   committed entries/s   messages/s   (runs)")
        for b in sizes {
            var rates: [Double] = []
            var msgRates: [Double] = []
            for _ in 0..<runs {
                let (r, m) = RaftBench.measure(entries: entries, batch: b, size: size)
                rates.append(r)
                msgRates.append(m)
            }
            rates.sort()
            msgRates.sort()
            let med = rates[rates.count / 2], mm = msgRates[msgRates.count / 2]
            let all = rates.map { String(Int($0)) }.joined(separator: " ")
            print("\(BenchFormat.pad(b, 12)) \(BenchFormat.pad(Int(med), 21)) \(BenchFormat.pad(Int(mm), 12)) (\(all))")
        }
    }


    /// Returns (committed entries/s, messages/s).
    static func measure(entries total: Int, batch: Int, size: Int) -> (Double, Double) {
        let ids: [NodeID] = [1, 2, 3]
        let storages = ids.map { _ in MemoryStorage(confState: ConfState(voters: ids)) }
        let nodes = ids.enumerated().map { i, id -> RaftNode in
            var c = RaftConfig(id: id, seed: 7)
            c.maxInflightMsgs = 256
            c.maxSizePerMsg = 1 << 20
            return RaftNode(config: c, storage: storages[i])
        }
        var inbox: [Message] = []
        var messages = 0
        var committed = 0
        var applied: [LogIndex] = [0, 0, 0]

        func pump() {
            var progress = true
            while progress {
                progress = false
                for (i, n) in nodes.enumerated() where n.hasReady() {
                    progress = true
                    let rd = n.ready()
                    let s = storages[i]
                    if let snap = rd.snapshot { s.applySnapshot(snap) }
                    if !rd.entries.isEmpty { s.append(rd.entries) }
                    if let hs = rd.hardState { s.setHardState(hs) }
                    inbox.append(contentsOf: rd.messages)
                    if i == 0 { committed += rd.committedEntries.count }
                    if let last = rd.committedEntries.last { applied[i] = last.index }
                    n.advance()
                    // Keep memory bounded: compact what every replica has applied.
                    if applied[i] > s.firstIndex() + 200_000 {
                        let upTo = applied[i] - 1000
                        try? s.createSnapshot(index: upTo, confState: n.confState, data: [])
                        try? s.compact(upTo: upTo)
                    }
                }
                if !inbox.isEmpty {
                    progress = true
                    let batchOfMessages = inbox
                    inbox.removeAll(keepingCapacity: true)
                    messages += batchOfMessages.count
                    for m in batchOfMessages { nodes[Int(m.to - 1)].step(m) }
                }
            }
        }

        nodes[0].campaign()
        pump()
        precondition(nodes[0].role == .leader, "node 1 did not become leader")
        committed = 0
        messages = 0
        let payload = [UInt8](repeating: 0xAB, count: size)
        let proposals = [[UInt8]](repeating: payload, count: batch)
        let start = DispatchTime.now().uptimeNanoseconds
        var proposed = 0
        while committed < total {
            if proposed - committed < 64 * max(batch, 16) {
                _ = try? nodes[0].propose(batch: proposals)
                proposed += batch
            }
            pump()
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (Double(committed) / seconds, Double(messages) / seconds)
    }
}
