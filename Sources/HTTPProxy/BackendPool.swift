import ZoneModel

/// The backends of one site as one proxy worker sees them: which to use next, and which are down.
///
/// Pure and clock-free (the caller passes `now` in milliseconds), so every rule is testable without sockets.
/// Passive health: `failureThreshold` consecutive failures take a backend out for an interval that doubles
/// on every further failure (up to `maximumDownInterval`); a success resets it. Active health: a failed check
/// takes it out until a check passes.
public struct BackendPool: Sendable {
    /// One backend's counters.
    public struct Health: Equatable, Sendable {
        public var consecutiveFailures = 0
        /// Down (passively) until this time.
        public var downUntil: UInt64 = 0
        /// How long the next passive outage lasts.
        public var nextInterval: UInt64
        /// The last active check failed.
        public var failedCheck = false
        /// Requests in flight (for least-conn).
        public var inFlight = 0

        public func isUp(at now: UInt64) -> Bool { !self.failedCheck && now >= self.downUntil }
    }

    public let policy: BalancePolicy
    public private(set) var health: [Health]
    var cursor = 0
    public let failureThreshold: Int
    public let firstDownInterval: UInt64
    public let maximumDownInterval: UInt64

    public init(
        backends: Int, policy: BalancePolicy, failureThreshold: Int = 2, firstDownInterval: UInt64 = 1000,
        maximumDownInterval: UInt64 = 60_000
    ) {
        self.policy = policy
        self.health = Array(repeating: Health(nextInterval: firstDownInterval), count: backends)
        self.failureThreshold = max(1, failureThreshold)
        self.firstDownInterval = firstDownInterval
        self.maximumDownInterval = maximumDownInterval
    }

    /// The backend for the next request, skipping those down and those in `excluding` (already tried for
    /// this request); nil when none is left (the proxy answers 502).
    public mutating func pick(now: UInt64, excluding: Set<Int> = []) -> Int? {
        let candidates = self.health.indices.filter { self.health[$0].isUp(at: now) && !excluding.contains($0) }
        guard !candidates.isEmpty else { return nil }
        switch self.policy {
        case .firstAvailable:
            return candidates[0]
        case .leastConnections:
            // Fewest in flight; ties go round the ring so equal backends share the load.
            let least = candidates.map { self.health[$0].inFlight }.min() ?? 0
            let tied = candidates.filter { self.health[$0].inFlight == least }
            let choice = tied.first { $0 >= self.cursor } ?? tied[0]
            self.cursor = choice + 1
            return choice
        case .roundRobin:
            let choice = candidates.first { $0 >= self.cursor } ?? candidates[0]
            self.cursor = choice + 1
            return choice
        }
    }

    public mutating func started(_ backend: Int) { self.health[backend].inFlight += 1 }

    public mutating func finished(_ backend: Int) {
        self.health[backend].inFlight = max(0, self.health[backend].inFlight - 1)
    }

    /// A connect failed, or the backend broke a response: count it, and take the backend out when it keeps
    /// failing.
    public mutating func failed(_ backend: Int, now: UInt64) {
        var health = self.health[backend]
        health.consecutiveFailures += 1
        if health.consecutiveFailures >= self.failureThreshold {
            health.downUntil = now + health.nextInterval
            health.nextInterval = min(health.nextInterval * 2, self.maximumDownInterval)
        }
        self.health[backend] = health
    }

    /// A response came back whole: the backend is well again.
    public mutating func succeeded(_ backend: Int) {
        self.health[backend].consecutiveFailures = 0
        self.health[backend].nextInterval = self.firstDownInterval
    }

    /// The result of an active health check (GET on the site's health path).
    public mutating func checked(_ backend: Int, passed: Bool) {
        self.health[backend].failedCheck = !passed
        if passed {
            // A passing check ends a passive outage too: the backend is back.
            self.succeeded(backend)
            self.health[backend].downUntil = 0
        }
    }
}
