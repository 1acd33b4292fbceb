#if canImport(Glibc)
    import Glibc
#endif

/// What a listener does when `accept` fails because the process (or the system) is out of descriptors or
/// memory: the pending connection stays queued, so a level-triggered listener would wake its loop again at
/// once and burn a core. The loop stops watching the listener for `pause`, then tries again, and says so in
/// the log at most once per `logInterval`, with how many such failures it did not log.
public struct AcceptBackoff: Sendable {
    public static let pause: UInt64 = 250
    public static let logInterval: UInt64 = 60_000

    /// Until when the listener is not watched (monotonic milliseconds); 0 when it is.
    public private(set) var pausedUntil: UInt64 = 0
    var lastLog: UInt64?
    var unlogged = 0

    public init() {}

    /// Whether an `accept` errno means the process is out of a resource, not that one client went away.
    public static func isExhaustion(_ error: Int32) -> Bool {
        error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM
    }

    /// Records an exhaustion at `now` and pauses; returns the log line to write now, or nil when one was
    /// written less than `logInterval` ago.
    public mutating func exhausted(_ error: Int32, service: String, open: Int, now: UInt64) -> String? {
        self.pausedUntil = now + AcceptBackoff.pause
        if let last = self.lastLog, now < last + AcceptBackoff.logInterval {
            self.unlogged += 1
            return nil
        }
        self.lastLog = now
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let reason = error == EMFILE || error == ENFILE ? "out of file descriptors" : "out of memory for sockets"
        let before = self.unlogged > 0 ? " (\(self.unlogged) more since the last message)" : ""
        self.unlogged = 0
        return "\(service): cannot accept a connection: \(reason) (\(String(cString: strerror(error)))) with "
            + "\(open) connection(s) open, limit \(limit.rlim_cur) descriptors\(before); not accepting for "
            + "\(AcceptBackoff.pause) ms. Raise the limit (LimitNOFILE= in the systemd unit, or ulimit -n) or "
            + "lower the connection limits"
    }

    /// Whether the pause is over at `now` (and clears it).
    public mutating func resumes(now: UInt64) -> Bool {
        guard self.pausedUntil != 0, now >= self.pausedUntil else { return false }
        self.pausedUntil = 0
        return true
    }

    public var isPaused: Bool { self.pausedUntil != 0 }
}

/// Raises this process's soft limit on open files to its hard limit (as nginx's worker_rlimit_nofile and
/// systemd's LimitNOFILE= leave to the program): each connection needs one or two descriptors, and Linux's
/// soft default of 1024 runs out long before memory does. Returns the limit in force afterwards.
@discardableResult
public func raiseOpenFileLimit() -> UInt64 {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_max) }
    }
    return UInt64(limit.rlim_cur)
}
