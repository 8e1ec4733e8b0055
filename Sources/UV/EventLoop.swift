import CUV
#if canImport(Glibc)
import Glibc
#endif

/// One libuv event loop, owned by the thread that created it. Every handle and request made from it runs its
/// callbacks on that thread. Not thread-safe, except `LoopWakeup.post`, which exists to cross threads.
///
/// `close()` closes every handle still open, lets their close callbacks run, and frees the loop.
public final class EventLoop {
    let raw: UnsafeMutablePointer<uv_loop_t>
    private let ownerThread: pthread_t
    private var closed = false

    public init() throws(UVError) {
        raw = .allocate(capacity: 1)
        let status = uv_loop_init(raw)
        if status < 0 {
            raw.deallocate()
            throw UVError(status, "uv_loop_init")
        }
        ownerThread = pthread_self()
    }

    deinit {
        if !closed { close() }
        raw.deallocate()
    }

    /// True on the thread that owns the loop.
    public var isOnLoopThread: Bool { pthread_equal(pthread_self(), ownerThread) != 0 }

    func assertOnLoopThread(_ what: @autoclosure () -> String) {
        precondition(isOnLoopThread, "\(what()) must be called on the event loop's thread")
        precondition(!closed, "\(what()) on a closed event loop")
    }

    /// Runs until there is nothing left to do or `stop()` is called. Returns whether handles remain active.
    @discardableResult
    public func run() -> Bool {
        assertOnLoopThread("run")
        return uv_run(raw, UV_RUN_DEFAULT) != 0
    }

    /// Runs one iteration, blocking for I/O if there is nothing ready.
    @discardableResult
    public func runOnce() -> Bool {
        assertOnLoopThread("runOnce")
        return uv_run(raw, UV_RUN_ONCE) != 0
    }

    /// Runs one iteration without blocking.
    @discardableResult
    public func runNoWait() -> Bool {
        assertOnLoopThread("runNoWait")
        return uv_run(raw, UV_RUN_NOWAIT) != 0
    }

    /// Makes `run()` return after the current iteration.
    public func stop() { uv_stop(raw) }

    /// The loop's cached time in milliseconds (updated at the start of each iteration).
    public var now: UInt64 { uv_now(raw) }

    /// Handles that are open (not yet closed), active or not: the leak check.
    public var openHandleCount: Int {
        var count = 0
        withUnsafeMutablePointer(to: &count) { p in
            uv_walk(raw, { h, arg in
                if uv_is_closing(h) == 0 { arg!.assumingMemoryBound(to: Int.self).pointee += 1 }
            }, p)
        }
        return count
    }

    /// Whether any handle or request keeps the loop alive.
    public var isAlive: Bool { uv_loop_alive(raw) != 0 }

    /// Closes every remaining handle, runs their close callbacks, and releases the loop's resources.
    public func close() {
        guard !closed else { return }
        precondition(isOnLoopThread, "close must be called on the event loop's thread")
        uv_walk(raw, { h, _ in
            if uv_is_closing(h) == 0 { uv_close(h, uvHandleClosed) }
        }, nil)
        while uv_run(raw, UV_RUN_DEFAULT) != 0 {}
        let status = uv_loop_close(raw)
        precondition(status == 0, "uv_loop_close: \(UVError(status, "uv_loop_close"))")
        closed = true
    }
}
