import Foundation
import Synchronization
@testable import UV
import XCTest

/// libuv layer on real loopback sockets, files and threads. Every test runs its loop under a watchdog timer.
final class UVTests: XCTestCase {
    var loop: EventLoop!

    override func setUpWithError() throws { loop = try EventLoop() }

    override func tearDown() {
        loop.close()
        loop = nil
    }

    /// Runs the loop until `done()` is true; fails (and stops) after `seconds`.
    func run(seconds: Double = 5, file: StaticString = #filePath, line: UInt = #line, until done: () -> Bool) throws {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        let watchdog = try Timer(loop: loop)
        watchdog.start(timeout: 10, repeat: 10) {}   // wakes the loop so the deadline is checked
        while !done() {
            if DispatchTime.now().uptimeNanoseconds > deadline {
                XCTFail("timed out after \(seconds) s", file: file, line: line)
                break
            }
            loop.runOnce()
        }
        watchdog.close()
    }

    /// The end-of-turn hook sees work queued by a timer before the loop blocks in its poll (libuv runs timers
    /// before polling: a check-only hook would see it only when the poll returns — here after a second).
    func testLoopCheckRunsBeforeThePollBlocks() throws {
        let early = try Timer(loop: loop), late = try Timer(loop: loop)
        var queuedAt: UInt64?
        var seenAt: UInt64?
        var lateFired = false
        let hook = try LoopCheck(loop: loop) { [unowned loop = loop!] in
            if queuedAt != nil && seenAt == nil { seenAt = loop.now }
        }
        early.start(timeout: 10) { [unowned loop = loop!] in queuedAt = loop.now }
        late.start(timeout: 1000) { lateFired = true }
        while !lateFired { loop.runOnce() }
        XCTAssertNotNil(seenAt)
        XCTAssertLessThan(seenAt! - queuedAt!, 900, "the hook ran in the timer's own loop iteration, not after the poll")
        hook.close(); early.close(); late.close()
        loop.run()
    }

    func testTimerFiresOnceRepeatsAndStops() throws {
        var once = 0, repeats = 0
        let t1 = try Timer(loop: loop)
        t1.start(timeout: 5) { once += 1 }
        let t2 = try Timer(loop: loop)
        t2.start(timeout: 1, repeat: 2) {
            repeats += 1
            if repeats == 5 { t2.stop() }
        }
        try run { once == 1 && repeats == 5 }
        let t3 = try Timer(loop: loop)
        var extra = false
        t3.start(timeout: 30) { extra = true }
        try run(seconds: 1) { extra }
        XCTAssertEqual(once, 1)
        XCTAssertEqual(repeats, 5, "a stopped timer does not fire again")
        t1.close(); t2.close(); t3.close()
    }

