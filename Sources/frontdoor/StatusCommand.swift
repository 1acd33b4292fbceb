import DynDNS
import Files
import Runtime
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// `frontdoor status`: what the DynDNS updater knows, read from its state file.
enum StatusCommand {
    static let help = """
        usage: frontdoor status [DIR]

        Shows the WAN address the DynDNS updater publishes, what each source said at the last poll, the
        address history, and for each provider the last result and the next attempt; with `acme`, each
        certificate's names, expiry, renewal time, last attempt and error. Reads the state files (state-dir)
        of the model in DIR (default /etc/frontdoor); a running Frontdoor keeps them.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(words, valued: [], boolean: [])
        guard arguments.positional.count <= 1 else { throw UsageError(message: "status takes one directory") }
        let directory = arguments.positional.first ?? defaultDirectory
        let (model, diagnostics) = ModelLoader.load(directory: directory)
        if !diagnostics.errors.isEmpty {
            for diagnostic in diagnostics.sorted { printError(diagnostic.description) }
            return .badConfig
        }
        guard let stateDirectory = model.settings.stateDirectory else {
            print("no state-dir in \(directory)/frontdoor.conf: the updater keeps no state to show")
            return .ok
        }
        if !model.settings.routerForwards.isEmpty,
            case .success(let bytes) = DiskFiles().read(joinPath(stateDirectory, "forwards"))
        {
            print("port forwards on the router:")
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: "\t", maxSplits: 3).map(String.init)
                guard fields.count == 4 else { continue }
                print("  \(fields[0]): \(fields[1]), \(fields[3]); renewed \(fields[2]) time(s)")
            }
        }
        let secondaries = StatusCommand.secondaries(model.settings, stateDirectory: stateDirectory)
        if !secondaries.isEmpty { print(secondaries) }
        if model.settings.acme != nil, case (_, let snapshot?) = loadSnapshot(directory: directory, wan: WANAddresses())
        {
            print(ACMEManager.render(ACMEManager.report(snapshot), now: Int(Glibc.time(nil))))
        }
        let path = joinPath(stateDirectory, "dyndns.json")
        guard case .success = DiskFiles().read(path) else {
            print("no DynDNS state yet (\(path)): Frontdoor has not polled the WAN address")
            return .ok
        }
        let state = UpdaterState.load(path: path)
        print(StatusCommand.render(state, providers: model.settings.providers.map(\.name)))
        return .ok
    }

    /// The secondaries' last NOTIFY and transfer, from the file the running Frontdoor keeps
    /// (state-dir/secondaries).
    static func secondaries(_ settings: Settings, stateDirectory: String) -> String {
        guard !settings.secondaries.isEmpty else { return "" }
        var known: [String: [(String, String)]] = [:]
        if case .success(let bytes) = DiskFiles().read(joinPath(stateDirectory, "secondaries")) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
                guard fields.count == 3 else { continue }
                known[fields[0], default: []].append((fields[1], fields[2]))
            }
        }
        var lines = ["secondaries:"]
        for secondary in settings.secondaries {
            lines.append("  \(secondary.name) (\(secondary.address), view \(secondary.view)):")
            let entries = known[secondary.name] ?? [("notify", "none yet"), ("transfer", "none yet")]
            for (kind, text) in entries { lines.append("    last \(kind): \(text)") }
        }
        return lines.joined(separator: "\n")
    }

    static func render(_ state: UpdaterState, providers: [String]) -> String {
        var lines: [String] = []
        lines.append("WAN address: \(state.address ?? "unknown")")
        if let address6 = state.address6 { lines.append("WAN IPv6 address: \(address6)") }
        if let note = state.note { lines.append("  note: \(note)") }
        if let poll = state.lastPoll { lines.append("last poll: \(StatusCommand.time(poll))") }
        if !state.sources.isEmpty {
            lines.append("sources:")
            for report in state.sources { lines.append("  \(report.source): \(report.said)") }
        }
        if !state.history.isEmpty {
            lines.append("changes:")
            for change in state.history.suffix(10) {
                lines.append("  \(StatusCommand.time(change.time))  \(change.address)")
            }
        }
        let names = Set(providers).union(state.providers.keys).sorted()
        if !names.isEmpty {
            lines.append("providers:")
            for name in names {
                guard let record = state.providers[name] else {
                    lines.append("  \(name): never pushed")
                    continue
                }
                var line = "  \(name): \(record.lastResult)"
                if let pushed = record.lastPushed { line += "; has \(pushed)" }
                if let attempt = record.lastAttempt { line += "; last attempt \(StatusCommand.time(attempt))" }
                if record.stopped {
                    line += "; " + PushSchedule.retryAdvice
                } else if record.nextAttempt > (record.lastAttempt ?? 0) {
                    line += "; next attempt not before \(StatusCommand.time(record.nextAttempt))"
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `2026-11-26 18:11:42 UTC`
    static func time(_ seconds: Double) -> String { utcDateTime(seconds) + " UTC" }
}
