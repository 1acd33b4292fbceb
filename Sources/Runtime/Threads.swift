import CSys

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a named POSIX thread running `body` (no Foundation needed).
public func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }
    let box = Unmanaged.passRetained(Box(body, name: name)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { pointer in
            guard let pointer else { return nil }
            let box = Unmanaged<Box>.fromOpaque(pointer).takeRetainedValue()
            csys_set_thread_name(String(box.name.prefix(15)))
            box.body()
            return nil
        }, box)
    guard result == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        return nil
    }
    return thread
}

/// Waits for a thread started by `startThread`.
public func joinThread(_ thread: pthread_t) {
    pthread_join(thread, nil)
}
