import DynDNS
import EventLoop
import Files
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the router's port forwards to this host (`router forward tcp/80 tcp/443`): asks for each over PCP,
/// NAT-PMP or UPnP IGD — the one the operator named for the router (`wan natpmp GATEWAY`), or with `wan router`
/// the first that works, remembered — for an hour, renews at half the lifetime granted,
/// retries a failure after a minute, and removes them all when Frontdoor stops. Never maps anything not
/// configured. Control plane: its own thread.
public final class PortForwarder: @unchecked Sendable {
    let appliance: Appliance
    let stopped = Atomic<Bool>(false)
    let remap = Atomic<Bool>(false)
    let wake: Poller?
    /// The protocol the router answered (pcp, natpmp, upnp).
    var method: String?
    /// PCP wants the same nonce to renew and to delete a mapping.
    var nonces: [RouterForward: [UInt8]] = [:]
    /// What is mapped now: the lifetime granted (s), and until when (monotonic ms).
    var mapped: [RouterForward: (UInt32, UInt64)] = [:]
    /// The router's epoch (PCP, NAT-PMP): one that went back means it restarted and lost the forwards.
    var epoch = RouterEpoch()
    /// Why `auto` found no router, logged once.
    var unresolved: String?
    /// The last problem per forward, logged once each.
    var problems: [RouterForward: String] = [:]
    /// Per forward: what the router last said, and how many times it was renewed — for /metrics, /status
    /// and `frontdoor status` (the file `state-dir/forwards`).
    public let report = Mutex<[String: ForwardReport]>([:])

    /// The report by forward, in order (tcp/443 before tcp/80: by text, as every view shows it).
    public var forwards: [(key: String, value: ForwardReport)] {
        self.report.withLock { $0 }.sorted { $0.key < $1.key }
    }

    public struct ForwardReport: Sendable, Equatable {
        public var up: Bool
        public var text: String
        public var renewals: Int
    }

    public init(appliance: Appliance) {
        self.appliance = appliance
        self.wake = try? Poller(capacity: 2)
    }

