#if canImport(Glibc)
    import Glibc
#endif

/// Starts the parts of a running Frontdoor in order and stops them in reverse: the control plane that
/// feeds a service stops before the service, and nothing is left running when a later start fails or
/// the process is asked to stop. Binding (which can fail) happens before anything is started.
public final class Supervisor {
    struct Part {
        let name: String
        let stop: () -> Void
    }

    var parts: [Part] = []

    public init() {}

    /// Runs `start` now; `stop` runs when everything stops, before the parts started earlier.
    public func start(_ name: String, start: () -> Void, stop: @escaping () -> Void) {
        start()
        self.parts.append(Part(name: name, stop: stop))
    }

    /// Runs `body` on a thread of its own; at the stop, `stop` asks it to end and the thread is joined.
    /// Returns false (and starts nothing) when the thread cannot be created; the caller then stops the rest.
    public func startThread(_ name: String, _ body: @escaping @Sendable () -> Void, stop: @escaping () -> Void) -> Bool
    {
        guard let thread = Runtime.startThread(name: name, body) else { return false }
        self.parts.append(
            Part(name: name) {
                stop()
                joinThread(thread)
            })
        return true
    }

    /// The names of what runs, in the order it started.
    public var running: [String] { self.parts.map(\.name) }

    /// Stops everything, last started first.
    public func stopAll() {
        while let part = self.parts.popLast() { part.stop() }
    }
}
