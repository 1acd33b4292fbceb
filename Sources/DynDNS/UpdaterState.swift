import Files
import ZoneModel

/// Everything the updater must not forget across restarts, persisted as JSON in the state directory and
/// written atomically (temporary file, fsync, rename): a kill at any moment leaves the old or the new file.
public struct UpdaterState: Equatable, Sendable {
    /// One WAN address change.
    public struct Change: Equatable, Sendable {
        public var address: String
        /// Seconds since 1970.
        public var time: Double

        public init(address: String, time: Double) {
            self.address = address
            self.time = time
        }
    }

    /// What a source said at the last poll.
    public struct SourceReport: Equatable, Sendable {
        public var source: String
        public var said: String

        public init(source: String, said: String) {
            self.source = source
            self.said = said
        }
    }

    /// One provider's bookkeeping.
    public struct ProviderRecord: Equatable, Sendable {
        /// The address the provider is known to have.
        public var lastPushed: String?
        public var lastResult: String = "never pushed"
        public var lastAttempt: Double?
        /// The last push the provider accepted (updated or unchanged), for the periodic refresh.
        public var lastSuccess: Double?
        /// Not before this time (seconds since 1970).
        public var nextAttempt: Double = 0
        public var failures = 0
        /// Pushes attempted so far (every outcome).
        public var pushes = 0
        /// The provider refused for good; no more pushes until its configuration or secret changes, or the
        /// operator reloads (SIGHUP) after fixing the cause.
        public var stopped = false
        /// The provider's configuration at the last attempt: its settings and a digest of its secret (never
        /// the secret). A push made with another one does not count as this one's.
        public var configuration = ""

        public init() {}
    }

    /// The published IPv4 and IPv6 WAN addresses.
    public var address: String?
    public var address6: String?
    public var history: [Change] = []
    public var sources: [SourceReport] = []
    public var lastPoll: Double?
    public var note: String?
    public var providers: [String: ProviderRecord] = [:]

    public init() {}

    /// The state in `path`; a fresh one when the file is missing or unreadable (never a crash).
    public static func load(path: String) -> UpdaterState {
        guard case .success(let bytes) = DiskFiles().read(path), let json = JSON.parse(bytes) else {
            return UpdaterState()
        }
        return UpdaterState(json: json)
    }

    /// Writes the state; returns a problem to log, or nil.
    public func save(path: String) -> String? {
        DiskFiles().writeAtomically(Array((self.json.text(pretty: true) + "\n").utf8), to: path).map { "\($0)" }
    }

    public var json: JSON {
        func optional(_ text: String?) -> JSON { text.map(JSON.string) ?? .null }
        return .object([
            ("address", optional(self.address)),
            ("address6", optional(self.address6)),
            (
                "history",
                .array(self.history.map { .object([("address", .string($0.address)), ("time", .number($0.time))]) })
            ),
            (
                "sources",
                .array(self.sources.map { .object([("source", .string($0.source)), ("said", .string($0.said))]) })
            ),
            ("lastPoll", self.lastPoll.map(JSON.number) ?? .null),
            ("note", optional(self.note)),
            (
                "providers",
                .object(
                    self.providers.sorted { $0.key < $1.key }.map { name, record in
                        (
                            name,
                            .object([
                                ("lastPushed", optional(record.lastPushed)),
                                ("lastResult", .string(record.lastResult)),
                                ("lastAttempt", record.lastAttempt.map(JSON.number) ?? .null),
                                ("lastSuccess", record.lastSuccess.map(JSON.number) ?? .null),
                                ("nextAttempt", .number(record.nextAttempt)),
                                ("failures", .number(Double(record.failures))),
                                ("pushes", .number(Double(record.pushes))),
                                ("stopped", .bool(record.stopped)),
                                ("configuration", .string(record.configuration)),
                            ])
                        )
                    })
            ),
        ])
    }

