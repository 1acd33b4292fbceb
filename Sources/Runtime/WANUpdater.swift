import DynDNS
import EventLoop
import Synchronization
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The DynDNS service: polls the configured sources, lets `WANJudge` decide, republishes the model when the
/// WAN address changes (the `wan=auto` views follow at once), then pushes the address to every provider —
/// each only when it differs, at most once a minute, backing off after failures, stopping after a refusal.
/// Its state survives restarts in `state-dir/dyndns.json`.
public final class WANUpdater: @unchecked Sendable {
    let appliance: Appliance
    let statePath: String?
    var client: ProviderClient
    var judge: WANJudge
    var state: UpdaterState
    let stopped = Atomic<Bool>(false)
    let wake: Poller?
    /// What `status` shows; updated after each poll.
    public let published = Mutex<UpdaterState>(UpdaterState())

    public init(appliance: Appliance, client: ProviderClient = ProviderClient()) {
        self.appliance = appliance
        self.client = client
        let settings = appliance.store?.tables().snapshot.settings ?? Settings()
        self.statePath = settings.stateDirectory.map { joinPath($0, "dyndns.json") }
        self.state = self.statePath.map(UpdaterState.load) ?? UpdaterState()
        // A restart continues from the address it published last, so a brief outage is not a change.
        let known = self.state.address.flatMap { IPAddress($0) }
        self.judge = WANJudge(
            policy: settings.wanPolicy, confirmation: UInt64(settings.wanConfirmation) * 1000,
            acceptDocumentation: settings.wanAcceptDocumentation, published: known)
        self.wake = try? Poller(capacity: 4)
        self.published.withLock { $0 = self.state }
    }

    var settings: Settings { self.appliance.store?.tables().snapshot.settings ?? Settings() }

    public func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    /// Polls until stopped: at the configured interval (with jitter), sooner while a new address waits
    /// for confirmation or a provider's retry falls due.
    public func run() {
        // An address known from the last run is published before the first poll.
        if let known = self.judge.published { self.publish(known, announce: false) }
        while !self.stopped.load(ordering: .acquiring) {
            let wait = self.poll()
            self.wake?.wait(timeout: Int32(clamping: wait)) { _, _ in }
        }
    }

    /// One round: detect, judge, publish, push. Returns milliseconds until the next round.
    @discardableResult
    public func poll() -> UInt64 {
        let settings = self.settings
        let now = monotonicMilliseconds()
        var observations: [WANObservation] = []
        for source in settings.wanSources {
            observations.append(WANObservation(source: WANUpdater.name(source), result: WANUpdater.detect(source)))
        }
        self.judge.policy = settings.wanPolicy
        self.judge.confirmation = UInt64(settings.wanConfirmation) * 1000
        self.judge.acceptDocumentation = settings.wanAcceptDocumentation
        let decision = self.judge.judge(observations, now: now)
        for warning in self.judge.warnings { Log.warning("wan: \(warning)") }
        self.state.lastPoll = WANUpdater.wallClock()
        self.state.sources = observations.map { observation in
            switch observation.result {
            case .success(let address): UpdaterState.SourceReport(source: observation.source, said: address.description)
            case .failure(let error): UpdaterState.SourceReport(source: observation.source, said: "no answer: \(error)")
            }
        }
        var next = UInt64(settings.wanInterval) * 1000
        switch decision {
        case .publish(let address):
            self.state.note = nil
            self.publish(address, announce: true)
        case .pending(let address):
            self.state.note = "\(address) seen; published if it still holds after \(settings.wanConfirmation)s"
            Log.info("wan: \(self.state.note ?? "")")
            next = min(next, max(1000, self.judge.confirmation / 2))
        case .unchanged:
            self.state.note = nil
        case .noAddress(let reason):
            self.state.note = reason
            Log.warning("wan: no usable address: \(reason)")
        }
        if let address = self.judge.published {
            let retry = self.pushAll(address, settings: settings)
            if let retry { next = min(next, retry) }
        }
        self.save()
        return WANJudge.nextPoll(after: 0, interval: max(1000, next), random: randomUInt32())
    }

    func publish(_ address: IPAddress, announce: Bool) {
        var wan = self.appliance.wan
        switch address {
        case .v4(let v4): wan.v4 = v4
        case .v6(let v6): wan.v6 = v6
        }
        if announce {
            self.state.recordChange(address.description, time: WANUpdater.wallClock())
            Log.info("wan: address is now \(address); the wan view follows")
        }
        if let diagnostics = self.appliance.setWAN(wan, dateSerial: todaySerial()) {
            for error in diagnostics.errors { Log.error("wan: \(error)") }
        }
    }

    /// Pushes to the providers that are due; returns milliseconds until the earliest retry, if any.
    func pushAll(_ address: IPAddress, settings: Settings) -> UInt64? {
        let now = WANUpdater.wallClock()
        var earliest: Double?
        for provider in settings.providers {
            let configuration = "\(provider.kind)"
            let record = self.state.providers[provider.name] ?? UpdaterState.ProviderRecord()
            guard PushSchedule.due(record, address: address.description, configuration: configuration, now: now) else {
                if record.lastPushed != address.description && !record.stopped {
                    earliest = min(earliest ?? record.nextAttempt, record.nextAttempt)
                }
                continue
            }
            let outcome = self.client.push(provider, address: address)
            let updated = PushSchedule.after(
                outcome, record: record, address: address.description, configuration: configuration, now: now,
                random: Double(randomUInt32()) / Double(UInt32.max),
                minimumInterval: PushSchedule.minimumInterval(for: provider.kind))
            self.state.providers[provider.name] = updated
            switch outcome {
            case .updated: Log.info("dyndns: \(provider.name) now has \(address)")
            case .unchanged: Log.info("dyndns: \(provider.name) already had \(address)")
            case .failed(let reason, _):
                Log.warning(
                    "dyndns: \(provider.name) failed (\(reason)); retrying in \(Int(updated.nextAttempt - now))s")
                earliest = min(earliest ?? updated.nextAttempt, updated.nextAttempt)
            case .fatal(let reason):
                Log.error("dyndns: \(provider.name) refused: \(reason); no more pushes until its settings change")
            }
        }
        guard let earliest else { return nil }
        return UInt64(max(1, (earliest - now) * 1000))
    }

    func save() {
        self.published.withLock { $0 = self.state }
        guard let path = self.statePath else { return }
        if let problem = self.state.save(path: path) { Log.warning("dyndns: cannot save state \(path): \(problem)") }
    }

    static func name(_ source: WANSource) -> String {
        switch source.kind {
        case .interface(let name): "interface \(name)"
        case .natPMP(let gateway): "natpmp \(gateway)"
        case .dns(let name, let type, let server): "dns \(name.hostDescription) \(type) @\(server)"
        case .http(let url): "http \(url)"
        }
    }

    static func detect(_ source: WANSource) -> Result<IPAddress, DetectError> {
        switch source.kind {
        case .interface(let name): Detectors.interface(name)
        case .natPMP(let gateway): Detectors.natPMP(SocketAddress(address: gateway, port: 5351))
        case .dns(let name, let type, let server):
            Detectors.dns(name: name, type: type, server: server, chaos: name.hostDescription == "whoami.cloudflare")
        case .http(let url): Detectors.http(url)
        }
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
