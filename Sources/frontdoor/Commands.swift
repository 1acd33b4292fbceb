import ACME
import DynDNS
import Files
import Runtime
import TLS
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Exit codes (sysexits.h): 0 ok, 1 runtime failure, 64 usage, 65 bad config.
enum ExitCode: Int32 {
    case ok = 0
    case failure = 1
    case usage = 64
    case badConfig = 65
}

/// A usage error: printed with the command's help hint, exit 64.
struct UsageError: Error {
    var message: String
}

/// Splits `argv` into flags with values, boolean flags and positional words.
struct Arguments {
    var positional: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []

    init(_ words: [String], valued: Set<String>, boolean: Set<String>) throws(UsageError) {
        var index = 0
        while index < words.count {
            let word = words[index]
            if word == "--" {
                self.positional += words[(index + 1)...]
                break
            }
            if word.hasPrefix("--") || (word.hasPrefix("-") && word.count == 2) {
                var name = word
                var inline: String? = nil
                if let equals = word.firstIndex(of: "=") {
                    name = String(word[..<equals])
                    inline = String(word[word.index(after: equals)...])
                }
                if boolean.contains(name) {
                    self.flags.insert(name)
                } else if valued.contains(name) {
                    if let inline {
                        self.values[name, default: []].append(inline)
                    } else {
                        guard index + 1 < words.count else { throw UsageError(message: "\(name) needs a value") }
                        index += 1
                        self.values[name, default: []].append(words[index])
                    }
                } else {
                    throw UsageError(message: "unknown option '\(name)'")
                }
            } else {
                self.positional.append(word)
            }
            index += 1
        }
    }

    func value(_ name: String) -> String? { self.values[name]?.last }
}

/// Writes to stderr unbuffered (stdout may be a pipe that is lost on a kill).
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

/// The serials a running Frontdoor persisted, so `export` prints what `run` serves.
func storedSerials(_ settings: Settings) -> SerialBook {
    guard let directory = settings.stateDirectory,
        case .success(let bytes) = DiskFiles().read(joinPath(directory, "serials"))
    else { return SerialBook() }
    return SerialBook(text: String(decoding: bytes, as: UTF8.self))
}

/// `--wan ADDR` (repeatable, one IPv4 and/or one IPv6): the WAN address `auto` stands for.
func wanAddresses(_ arguments: Arguments) throws(UsageError) -> WANAddresses {
    var wan = WANAddresses()
    for text in arguments.values["--wan"] ?? [] {
        switch IPAddress(text) {
        case .v4(let v4): wan.v4 = v4
        case .v6(let v6): wan.v6 = v6
        case nil: throw UsageError(message: "--wan: '\(text)' is not an IP address")
        }
    }
    return wan
}

/// Loads and compiles DIR, printing every diagnostic; nil (after printing) when the model has errors.
func loadSnapshot(directory: String, wan: WANAddresses) -> (Pipeline.Result, Snapshot?) {
    var (model, loadDiagnostics) = ModelLoader.load(directory: directory)
    let inputs = CompileInputs(wan: wan, serials: storedSerials(model.settings), dateSerial: todaySerial())
    let result = Pipeline.finish(&model, diagnostics: loadDiagnostics, inputs: inputs)
    for diagnostic in result.diagnostics.sorted { printError(diagnostic.description) }
    return (result, result.snapshot)
}

