import ArgumentParser
import Dispatch
import Foundation
import Raft
import WAL

/// `sutra-bench wal`: durable appends per second at several batch sizes per fsync, next to this disk's raw
/// fsync rate measured the same way (append a small record, fdatasync), in the same run.
struct WALBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal", abstract: "Durable log: appends/s and fsyncs/s at batch sizes 1, 16, 256 vs raw fdatasync.")

    @Option(help: "Directory on the disk to measure (default: a temporary directory under the current one).")
    var dir: String?

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 2

    @Option(help: "Entry payload size in bytes.")
    var size: Int = 100

    @Option(help: "Entries per fsync, comma-separated.")
    var batches: String = "1,16,256"

    @Option(help: "Runs per measurement (the median is reported).")
    var runs: Int = 5

    func run() throws {
        let base = dir ?? FileManager.default.currentDirectoryPath + "/.build/bench-wal-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: base) } }
        print("WAL on \(base): \(size)-byte entries, \(String(format: "%.1f", seconds)) s per run, median of \(runs) runs")
        var raw: [Double] = []
        for k in 0..<runs { raw.append(try WALBench.rawFsyncRate(dir: base + "/raw-\(k)", seconds: seconds, recordSize: size + 40)) }
        let rawMedian = BenchFormat.median(raw)
        print("raw append+fdatasync: \(Int(rawMedian)) fsyncs/s  (runs: \(raw.map { String(Int($0)) }.joined(separator: " ")))")
        print("batch/fsync   entries/s   fsyncs/s   vs raw fsync   (entries/s per run)")
        for b in batches.split(separator: ",").compactMap({ Int($0) }) {
            var rates: [Double] = []
            for k in 0..<runs { rates.append(try WALBench.durableRate(dir: base + "/wal-\(b)-\(k)", batch: b, size: size, seconds: seconds)) }
            let m = BenchFormat.median(rates)
            let fsyncs = m / Double(b)
            print("\(BenchFormat.pad(b, 13)) \(BenchFormat.pad(Int(m), 11)) \(BenchFormat.pad(Int(fsyncs), 10)) \(BenchFormat.pad(Int(fsyncs / rawMedian * 100), 3))%           (\(rates.map { String(Int($0)) }.joined(separator: " ")))")
        }
    }



    /// Entries/s made durable through the LogEngine: each write = `batch` entries + a hard state, one fdatasync.
    static func durableRate(dir: String, batch: Int, size: Int, seconds: Double) throws -> Double {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try LogEngine(directory: dir)
        defer { engine.close() }
        let payload = [UInt8](repeating: 0x5A, count: size)
        var next: LogIndex = 1
        var written = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let stop = start + UInt64(seconds * 1e9)
        while DispatchTime.now().uptimeNanoseconds < stop {
            var ents: [Entry] = []
            ents.reserveCapacity(batch)
            for _ in 0..<batch {
                ents.append(Entry(term: 1, index: next, data: payload))
                next += 1
            }
            var b = WriteBatch()
            b.append(group: 1, entries: ents)
            b.setHardState(group: 1, HardState(term: 1, vote: 1, commit: next - 1))
            try engine.write(b)
            written += batch
            if next > 200_000 && next % 100_000 < LogIndex(batch) {
                var c = WriteBatch()
                c.compact(group: 1, upTo: next - 50_000)
                try engine.write(c)
            }
        }
        return Double(written) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// The disk's own rate for the same pattern: append `recordSize` bytes to a file, fdatasync, repeat.
    static func rawFsyncRate(dir: String, seconds: Double, recordSize: Int) throws -> Double {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fd = open(dir + "/raw", O_CREAT | O_RDWR | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create \(dir)/raw") }
        defer { close(fd) }
        let buf = [UInt8](repeating: 1, count: recordSize)
        var offset = 0, n = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let stop = start + UInt64(seconds * 1e9)
        while DispatchTime.now().uptimeNanoseconds < stop {
            _ = buf.withUnsafeBytes { pwrite(fd, $0.baseAddress, recordSize, off_t(offset)) }
            fdatasync(fd)
            offset += recordSize
            n += 1
        }
        return Double(n) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
