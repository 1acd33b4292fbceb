import Files
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Paths, fixture loading and answer formatting shared by the test targets.
package enum Fixtures {
    /// The repository root, found from this file's path.
    package static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    package static func path(_ relative: String) -> String { root + "/" + relative }

    /// The config every zone fixture is compiled with: a LAN view with recursion and a catch-all WAN view.
    package static let config = """
        view lan 192.0.2.0/24 2001:db8:1::/48 127.0.0.1/32 recursion
        view wan *
        upstream 127.0.0.1:5399
        wan http http://127.0.0.1:9/ip
        """

    /// The fixed date serial compiles in tests use, so expected output never depends on the day.
    package static let dateSerial: UInt32 = 2_024_060_100

    /// Reads a text file of the repository.
    package static func text(_ relative: String) -> String {
        guard case .success(let bytes) = DiskFiles().read(path(relative)) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Files in a fixture directory, by name.
    package static func list(_ relative: String) -> [String] {
        DiskFiles().list(path(relative)) ?? []
    }

    /// The zone's apex from a `; apex: NAME` first line (default `home.arpa.`).
    package static func apex(of text: String) -> DomainName {
        for line in text.split(separator: "\n").prefix(3) where line.hasPrefix("; apex: ") {
            if let name = try? DomainName(String(line.dropFirst(8))) { return name }
        }
        return (try? DomainName("home.arpa.")) ?? .root
    }

    /// Compiles zone texts (file name → text) held in memory under `/fixture`, with `config`.
    package static func compile(
        zones: [(name: String, text: String)], extraFiles: [String: String] = [:], config: String = Fixtures.config,
        wan: WANAddresses = WANAddresses(), serials: SerialBook = SerialBook(), dateSerial: UInt32 = Fixtures.dateSerial
    ) -> Pipeline.Result {
        var memory: [String: String] = ["/fixture/frontdoor.conf": config]
        for zone in zones { memory["/fixture/" + zone.name] = zone.text }
        for (name, text) in extraFiles { memory["/fixture/" + name] = text }
        let files = MemoryFiles(memory)
        var configParser = ConfigParser(files: files, directory: "/fixture")
        var (settings, views) = configParser.parse(path: "/fixture/frontdoor.conf")
        if views.isEmpty { views = [ModelLoader.implicitView(file: "/fixture/frontdoor.conf")] }
        ModelLoader.applyDefaults(&settings)
        var diagnostics = configParser.diagnostics
        var zoneParser = ZoneParser(files: files, root: "/fixture", viewNames: views.map(\.name))
        var sources: [ZoneSource] = []
        for zone in zones {
            sources.append(zoneParser.parse(path: "/fixture/" + zone.name, apex: Fixtures.apex(of: zone.text)))
        }
        diagnostics.append(contentsOf: zoneParser.diagnostics)
        var model = Model(settings: settings, views: views, zones: sources)
        return Pipeline.finish(
            &model, diagnostics: diagnostics, inputs: CompileInputs(wan: wan, serials: serials, dateSerial: dateSerial))
    }

    /// Compiles one fixture file of `Tests/Fixtures/zones/<group>/`, with its sibling `.inc` files available.
    package static func compileFixture(_ group: String, _ name: String) -> Pipeline.Result {
        let directory = "Tests/Fixtures/zones/\(group)"
        var extra: [String: String] = [:]
        for file in list(directory) where file.hasSuffix(".inc") { extra[file] = text(directory + "/" + file) }
        return compile(zones: [(name, text(directory + "/" + name))], extraFiles: extra)
    }

    /// A lookup as text lines: the outcome first, then `owner ttl IN TYPE data` per record by section.
    package static func answerLines(_ lookup: Lookup) -> [String] {
        func lines(_ records: [Record]) -> [String] { records.map { ZoneExporter.line($0).replacingTabs } }
        switch lookup {
        case .answer(let records, let additional):
            return ["NOERROR"] + lines(records) + (additional.isEmpty ? [] : [";additional"] + lines(additional))
        case .noData(let chain, let soa): return ["NODATA"] + lines(chain) + [";authority"] + lines([soa])
        case .nxDomain(let chain, let soa): return ["NXDOMAIN"] + lines(chain) + [";authority"] + lines([soa])
        case .referral(let chain, let nameServers, let glue):
            return ["REFERRAL"] + lines(chain) + [";authority"] + lines(nameServers)
                + (glue.isEmpty ? [] : [";additional"] + lines(glue))
        case .partial(let chain): return ["PARTIAL"] + lines(chain)
        case .notAuthoritative: return ["NOTAUTH"]
        case .chainTooLong(let chain): return ["CHAIN-TOO-LONG"] + lines(chain)
        }
    }
}

extension String {
    /// Tabs folded to single spaces, as expected answers are written.
    package var replacingTabs: String { self.split(separator: "\t").joined(separator: " ") }
}

/// A small seeded generator (SplitMix64), so a test that draws random input draws the same on every run.
package struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    package init(seed: UInt64) { self.state = seed }
    package mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