enum CheckCommand {
    static let help = """
        usage: frontdoor check [--stats] [DIR]

        Parses, validates and compiles the model in DIR (frontdoor.conf and *.zone; default /etc/frontdoor)
        and prints every problem as file:line:col: error|warning: message. With `tls DIR` it also loads the
        certificates as run would and prints each one's names and days left.
        --stats also prints how long loading and compiling took and the memory the snapshot holds.
        Exit status: 0 when there are no errors (warnings allowed), 65 when there are.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(words, valued: ["--wan"], boolean: ["--stats"])
        guard arguments.positional.count <= 1 else { throw UsageError(message: "check takes one directory") }
        let directory = arguments.positional.first ?? defaultDirectory
        let wan = try wanAddresses(arguments)
        if arguments.flags.contains("--stats") { return CheckCommand.stats(directory: directory, wan: wan) }
        let (result, snapshot) = loadSnapshot(directory: directory, wan: wan)
        let status = CheckCommand.summarise(result, directory: directory)
        guard status == .ok, let snapshot else { return status }
        if let problem = Appliance.stateDirectoryProblem(snapshot.settings) {
            printError("\(directory)/frontdoor.conf: error: \(problem)")
            return .badConfig
        }
        CheckCommand.backendNames(snapshot)
        for line in CheckCommand.secondaries(snapshot) { printError(line) }
        for line in ACMEManager.describe(snapshot) { printError(line) }
        let backends = CheckCommand.backendTLS(snapshot.routes.sites)
        let certificates = CheckCommand.certificates(snapshot.settings)
        return backends == .ok ? certificates : backends
    }

    /// Resolves each backend host name as the proxy will (its zones, then its upstreams, a second each) and
    /// says what it found; a name that does not resolve is a warning (it may resolve where Frontdoor runs).
    static func backendNames(_ snapshot: Snapshot) {
        for host in snapshot.backendNames.sorted() {
            let (outcome, source) = BackendResolver.lookup(host, snapshot: snapshot)
            switch outcome {
            case .addresses(let addresses, let ttl):
                printError(
                    "backend name \(host): \(addresses.map(\.description).joined(separator: ", ")) (\(source), ttl "
                        + "\(ttl) s)")
            case .none(let reason):
                printError(
                    "backend name \(host): warning: does not resolve (\(reason) from \(source)); its sites answer 502 "
                        + "until it does")
            case .failed(let reason):
                printError("backend name \(host): warning: could not be resolved now (\(reason))")
            case .upstream(let name):
                printError("backend name \(host): warning: not resolved (ask \(name) upstream)")
            }
        }
    }

    /// Loads each `ca=` file of the https:// backends as the proxy will (a file that is no PEM CA list is an
    /// error, exit 65).
    static func backendTLS(_ sites: [CompiledSite]) -> ExitCode {
        var status = ExitCode.ok
        for site in sites {
            guard let settings = site.backendTLS, settings.verify else { continue }
            do throws(TLSError) {
                _ = try TLSClient(verify: true, caFile: settings.caFile)
            } catch {
                printError("\(site.name.hostDescription): error: no TLS to its https:// backends: \(error.description)")
                status = .badConfig
            }
        }
        return status
    }

    /// Loads the `tls` directory's certificates as `run` would (never making the internal CA's root):
    /// each one's names and days left, or why it cannot be served (exit 65).
    static func certificates(_ settings: Settings) -> ExitCode {
        guard let directory = settings.tlsDirectory else { return .ok }
        do throws(TLSError) {
            var pairs: [CertificateFiles] = []
            switch CertificateFiles.pairs(in: directory, files: DiskFiles()) {
            case .success(let found): pairs = found
            case .failure(let error): throw error
            }
            let server = try TLSServer(certificates: pairs, fallback: settings.tlsDefault)
            for certificate in server.certificates {
                let warning = certificate.daysLeft < 14 ? " (renew it)" : ""
                printError(
                    "\(certificate.origin): \(certificate.names.joined(separator: ", ")); \(certificate.daysLeft) days "
                        + "left\(warning)")
            }
            return .ok
        } catch {
            printError("\(directory): error: \(error.description)")
            return .badConfig
        }
    }

    /// Times each stage and measures resident memory around compilation (for Tests/Benchmarks/model.sh).
    static func stats(directory: String, wan: WANAddresses) -> ExitCode {
        let start = Stats.now()
        var (model, loadDiagnostics) = ModelLoader.load(directory: directory)
        let loaded = Stats.now()
        let residentBefore = Stats.residentBytes()
        let inputs = CompileInputs(wan: wan, serials: storedSerials(model.settings), dateSerial: todaySerial())
        let result = Pipeline.finish(&model, diagnostics: loadDiagnostics, inputs: inputs)
        let compiled = Stats.now()
        // Drop the model so what stays resident is the snapshot (and the allocator's free lists).
        model = Model()
        let residentAfter = Stats.residentBytes()
        for diagnostic in result.diagnostics.sorted { printError(diagnostic.description) }
        let names = result.snapshot?.views.reduce(0) { $0 + $1.nodes.count } ?? 0
        printError(
            "stats: load \(Stats.milliseconds(loaded - start)) ms, validate+compile \(Stats.milliseconds(compiled - loaded)) ms, "
                + "names \(names), routes \(result.snapshot?.routes.sites.count ?? 0), "
                + "rss \(residentAfter >> 20) MiB (snapshot ~\((residentAfter - min(residentAfter, residentBefore)) >> 20) MiB), "
                + "peak \(Stats.peakResidentBytes() >> 20) MiB")
        return CheckCommand.summarise(result, directory: directory)
    }

    /// One line per secondary: the view and zones it copies, how it is known, whether it hears NOTIFY.
    static func secondaries(_ snapshot: Snapshot) -> [String] {
        snapshot.settings.secondaries.map { secondary in
            let zones = snapshot.view(named: secondary.view)?.zones.keys.sorted().map(\.description) ?? []
            let known =
                secondary.key.map { "TSIG key \($0.name) (\($0.algorithm.rawValue))" }
                ?? "its address \(secondary.address.address) (no key: anyone who can use that address may transfer)"
            let notify = secondary.notify ? "NOTIFY to \(secondary.address)" : "no NOTIFY (it polls at the SOA refresh)"
            return "secondary \(secondary.name): copies view '\(secondary.view)' (\(zones.joined(separator: ", "))) "
                + "by AXFR/IXFR over TCP; known by \(known); \(notify)"
        }
    }

    static func summarise(_ result: Pipeline.Result, directory: String) -> ExitCode {
        let errors = result.diagnostics.errors.count
        let warnings = result.diagnostics.warnings.count
        let model = result.model
        printError(
            "\(directory): \(model.zones.count) zone(s), \(model.sites.count) site(s), \(model.views.count) view(s): "
                + "\(errors) error(s), \(warnings) warning(s)")
        return errors == 0 ? .ok : .badConfig
    }
}

enum ExportCommand {
    static let help = """
        usage: frontdoor export --view VIEW [--zone ZONE] [--wan ADDRESS]... [DIR]

