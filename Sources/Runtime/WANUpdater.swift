import CSys
import DynDNS
import EventLoop
import Files
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
    /// One judgement per address family: IPv4 and IPv6 addresses change independently.
    var judge: WANJudge
    var judge6: WANJudge
    var state: UpdaterState
    /// Per source: since when it fails (monotonic ms), and the sources that answered at least once.
    var failingSince: [String: UInt64] = [:]
    var answered: Set<String> = []
    /// The last "no usable address" reason logged per family, so a lasting problem is logged once.
    var lastWarning = ["", ""]
    let stopped = Atomic<Bool>(false)
    /// A reload asked for stopped providers to be tried again (the operator fixed the cause).
    let retryRequested = Atomic<Bool>(false)
    let wake: Poller?
    /// The socket the routers' announcements arrive on (port 5350), when a router protocol is a source.
    var announcements: Int32?
    /// The kernel's link and address notices (netlink), when an interface is a source.
    var interfaceEvents: Int32?
    /// When a router's announcement or an interface notice last brought a poll forward (monotonic ms).
    var lastEarlyPoll: UInt64 = 0
    /// When one held back by the once-a-second limit is acted on.
    var heldEarlyPoll: UInt64?
    /// Called when the router announced something (a new address, or a restart: PCP's ANNOUNCE at start, RFC
    /// 6887 §14.1.3): the port forwards are asked for again at once.
    public var announced: (@Sendable () -> Void)?
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
        self.judge6 = WANJudge(
            policy: settings.wanPolicy, confirmation: UInt64(settings.wanConfirmation) * 1000,
            acceptDocumentation: settings.wanAcceptDocumentation,
            published: self.state.address6.flatMap { IPAddress($0) })
        self.client.caFile = settings.caFile
        self.wake = try? Poller(capacity: 4)
        self.published.withLock { $0 = self.state }
        // The router's announcements of a new address (NAT-PMP RFC 6886 §3.2.1, PCP ANNOUNCE RFC 6887 §14.1.3,
        // both multicast to 224.0.0.1:5350) end the wait at once, when a router protocol is a source.
        if !settings.routerGateways.isEmpty, let wake = self.wake {
            switch WANUpdater.announcementSocket() {
            case .success(let fd):
                self.announcements = fd
                try? wake.add(fd, events: Poller.readable, token: WANUpdater.announcementToken)
            case .failure(let problem):
                Log.warning("wan: not listening for the router's announcements: \(problem)")
            }
        }
        // The kernel's notices of a link going down or up and of addresses coming and going end the wait
        // too, when an interface is a source.
        if !WANUpdater.interfaceNames(settings).isEmpty, let wake = self.wake {
            let fd = csys_netlink_interface_events()
            if fd >= 0 {
                self.interfaceEvents = fd
                try? wake.add(fd, events: Poller.readable, token: WANUpdater.interfaceToken)
            } else {
                Log.warning("wan: not following the interfaces' changes (netlink: \(String(cString: strerror(-fd))))")
            }
        }
    }

    deinit {
        if let fd = self.announcements { Sockets.close(fd) }
        if let fd = self.interfaceEvents { Sockets.close(fd) }
    }

    static let announcementToken: UInt64 = 1
    static let interfaceToken: UInt64 = 2

    /// The interfaces the sources read.
    static func interfaceNames(_ settings: Settings) -> [String] {
        settings.wanSources.compactMap { source in
            switch source.kind {
            case .interface(let name), .interface6(let name, _): name
            default: nil
            }
        }
    }

    /// Reads the kernel's notices: whether one concerns an interface a source reads (by its name, or by its
    /// index when the notice has no name).
    func readInterfaceEvents() -> Bool {
        guard let fd = self.interfaceEvents else { return false }
        let names = WANUpdater.interfaceNames(self.settings)
        let indexes = Dictionary(names.map { (if_nametoindex($0), $0) }, uniquingKeysWith: { first, _ in first })
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var changed: [String] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            for event in InterfaceEvents.decode(Array(buffer.prefix(count))) {
                guard let name = event.name.flatMap({ names.contains($0) ? $0 : nil }) ?? indexes[event.index]
                else { continue }
                let text = "\(name): \(event)"
                if !changed.contains(text) { changed.append(text) }
            }
        }
        guard !changed.isEmpty else { return false }
        Log.info("wan: \(changed.joined(separator: ", ")); asking the sources now")
        return self.pollSoon()
    }

    /// The protocol each router answered last (`wan router`), asked first the next time.
    static let routerProtocols = Mutex<[IPAddress: String]>([:])

    /// The router's WAN address over PCP, NAT-PMP or UPnP IGD: the one that answered last first, then the
    /// others in that order. A router that answers none: every protocol's reason.
    static func askRouter(_ gateway: IPAddress) -> Result<IPAddress, DetectError> {
        let protocols: [(String, (IPAddress) -> Result<IPAddress, DetectError>)] = [
            ("pcp", { PCP.externalAddress(gateway: $0) }),
            ("natpmp", { Detectors.natPMP(SocketAddress(address: $0, port: 5351)) }),
            ("upnp", { UPnP.externalAddress(gateway: $0) }),
        ]
        let remembered = WANUpdater.routerProtocols.withLock { $0[gateway] }
        let ordered = protocols.filter { $0.0 == remembered } + protocols.filter { $0.0 != remembered }
        var reasons: [String] = []
        for (name, ask) in ordered {
            switch ask(gateway) {
            case .success(let address):
                if remembered != name {
                    WANUpdater.routerProtocols.withLock { $0[gateway] = name }
                    Log.info("wan: the router at \(gateway) answers over \(name)")
                }
                return .success(address)
            case .failure(let error):
                reasons.append("\(name): \(error)")
            }
        }
        // Answers without a public address (NAT-PMP's network failure, UPnP's empty address — miniupnpd and
        // others hide a private or CGNAT address of their own): the router has no public address to share.
        let hidden = reasons.contains { $0.contains("network failure") || $0.contains("(an empty answer)") }
        if hidden {
            return .failure(
                DetectError(
                    "the router at \(gateway) answers but has no public WAN address: its own WAN address is private "
                        + "(a second router in front of it: double NAT) or carrier-grade NAT (the ISP shares one public "
                        + "address among customers), so port forwards on it cannot reach the internet; ask the ISP for "
                        + "a public address (or use IPv6, or a tunnel), or put the front router in bridge mode ("
                        + reasons.joined(separator: "; ") + ")"))
        }
        return .failure(DetectError(reasons.joined(separator: "; ")))
    }

    /// A UDP socket on port 5350 that receives the all-hosts multicast the routers announce on.
    static func announcementSocket() -> Result<Int32, DetectError> {
        let fd = csys_udp4_socket()
        guard fd >= 0 else { return .failure(DetectError("socket: \(String(cString: strerror(-fd)))")) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(5350).bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            return .failure(DetectError("cannot bind port 5350: \(reason)"))
        }
        var membership = ip_mreq()
        membership.imr_multiaddr.s_addr = UInt32(0xE000_0001).bigEndian
        membership.imr_interface.s_addr = INADDR_ANY
        setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &membership, socklen_t(MemoryLayout<ip_mreq>.size))
        return .success(fd)
    }

    /// Reads what arrived on the announcement socket: whether a configured router announced a change. At most
    /// one poll a second follows announcements (a router sends several for one change, and a host on the LAN
    /// could send many): one inside that second is held until it is over, not dropped.
    func readAnnouncements() -> Bool {
        guard let fd = self.announcements else { return false }
        // `auto`: the default route's gateway, which announces as a router does.
        let gateways = self.settings.routerGateways.compactMap {
            try? RouterDiscovery.resolve($0, upnp: false).get()
        }
        var announced: IPAddress?
        var buffer = [UInt8](repeating: 0, count: 1100)
        while true {
            let (count, sender) = Sockets.receive(fd, into: &buffer)
            guard count > 0 else { break }
            guard let sender, gateways.contains(sender) else { continue }
            if WANUpdater.isAnnouncement(Array(buffer.prefix(count))) { announced = sender }
        }
        guard let announced else { return false }
        Log.info("wan: the router at \(announced) announced a change; asking the sources now")
        self.announced?()
        return self.pollSoon()
    }

    /// A poll now, unless one was triggered less than a second ago: then when that second is over.
    func pollSoon() -> Bool {
        let now = monotonicMilliseconds()
        guard now >= self.lastEarlyPoll + 1000 else {
            self.heldEarlyPoll = self.lastEarlyPoll + 1000
            return false
        }
        self.lastEarlyPoll = now
        return true
    }

    /// A NAT-PMP public address announcement (version 0, opcode 128, result 0, 12 bytes) or a PCP ANNOUNCE
    /// (version 2, opcode 0 answered: 0x80).
    static func isAnnouncement(_ bytes: [UInt8]) -> Bool {
        (bytes.count == 12 && bytes[0] == 0 && bytes[1] == 128 && bytes[2] == 0 && bytes[3] == 0)
            || (bytes.count >= 24 && bytes[0] == 2 && bytes[1] == 0x80)
    }

    var settings: Settings { self.appliance.store?.tables().snapshot.settings ?? Settings() }

    public func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    /// The configuration was reloaded (SIGHUP): providers that refused are tried again at the next poll,
    /// which comes at once.
    public func reloaded() {
        self.retryRequested.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    /// Polls until stopped: at the configured interval (with jitter), sooner while a new address waits
    /// for confirmation or a provider's retry falls due.
    public func run() {
        // An address known from the last run is published before the first poll.
        if let known = self.judge.published { self.publish(known, announce: false) }
        if let known = self.judge6.published { self.publish(known, announce: false) }
        while !self.stopped.load(ordering: .acquiring) {
            let deadline = monotonicMilliseconds() + self.poll()
            // Until the next poll is due, a wake-up (stop, reload), a router's announcement or an interface notice.
            var due = false
            while !due && !self.stopped.load(ordering: .acquiring) {
                let now = monotonicMilliseconds()
                guard now < deadline else { break }
                // One that came too soon after the last is acted on when the second is up.
                if let held = self.heldEarlyPoll, now >= held {
                    self.heldEarlyPoll = nil
                    self.lastEarlyPoll = now
                    break
                }
                let until = min(deadline, self.heldEarlyPoll ?? deadline)
                self.wake?.wait(timeout: Int32(clamping: until - now)) { token, _ in
                    if token == WANUpdater.announcementToken {
                        if self.readAnnouncements() { due = true }
                    } else if token == WANUpdater.interfaceToken {
                        if self.readInterfaceEvents() { due = true }
                    } else {
                        due = true
                    }
                }
            }
        }
    }

    /// One round: detect, judge, publish, push. Returns milliseconds until the next round.
    @discardableResult
    public func poll() -> UInt64 {
        let settings = self.settings
        if self.retryRequested.exchange(false, ordering: .acquiring) {
            for name in self.state.retryStopped() { Log.info("dyndns: trying \(name) again after the reload") }
        }
        self.client.caFile = settings.caFile
        let now = monotonicMilliseconds()
        var observations: [(v6: Bool, observation: WANObservation)] = []
        for source in settings.wanSources {
            let result = WANUpdater.detect(source, caFile: settings.caFile)
            // An answer counts for its own family; a failure for the family the source usually reports.
            let v6: Bool
            switch result {
            case .success(let address): v6 = !address.isV4
            case .failure: v6 = WANUpdater.reportsIPv6(source)
            }
            observations.append((v6, WANObservation(source: WANUpdater.name(source), result: result)))
        }
        // Each source's health: its failure and its recovery are logged once each (its first answer is not).
        for entry in observations {
            let source = entry.observation.source
            switch entry.observation.result {
            case .success(let address):
                if let since = self.failingSince[source] {
                    Log.info("wan: \(source) answers again (\(address), after \((now &- since) / 1000)s without)")
                }
                self.failingSince[source] = nil
                self.answered.insert(source)
            case .failure(let error):
                if self.failingSince[source] == nil && self.answered.contains(source) {
                    Log.warning("wan: \(source) stopped answering: \(error)")
                }
                if self.failingSince[source] == nil { self.failingSince[source] = now }
            }
        }
        self.state.lastPoll = WANUpdater.wallClock()
        self.state.sources = observations.map { entry in
            switch entry.observation.result {
            case .success(let address):
                UpdaterState.SourceReport(source: entry.observation.source, said: address.description)
            case .failure(let error):
                UpdaterState.SourceReport(source: entry.observation.source, said: "no answer: \(error)")
            }
        }
        var next = UInt64(settings.wanInterval) * 1000
        var notes: [String] = []
        for v6 in [false, true] {
            let family = observations.filter { $0.v6 == v6 }.map(\.observation)
            guard !family.isEmpty else { continue }
            var judge = v6 ? self.judge6 : self.judge
            judge.policy = settings.wanPolicy
            judge.confirmation = UInt64(settings.wanConfirmation) * 1000
            judge.acceptDocumentation = settings.wanAcceptDocumentation
            judge.grace = settings.wanGrace.map { UInt64($0) * 1000 }
            let decision = judge.judge(family, now: now)
            if v6 { self.judge6 = judge } else { self.judge = judge }
            if case .noAddress = decision {
            } else {
                // Warnings beside a usable answer (one source behind CGNAT, say): also once each.
                let text = judge.warnings.joined(separator: "; ")
                if !text.isEmpty && self.lastWarning[v6 ? 1 : 0] != text { Log.warning("wan: \(text)") }
                self.lastWarning[v6 ? 1 : 0] = text
            }
            switch decision {
            case .publish(let address):
                self.publish(address, announce: true)
            case .pending(let address):
                let note = "\(address) seen; published if it still holds after \(settings.wanConfirmation)s"
                notes.append(note)
                Log.info("wan: \(note)")
                next = min(next, max(1000, judge.confirmation / 2))
            case .unchanged:
                break
            case .withdraw(let address, let reason):
                let note =
                    "no usable \(v6 ? "IPv6" : "IPv4") address for \(settings.wanGrace ?? 0)s (wan grace): \(address) is "
                    + "withdrawn — the wan view answers without it and the providers keep what they have until a "
                    + "source answers again (\(reason))"
                notes.append(note)
                Log.error("wan: \(note)")
                self.lastWarning[v6 ? 1 : 0] = reason
                self.withdraw(v6: v6)
                continue
            case .noAddress(let reason):
                if let since = judge.lostSince, judge.published != nil {
                    let kept = (now &- since) / 1000
                    // Asked again when the grace period ends, not only at the next interval.
                    if let grace = judge.grace { next = min(next, max(1000, grace &- (now &- since) + 500)) }
                    notes.append(
                        "\(reason); keeping \(judge.published.map { "\($0)" } ?? "") for now (\(kept)s of the grace period)"
                    )
                } else {
                    notes.append(reason)
                }
                // Said once per new reason, not at every poll.
                if self.lastWarning[v6 ? 1 : 0] != reason {
                    Log.warning("wan: no usable \(v6 ? "IPv6" : "IPv4") address: \(reason)")
                }
                self.lastWarning[v6 ? 1 : 0] = reason
                continue
            }
        }
        self.state.note = notes.isEmpty ? nil : notes.joined(separator: "; ")
        for published in [self.judge.published, self.judge6.published] {
            guard let address = published else { continue }
            if let retry = self.pushAll(address, settings: settings) { next = min(next, retry) }
        }
        self.save()
        return WANJudge.nextPoll(after: 0, interval: max(1000, next), random: randomUInt32())
    }

    /// Takes the address of one family out of the wan view (the grace period ran out).
    func withdraw(v6: Bool) {
        var wan = self.appliance.wan
        if v6 { wan.v6 = nil } else { wan.v4 = nil }
        if let diagnostics = self.appliance.setWAN(wan, dateSerial: todaySerial()) {
            for diagnostic in diagnostics.errors { Log.error(diagnostic.description) }
        }
        if v6 { self.state.address6 = nil } else { self.state.address = nil }
        self.published.withLock { $0 = self.state }
    }

    func publish(_ address: IPAddress, announce: Bool) {
        var wan = self.appliance.wan
        switch address {
        case .v4(let v4): wan.v4 = v4
        case .v6(let v6): wan.v6 = v6
        }
        if announce {
            if address.isV4 {
                self.state.recordChange(address.description, time: WANUpdater.wallClock())
            } else {
                self.state.address6 = address.description
                self.state.history.append(
                    UpdaterState.Change(address: address.description, time: WANUpdater.wallClock()))
            }
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
            // Where it pushes and with which secret: a changed record, hostname or password is a new
            // configuration (pushed to even when the address is the same, and tried again after a refusal).
            let configuration = "\(provider.kind) secret=\(ProviderClient.secretDigest(provider))"
            // IPv4 and IPv6 are kept apart: each family's record has its own push history.
            let key = address.isV4 ? provider.name : provider.name + " (IPv6)"
            let record = self.state.providers[key] ?? UpdaterState.ProviderRecord()
            guard
                PushSchedule.due(
                    record, address: address.description, configuration: configuration, now: now,
                    refresh: Double(provider.refresh))
            else {
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
            self.state.providers[key] = updated
            switch outcome {
            case .updated: Log.info("dyndns: \(provider.name) now has \(address)")
            case .unchanged: Log.info("dyndns: \(provider.name) already had \(address)")
            case .failed(let reason, _):
                Log.warning(
                    "dyndns: \(provider.name) failed (\(reason)); retrying in \(Int(updated.nextAttempt - now))s")
                earliest = min(earliest ?? updated.nextAttempt, updated.nextAttempt)
            case .fatal(let reason):
                Log.error(
                    "dyndns: \(provider.name) refused: \(reason); no more pushes until its settings or secret change, "
                        + "or a reload (SIGHUP) after the cause is fixed")
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
        case .interface6(let name, let suffix): "interface6 \(name)\(suffix.map { " \($0)" } ?? "")"
        case .natPMP(let gateway): "natpmp \(WANSource.describe(gateway: gateway))"
        case .upnp(let gateway): "upnp \(WANSource.describe(gateway: gateway))"
        case .pcp(let gateway): "pcp \(WANSource.describe(gateway: gateway))"
        case .router(let gateway): "router \(WANSource.describe(gateway: gateway))"
        case .dns(let name, let type, let server): "dns \(name.hostDescription) \(type) @\(server)"
        case .http(let url): "http \(url)"
        }
    }

    static func reportsIPv6(_ source: WANSource) -> Bool {
        switch source.kind {
        case .interface6: true
        case .dns(_, let type, _): type == .aaaa
        default: false
        }
    }

    static func detect(_ source: WANSource, caFile: String?) -> Result<IPAddress, DetectError> {
        switch source.kind {
        case .interface(let name): Detectors.interface(name)
        case .interface6(let name, let suffix):
            Detectors.interface(name, v6: true).map { address in
                guard let suffix, case .v6(let global) = address else { return address }
                return .v6(IPv6Address(high: global.high, low: suffix.low))
            }
        case .natPMP(let gateway):
            RouterDiscovery.resolve(gateway, upnp: false).flatMap {
                Detectors.natPMP(SocketAddress(address: $0, port: 5351))
            }
        case .upnp(let gateway):
            RouterDiscovery.resolve(gateway, upnp: true).flatMap { device in
                let answer = UPnP.externalAddress(gateway: device)
                // A device found by searching that stopped answering is searched for again next time.
                if case .failure = answer { RouterDiscovery.forget(device) }
                return answer
            }
        case .pcp(let gateway):
            RouterDiscovery.resolve(gateway, upnp: false).flatMap { PCP.externalAddress(gateway: $0) }
        case .router(let gateway): RouterDiscovery.resolve(gateway, upnp: false).flatMap { WANUpdater.askRouter($0) }
        case .dns(let name, let type, let server):
            Detectors.dns(name: name, type: type, server: server, chaos: name.hostDescription == "whoami.cloudflare")
        case .http(let url): Detectors.http(url, caFile: caFile)
        }
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
