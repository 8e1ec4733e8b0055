import ArgumentParser
import Release
import Foundation
import Raft
import RaftSim

/// `sutra-sim`: runs the deterministic Raft simulation over a seed range, or replays one seed with its trace.
struct SutraSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sutra-sim",
        abstract: "Deterministic simulation of Raft groups: faults, crashes, partitions; checks safety and liveness.",
        discussion: """
            Examples:
              sutra-sim --seeds 0..<100000            run many seeds (prints every failing seed)
              sutra-sim --seed 1234 --trace           replay one seed, printing every event
              sutra-sim --seeds 0..<200 --unsafe-local-reads   the known-bad read mode must be caught
            """,
        version: SutraRelease.version)

    @Option(help: "Seed range, as A..<B or A...B.")
    var seeds: String = "0..<1000"

    @Option(help: "Run exactly this seed (overrides --seeds).")
    var seed: UInt64?

    @Flag(help: "Print every event of the run as it happens (use with --seed).")
    var trace = false

    @Option(help: "Threads (default: the number of cores).")
    var parallelism: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Ticks of the fault phase per seed.")
    var faultTicks: Int = 300

    @Flag(help: "Known-bad mode: a node that believes it leads serves reads from local state.")
    var unsafeLocalReads = false

    @Option(help: "Read mode: mixed (the seed picks ReadIndex or lease), safe (ReadIndex only), or lease (lease reads only).")
    var reads: String = "mixed"

    @Option(help: "Stop after this many failures are printed.")
    var maxFailures: Int = 3

    @Flag(help: "Run the cluster simulation of real NodeCores (3 and 5 nodes, several shards, client workload) instead of the Raft-group simulation.")
    var cluster = false

    func parseRange() throws -> Range<UInt64> {
        if let s = seed { return s..<(s + 1) }
        if let r = seeds.range(of: "..<") {
            guard let a = UInt64(seeds[..<r.lowerBound]), let b = UInt64(seeds[r.upperBound...]), a < b else {
                throw ValidationError("--seeds: expected A..<B with A < B, got \(seeds)")
            }
            return a..<b
        }
        if let r = seeds.range(of: "...") {
            guard let a = UInt64(seeds[..<r.lowerBound]), let b = UInt64(seeds[r.upperBound...]), a <= b else {
                throw ValidationError("--seeds: expected A...B with A ≤ B, got \(seeds)")
            }
            return a..<(b + 1)
        }
        throw ValidationError("--seeds: expected A..<B or A...B, got \(seeds)")
    }

    func run() throws {
        if cluster { try runCluster(); return }
        let range = try parseRange()
        let traceAll = trace && range.count == 1
        let unsafe = unsafeLocalReads
        let ticks = faultTicks
        guard ["mixed", "safe", "lease"].contains(reads) else { throw ValidationError("--reads: expected mixed, safe or lease, got \(reads)") }
        let readMode = reads
        let start = DispatchTime.now()
        let total = range.count
        let outcome = SeedRunner.run(seeds: range, parallelism: traceAll ? 1 : parallelism, configure: { s in
            var c = SimConfig.standard(seed: s)
            c.traceAll = traceAll
            c.unsafeLocalReads = unsafe
            c.faultTicks = ticks
            if readMode == "safe" { c.readOnly = .safe } else if readMode == "lease" { c.readOnly = .leaseBased }
            return c
        }, progress: { done in
            if !traceAll && (done % 500 == 0 || done == total) {
                FileHandle.standardError.write("\r  \(done)/\(total) seeds".data(using: .utf8)!)
            }
        })
        if !traceAll { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        for f in outcome.failures.prefix(maxFailures) { print(f) }
        let s = outcome.stats
        print("""
            seeds \(range.lowerBound)..<\(range.upperBound): \(outcome.seedsRun) run, \(outcome.failures.count) failed \
            in \(String(format: "%.1f", seconds)) s
              ticks \(s.ticks), messages delivered \(s.messagesDelivered), dropped \(s.messagesDropped)
              elections \(s.elections), writes acknowledged \(s.writesAcked), linearizable reads \(s.readsServed)
              crashes \(s.crashes) (wipes \(s.wipes)), partitions \(s.partitions), transfers \(s.transfers), membership changes \(s.confChanges)
              snapshots taken \(s.snapshotsTaken), installed from leader \(s.snapshotsInstalled)
              slow fsyncs (past the lease margin) \(s.slowPersists), reads answered by a lease \(s.leaseReads)
              slowest recovery after heal: \(s.recoveryTicks) ticks
            """)
        if !outcome.failures.isEmpty {
            print("failing seeds: \(outcome.failures.map(\.seed).prefix(50).map(String.init).joined(separator: " "))")
            throw ExitCode(1)
        }
    }
}

