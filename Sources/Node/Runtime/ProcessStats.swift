import Foundation

/// The process's own resource use, read from the kernel for the standard `process_*` metrics (the names the
/// Prometheus client libraries use, so existing dashboards and alerts apply). Linux only (`/proc`).
struct ProcessStats {
    /// User plus system CPU time since the process started.
    var cpuSeconds: Double
    var residentBytes: UInt64
    var virtualBytes: UInt64
    var openDescriptors: Int
    var maxDescriptors: UInt64

    /// When this process started (unix seconds), fixed once at the first call: call it at start-up.
    static let startTime: Double = Date().timeIntervalSince1970

    static func read() -> ProcessStats {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        let page = UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
        // statm: total program size and resident set, in pages.
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ").compactMap { UInt64($0) } ?? []
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        // Each entry of /proc/self/fd is one open descriptor; the listing's own (closed right after) is not counted.
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { max(0, $0 - 1) } ?? 0
        return ProcessStats(cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
                            residentBytes: statm.count > 1 ? statm[1] * page : 0,
                            virtualBytes: statm.first.map { $0 * page } ?? 0,
                            openDescriptors: fds, maxDescriptors: UInt64(limit.rlim_cur))
    }
}
