import CUV

/// The base of every libuv handle wrapper.
///
/// Lifetime rule: the object owns a heap-allocated uv handle and **retains itself** from creation until libuv's
/// close callback runs, so libuv can never call back into freed memory, and `deinit` can only run after the
/// handle is closed. `close()` is idempotent; the handle memory is freed only in the close callback. A handle
/// dropped without `close()` stays open (and `EventLoop.openHandleCount` shows it) until the loop is closed.
public class UVHandle {
    public let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_handle_t>
    public private(set) var isClosing = false
    private var onClose: (() -> Void)?

    init(loop: EventLoop, type: uv_handle_type) {
        loop.assertOnLoopThread("creating a handle")
        self.loop = loop
        let size = uv_handle_size(type)
        handle = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            .initializeMemory(as: UInt8.self, repeating: 0, count: size)
            .withMemoryRebound(to: uv_handle_t.self, capacity: 1) { $0 }
    }

    /// Called by subclasses once the uv_*_init call succeeded: from now on libuv owns a reference.
    func didInitialize() {
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Frees the memory of a handle whose init failed (libuv never saw it).
    func discardUninitialized() {
        UnsafeMutableRawPointer(handle).deallocate()
    }

    /// Closes the handle. Pending requests complete with `ECANCELED`; `completion` runs once it is closed.
    public func close(_ completion: (() -> Void)? = nil) {
        loop.assertOnLoopThread("close")
        guard !isClosing else { return }
        isClosing = true
        onClose = completion
        willClose()
        uv_close(handle, uvHandleClosed)
    }

    /// Subclass hook: drop callbacks that could form reference cycles.
    func willClose() {}

    func checkOpen(_ what: String) {
        loop.assertOnLoopThread(what)
        precondition(!isClosing, "\(what) on a closed handle")
    }

    fileprivate func finishClose() {
        let done = onClose
        onClose = nil
        UnsafeMutableRawPointer(handle).deallocate()
        done?()
    }

    static func from(_ h: UnsafeMutableRawPointer?) -> Self {
        let p = h!.assumingMemoryBound(to: uv_handle_t.self)
        return Unmanaged<Self>.fromOpaque(p.pointee.data!).takeUnretainedValue()
    }
}

/// libuv's close callback for every handle this module creates: frees the memory, then drops libuv's reference.
let uvHandleClosed: uv_close_cb = { h in
    guard let h, let data = h.pointee.data else { return }
    let owner = Unmanaged<UVHandle>.fromOpaque(data)
    owner.takeUnretainedValue().finishClose()
    owner.release()
}

/// Heap context for a request (write, connect, fs, work): retained until its callback runs, exactly once.
final class RequestBox<T> {
    var value: T
    init(_ v: T) { value = v }
    func retainedPointer() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }
    static func take(_ p: UnsafeMutableRawPointer?) -> RequestBox<T> { Unmanaged<RequestBox<T>>.fromOpaque(p!).takeRetainedValue() }
}