extension SutraSim {
    /// `--cluster`: seeds of `ClusterSimulation`; a failing seed prints its trace and replay command.
    func runCluster() throws {
        let range = try parseRange()
        let traceAll = trace && range.count == 1
        let unsafe = unsafeLocalReads
        let ticks = faultTicks
        let start = DispatchTime.now()
        let outcome = ClusterSeedRunner.run(seeds: range, parallelism: traceAll ? 1 : parallelism) { s in
            var c = ClusterSimConfig.standard(seed: s)
            c.traceAll = traceAll
            c.unsafeLocalReads = unsafe
            c.faultTicks = ticks
            return c
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        for f in outcome.failures.prefix(maxFailures) { print(f) }
        let s = outcome.stats
        print("""
            cluster seeds \(range.lowerBound)..<\(range.upperBound): \(outcome.seedsRun) run, \(outcome.failures.count) failed \
            in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(outcome.seedsRun) / max(seconds, 0.001))) seeds/s)
              steps \(s.steps), frames delivered \(s.messagesDelivered), dropped \(s.messagesDropped), durable writes \(s.durableWrites)
              crashes \(s.crashes) (wipes \(s.wipes)), incarnations \(s.incarnations), partitions \(s.partitions), slow disks \(s.slowDisks)
              full disks \(s.fullDisks): WAL write attempts without space \(s.stalledWrites), client writes refused DISK_FULL \(s.writesRefusedDiskFull); every disk full at once \(s.allDisksFullWindows) times (reads checked served)
              graceful stops \(s.gracefulStops) (\(s.gracefulStopsChecked) under healthy conditions, checked to end leading nothing)
              operations ok \(s.opsOK), failed \(s.opsFailed), unknown \(s.opsUnknown); batches ok \(s.batchesOK); tried again while leadership settled \(s.leaderWaitRetries)
              reads checked \(s.readsChecked), searches checked \(s.searchesChecked), forward answers checked \(s.forwardAnswersChecked), shard reads answered by another node \(s.shardReadsAnswered)
              acknowledged writes sent again at once \(s.duplicatesSent) (\(s.duplicatesMatched) answered with the first outcome, the rest retryable or already acknowledged)
              transactions committed \(s.txnsCommitted), aborted \(s.txnsAborted); stale forward replies dropped \(s.unmatchedForwardReplies)
              snapshots streamed in chunks and installed \(s.snapshotStreamsReceived), streams abandoned (link down, no progress) \(s.snapshotStreamsFailed)
              nodes killed for good and replaced by a new node through replica moves: \(s.replacements) of \(s.replacementsBegun) begun (\(s.replacementsOfDeadReplacements) whose new node died mid-move and was replaced in turn)
              clusters grown by a node and rebalanced onto it: \(s.growths) of \(s.growthsBegun) begun
              content digests through every node once settled, each its shards' data: \(s.digestsChecked)
              replicas moved by hand (move-replica): \(s.manualMovesAsked) asked, \(s.manualMovesTaken) taken, \(s.manualMovesFinished) finished in place (the rest rolled back)
              backups begun \(s.backupsBegun), taken and checked \(s.backupsTaken) (\(s.backupEdgesChecked) edges), refused or abandoned \(s.backupsFailed); fences lifted after their life \(s.fencesExpired)
            """)
        if !outcome.failures.isEmpty {
            print("failing seeds: \(outcome.failures.map(\.seed).prefix(50).map(String.init).joined(separator: " "))")
            throw ExitCode(1)
        }
    }
}

SutraSim.main()
