import CUV

/// Lets any thread run a closure on the loop thread (`uv_async_t` behind a locked queue). Several posts may be
/// coalesced into one wake-up; every posted closure runs exactly once, in order, unless the wake-up is closed
/// first (then `post` returns false and the closure is not queued).
public final class LoopWakeup: UVHandle, @unchecked Sendable {
    // Safe across threads: `queue` is only touched under its mutex; the uv handle is only used by
    // `uv_async_send`, which libuv documents as thread-safe, and only while `open` is true (checked under
    // the same lock that `close` takes before closing the handle).
    private let queue = Locked<(open: Bool, items: [@Sendable () -> Void])>((true, []))

    public init(loop: EventLoop) throws(UVError) {
        super.init(loop: loop, type: UV_ASYNC)
        let status = handle.withMemoryRebound(to: uv_async_t.self, capacity: 1) { a in
            uv_async_init(loop.raw, a, { a in
                LoopWakeup.from(UnsafeMutableRawPointer(a)).drain()
            })
        }
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_async_init") }
        didInitialize()
    }

    /// Queues `work` to run on the loop thread. Callable from any thread. Returns false once closed.
    @discardableResult
    public func post(_ work: @escaping @Sendable () -> Void) -> Bool {
        queue.withLock { q in
            guard q.open else { return false }
            q.items.append(work)
            _ = handle.withMemoryRebound(to: uv_async_t.self, capacity: 1) { uv_async_send($0) }
            return true
        }
    }

    private func drain() {
        let items = queue.withLock { q -> [@Sendable () -> Void] in
            let out = q.items
            q.items = []
            return out
        }
        for w in items { w() }
    }

    override func willClose() {
        queue.withLock { $0.open = false }
    }
}
