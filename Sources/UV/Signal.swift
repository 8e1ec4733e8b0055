import CUV

/// Watches a POSIX signal (SIGTERM for graceful shutdown, SIGINT, SIGHUP); the callback runs on the loop thread.
public final class SignalWatcher: UVHandle {
    private var callback: ((Int32) -> Void)?

    public init(loop: EventLoop, signal: Int32, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        super.init(loop: loop, type: UV_SIGNAL)
        let sig = handle.withMemoryRebound(to: uv_signal_t.self, capacity: 1) { $0 }
        let status = uv_signal_init(loop.raw, sig)
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_signal_init") }
        didInitialize()
        self.callback = callback
        let s = uv_signal_start(sig, { h, signum in
            SignalWatcher.from(UnsafeMutableRawPointer(h)).callback?(signum)
        }, signal)
        if s < 0 {
            close()
            throw UVError(s, "uv_signal_start")
        }
    }

    override func willClose() { callback = nil }
}