    /// The router announced a change or a restart (its mappings may be gone): ask for every forward again now.
    public func remapNow() {
        self.remap.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    public func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    var settings: Settings { self.appliance.store?.tables().snapshot.settings ?? Settings() }

    public func run() {
        while !self.stopped.load(ordering: .acquiring) {
            let wait = self.round(now: monotonicMilliseconds())
            self.wake?.wait(timeout: Int32(clamping: wait)) { _, _ in }
        }
        self.removeAll()
    }

    /// Maps what is due; milliseconds until the next round.
    func round(now: UInt64) -> UInt64 {
        let settings = self.settings
        guard let router = PortForwarder.router(settings) else { return 3_600_000 }
        let gateway: IPAddress
        switch router {
        case .success(let found): gateway = found
        case .failure(let error):
            if self.unresolved != error.message { Log.error("router: cannot forward the ports: \(error.message)") }
            self.unresolved = error.message
            return 60_000
        }
        self.unresolved = nil
        var next: UInt64 = 3_600_000
        let lifetime = settings.routerForwardLifetime
        if self.remap.exchange(false, ordering: .acquiring) && !self.mapped.isEmpty {
            Log.info("router: the router announced a change; asking for the port forwards again")
            self.mapped = [:]
        }
        for forward in settings.routerForwards {
            // Renewed once half of the lifetime granted is over.
            if let (granted, until) = self.mapped[forward], now + UInt64(granted) * 500 < until {
                next = min(next, until - now - UInt64(granted) * 500)
                continue
            }
            switch self.map(forward, gateway: gateway, pinned: settings.routerProtocol, lifetime: lifetime) {
            case .success(let grant):
                let granted = grant.lifetime
                if let epoch = grant.epoch, self.epoch.observe(epoch, now: now) {
                    // The other forwards are gone too: asked for again in a second.
                    Log.warning(
                        "router: the router at \(gateway) restarted (its epoch went back to \(epoch) s): asking for "
                            + "the port forwards again")
                    self.mapped = self.mapped.filter { $0.key == forward }
                    next = 0
                }
                let renewing = self.mapped[forward] != nil
                self.mapped[forward] = (granted, now + UInt64(granted) * 1000)
                self.problems[forward] = nil
                self.report.withLock {
                    let renewals = ($0[forward.description]?.renewals ?? 0) + (renewing ? 1 : 0)
                    $0[forward.description] = ForwardReport(
                        up: true, text: "mapped over \(self.method ?? "?") for \(granted) s", renewals: renewals)
                }
                if !renewing {
                    Log.info(
                        "router: forwarding \(forward) on \(gateway) to this host over \(self.method ?? "?") "
                            + "(\(granted) s, renewed at half)")
                }
                next = min(next, UInt64(granted) * 500)
            case .failure(let error):
                if self.problems[forward] != error.message {
                    Log.error("router: cannot forward \(forward) on \(gateway): \(error.message)")
                }
                self.problems[forward] = error.message
                self.report.withLock {
                    $0[forward.description] = ForwardReport(
                        up: false, text: "failed: \(error.message)", renewals: $0[forward.description]?.renewals ?? 0)
                }
                next = min(next, 60_000)
            }
        }
        self.save(settings)
        return max(next, 1000)
    }

    /// The router the forwards are asked of (`auto` resolved: for UPnP the device a search finds); nil when no
    /// router source is configured.
    static func router(_ settings: Settings) -> Result<IPAddress, DetectError>? {
        settings.routerGateway.map { RouterDiscovery.resolve($0, upnp: settings.routerProtocol == "upnp") }
    }

    /// Asks for (or with lifetime 0 removes) one forward: over `pinned`, the protocol the operator named
    /// (`wan natpmp GATEWAY`), only; else the one that answered last first, then the others.
    func map(_ forward: RouterForward, gateway: IPAddress, pinned: String?, lifetime: UInt32) -> Result<
        PortMapping.Grant, DetectError
    > {
        guard let client = PortMapping.localAddress(toward: gateway) else {
            return .failure(DetectError("no local address towards \(gateway)"))
        }
        let transport: PortMapping.Transport = forward.transport == "udp" ? .udp : .tcp
        let nonce = self.nonces[forward] ?? PCP.newNonce()
        self.nonces[forward] = nonce
        let methods: [(String, () -> Result<PortMapping.Grant, DetectError>)] = [
            (
                "pcp",
                {
                    PortMapping.pcp(
                        gateway: gateway, client: client, nonce: nonce, transport: transport, port: forward.port,
                        lifetime: lifetime)
                }
            ),
            (
                "natpmp",
                {
                    PortMapping.natPMP(gateway: gateway, transport: transport, port: forward.port, lifetime: lifetime)
                }
            ),
            (
                "upnp",
                {
                    PortMapping.upnp(
                        gateway: gateway, client: client, transport: transport, port: forward.port, lifetime: lifetime)
                }
            ),
        ]
        let ordered =
            pinned.map { name in methods.filter { $0.0 == name } }
            ?? (methods.filter { $0.0 == self.method } + methods.filter { $0.0 != self.method })
        var reasons: [String] = []
        for (name, ask) in ordered {
            switch ask() {
            case .success(let granted):
                self.method = name
                return .success(granted)
            case .failure(let error):
                // A port held by another device is the answer, whatever another protocol would say.
                if error.message.contains("another device holds") { return .failure(error) }
                reasons.append("\(name): \(error.message)")
            }
        }
        return .failure(DetectError(reasons.joined(separator: "; ")))
    }

    /// Writes `state-dir/forwards` ("FORWARD<TAB>up|down<TAB>renewals<TAB>what the router said" lines).
    func save(_ settings: Settings) {
        guard let directory = settings.stateDirectory else { return }
        let lines = self.forwards.map { key, entry in
            "\(key)\t\(entry.up ? "up" : "down")\t\(entry.renewals)\t\(entry.text)\n"
        }.joined()
        _ = DiskFiles().writeAtomically(Array(lines.utf8), to: joinPath(directory, "forwards"), mode: 0o644)
    }

    /// Removes every forward made (at stop).
    func removeAll() {
        let settings = self.settings
        guard let gateway = try? PortForwarder.router(settings)?.get() else { return }
        for forward in self.mapped.keys.sorted(by: { $0.port < $1.port }) {
            switch self.map(forward, gateway: gateway, pinned: settings.routerProtocol, lifetime: 0) {
            case .success: Log.info("router: removed the forward of \(forward) on \(gateway)")
            case .failure(let error):
                Log.warning("router: could not remove the forward of \(forward): \(error.message)")
            }
            self.report.withLock {
                $0[forward.description] = ForwardReport(
                    up: false, text: "removed at stop", renewals: $0[forward.description]?.renewals ?? 0)
            }
        }
        self.mapped = [:]
        self.save(settings)
    }
}
