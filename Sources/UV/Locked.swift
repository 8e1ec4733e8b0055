#if canImport(Glibc)
import Glibc
#endif

/// State guarded by a pthread mutex, for the few values that cross threads (`LoopWakeup`'s queue, the SDK's
/// hand-offs between callers and its loop thread). A pthread mutex rather than `Synchronization.Mutex` so
/// ThreadSanitizer understands the locking.
public final class Locked<State>: @unchecked Sendable {
    // Safe: `state` is only read or written between pthread_mutex_lock and pthread_mutex_unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    public init(_ initial: State) {
        state = initial
        mutex = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