    public init(json: JSON) {
        self.address = json["address"]?.string
        self.address6 = json["address6"]?.string
        self.history = (json["history"]?.array ?? []).compactMap { item in
            guard let address = item["address"]?.string, let time = item["time"]?.number else { return nil }
            return Change(address: address, time: time)
        }
        self.sources = (json["sources"]?.array ?? []).compactMap { item in
            guard let source = item["source"]?.string, let said = item["said"]?.string else { return nil }
            return SourceReport(source: source, said: said)
        }
        self.lastPoll = json["lastPoll"]?.number
        self.note = json["note"]?.string
        if case .object(let members)? = json["providers"] {
            for (name, item) in members {
                var record = ProviderRecord()
                record.lastPushed = item["lastPushed"]?.string
                record.lastResult = item["lastResult"]?.string ?? record.lastResult
                record.lastAttempt = item["lastAttempt"]?.number
                record.lastSuccess = item["lastSuccess"]?.number
                record.nextAttempt = item["nextAttempt"]?.number ?? 0
                record.failures = Int(item["failures"]?.number ?? 0)
                record.pushes = Int(item["pushes"]?.number ?? 0)
                record.stopped = item["stopped"]?.bool ?? false
                record.configuration = item["configuration"]?.string ?? ""
                self.providers[name] = record
            }
        }
    }

    /// A reload after the operator fixed something: stopped providers are tried again at once.
    public mutating func retryStopped() -> [String] {
        var retried: [String] = []
        for (name, record) in self.providers where record.stopped {
            self.providers[name]?.stopped = false
            self.providers[name]?.nextAttempt = 0
            self.providers[name]?.lastPushed = nil
            retried.append(name)
        }
        return retried.sorted()
    }

    public mutating func recordChange(_ address: String, time: Double) {
        self.address = address
        self.history.append(Change(address: address, time: time))
        if self.history.count > 20 { self.history.removeFirst(self.history.count - 20) }
    }
}

/// When to push to a provider, and what to remember afterwards: never the same address twice, at most one
/// push per `minimumInterval`, exponential backoff with jitter after failures, and a stop after a refusal.
public enum PushSchedule {
    /// Seconds between pushes to a commercial service (dyndns2, Cloudflare): they ban clients that push
    /// too often. An RFC 2136 primary is the user's own; pushes to it are limited by the judgement alone.
    public static let minimumInterval: Double = 60

    public static func minimumInterval(for kind: Provider.Kind) -> Double {
        if case .rfc2136 = kind { return 0 }
        return PushSchedule.minimumInterval
    }
    public static let firstBackoff: Double = 60
    public static let maximumBackoff: Double = 3600

    /// Whether to push `address` now: not while stopped with the same configuration; not when the provider
    /// has this address from a push with this configuration (the same record, hostname and secret) less than
    /// `refresh` seconds ago; else once the schedule allows.
    public static func due(
        _ record: UpdaterState.ProviderRecord, address: String, configuration: String, now: Double,
        refresh: Double = Double(Provider.defaultRefresh)
    ) -> Bool {
        if record.stopped {
            if record.configuration == configuration { return false }
        } else if record.lastPushed == address && record.configuration == configuration {
            let since = record.lastSuccess ?? record.lastAttempt ?? now
            if now - since < refresh { return false }
        }
        return now >= record.nextAttempt
    }

    /// What the status says about a stopped provider: why, and how to try again.
    public static let retryAdvice =
        "stopped; fix the cause, then reload (systemctl reload frontdoor, or SIGHUP) or change its settings or secret"

    /// The record after a push at `now`; `random` in 0..<1 spreads retries.
    public static func after(
        _ outcome: PushOutcome, record: UpdaterState.ProviderRecord, address: String, configuration: String,
        now: Double, random: Double, minimumInterval: Double = PushSchedule.minimumInterval
    ) -> UpdaterState.ProviderRecord {
        var record = record
        record.lastAttempt = now
        record.pushes += 1
        record.lastResult = outcome.summary
        record.configuration = configuration
        switch outcome {
        case .updated, .unchanged:
            record.lastPushed = address
            record.lastSuccess = now
            record.failures = 0
            record.stopped = false
            record.nextAttempt = now + minimumInterval
        case .failed(_, let retryAfter):
            record.failures += 1
            let backoff = min(
                PushSchedule.maximumBackoff,
                PushSchedule.firstBackoff * Double(1 << min(record.failures - 1, 20)))
            let wait = max(backoff * (0.75 + 0.5 * random), Double(retryAfter ?? 0) / 1000)
            record.nextAttempt = now + wait
        case .fatal:
            record.stopped = true
            record.nextAttempt = now
        }
        return record
    }
}
