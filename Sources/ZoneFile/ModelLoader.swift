import Files
import ZoneModel

/// Reads a config directory: `frontdoor.conf` and every `*.zone` beside it, into one `Model`.
package enum ModelLoader {
    package static let configName = "frontdoor.conf"
    package static let zoneSuffix = ".zone"

    /// The view used when the config defines none: everyone, no recursion.
    package static func implicitView(file: String) -> ViewDefinition {
        ViewDefinition(
            name: "default", networks: [], matchesAll: true, recursion: false,
            location: SourceLocation(file: file, line: 1, column: 1))
    }

    /// Loads the directory; the diagnostics hold every syntax problem of every file.
    package static func load(directory: String, files: any SourceFiles = DiskFiles()) -> (Model, Diagnostics) {
        var diagnostics = Diagnostics()
        let configPath = joinPath(directory, ModelLoader.configName)
        var settings = Settings()
        var views: [ViewDefinition] = []
        if files.resolve(configPath) != nil {
            var parser = ConfigParser(files: files, directory: directory)
            (settings, views) = parser.parse(path: configPath)
            diagnostics.append(contentsOf: parser.diagnostics)
        }
        if views.isEmpty { views = [ModelLoader.implicitView(file: configPath)] }
        ModelLoader.applyDefaults(&settings)

        guard let names = files.list(directory) else {
            let reason =
                files.mode(directory) == nil
                ? "the config directory \(directory) does not exist (create it, or name another: check DIR, run --config DIR)"
                : "the config directory \(directory) cannot be listed (not a directory, or no permission to read it)"
            diagnostics.append(
                Diagnostic(.fileUnreadable, reason, at: SourceLocation(file: directory, line: 1, column: 1)))
            return (Model(settings: settings, views: views), diagnostics)
        }
        for name in names where ModelLoader.looksLikeStrayZone(name, in: directory, files: files) {
            let suggestion = ModelLoader.zoneName(for: name).map { " (rename it to \($0))" } ?? ""
            diagnostics.append(
                .warning(
                    .ignoredFile,
                    "'\(name)' looks like a zone file but is not read: only files named NAME.zone are read\(suggestion)",
                    at: SourceLocation(file: joinPath(directory, name), line: 1, column: 1)))
        }
        var zones: [ZoneSource] = []
        var parser = ZoneParser(files: files, root: directory, viewNames: views.map(\.name))
        for name in names where name.hasSuffix(ModelLoader.zoneSuffix) && !name.hasPrefix(".") {
            let path = joinPath(directory, name)
            let apexText = String(name.dropLast(ModelLoader.zoneSuffix.count))
            guard let apex = try? DomainName(apexText), !apex.isRoot else {
                diagnostics.append(
                    Diagnostic(
                        .badName,
                        "zone file name '\(name)' is not a domain name followed by .zone (e.g. home.arpa.zone)",
                        at: SourceLocation(file: path, line: 1, column: 1)))
                continue
            }
            if let twin = zones.first(where: { $0.apex == apex }) {
                diagnostics.append(
                    Diagnostic(
                        .duplicateZone, "zone \(apex) is also defined by \(twin.file)",
                        at: SourceLocation(file: path, line: 1, column: 1)))
                continue
            }
            zones.append(parser.parse(path: path, apex: apex))
        }
        diagnostics.append(contentsOf: parser.diagnostics)
        return (Model(settings: settings, views: views, zones: zones), diagnostics)
    }

    /// A file beside the zones that is not read but holds zone data (`$ORIGIN`, `$SITE`, `$PROXY` or a SOA
    /// near its start): most likely a zone file with a mistyped name. Backups and editor files are left alone.
    static func looksLikeStrayZone(_ name: String, in directory: String, files: any SourceFiles) -> Bool {
        guard !name.hasPrefix("."), !name.hasSuffix(ModelLoader.zoneSuffix), name != ModelLoader.configName,
            !name.hasSuffix("~"),
            ![".bak", ".orig", ".swp", ".old", ".key", ".secret", ".crt", ".pem", ".inc"]
                .contains(where: { name.hasSuffix($0) })
        else { return false }
        guard case .success(let bytes) = files.read(joinPath(directory, name)) else { return false }
        let head = String(decoding: bytes.prefix(4096), as: UTF8.self)
        return ["$ORIGIN", "$SITE", "$PROXY", " SOA "].contains { head.contains($0) }
    }

    /// `example.com.zon` → `example.com.zone`: the name up to its last dot, with `.zone`.
    static func zoneName(for name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        let stem = name[..<dot]
        if stem.hasSuffix(ModelLoader.zoneSuffix) { return String(stem) }
        guard (try? DomainName(String(stem))) != nil, stem.contains(".") else { return nil }
        return stem + ModelLoader.zoneSuffix
    }

    /// Listeners the config leaves out: DNS and HTTP on every address, HTTPS too once certificates are
    /// configured, admin on loopback only.
    package static func applyDefaults(_ settings: inout Settings) {
        func addresses(_ texts: [String]) -> [SocketAddress] { texts.compactMap { SocketAddress($0) } }
        let off = settings.disabledServices
        if settings.dnsListeners.isEmpty && !off.contains("dns") {
            settings.dnsListeners = addresses(["0.0.0.0:53", "[::]:53"])
        }
        if settings.httpListeners.isEmpty && !off.contains("http") {
            settings.httpListeners = addresses(["0.0.0.0:80", "[::]:80"])
        }
        let certificates = settings.tlsDirectory != nil || settings.internalCA != nil
        if settings.httpsListeners.isEmpty && certificates && !off.contains("https") {
            settings.httpsListeners = addresses(["0.0.0.0:443", "[::]:443"])
        }
        if settings.adminListeners.isEmpty && !off.contains("admin") {
            settings.adminListeners = addresses(["127.0.0.1:9053"])
        }
    }
}