    /// Echo over 127.0.0.1: many messages, a 4 MiB write, vectored writes; byte-exact.
    func testTCPEchoOnLoopback() throws {
        var serverConns: [TCPConnection] = []
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let c) = result else { return XCTFail("accept failed") }
            serverConns.append(c)
            try? c.startReading { ev in if case .data(let b) = ev { c.write(b) } }
        }
        XCTAssertGreaterThan(listener.localPort, 0)
        var client: TCPConnection?
        var received: [UInt8] = []
        try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localPort) { r in
            guard case .success(let c) = r else { return XCTFail("connect failed: \(r)") }
            try? c.setNoDelay(true)
            client = c
            try? c.startReading { ev in if case .data(let b) = ev { received += b } }
        }
        try run { client != nil }
        var expected: [UInt8] = []
        var completions = 0
        for i in 0..<1000 {
            let msg = Array("message \(i);".utf8)
            expected += msg
            client!.write(msg) { err in XCTAssertNil(err); completions += 1 }
        }
        let big = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        expected += big
        client!.write(big) { err in XCTAssertNil(err); completions += 1 }
        let parts: [[UInt8]] = [Array("a".utf8), [], Array("bc".utf8), Array("def".utf8)]
        expected += parts.flatMap { $0 }
        client!.write(vectored: parts) { err in XCTAssertNil(err); completions += 1 }
        try run(seconds: 20) { received.count >= expected.count }
        XCTAssertEqual(received.count, expected.count)
        XCTAssertTrue(received == expected, "echoed bytes differ")
        XCTAssertEqual(completions, 1002, "every write completion ran exactly once")
        XCTAssertEqual(client!.pendingWriteBytes, 0)
        client!.close(); listener.close(); serverConns.forEach { $0.close() }
    }

    func testConnectToAClosedPortReportsRefusal() throws {
        // Find a free port, then close the listener so nothing listens there.
        let l = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { _ in }
        let port = l.localPort
        var closed = false
        l.close { closed = true }
        try run { closed }
        var outcome: Result<TCPConnection, UVError>?
        try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { outcome = $0 }
        try run { outcome != nil }
        guard case .failure(let e) = outcome! else { return XCTFail("connected to a closed port") }
        XCTAssertEqual(e.code, UVError.connectionRefused)
        XCTAssertEqual(e.name, "ECONNREFUSED")
        try run(seconds: 1) { loop.openHandleCount == 1 }   // only run()'s own watchdog timer
        XCTAssertEqual(loop.openHandleCount, 0, "the failed connection's handle was closed")
    }

    func testPeerCloseGivesEndOfFileAndDoubleCloseIsHarmless() throws {
        var server: TCPConnection?
        let l = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { r in if case .success(let c) = r { server = c } }
        var eof = false
        var client: TCPConnection?
        try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: l.localPort) { r in
            client = try? r.get()
            try? client?.startReading { ev in if case .endOfFile = ev { eof = true } }
        }
        try run { server != nil && client != nil }
        var closes = 0
        server!.close { closes += 1 }
        server!.close { closes += 1 }   // idempotent: ignored
        try run { eof }
        XCTAssertTrue(eof)
        XCTAssertEqual(closes, 1)
        client!.close(); client!.close(); l.close()
    }

    func testClosingWithPendingWritesCompletesEachCallbackOnce() throws {
        var server: TCPConnection?
        let l = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { r in server = try? r.get() }   // never reads
        var client: TCPConnection?
        try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: l.localPort) { client = try? $0.get() }
        try run { client != nil && server != nil }
        var results: [UVError?] = []
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        for _ in 0..<64 { client!.write(chunk) { results.append($0) } }   // 64 MiB: most stay queued
        XCTAssertGreaterThan(client!.pendingWriteBytes, 0)
        client!.close()
        try run { results.count == 64 }
        XCTAssertEqual(results.count, 64)
        XCTAssertTrue(results.contains { $0?.code == UVError.canceled }, "queued writes are cancelled on close")
        server!.close(); l.close()
    }

    func testFileWriteFdatasyncReadBack() throws {
        let path = NSTemporaryDirectory() + "sutra-uv-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let io = FileIO(loop: loop)
        var fd: Int32 = -1
        io.open(path, flags: O_CREAT | O_RDWR, mode: 0o644) { fd = Int32(try! $0.get()) }
        try run { fd >= 0 }
        var step = 0
        io.write(fd: fd, Array("hello ".utf8), at: 0) { XCTAssertEqual(try? $0.get(), 6); step += 1 }
        io.write(fd: fd, Array("world".utf8), at: 6) { XCTAssertEqual(try? $0.get(), 5); step += 1 }
        try run { step == 2 }
        io.fdatasync(fd: fd) { XCTAssertNotNil(try? $0.get()); step += 1 }
        try run { step == 3 }
        var read: [UInt8] = []
        io.read(fd: fd, count: 64, at: 0) { read = (try? $0.get()) ?? [] ; step += 1 }
        try run { step == 4 }
        XCTAssertEqual(String(decoding: read, as: UTF8.self), "hello world")
        io.close(fd: fd) { _ in step += 1 }
        try run { step == 5 }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "hello world")
        var failed: UVError?
        io.open("/nonexistent-dir/x", flags: O_RDONLY) { if case .failure(let e) = $0 { failed = e } }
        try run { failed != nil }
        XCTAssertEqual(failed?.name, "ENOENT")
    }

    func testQueueWorkRunsOffTheLoopThreadAndCompletesOnIt() throws {
        var results: [Int] = []
        for i in 0..<8 {
            try loop.queueWork({ () -> Int in
                precondition(!Thread.isMainThread, "work must run on the thread pool")
                return i * i
            }, completion: { v in
                XCTAssertTrue(self.loop.isOnLoopThread)
                results.append(v)
            })
        }
        try run { results.count == 8 }
        XCTAssertEqual(results.sorted(), (0..<8).map { $0 * $0 })
    }

    func testWakeupDeliversEveryPostFromManyThreadsOnTheLoopThread() throws {
        let wake = try LoopWakeup(loop: loop)
        let count = Mutex(0)
        let offLoop = Mutex(0)
        let loopThread = pthread_self()
        let threads = (0..<4).map { _ in
            Thread {
                for _ in 0..<1000 {
                    wake.post {
                        if pthread_equal(pthread_self(), loopThread) == 0 { offLoop.withLock { $0 += 1 } }
                        count.withLock { $0 += 1 }
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        try run(seconds: 10) { count.withLock { $0 } == 4000 }
        XCTAssertEqual(count.withLock { $0 }, 4000)
        XCTAssertEqual(offLoop.withLock { $0 }, 0)
        wake.close()
        XCTAssertFalse(wake.post {}, "post after close is refused, not queued")
    }

    func testSignalWatcherSeesRaisedSignal() throws {
        var seen: Int32 = 0
        let w = try SignalWatcher(loop: loop, signal: SIGHUP) { seen = $0 }
        raise(SIGHUP)
        try run { seen != 0 }
        XCTAssertEqual(seen, SIGHUP)
        w.close()
    }

    /// The leak test: 1,000 connections opened and closed leave no handle behind.
    func testThousandConnectionsLeaveNoHandles() throws {
        var accepted: [TCPConnection] = []
        let l = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { r in if let c = try? r.get() { accepted.append(c) } }
        var connected = 0
        for _ in 0..<1000 {
            try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: l.localPort) { r in
                if let c = try? r.get() { connected += 1; c.close() }
            }
        }
        try run(seconds: 30) { connected == 1000 && accepted.count == 1000 }
        accepted.forEach { $0.close() }
        var listenerClosed = false
        l.close { listenerClosed = true }
        try run { listenerClosed && loop.openHandleCount == 1 }   // only run()'s own watchdog timer
        loop.runNoWait()   // let the watchdog's close callback run
        XCTAssertEqual(loop.openHandleCount, 0)
        XCTAssertFalse(loop.isAlive)
        weak let weakConn = accepted.first
        accepted = []
        XCTAssertNil(weakConn, "a closed connection is freed once nobody holds it")
    }
}
