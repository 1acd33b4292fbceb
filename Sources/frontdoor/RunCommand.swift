import DNSServer
import EventLoop
import Runtime
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

enum RunCommand {
    static let help = """
        usage: frontdoor run [--config DIR] [--dns ADDRESS:PORT]... [--workers N] [--wan ADDRESS]...
                             [--rate-limit N]

        Serves the model in DIR (default /etc/frontdoor): split-horizon DNS over UDP and TCP, forwarding
        other names for views with recursion. --dns replaces the config's DNS listeners (repeatable), e.g.
        --dns 127.0.0.1:5353 to try it without root. --workers sets the threads (default: one per core).
        --wan gives the address 'auto' stands for until DynDNS finds one. --rate-limit sets responses per
        second per client /24 (or /56) for views without recursion (default 200, 0 turns it off).
        SIGHUP reloads the model (a broken edit keeps the old one serving); SIGTERM stops.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(
            words, valued: ["--config", "--dns", "--workers", "--wan", "--rate-limit"], boolean: [])
        guard arguments.positional.isEmpty else { throw UsageError(message: "run takes no positional arguments") }
        let directory = arguments.value("--config") ?? defaultDirectory
        var listeners: [SocketAddress] = []
        for text in arguments.values["--dns"] ?? [] {
            guard let address = SocketAddress(text) else {
                throw UsageError(message: "--dns: '\(text)' is not ADDRESS:PORT")
            }
            listeners.append(address)
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
        var options = DNSOptions(
            listeners: listeners.isEmpty ? settings.dnsListeners : listeners, workers: workers,
            upstreams: settings.upstreams)
        options.rateLimit = rateLimit
        let service: DNSService
        do {
            service = try DNSService(options: options, store: store)
        } catch {
            Log.error(error.description)
            return .failure
        }
        service.start()
        let views = store.tables().views.map(\.name).joined(separator: ", ")
        Log.info(
            "serving dns on \(service.boundListeners.map { "\($0) (udp+tcp)" }.joined(separator: ", ")) with \(workers) worker(s); views \(views); model \(directory)"
        )
        while true {
            var received: Int32 = 0
            guard sigwait(&signals, &received) == 0 else { continue }
            if received == SIGHUP {
                if let diagnostics = appliance.load(dateSerial: todaySerial()) {
                    for diagnostic in diagnostics.errors { Log.error(diagnostic.description) }
                    Log.error("reload failed: \(diagnostics.errors.count) error(s); still serving the previous model")
                } else {
                    Log.info("reloaded \(directory)")
                }
                continue
            }
            Log.info("stopping (signal \(received))")
            service.stop()
            Log.info("stopped")
            return .ok
        }
    }
}
