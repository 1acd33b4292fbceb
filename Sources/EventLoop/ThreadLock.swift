#if canImport(Glibc)
    import Glibc
#endif

/// A lock with a try: a pthread mutex, for the one place where a thread takes another's loop only when it is
/// free (`DNSWorker.resolveNow`). Synchronization's `Mutex` would do the same, but ThreadSanitizer does not see
/// its ordering (its fast path is an uninstrumented atomic in the standard library), so every access it
/// protects is reported as a race; with a pthread mutex a TSan run checks this design instead of drowning it.
public final class ThreadLock: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        self.mutex = .allocate(capacity: 1)
        pthread_mutex_init(self.mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deallocate()
    }

    @inline(__always)
    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body()
    }

    /// `body` under the lock when it is free at once; nil (and `body` not run) when another thread holds it.
    @inline(__always)
    public func withLockIfAvailable<Result>(_ body: () throws -> Result) rethrows -> Result? {
        guard pthread_mutex_trylock(self.mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(self.mutex) }
        return try body()
    }
}
