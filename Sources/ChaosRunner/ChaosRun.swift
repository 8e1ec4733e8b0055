import ChaosCheck
import ChaosLab
import Foundation
import SutraClient
import UV

/// Why a chaos run could not be carried out at all (as opposed to a run whose checkers failed).
public struct ChaosError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// One chaos run: a real three-node cluster (in network namespaces when possible), the workload through the
/// SDK, the seeded fault schedule injected meanwhile, then healing, recovery, final reads, and every checker.
/// The processes it starts are stopped by pid before it returns, whatever happens.
public enum ChaosRun {
    public static func run(_ o: ChaosOptions, log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) async throws -> ChaosReport {
        let cutsLinks = o.faults.contains { $0.cutsLinks }
        // The schedule first: a membership fault brings in a spare node, prepared with the cluster.
        let members = [1, 2, 3]
        var scheduleOptions = ScheduleOptions(duration: o.duration, kinds: o.faults, nodes: members, shards: o.shards)
        scheduleOptions.tail = min(scheduleOptions.tail, o.duration / 4)
        let schedule = FaultSchedule.generate(seed: o.seed, options: scheduleOptions)
        let spares = schedule.steps.filter { $0.kind.changesMembership }.count
        var lab: NetworkLab?
        var labNote = "loopback, direct links"
        var clusterOptions = LabCluster.Options()
        switch o.network {
        case .none:
            if cutsLinks { log("--network none: partitions will be recorded as skipped") }
        case .proxy:
            clusterOptions.proxiedLinks = true
        case .namespaces, .auto:
            let a = NetworkLab.isAvailable()
            if a.available {
                lab = try NetworkLab(nodeIDs: Array(1...(members.count + spares)))
                labNote = "network namespaces \(lab!.subnet)"
            } else if o.network == .namespaces {
                throw ChaosError("--network namespaces: \(a.reason)")
            } else {
                log("network namespaces unavailable (\(a.reason)); node links run through the fault-injecting proxy")
                clusterOptions.proxiedLinks = true
            }
        }
        clusterOptions.nodes = members.count
        clusterOptions.spares = spares
        clusterOptions.shards = o.shards
        clusterOptions.extraFlags = o.nodeFlags
        if o.faults.contains(where: \.needsFaultInjection), !o.nodeFlags.contains("--enable-fault-injection") {
            clusterOptions.extraFlags.append("--enable-fault-injection")
        }
        clusterOptions.directory = o.directory
        let cluster = try LabCluster(binary: o.nodeBinary, lab: lab, options: clusterOptions)
        if let proxy = cluster.proxy { labNote = "loopback, links through the \(proxy.mechanism)" }
        var passed = false
        defer {
            cluster.stopAll(graceful: false, timeout: 5)
            let kept = cluster.destroy(keepFiles: !passed)
            if !passed { log("cluster files kept in \(kept)") }
            _ = lab?.destroy()
        }
        try cluster.startAll(waitReady: true, timeout: 30)
        let clients = try (0..<2).map { _ in try SutraClient(endpoints: cluster.clientEndpoints) }
        defer { let cs = clients; Task { for c in cs { await c.close() } } }

        // Concepts for cross-shard associations: 16 per shard.
        var byShard = Array(repeating: [ConceptID](), count: o.shards)
        var k: UInt64 = 1
        while byShard.contains(where: { $0.count < 16 }) {
            let id = ConceptID(hi: 0xA550_C000_0000_0000 | (o.seed & 0xFFFF_FFFF) << 8, lo: k)
            let s = id.shard(of: o.shards)
            if byShard[s].count < 16 { byShard[s].append(id) }
            k += 1
        }
        for ids in byShard {
            _ = try await clients[0].batch(ids.map { BatchItem.put(NewConcept(id: $0, text: "assoc")) })
        }
        var pairs: [(ConceptID, ConceptID)] = []
        if o.shards > 1 {
            for s in 0..<o.shards {
                for (i, src) in byShard[s].enumerated() {
                    let t = (s + 1 + i % (o.shards - 1)) % o.shards
                    pairs.append((src, byShard[t][(i * 7) % byShard[t].count]))
                    pairs.append((src, byShard[t][(i * 7 + 3) % byShard[t].count]))
                }
            }
        }

        let history: HistoryWriter
        if let path = o.historyPath {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard let h = FileHandle(forWritingAtPath: path) else { throw ChaosError("cannot write the history to \(path)") }
            history = HistoryWriter(handle: h, closesHandle: true)
        } else {
            history = HistoryWriter()
        }
        let workload = Workload(options: o, history: history, clients: clients, pairs: pairs)
        log("schedule (seed \(o.seed)):\n" + schedule.steps.map { "  \($0)" }.joined(separator: "\n"))
        let injector = FaultInjector(cluster: cluster, lab: lab, clock: { Monotonic.nanoseconds() }, log: { line in log("  fault: " + line) })
        let startNanos = Monotonic.nanoseconds()

        // Faults on their own thread (the injector blocks while it waits between steps).
        let injected = Locked<[FaultRecord]?>(nil)
        let thread = Thread { injected.withLock { $0 = injector.run(schedule) } }
        thread.start()
        let load = Task { await workload.run() }
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard o.progress else { continue }
                let c = workload.counts.withLock { $0 }
                let t = Double(Monotonic.nanoseconds() - startNanos) / 1e9
                let faults = injector.records.count
                FileHandle.standardError.write(Data(String(format: "\r%6.1fs  ops %7d  ok %7d  fail %6d  info %5d  faults %d/%d   ",
                                                           t, c.total, c.ok, c.fail, c.info, faults, schedule.steps.count).utf8))
            }
        }
        // Until the schedule has run and healed, and at least the whole duration has passed.
        let endNanos = startNanos + UInt64(o.duration * 1e9)
        while injected.withLock({ $0 }) == nil || Monotonic.nanoseconds() < endNanos { try await Task.sleep(for: .milliseconds(100)) }
        let records = injected.withLock { $0 }!
        let faultsEnd = Monotonic.nanoseconds()

        // Healed: every shard must get a leader and take a write within the bound (writes continue meanwhile).
        var recovery: Double?
        var recoveryProblem: String?
        do {
            recovery = try await recover(cluster, clients[0], shards: o.shards, seed: o.seed, bound: o.recoveryBound, since: faultsEnd)
        } catch {
            recoveryProblem = "\(error)"
        }
        workload.stop.withLock { $0 = true }
        await load.value
        progress.cancel()
        if o.progress { FileHandle.standardError.write(Data("\n".utf8)) }

        // Final reads of every key, linearizable, retried until they succeed.
        var finals: [String: String?] = [:]
        for key in workload.keyNames {
            for attempt in 0..<20 {
                do {
                    let c = try await clients[0].get(workload.keyIDs[key]!)
                    finals[key] = .some(c.map { String(decoding: $0.content, as: UTF8.self) })
                    break
                } catch {
                    if attempt == 19 { log("final read of \(key) failed: \(error)") }
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
        }
        try? history.flush()

        // Associations: both edges or neither; acknowledged → both.
        var assoc = ChaosReport.Associations()
        let outcomes = workload.associationOutcomes.withLock { $0 }
        assoc.attempted = outcomes.count
        var outs: [ConceptID: Set<ConceptID>] = [:], ins: [ConceptID: Set<ConceptID>] = [:]
        for (i, acked) in outcomes.sorted(by: { $0.key < $1.key }) {
            let (s, t) = pairs[i]
            if outs[s] == nil { outs[s] = Set(try await clients[0].neighbors(of: s, direction: .outgoing).map(\.other)) }
            if ins[t] == nil { ins[t] = Set(try await clients[0].neighbors(of: t, direction: .incoming).map(\.other)) }
            let out = outs[s]!.contains(t), inc = ins[t]!.contains(s)
            if acked { assoc.acknowledged += 1 }
            if out != inc || (acked && !out) {
                assoc.broken.append("\(s)→\(t): \(acked ? "acknowledged" : "not acknowledged"), out-edge \(out), in-edge \(inc)")
            }
        }

        let events: [HistoryEvent] = o.historyPath.map { (try? HistoryReader.read(path: $0)) ?? [] } ?? history.events
        let check = HistoryChecker.check(events: events, finals: finals, timeLimit: o.checkTimeLimit)
        let paired = PairedHistory(events: events).operations
        let calls = clientCalls(paired)
        var batches = ChaosReport.Batches()
        batches.counts = counts(calls.filter { $0.batch != nil })
        batches.items = paired.filter { $0.batch != nil }.count
        batches.readsAfterAcknowledgement = workload.readsAfterBatch.withLock { $0 }
        batches.staleReadsOfItems = check.staleReads.filter { $0.newerWriteBatch != nil }.count
        batches.staleReadsOfOwnItems = check.staleReads.filter { $0.newerWriteBatch != nil && $0.ownWrite }.count
        var report = ChaosReport(
            seed: o.seed, durationSeconds: Double(faultsEnd - startNanos) / 1e9, faults: o.faults.map(\.rawValue), processes: o.processes,
            keys: o.keys, networkLab: labNote, schedule: schedule.steps.map(\.description), faultRecords: records,
            operations: counts(calls), operationsByFunction: Dictionary(grouping: calls, by: callName).mapValues(counts),
            availability: availability(records, calls, runSeconds: Double(faultsEnd - startNanos) / 1e9), rto: [], rtoP50Ms: nil, rtoP99Ms: nil,
            recoverySeconds: recovery, recoveryProblem: recoveryProblem, associations: assoc, batches: batches, check: check,
            verdicts: [:], valid: false)
        report.rto = rtos(records, paired, keyShard: { workload.keyIDs[$0]!.shard(of: o.shards) }, shards: o.shards)
        let ms = report.rto.compactMap(\.milliseconds).sorted()
        if !ms.isEmpty {
            report.rtoP50Ms = ms[min(ms.count - 1, ms.count / 2)]
            report.rtoP99Ms = ms[min(ms.count - 1, Int(Double(ms.count) * 0.99))]
        }
        report.verdicts = [
            "linearizable (per key, Wing–Gong search)": check.linearizability.verdict == .ok && check.historyProblems.isEmpty,
            "no acknowledged write lost (final reads)": (check.finalReads?.verdict ?? .unknown) == .ok && check.lostWrites.isEmpty
                && finals.count == workload.keyNames.count,
            "no read of a never-written value": check.neverWrittenReads.isEmpty,
            "no stale read (every read saw the acknowledged writes before it, batch items included)": check.staleReads.isEmpty,
            "every cross-shard association whole": assoc.broken.isEmpty,
            "recovered within \(Int(o.recoveryBound)) s after healing": recovery != nil,
        ]
        report.valid = report.verdicts.values.allSatisfy { $0 }
        if let path = o.reportPath {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(report).write(to: URL(fileURLWithPath: path))
        }
        passed = report.valid
        return report
    }

    // MARK: pieces

    /// Seconds from `since` until every shard has a leader and took a write (a probe concept per shard).
    static func recover(_ cluster: LabCluster, _ client: SutraClient, shards: Int, seed: UInt64, bound: Double, since: UInt64) async throws -> Double {
        let deadline = ContinuousClock.now + .milliseconds(Int(bound * 1000))
        var probes: [Int: ConceptID] = [:]
        var k: UInt64 = 1
        while probes.count < shards {
            let id = ConceptID(hi: 0x9B0B_E000_0000_0000 | (seed & 0xFFFF), lo: k)
            if probes[id.shard(of: shards)] == nil { probes[id.shard(of: shards)] = id }
            k += 1
        }
        var pending = Set(0..<shards)
        while !pending.isEmpty {
            guard ContinuousClock.now < deadline else { throw ChaosError("shards \(pending.sorted()) took no write within \(bound) s of healing") }
            for s in pending.sorted() {
                if (try? await client.put(NewConcept(id: probes[s]!, text: "probe"))) != nil { pending.remove(s) }
            }
        }
        return Double(Monotonic.nanoseconds() - since) / 1e9
    }

    /// One operation per client call: a batch's first item stands for the whole batch.
    static func clientCalls(_ ops: [HistoryOperation]) -> [HistoryOperation] {
        ops.filter { ($0.batch?.item ?? 0) == 0 }
    }

    /// The function of a client call ("batch" for a batch's item).
    static func callName(_ op: HistoryOperation) -> String { op.batch == nil ? op.f.rawValue : "batch" }

    static func counts(_ ops: [HistoryOperation]) -> ChaosReport.Counts {
        var c = ChaosReport.Counts()
        for op in ops {
            switch op.outcome {
            case .ok: c.ok += 1
            case .fail: c.fail += 1
            case .info: c.info += 1
            }
        }
        return c
    }

    static func availability(_ records: [FaultRecord], _ ops: [HistoryOperation], runSeconds: Double) -> [ChaosReport.Availability] {
        let overall = runSeconds > 0 ? Double(ops.count) / runSeconds : 0
        return records.filter { !$0.skipped }.map { r in
            let from = Int64(r.startNanos), to = Int64(r.healNanos ?? UInt64(Int64.max))
            let c = counts(ops.filter { $0.invokeTime >= from && $0.invokeTime <= to })
            let seconds = r.heal.map { $0 - r.start } ?? 0
            let throughput: Double? = seconds > 0 && overall > 0 ? Double(c.total) / seconds / overall : nil
            return ChaosReport.Availability(step: r.step, kind: r.kind.rawValue, nodes: r.nodes, startSeconds: r.start, healSeconds: r.heal,
                                            counts: c, ratio: c.total == 0 ? 1 : Double(c.ok + c.fail) / Double(c.total),
                                            throughputRatio: throughput)
        }
    }

    /// For each kill: from the kill until every shard acknowledged a write invoked after it.
    static func rtos(_ records: [FaultRecord], _ ops: [HistoryOperation], keyShard: (String) -> Int, shards: Int) -> [ChaosReport.RTO] {
        let writes = ops.filter { $0.isWrite && $0.outcome == .ok }
        let written = Set(writes.map { keyShard($0.key) })
        return records.filter { $0.kind == .kill && !$0.skipped }.map { r in
            let t0 = Int64(r.startNanos)
            var firstPerShard: [Int: Int64] = [:]
            for w in writes where w.invokeTime >= t0 {
                let s = keyShard(w.key)
                if let c = w.completionTime, c < firstPerShard[s] ?? .max { firstPerShard[s] = c }
            }
            let ms: Double? = firstPerShard.count == written.count ? Double(firstPerShard.values.max()! - t0) / 1e6 : nil
            return ChaosReport.RTO(step: r.step, killedNode: r.nodes.first ?? 0, milliseconds: ms)
        }
    }
}