        Prints one zone as VIEW's clients see it, as plain RFC 1035 text that NSD, BIND and named-checkzone
        accept. --zone is needed when DIR serves more than one zone. --wan gives the address 'auto' (IPv4) or
        'auto6' (IPv6) stands for; without it those records are left out until DynDNS has found one.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(words, valued: ["--view", "--zone", "--wan"], boolean: [])
        guard let viewName = arguments.value("--view") else { throw UsageError(message: "export needs --view VIEW") }
        guard arguments.positional.count <= 1 else { throw UsageError(message: "export takes one directory") }
        let directory = arguments.positional.first ?? defaultDirectory
        var wan = try wanAddresses(arguments)
        var (result, loaded) = loadSnapshot(directory: directory, wan: wan)
        // Without --wan, the address DynDNS last published (what `run` serves); said on stderr either way.
        if let first = loaded, arguments.values["--wan"] == nil, ExportCommand.usesAuto(result.model, view: viewName) {
            let state = first.settings.stateDirectory.map { UpdaterState.load(path: joinPath($0, "dyndns.json")) }
            wan.v4 = state?.address.flatMap { if case .v4(let v4) = IPAddress($0) { v4 } else { nil } }
            wan.v6 = state?.address6.flatMap { if case .v6(let v6) = IPAddress($0) { v6 } else { nil } }
            if wan.v4 != nil || wan.v6 != nil {
                let known = [state?.address, state?.address6].compactMap { $0 }.joined(separator: " and ")
                printError(
                    "frontdoor export: 'auto' is \(known), the WAN address DynDNS last published (--wan overrides)")
                (result, loaded) = loadSnapshot(directory: directory, wan: wan)
            } else {
                printError(
                    "frontdoor export: warning: the WAN address is unknown (no --wan, and DynDNS has published none): "
                        + "records for 'auto' are left out, so the proxy name (and an NS pointing at it) has no "
                        + "address in this zone; give --wan ADDRESS")
            }
        }
        guard let snapshot = loaded else { return .badConfig }
        guard let view = snapshot.view(named: viewName) else {
            printError(
                "frontdoor export: no view '\(viewName)' (views: \(snapshot.views.map(\.name).joined(separator: ", ")))"
            )
            return .usage
        }
        let apex: DomainName
        if let zoneText = arguments.value("--zone") {
            guard let name = try? DomainName(zoneText), view.zones[name] != nil else {
                printError("frontdoor export: zone '\(zoneText)' is not served (zones: \(zoneList(view)))")
                return .usage
            }
            apex = name
        } else {
            guard view.zones.count == 1, let only = view.zones.keys.first else {
                printError(
                    "frontdoor export: DIR serves \(view.zones.count) zones; choose one with --zone (\(zoneList(view)))"
                )
                return .usage
            }
            apex = only
        }
        print(ZoneExporter.export(view, apex: apex) ?? "", terminator: "")
        return .ok
    }

    /// Whether `$PROXY` gives view `name` a detected (`auto`) address.
    static func usesAuto(_ model: Model, view name: String) -> Bool {
        model.proxies.contains { proxy in
            (proxy.addresses[name] ?? []).contains { $0 == .autoV4 || $0 == .autoV6 }
        }
    }

    static func zoneList(_ view: CompiledView) -> String {
        view.zones.keys.sorted().map(\.description).joined(separator: ", ")
    }
}

