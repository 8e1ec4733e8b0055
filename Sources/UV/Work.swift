import CUV

/// Carries a work item's result from the thread pool back to the loop thread. Written once by the pool thread
/// before libuv schedules the completion on the loop thread, read only after: libuv orders the two.
final class WorkResult<T: Sendable>: @unchecked Sendable {
    var value: T?
}

extension EventLoop {
    /// Runs `work` on libuv's thread pool, then `completion` with its result on the loop thread.
    /// The node's group commit runs its fsync this way, so the loop never blocks on the disk.
    public func queueWork<T: Sendable>(_ work: @escaping @Sendable () -> T, completion: @escaping (T) -> Void) throws(UVError) {
        assertOnLoopThread("queueWork")
        let result = WorkResult<T>()
        let run: @Sendable () -> Void = { result.value = work() }
        let done: () -> Void = { completion(result.value!) }
        let req = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        req.pointee.data = RequestBox((run, done)).retainedPointer()
        let status = uv_queue_work(raw, req, { req in
            // Thread pool: only the Sendable part runs here.
            let box = Unmanaged<RequestBox<(@Sendable () -> Void, () -> Void)>>.fromOpaque(req!.pointee.data!).takeUnretainedValue()
            box.value.0()
        }, { req, _ in
            let box = RequestBox<(@Sendable () -> Void, () -> Void)>.take(req!.pointee.data)
            req!.deallocate()
            box.value.1()
        })
        if status < 0 {
            _ = RequestBox<(@Sendable () -> Void, () -> Void)>.take(req.pointee.data)
            req.deallocate()
            throw UVError(status, "uv_queue_work")
        }
    }
}
