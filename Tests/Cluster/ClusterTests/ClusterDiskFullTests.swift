import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A full disk, on real processes: every node's data directory is its own small tmpfs the test mounts (and
/// unmounts). Writes are refused with 507 DISK_FULL, reads are served, no node exits, writes resume once the
/// file systems are grown (`mount -o remount,size=…`), and every acknowledged write is still there.
/// Needs permission to mount (root); skipped, saying so, without it.
final class ClusterDiskFullTests: XCTestCase {
    var cluster: LocalTestCluster!
    private var mounts: [String] = []

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) > 0
        cluster?.stopAll()
        for m in mounts { _ = shell("umount", m) }
        mounts = []
        cluster?.destroy(keepLogs: failed)
        cluster = nil
    }

    /// Runs a command (mount, umount), returning its exit status.
    @discardableResult
    private func shell(_ args: String...) -> Int32 {
        (try? runProgram("/usr/bin/env", args))?.status ?? -1
    }

    /// Mounts a `size` tmpfs as every node's data directory, or skips the test when mounting is not allowed.
    private func mountSmallDisks(_ c: LocalTestCluster, size: String) throws {
        for id in 1...c.nodeCount {
            let path = "\(c.dir)/node\(id)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard shell("mount", "-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path) == 0 else {
                throw XCTSkip("cannot mount a tmpfs here (needs root): the disk-full test did not run")
            }
            mounts.append(path)
        }
    }

    private func growDisks(to size: String) {
        for m in mounts { XCTAssertEqual(shell("mount", "-o", "remount,size=\(size)", m), 0, "remount \(m)") }
    }

    private func body(_ n: Int) -> String {
        // 32 KiB of content: a 20 MiB file system fills after a few hundred writes.
        "{\"id\":\"\(conceptID(n))\",\"content\":\"\(String(repeating: "x", count: 32 << 10))-\(n)\"}"
    }

    /// Writes concepts 1, 2, … until one is refused with 507 (within `timeout`); returns those acknowledged and
    /// the refusal's message. A write that fails otherwise (a timeout while the disk fills) is not counted as
    /// acknowledged.
    private func writeUntilRefused(timeout: Double = 60) -> (acked: [Int], refusal: String?) {
        var acked: [Int] = []
        let deadline = Date().addingTimeInterval(timeout)
        var n = 0
        while Date() < deadline {
            n += 1
            let r = cluster.httpToLeader(via: 1 + n % 3, "POST", "/v1/concepts", body(n))
            if r.status == 200 { acked.append(n); continue }
            if r.status == 507 {
                XCTAssertEqual(r.errorCode, "DISK_FULL", r.text)
                return (acked, (r.json?["error"] as? [String: Any])?["message"] as? String)
            }
            usleep(50_000)   // 503/504 while the disk fills under a write in flight: try the next one
        }
        return (acked, nil)
    }

    private func readable(_ n: Int, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let r = cluster.httpToLeader(via: 1, "GET", "/v1/concepts/\(conceptID(n))")
            if r.status == 200 { return r.text.contains("-\(n)\"") }
            if r.status == 404 { return false }
            usleep(100_000)
        } while Date() < deadline
        return false
    }

    private func everyNodeRunning() -> Bool {
        (1...cluster.nodeCount).allSatisfy { id in
            guard let pid = cluster.pids[id] else { return false }
            var st: Int32 = 0
            return waitpid(pid, &st, WNOHANG) == 0
        }
    }

    private func metric(_ id: Int, _ name: String) -> Double { metricSum(cluster.http(id, "GET", "/metrics"), name + "{") }

    /// No free-space floor: the WAL itself runs out of space. The write that found no space waits (retried every
    /// second) instead of stopping the node; new writes are refused; once the disks grow it goes through.
    func testAWALWriteWithoutSpaceWaitsAndWritesResumeWhenSpaceReturns() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, flags: ["--min-free-disk-bytes", "0"])
        try mountSmallDisks(cluster, size: "20m")
        try cluster.startAll()
        try cluster.waitReady()

        let (acked, refusal) = writeUntilRefused()
        XCTAssertGreaterThan(acked.count, 50, "the disks should hold a few hundred writes before filling")
        let message = try XCTUnwrap(refusal, "no write was refused with 507 after the disks filled")
        XCTAssertTrue(message.contains("the disk is full"), message)
        XCTAssertTrue(everyNodeRunning(), "a node stopped when its disk filled")
        XCTAssertGreaterThan((1...3).map { metric($0, "sutra_wal_write_stalls_total") }.reduce(0, +), 0)
        // Reads are served while writes are refused.
        XCTAssertTrue(readable(acked.last!), "an acknowledged concept is not readable while the disk is full")
        XCTAssertTrue(readable(acked.first!))

        growDisks(to: "96m")
        let deadline = Date().addingTimeInterval(20)
        var resumed = false
        var next = 100_000
        while Date() < deadline {
            next += 1
            if cluster.httpToLeader(via: 1, "POST", "/v1/concepts", body(next)).status == 200 { resumed = true; break }
            usleep(200_000)
        }
        XCTAssertTrue(resumed, "writes did not resume within 20 s of the disks growing")
        XCTAssertEqual((1...3).map { metric($0, "sutra_wal_write_stalled") }.reduce(0, +), 0, "a WAL write still waits for space")
        let lost = acked.filter { !readable($0) }
        XCTAssertEqual(lost, [], "acknowledged writes lost across the full disk")
        XCTAssertTrue(everyNodeRunning())
    }

    /// With a floor (`--min-free-disk-bytes`), writes are refused before the disk is full — nothing stalls — and
    /// accepted again once the free space is back above it.
    func testWritesAreRefusedBelowTheFreeSpaceFloorAndResumeAboveIt() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 4, flags: ["--min-free-disk-bytes", String(10 << 20)])
        try mountSmallDisks(cluster, size: "20m")
        try cluster.startAll()
        try cluster.waitReady()

        let (acked, refusal) = writeUntilRefused()
        XCTAssertGreaterThan(acked.count, 50)
        let message = try XCTUnwrap(refusal, "no write was refused with 507 below the floor")
        XCTAssertTrue(message.contains("nearly full"), message)
        XCTAssertEqual((1...3).map { metric($0, "sutra_wal_write_stalls_total") }.reduce(0, +), 0,
                       "the floor should refuse writes before any WAL write runs out of space")
        XCTAssertGreaterThan((1...3).map { metric($0, "sutra_disk_full") }.reduce(0, +), 0)
        XCTAssertGreaterThan((1...3).map { metric($0, "sutra_writes_refused_disk_full_total") }.reduce(0, +), 0)
        XCTAssertTrue(readable(acked.last!))

        growDisks(to: "64m")
        let deadline = Date().addingTimeInterval(10)
        var resumed = false
        while Date() < deadline {
            if cluster.httpToLeader(via: 1, "POST", "/v1/concepts", body(200_000)).status == 200 { resumed = true; break }
            usleep(200_000)
        }
        XCTAssertTrue(resumed, "writes did not resume within 10 s of the free space returning above the floor")
        XCTAssertEqual(acked.filter { !readable($0) }, [])
        XCTAssertTrue(everyNodeRunning())
    }
}