enum ExplainCommand {
    static let help = """
        usage: frontdoor explain NAME [TYPE] --from ADDRESS [--wan ADDRESS]... [DIR]

        Shows what a client at ADDRESS gets for NAME (TYPE defaults to A): the view it falls in, the chain of
        records, the final answer, which site and backends the proxy would use for that host, and with HTTPS
        which certificate a client gets (or passthrough) and whether plain HTTP is redirected.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(words, valued: ["--from", "--wan"], boolean: [])
        guard let fromText = arguments.value("--from") else {
            throw UsageError(message: "explain needs --from ADDRESS")
        }
        guard let client = IPAddress(fromText) else {
            throw UsageError(message: "--from: '\(fromText)' is not an IP address")
        }
        var positional = arguments.positional
        guard !positional.isEmpty else { throw UsageError(message: "explain needs a NAME") }
        let nameText = positional.removeFirst()
        var type = RecordType.a
        if let word = positional.first, let parsed = RecordType(mnemonic: word) {
            type = parsed
            positional.removeFirst()
        }
        guard positional.count <= 1 else { throw UsageError(message: "explain takes NAME [TYPE] and one directory") }
        let name: DomainName
        do {
            name = try DomainName(nameText)
        } catch {
            throw UsageError(message: "bad name '\(nameText)': \(error)")
        }
        let directory = positional.first ?? defaultDirectory
        let (_, snapshot) = loadSnapshot(directory: directory, wan: try wanAddresses(arguments))
        guard let snapshot else { return .badConfig }
        print(Explanation.text(snapshot: snapshot, name: name, type: type, client: client), terminator: "")
        if let line = ExplainCommand.https(snapshot: snapshot, host: name.hostDescription) { print(line) }
        return .ok
    }

    /// What an HTTPS client of the host gets, and whether plain HTTP is redirected; nil without HTTPS. Reads
    /// the certificate files; never makes the internal CA's root or a leaf.
    static func https(snapshot: Snapshot, host: String) -> String? {
        let settings = snapshot.settings
        let site = snapshot.routes.route(host: host)
        if let site, site.passthrough {
            let proxy = site.proxyProtocol ? ", after a PROXY v2 header" : ""
            return "https: passthrough: the TLS stream goes to the backend as it is\(proxy) (its own certificate); "
                + "plain HTTP gets a 308 to https"
        }
        guard HTTPSCertificates.configured(settings) else { return nil }
        var certificate: String?
        var fallback: String?
        if let directory = settings.tlsDirectory {
            switch CertificateFiles.pairs(in: directory, files: DiskFiles()) {
            case .failure(let error):
                return "https: certificates cannot be loaded: \(error.description)"
            case .success(let pairs):
                do {
                    let server = try TLSServer(certificates: pairs, fallback: settings.tlsDefault)
                    if let served = server.table.covering(host) {
                        certificate =
                            "certificate \(served.origin) (issuer \(served.issuer), \(served.daysLeft) days left)"
                    }
                    if let served = server.table.fallback { fallback = served.origin }
                } catch {
                    return "https: certificates cannot be loaded: \(error.description)"
                }
            }
        }
        // From the ACME CA: the planned certificate covering the host, how it is proved, and whether it is
        // issued yet (the state directory's copy).
        if certificate == nil, let acme = settings.acme {
            let planned = ACMEManager.plan(snapshot, acme: acme).first { planned in
                planned.names.contains { pattern in ACMEManager.covers(pattern, host) }
            }
            if let planned {
                let issued = ACMEManager.report(snapshot).first { $0.name == planned.name }?.notAfter
                let state = issued.map { "valid until \(RFC3339.text($0))" } ?? "not issued yet"
                var text = "certificate \(planned.name) from \(acme.directory) (\(state))"
                for line in ACMEManager.describe(snapshot)
                where line.contains("CNAME") && line.contains(planned.names[0]) {
                    text += "; " + line.dropFirst("acme: ".count)
                }
                certificate = text
            }
        }
        let internalSuffixes = settings.internalCA ?? (settings.acme != nil ? CertificatePlan.privateSuffixes : nil)
        if certificate == nil, let site, let suffixes = internalSuffixes,
            suffixes.isEmpty || suffixes.contains(where: { site.name.isSubdomain(of: $0) })
        {
            certificate = "a certificate from the internal CA (frontdoor ca export prints its root)"
        }
        guard let certificate else {
            let unknown =
                fallback.map { "the default certificate \($0), which does not name it" }
                ?? "an unrecognized_name alert"
            return "https: no certificate covers \(host): HTTPS clients get \(unknown); plain HTTP is served as is"
        }
        guard let site else { return "https: \(certificate); no site: the proxy answers 421" }
        let redirect =
            site.httpsRedirect ? "plain HTTP gets a 308 to https" : "plain HTTP is served as is (https=off)"
        let hsts = site.hstsField.map { "; \(String(decoding: $0.dropLast(2), as: UTF8.self))" } ?? ""
        return "https: \(certificate); \(redirect)\(hsts)"
    }
}

let defaultDirectory = "/etc/frontdoor"

/// Clock and memory readings for `check --stats`.
enum Stats {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func milliseconds(_ nanoseconds: UInt64) -> String {
        let tenths = nanoseconds / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Resident set size from /proc/self/statm (pages → bytes).
    static func residentBytes() -> UInt64 {
        guard case .success(let bytes) = DiskFiles().read("/proc/self/statm") else { return 0 }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// VmHWM from /proc/self/status: the peak resident set size.
    static func peakResidentBytes() -> UInt64 {
        guard case .success(let bytes) = DiskFiles().read("/proc/self/status") else { return 0 }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0
            return kilobytes * 1024
        }
        return 0
    }
}
