import CUV

/// Runs a callback once per loop iteration, right after libuv has polled for I/O (`uv_check_t`).
///
/// The node uses it as the end of a loop turn: every callback of the turn (peer messages, client requests,
/// timers) has run, so this is where a turn's Raft work is gathered into one group-commit write and one
/// batched frame per peer. It does not keep the loop awake by itself: it runs only when something else woke it.
public final class LoopCheck: UVHandle {
    private var callback: (() -> Void)?

    public init(loop: EventLoop, _ callback: @escaping () -> Void) throws(UVError) {
        super.init(loop: loop, type: UV_CHECK)
        let status = handle.withMemoryRebound(to: uv_check_t.self, capacity: 1) { uv_check_init(loop.raw, $0) }
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_check_init") }
        didInitialize()
        self.callback = callback
        let s = handle.withMemoryRebound(to: uv_check_t.self, capacity: 1) { c in
            uv_check_start(c, { c in LoopCheck.from(UnsafeMutableRawPointer(c)).callback?() })
        }
        if s < 0 {
            close()
            throw UVError(s, "uv_check_start")
        }
    }

    override func willClose() { callback = nil }
}
