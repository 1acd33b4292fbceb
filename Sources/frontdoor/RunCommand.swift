import DNSServer
import EventLoop
import HTTPProxy
import Runtime
import Synchronization
import TLS
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

enum RunCommand {
    static let help = """
        usage: frontdoor run [--config DIR] [--dns ADDRESS:PORT|off]... [--http ADDRESS:PORT|off]...
                             [--https ADDRESS:PORT|off]... [--admin ADDRESS:PORT|off]... [--user NAME] [--workers N]
                             [--wan ADDRESS]... [--rate-limit N] [--access-log PATH|-]
                             [--access-log-format combined|json]

        Serves the model in DIR (default /etc/frontdoor): split-horizon DNS over UDP and TCP, forwarding
        other names for views with recursion, and the Host-routing HTTP reverse proxy. --dns and --http
        replace the config's listeners (repeatable; 'off' turns the service off), e.g. --dns 127.0.0.1:5353 --http 127.0.0.1:8080 to try
        it without root. --https does the same for HTTPS, which serves the certificates of 'tls DIR' in
        frontdoor.conf (default 0.0.0.0:443 and [::]:443 once 'tls' is set). --admin moves the admin listener (/metrics, /status, a status page; default
        127.0.0.1:9053) or turns it off. --user (or 'user NAME' in frontdoor.conf) switches to that user once
        the ports are bound (the state-dir, made if missing, is handed to that user). --access-log appends one line per request to PATH ('-': standard output), in nginx's
        combined format plus site, backend and duration, or as JSON. --workers sets the threads (default: one per core).
        --wan fixes the address 'auto' stands for and turns the DynDNS updater off. --rate-limit sets responses per
        second per client /24 (or /56) for views without recursion (default 200, 0 turns it off).
        SIGHUP reloads the model (a broken edit keeps the old one serving); SIGTERM stops.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(
            words,
            valued: [
                "--config", "--dns", "--http", "--https", "--admin", "--user", "--workers", "--wan", "--rate-limit",
                "--access-log",
                "--access-log-format",
            ], boolean: [])
        guard arguments.positional.isEmpty else { throw UsageError(message: "run takes no positional arguments") }
        let directory = arguments.value("--config") ?? defaultDirectory
        let listeners = try RunCommand.listeners(arguments, "--dns")
        let httpListeners = try RunCommand.listeners(arguments, "--http")
        let httpsListeners = try RunCommand.listeners(arguments, "--https")
        let adminListeners = try RunCommand.listeners(arguments, "--admin")
        var accessLogFormat = AccessLog.Format.combined
        switch arguments.value("--access-log-format") {
        case nil, "combined": break
        case "json": accessLogFormat = .json
        case let other?: throw UsageError(message: "--access-log-format: '\(other)' is not combined or json")
        }
        var workers = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if let text = arguments.value("--workers") {
            guard let value = Int(text), (1...64).contains(value) else {
                throw UsageError(message: "--workers takes 1 to 64")
            }
            workers = value
        }
        var rateLimit = 200
        if let text = arguments.value("--rate-limit") {
            guard let value = Int(text), value >= 0 else {
                throw UsageError(message: "--rate-limit takes a count, 0 for off")
            }
            rateLimit = value
        }
        let appliance = Appliance(directory: directory, wan: try wanAddresses(arguments))
        // Without --wan the updater runs: start from the address it published last.
        appliance.restoresWAN = arguments.values["--wan"] == nil

        // Signals are taken by sigwait below: block them before any thread starts so every thread inherits it.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        Glibc.signal(SIGPIPE, SIG_IGN)

        if let diagnostics = appliance.load(dateSerial: todaySerial()) {
            for diagnostic in diagnostics.sorted { printError(diagnostic.description) }
            printError("frontdoor run: \(directory) has errors; nothing started")
            return .badConfig
        }
        guard let store = appliance.store else { return .failure }
        let settings = store.tables().snapshot.settings
        let configuration = RunConfiguration(
            settings: settings,
            flags: RunConfiguration.Flags(
                dns: listeners, http: httpListeners, https: httpsListeners, admin: adminListeners,
                user: arguments.value("--user"),
                wanFixed: arguments.values["--wan"] != nil))
        // Each connection needs a descriptor or two: take what the hard limit allows before binding.
        raiseOpenFileLimit()

        // Bind every listener first: a failure here leaves nothing running.
        var options = DNSOptions(
            listeners: configuration.dnsListeners, workers: workers, upstreams: settings.upstreams)
        options.rateLimit = rateLimit
        options.staleMilliseconds = UInt64(settings.serveStale) * 1000
        options.upstreamTLSNames = settings.upstreamTLSNames
        if settings.upstreamTLSNames.contains(where: { $0 != nil }) {
            do {
                options.tlsClient = try TLSClient(verify: true, caFile: settings.caFile)
            } catch {
                printError("frontdoor run: DNS-over-TLS upstreams: \(error.description)")
                return .badConfig
            }
        }
        var httpOptions = HTTPOptions(listeners: configuration.httpListeners, workers: workers)
        httpOptions.tlsListeners = configuration.httpsListeners
        let certificates = HTTPSCertificates()
        if !configuration.httpsListeners.isEmpty {
            let passthrough = store.tables().snapshot.routes.sites.contains(where: \.passthrough)
            guard HTTPSCertificates.configured(settings) || passthrough else {
                printError(
                    "frontdoor run: HTTPS listeners need certificates ('tls DIR' or 'internal-ca' in frontdoor.conf) "
                        + "or tls-passthrough:// sites")
                return .badConfig
            }
            do {
                let server = try certificates.build(
                    settings: settings, sites: store.tables().snapshot.routes.sites, now: time(nil))
                httpOptions.tls = TLSServerStore(server)
                if let root = certificates.createdRoot {
                    Log.info("made the internal CA's root \(root); install it on devices ('frontdoor ca export')")
                }
            } catch {
                printError("frontdoor run: \(error.description); nothing started")
                return .badConfig
            }
        }
        // Certificates from an ACME CA: rebuilt into the HTTPS listeners as each arrives.
        let certificateLock = CertificateLock()
        var acme: ACMEManager?
        if settings.acme != nil, let tls = httpOptions.tls {
            let proofs = ChallengeTokens()
            httpOptions.challenges = proofs
            acme = ACMEManager(appliance: appliance, httpChallenges: proofs) { name in
                certificateLock.withLock {
                    RunCommand.renewCertificates(certificates, tls, store: store, reason: "acme \(name)")
                }
            }
        } else if settings.acme != nil {
            Log.warning("'acme' is set but no HTTPS listener is: no certificates are ordered ('listen https ...')")
        }
        let service: DNSService?
        let http: HTTPService?
        let updater = configuration.dynDNS ? WANUpdater(appliance: appliance) : nil
        let admin: AdminServer?
        let forwarder = settings.routerForwards.isEmpty ? nil : PortForwarder(appliance: appliance)
        // Set before any thread runs: the router's announcements (a restart, too) renew the forwards at once.
        if let forwarder { updater?.announced = { forwarder.remapNow() } }
        do {
            service = options.listeners.isEmpty ? nil : try DNSService(options: options, store: store)
            if let path = arguments.value("--access-log") {
                httpOptions.accessLog = try AccessLog(path: path, format: accessLogFormat)
            }
            http =
                httpOptions.listeners.isEmpty && httpOptions.tlsListeners.isEmpty
                ? nil : try HTTPService(options: httpOptions, store: store)
        } catch {
            Log.error(error.description)
            return .failure
        }
        do {
            admin =
                configuration.adminListeners.isEmpty
                ? nil
                : try AdminServer(
                    listeners: configuration.adminListeners,
                    context: AdminContext(
                        store: store, dns: service, http: http, updater: updater, started: Double(time(nil)),
                        forwarder: forwarder))
        } catch {
            Log.error("\(error.description) (the admin listener; --admin ADDRESS:PORT or --admin off)")
            return .failure
        }
        // Every port is bound and no thread runs yet: drop root now if asked to.
        if let user = configuration.user {
            if let problem = Appliance.handStateDirectory(store.tables().snapshot.settings, to: user) {
                Log.error(problem)
                return .failure
            }
            if let problem = Privileges.drop(to: user) {
                Log.error(problem)
                return .failure
            }
            Log.info("running as user \(user)")
        }

        // Start in order; the supervisor stops in reverse: the watcher and the control plane before the
        // services they feed, the proxy (drained) before DNS.
        let supervisor = Supervisor()
        // A thread that cannot be created (out of memory or of threads) ends the start: stop what runs.
        func failedToStart(_ name: String) -> ExitCode {
            Log.error("cannot start the \(name) thread; stopping")
            supervisor.stopAll()
            return .failure
        }
        let views = store.tables().views.map(\.name).joined(separator: ", ")
        if let service {
            supervisor.start("dns", start: service.start, stop: service.stop)
            let bound = service.boundListeners.map { "\($0) (udp+tcp)" }.joined(separator: ", ")
            Log.info("serving dns on \(bound) with \(workers) worker(s); views \(views); model \(directory)")
            // NOTIFY to the secondaries: all of them now (a restart may have missed changes), then on each change.
            let notifier = Notifier(activity: service.secondaries)
            appliance.published = { old, new in notifier.changed(old: old, new: new) }
            if let compiled = appliance.compiledSnapshot { notifier.changed(old: nil, new: compiled) }
            guard supervisor.startThread("notify", { notifier.run() }, stop: notifier.stop) else {
                return failedToStart("notify")
            }
        } else {
            Log.info("dns is off; views \(views); model \(directory)")
        }
        if http != nil {
            // Backends named by host name: resolved before the proxy serves, then as their TTLs run out.
            let resolver = BackendResolver(appliance: appliance)
            resolver.resolveNow()
            guard supervisor.startThread("backend-names", { resolver.run() }, stop: resolver.stop) else {
                return failedToStart("backend-names")
            }
        }
        if let http {
            supervisor.start("http", start: http.start, stop: { http.drain(grace: 10_000) })
            let sites = store.tables().snapshot.routes.sites.count
            let plain = http.boundListeners.map { "http://\($0)" }
            let tls = http.boundTLSListeners.map { "https://\($0)" }
            Log.info("serving http on \((plain + tls).joined(separator: ", ")); \(sites) site(s)")
        } else {
            Log.info("http is off")
        }
        if let updater {
            guard supervisor.startThread("dyndns", { updater.run() }, stop: updater.stop) else {
                return failedToStart("dyndns")
            }
            Log.info(
                "dyndns: watching the WAN address with \(settings.wanSources.count) source(s), "
                    + "\(settings.providers.count) provider(s)")
        }
        if let forwarder {
            guard supervisor.startThread("router-forwards", { forwarder.run() }, stop: forwarder.stop) else {
                return failedToStart("router-forwards")
            }
        }
        if let acme {
            guard supervisor.startThread("acme", { acme.run() }, stop: acme.stop) else {
                return failedToStart("acme")
            }
            Log.info("acme: keeping the sites' certificates from \(settings.acme?.directory ?? "")")
        }
        if let admin {
            guard supervisor.startThread("admin", { admin.run() }, stop: admin.stop) else {
                return failedToStart("admin")
            }
            Log.info("admin on \(admin.boundListeners.map { "http://\($0)/" }.joined(separator: ", "))")
        }
        // Edits under the config directory reload it, as SIGHUP does.
        if let watcher = ConfigWatcher(directory: directory) {
            guard supervisor.startThread("config-watch", { watcher.run() }, stop: watcher.stop) else {
                return failedToStart("config-watch")
            }
        }
        ServiceManager.ready("serving \(store.tables().snapshot.routes.sites.count) site(s)")
        while true {
            // An hour at most between looks at the internal CA's leaves (renewed with a third of a week left)
            // and the session-ticket keys (rotated every 12 hours).
            var timeout = timespec(tv_sec: 3600, tv_nsec: 0)
            let received = sigtimedwait(&signals, nil, &timeout)
            guard received > 0 else {
                if let tls = httpOptions.tls {
                    certificateLock.withLock {
                        if certificates.renewalDue(now: time(nil)) {
                            RunCommand.renewCertificates(certificates, tls, store: store, reason: "renewal")
                        }
                    }
                }
                continue
            }
            if received == SIGHUP {
                ServiceManager.reloading()
                defer { ServiceManager.ready("serving \(store.tables().snapshot.routes.sites.count) site(s)") }
                if let diagnostics = appliance.load(dateSerial: todaySerial()) {
                    for diagnostic in diagnostics.errors { Log.error(diagnostic.description) }
                    Log.error("reload failed: \(diagnostics.errors.count) error(s); still serving the previous model")
                } else {
                    Log.info("reloaded \(directory)")
                }
                if let tls = httpOptions.tls {
                    certificateLock.withLock {
                        RunCommand.renewCertificates(certificates, tls, store: store, reason: "reload")
                    }
                }
                updater?.reloaded()
                acme?.reloaded()
                continue
            }
            Log.info("stopping (signal \(received)); finishing requests in progress for up to 10 s")
            ServiceManager.stopping()
            supervisor.stopAll()
            Log.info("stopped")
            return .ok
        }
    }

    /// A listener flag's addresses (repeatable); nil when not given (the config decides), none for 'off'.
    static func listeners(_ arguments: Arguments, _ flag: String) throws(UsageError) -> [SocketAddress]? {
        guard let texts = arguments.values[flag] else { return nil }
        var addresses: [SocketAddress] = []
        for text in texts {
            if text == "off" {
                guard texts.count == 1 else { throw UsageError(message: "\(flag) off cannot go with addresses") }
                return []
            }
            guard let address = SocketAddress(text) else {
                throw UsageError(message: "\(flag): '\(text)' is not ADDRESS:PORT (or 'off')")
            }
            addresses.append(address)
        }
        return addresses
    }

    /// Serialises the HTTPS certificates' rebuilds: the main loop's (reload, renewal) and the ACME thread's.
    final class CertificateLock: Sendable {
        let lock = Mutex<Void>(())
        func withLock(_ body: () -> Void) { self.lock.withLock { _ in body() } }
    }

    /// Builds the certificates again (reload, renewal); the previous ones keep serving when that fails.
    static func renewCertificates(
        _ certificates: HTTPSCertificates, _ store: TLSServerStore, store snapshots: SnapshotStore, reason: String
    ) {
        let snapshot = snapshots.tables().snapshot
        do {
            store.replace(
                try certificates.build(settings: snapshot.settings, sites: snapshot.routes.sites, now: time(nil)))
        } catch {
            Log.error("certificates not reloaded (\(reason)): \(error.description); still serving the previous ones")
        }
    }
}
