import CUV

/// Runs a callback at the end of every loop turn: right after libuv has polled for I/O (`uv_check_t`), and
/// also right before it polls (`uv_prepare_t`).
///
/// The node uses it as the end of a loop turn: the callbacks of the turn (peer messages, client requests,
/// timers) have run, so this is where a turn's Raft work is gathered into one group-commit write and one
/// batched frame per peer. Both hooks are needed: libuv runs timers *before* it polls, so work queued by a timer
/// (a heartbeat, a retry) would otherwise wait until the poll returns — up to the next timer when idle. It does
/// not keep the loop awake by itself. The callback may run twice per iteration; it must be cheap when idle.
public final class LoopCheck: UVHandle {
    private var callback: (() -> Void)?
    private var prepare: LoopPrepare?

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
        do {
            prepare = try LoopPrepare(loop: loop, callback)
        } catch {
            close()
            throw error
        }
    }

    override func willClose() {
        callback = nil
        prepare?.close()
        prepare = nil
    }
}

/// `uv_prepare_t`: a callback right before each poll for I/O (see `LoopCheck`).
final class LoopPrepare: UVHandle {
    private var callback: (() -> Void)?

    init(loop: EventLoop, _ callback: @escaping () -> Void) throws(UVError) {
        super.init(loop: loop, type: UV_PREPARE)
        let status = handle.withMemoryRebound(to: uv_prepare_t.self, capacity: 1) { uv_prepare_init(loop.raw, $0) }
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_prepare_init") }
        didInitialize()
        self.callback = callback
        let s = handle.withMemoryRebound(to: uv_prepare_t.self, capacity: 1) { p in
            uv_prepare_start(p, { p in LoopPrepare.from(UnsafeMutableRawPointer(p)).callback?() })
        }
        if s < 0 {
            close()
            throw UVError(s, "uv_prepare_start")
        }
    }

    override func willClose() { callback = nil }
}
