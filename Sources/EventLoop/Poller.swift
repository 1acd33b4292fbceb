import CSys

/// One epoll instance and its event buffer; owned by one thread.
public final class Poller {
    public let fd: Int32
    let events: UnsafeMutablePointer<csys_epoll_event>
    let capacity: Int32
    /// Wakes `wait` from another thread.
    public let wakeFD: Int32

    public static let readable = UInt32(CSYS_EPOLLIN)
    public static let writable = UInt32(CSYS_EPOLLOUT)
    public static let hangup = UInt32(CSYS_EPOLLHUP | CSYS_EPOLLERR | CSYS_EPOLLRDHUP)
    /// The token `wait` reports for the wake-up descriptor.
    public static let wakeToken = UInt64.max

    public init(capacity: Int32 = 256) throws(SocketError) {
        let fd = csys_epoll_create()
        guard fd >= 0 else { throw SocketError(errno: csys_errno(), context: "epoll_create") }
        let wake = csys_eventfd()
        guard wake >= 0 else { throw SocketError(errno: csys_errno(), context: "eventfd") }
        self.fd = fd
        self.wakeFD = wake
        self.capacity = capacity
        self.events = .allocate(capacity: Int(capacity))
        _ = csys_epoll_add(fd, wake, Poller.readable, Poller.wakeToken)
    }

    deinit {
        self.events.deallocate()
        Sockets.close(self.fd)
        Sockets.close(self.wakeFD)
    }

    public func add(_ fd: Int32, events: UInt32, token: UInt64) throws(SocketError) {
        let result = csys_epoll_add(self.fd, fd, events, token)
        guard result == 0 else { throw SocketError(errno: -result, context: "epoll add") }
    }

    public func modify(_ fd: Int32, events: UInt32, token: UInt64) {
        _ = csys_epoll_modify(self.fd, fd, events, token)
    }

    public func remove(_ fd: Int32) {
        _ = csys_epoll_remove(self.fd, fd)
    }

    /// Waits up to `timeout` milliseconds (-1: forever); calls `body(token, events)` for each ready descriptor.
    public func wait(timeout: Int32, _ body: (UInt64, UInt32) -> Void) {
        let count = csys_epoll_wait(self.fd, self.events, self.capacity, timeout)
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let event = self.events[index]
            if event.data == Poller.wakeToken {
                csys_eventfd_drain(self.wakeFD)
            }
            body(event.data, event.events)
        }
    }

    /// Interrupts a `wait` in progress (safe from any thread).
    public func wake() {
        csys_eventfd_signal(self.wakeFD)
    }
}

/// Monotonic milliseconds.
@inlinable
public func monotonicMilliseconds() -> UInt64 { csys_now_ms() }

/// 32 random bits from the kernel.
public func randomUInt32() -> UInt32 { csys_random32() }
