import CUV

/// A libuv timer. The callback runs on the loop thread; `stop()` or `close()` stops it.
public final class Timer: UVHandle {
    private var callback: (() -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        super.init(loop: loop, type: UV_TIMER)
        let status = handle.withMemoryRebound(to: uv_timer_t.self, capacity: 1) { uv_timer_init(loop.raw, $0) }
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_timer_init") }
        didInitialize()
    }

    /// Fires after `timeout` ms, then every `repeat` ms if non-zero.
    public func start(timeout: UInt64, repeat interval: UInt64 = 0, _ callback: @escaping () -> Void) {
        checkOpen("Timer.start")
        self.callback = callback
        _ = handle.withMemoryRebound(to: uv_timer_t.self, capacity: 1) { t in
            uv_timer_start(t, { t in
                let me = Timer.from(UnsafeMutableRawPointer(t))
                me.callback?()
            }, timeout, interval)
        }
    }

    public func stop() {
        checkOpen("Timer.stop")
        _ = handle.withMemoryRebound(to: uv_timer_t.self, capacity: 1) { uv_timer_stop($0) }
    }

    override func willClose() { callback = nil }
}
