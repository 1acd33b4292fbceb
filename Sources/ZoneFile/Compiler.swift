import Files
import ZoneModel

/// The WAN addresses `auto` and `auto6` stand for; nil until the updater has found one.
public struct WANAddresses: Hashable, Sendable {
    public var v4: IPv4Address?
    public var v6: IPv6Address?

    public init(v4: IPv4Address? = nil, v6: IPv6Address? = nil) {
        self.v4 = v4
        self.v6 = v6
    }
}

/// What a compile needs besides the model: the outside facts, injected so compiles are reproducible.
public struct CompileInputs: Sendable {
    public var wan: WANAddresses
    /// Serials handed out before (from the state file), so they never go backwards.
    public var serials: SerialBook
    /// Today's `YYYYMMDD00`, the lowest serial a changed zone gets.
    public var dateSerial: UInt32

    public init(wan: WANAddresses = WANAddresses(), serials: SerialBook = SerialBook(), dateSerial: UInt32) {
        self.wan = wan
        self.serials = serials
        self.dateSerial = dateSerial
    }
}

/// Model → Snapshot: per view, every owner name with its RRsets (sites and the proxy record expanded, SOA
/// and NS synthesised, empty non-terminals filled in), checked for what breaks real deployments.
package enum Compiler {
    /// The data at one name while a view is being built, with where each type was written.
    struct NodeBuilder {
        var rrsets: [RRset] = []
        var locations: [SourceLocation] = []
        let apex: DomainName
    }

    /// Compiles a model that passed `Validator`; returns nil with errors when it must not be published.
    package static func compile(_ model: Model, inputs: CompileInputs) -> (Snapshot?, Diagnostics) {
        var diagnostics = Diagnostics()
        var seen: Set<String> = []
        func report(_ diagnostic: Diagnostic) {
            if seen.insert("\(diagnostic.code.rawValue) \(diagnostic)").inserted { diagnostics.append(diagnostic) }
        }
        var serials = inputs.serials
        var views: [CompiledView] = []
        let sitesByName = Dictionary(model.sites.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, definition) in model.views.enumerated() {
            var builder = ViewBuilder(view: definition, model: model, wan: inputs.wan, report: report)
            builder.build()
            var compiled = builder.finish(index: index)
            Compiler.checkChains(compiled, builder: builder, sites: sitesByName, report: report)
            compiled = Compiler.assignSerials(compiled, model: model, inputs: inputs, serials: &serials)
            views.append(compiled)
        }
        let sites = model.sites.map { site in
            CompiledSite(
                name: site.name, backends: site.backends, balance: site.balance, healthPath: site.healthPath,
                viewIndices: Set(model.views.indices.filter { site.scope.includes(model.views[$0].name) }),
                httpsRedirect: site.httpsRedirect, hstsMaxAge: site.hstsMaxAge, proxyProtocol: site.proxyProtocol,
                backendTLS: site.backendTLS)
        }
        guard !diagnostics.hasErrors else { return (nil, diagnostics) }
        let snapshot = Snapshot(
            views: views, routes: RouteTable(sites: sites), settings: model.settings, serials: serials)
        return (snapshot, diagnostics)
    }

    /// CNAME loops and long chains are errors; targets missing inside served zones are warnings; a record
    /// pointing at a site the view cannot see is an error.
    static func checkChains(
        _ view: CompiledView, builder: ViewBuilder, sites: [DomainName: Site], report: (Diagnostic) -> Void
    ) {
        for source in builder.written {
            let record = source.record
            guard let target = record.data.target, [.cname, .mx, .srv].contains(record.type) else { continue }
            if let site = Compiler.site(for: target, in: sites), !site.scope.includes(view.name) {
                report(
                    Diagnostic(
                        .hiddenSiteReference,
                        "\(record.type) at \(record.owner) points at site \(site.name), which view '\(view.name)' cannot see",
                        at: source.location))
                continue
            }
            let outcome = record.type == .cname ? view.lookup(record.owner, .a) : view.lookup(target, .a)
            switch outcome {
            case .chainTooLong(let chain):
                let owners = chain.map(\.owner)
                if Set(owners).count < owners.count || owners.dropFirst().contains(record.owner) {
                    let loop = owners.map(\.description).joined(separator: " -> ")
                    report(Diagnostic(.cnameLoop, "CNAME loop: \(loop)", at: source.location))
                } else {
                    report(
                        Diagnostic(
                            .cnameChainTooLong,
                            "CNAME chain from \(record.owner) is longer than \(CompiledView.maximumChain) links",
                            at: source.location))
                }
            case .nxDomain:
                report(
                    .warning(
                        .danglingTarget,
                        "\(record.type) target \(target) does not exist in view '\(view.name)'",
                        at: source.location))
            default:
                break
            }
        }
    }

    /// The site a name belongs to: exact, or the closest wildcard site above it.
    static func site(for name: DomainName, in sites: [DomainName: Site]) -> Site? {
        if let site = sites[name] { return site }
        var candidate = name
        while !candidate.isRoot {
            candidate = candidate.parent
            if let wildcard = candidate.wildcardChild, let site = sites[wildcard] { return site }
        }
        return nil
    }

    /// Gives each zone of the view its serial: unchanged data keeps its serial, changed data gets a higher one.
    static func assignSerials(_ view: CompiledView, model: Model, inputs: CompileInputs, serials: inout SerialBook)
        -> CompiledView
    {
        var hashes: [DomainName: UInt64] = [:]
        for (name, node) in view.nodes {
            for rrset in node.rrsets {
                for data in rrset.data {
                    var hashed = data
                    if case .soa(var soa) = data {
                        soa.serial = 0
                        hashed = .soa(soa)
                    }
                    hashes[node.apex, default: 0] &+= ContentHash.record(name, rrset.type, rrset.ttl, hashed)
                }
            }
        }
        var zones = view.zones
        var nodes = view.nodes
        for (apex, zone) in view.zones {
            guard case .soa(var soa) = zone.soa.data else { continue }
            let key = SerialBook.key(view: view.name, apex: apex)
            let hash = hashes[apex, default: 0]
            let floor = soa.serial
            let serial: UInt32
            if let entry = serials.entries[key], entry.contentHash == hash {
                serial = max(entry.serial, floor)
            } else {
                serial = max(serials.entries[key].map { $0.serial &+ 1 } ?? 0, inputs.dateSerial, floor)
            }
            serials.entries[key] = SerialBook.Entry(contentHash: hash, serial: serial)
            soa.serial = serial
            var record = zone.soa
            record.data = .soa(soa)
            zones[apex] = CompiledZone(apex: apex, soa: record, nameServers: zone.nameServers)
            if var node = nodes[apex], let index = node.rrsets.firstIndex(where: { $0.type == .soa }) {
                node.rrsets[index].data = [.soa(soa)]
                nodes[apex] = node
            }
        }
        return CompiledView(
            name: view.name, index: view.index, networks: view.networks, matchesAll: view.matchesAll,
            recursion: view.recursion, zones: zones, nodes: nodes)
    }
}

/// Builds one view's names from the model.
struct ViewBuilder {
    let view: ViewDefinition
    let model: Model
    let wan: WANAddresses
    let report: (Diagnostic) -> Void
    var nodes: [DomainName: Compiler.NodeBuilder] = [:]
    /// Records the user wrote (not synthesised), for the chain checks.
    var written: [SourceRecord] = []
    var zoneApexes: [DomainName] = []

    init(view: ViewDefinition, model: Model, wan: WANAddresses, report: @escaping (Diagnostic) -> Void) {
        self.view = view
        self.model = model
        self.wan = wan
        self.report = report
    }

    mutating func build() {
        for zone in self.model.zones {
            self.zoneApexes.append(zone.apex)
            for source in zone.records
            where source.scope.includes(self.view.name) && source.record.owner.isSubdomain(of: zone.apex) {
                self.add(source.record, apex: zone.apex, at: source.location)
                self.written.append(source)
            }
            if let proxy = zone.proxy, proxy.addresses[self.view.name] != nil {
                if let target = ViewBuilder.proxyTarget(proxy, view: self.view.name) {
                    if proxy.name == zone.apex {
                        self.report(
                            Diagnostic(
                                .cnameAndOtherData,
                                "$PROXY \(proxy.name) is the zone's apex: it cannot be a CNAME to \(target) in view "
                                    + "'\(self.view.name)' (a CNAME cannot sit beside SOA and NS); name the proxy below "
                                    + "the apex, e.g. reverseproxy", at: proxy.location))
                    } else {
                        self.add(
                            Record(owner: proxy.name, type: .cname, ttl: proxy.ttl, data: .name(target)),
                            apex: zone.apex, at: proxy.location)
                    }
                }
                for data in self.addresses(of: proxy) {
                    self.add(
                        Record(owner: proxy.name, type: data.type, ttl: proxy.ttl, data: data.data), apex: zone.apex,
                        at: proxy.location)
                }
                // Before WAN detection has an answer the name still exists: NODATA, not NXDOMAIN.
                if self.nodes[proxy.name] == nil, proxy.name.isSubdomain(of: zone.apex) {
                    self.nodes[proxy.name] = Compiler.NodeBuilder(apex: self.apexFor(proxy.name, declared: zone.apex))
                }
            }
            for site in zone.sites where site.scope.includes(self.view.name) {
                guard let proxyName = site.proxyName else { continue }
                if site.name == zone.apex {
                    // A CNAME cannot sit beside SOA and NS: at the apex the site gets the proxy's addresses.
                    if let proxy = self.model.proxies.first(where: { $0.name == proxyName }),
                        let target = ViewBuilder.proxyTarget(proxy, view: self.view.name)
                    {
                        self.report(
                            Diagnostic(
                                .cnameAndOtherData,
                                "site \(site.name) is the zone's apex, where its name would need the addresses of "
                                    + "\(target) (the proxy's name in view '\(self.view.name)'), which only that name's "
                                    + "own DNS knows; put the site below the apex (www), or give the view an address",
                                at: site.location))
                    } else if let proxy = self.model.proxies.first(where: { $0.name == proxyName }) {
                        for data in self.addresses(of: proxy) {
                            self.add(
                                Record(owner: site.name, type: data.type, ttl: site.ttl, data: data.data),
                                apex: zone.apex, at: site.location)
                        }
                    }
                } else {
                    self.add(
                        Record(owner: site.name, type: .cname, ttl: site.ttl, data: .name(proxyName)), apex: zone.apex,
                        at: site.location)
                }
            }
            self.synthesiseApex(zone)
        }
        self.fillEmptyNonTerminals()
        self.checkNodes()
    }

    /// The name the proxy record is a CNAME to in `view`, if it is one there.
    static func proxyTarget(_ proxy: ProxyRecord, view: String) -> DomainName? {
        guard case .name(let target)? = proxy.addresses[view]?.first else { return nil }
        return target
    }

    /// The proxy's A/AAAA data in this view; `auto` contributes only once the WAN address is known.
    func addresses(of proxy: ProxyRecord) -> [(type: RecordType, data: RData)] {
        var result: [(RecordType, RData)] = []
        for address in proxy.addresses[self.view.name] ?? [] {
            switch address {
            case .fixed(.v4(let v4)): result.append((.a, .a(v4)))
            case .fixed(.v6(let v6)): result.append((.aaaa, .aaaa(v6)))
            case .autoV4: if let v4 = self.wan.v4 { result.append((.a, .a(v4))) }
            case .autoV6: if let v6 = self.wan.v6 { result.append((.aaaa, .aaaa(v6))) }
            case .name: break
            }
        }
        return result
    }

    /// Adds one record, merging it into its RRset (RFC 2181 §5: one TTL per RRset, no duplicates).
    mutating func add(_ record: Record, apex: DomainName, at location: SourceLocation) {
        var node = self.nodes[record.owner] ?? Compiler.NodeBuilder(apex: self.apexFor(record.owner, declared: apex))
        if let index = node.rrsets.firstIndex(where: { $0.type == record.type }) {
            if node.rrsets[index].data.contains(record.data) {
                self.report(
                    .warning(
                        .duplicateRecord,
                        "duplicate \(record.type) record at \(record.owner) ignored (first at \(node.locations[index]))",
                        at: location))
                return
            }
            if node.rrsets[index].ttl != record.ttl {
                self.report(
                    .warning(
                        .ttlMismatch,
                        "TTL \(record.ttl) differs from \(node.rrsets[index].ttl) for the same RRset (first at \(node.locations[index])); using the lower (RFC 2181 §5.2)",
                        at: location))
                node.rrsets[index].ttl = min(node.rrsets[index].ttl, record.ttl)
            }
            node.rrsets[index].data.append(record.data)
        } else {
            node.rrsets.append(RRset(type: record.type, ttl: record.ttl, data: [record.data]))
            node.locations.append(location)
        }
        self.nodes[record.owner] = node
    }

    /// A name belongs to the deepest served zone above it (a child zone served here owns its names).
    func apexFor(_ name: DomainName, declared: DomainName) -> DomainName {
        var best = declared
        for apex in self.zoneApexes where apex.labelCount > best.labelCount && name.isSubdomain(of: apex) {
            best = apex
        }
        return best
    }

    /// SOA and NS when the zone file has none: the proxy record is also the name server (Frontdoor is both).
    mutating func synthesiseApex(_ zone: ZoneSource) {
        let apexNode = self.nodes[zone.apex]
        let proxyName = zone.proxy?.name ?? (self.model.proxies.count == 1 ? self.model.proxies[0].name : nil)
        let location = SourceLocation(file: zone.file, line: 1, column: 1)
        var nameServer = apexNode?.rrsets.first(where: { $0.type == .ns })?.data.first?.target
        if nameServer == nil {
            if let proxyName, let proxy = self.model.proxies.first(where: { $0.name == proxyName }),
                let target = ViewBuilder.proxyTarget(proxy, view: self.view.name)
            {
                self.report(
                    Diagnostic(
                        .noNameServer,
                        "zone \(zone.apex) has no NS record, and the $PROXY Frontdoor would name as its server is a "
                            + "CNAME to \(target) in view '\(self.view.name)' (an NS may not point at a CNAME, RFC 2181 "
                            + "§10.3); write an NS record for the zone", at: location))
            } else if let proxyName {
                self.add(
                    Record(owner: zone.apex, type: .ns, ttl: zone.defaultTTL, data: .name(proxyName)), apex: zone.apex,
                    at: location)
                nameServer = proxyName
            } else {
                self.report(
                    Diagnostic(
                        .noNameServer,
                        "zone \(zone.apex) has no NS record and no $PROXY to name as its server; add one of them",
                        at: location))
            }
        }
        if let soa = apexNode?.rrsets.first(where: { $0.type == .soa }) {
            if soa.data.count > 1 {
                self.report(
                    Diagnostic(
                        .multipleSOA, "zone \(zone.apex) has \(soa.data.count) SOA records in view '\(self.view.name)'",
                        at: apexNode?.locations.first ?? location))
            }
            return
        }
        let hostmaster = (try? zone.apex.prepending(Array("hostmaster".utf8))) ?? zone.apex
        let data = SOAData(
            mname: nameServer ?? zone.apex, rname: hostmaster, serial: 0, refresh: 3600, retry: 900, expire: 1_209_600,
            minimum: min(zone.defaultTTL, 300))
        self.add(
            Record(owner: zone.apex, type: .soa, ttl: zone.defaultTTL, data: .soa(data)), apex: zone.apex, at: location)
    }

    /// Every ancestor of an owner up to its apex exists (RFC 4592 §2.2.2): NODATA there, not NXDOMAIN.
    mutating func fillEmptyNonTerminals() {
        for (name, node) in self.nodes {
            var candidate = name
            while candidate != node.apex && !candidate.isRoot {
                candidate = candidate.parent
                if self.nodes[candidate] != nil { break }
                self.nodes[candidate] = Compiler.NodeBuilder(apex: node.apex)
            }
        }
    }

    /// RFC 1034 §3.6.2: a CNAME stands alone at its name, and there is only one.
    func checkNodes() {
        for (name, node) in self.nodes {
            guard let index = node.rrsets.firstIndex(where: { $0.type == .cname }) else { continue }
            if node.rrsets[index].data.count > 1 {
                self.report(
                    Diagnostic(
                        .multipleCNAME,
                        "\(name) has \(node.rrsets[index].data.count) CNAME records; only one is allowed",
                        at: node.locations[index]))
            }
            if let other = node.rrsets.indices.first(where: { $0 != index }) {
                let later = max(node.locations[index], node.locations[other])
                self.report(
                    Diagnostic(
                        .cnameAndOtherData,
                        "\(name) has a CNAME and also \(node.rrsets[other].type) data (RFC 1034 §3.6.2); other data cannot sit beside a CNAME",
                        at: later))
            }
        }
    }

    func finish(index: Int) -> CompiledView {
        var zones: [DomainName: CompiledZone] = [:]
        for apex in self.zoneApexes {
            guard let node = self.nodes[apex], let soa = node.rrsets.first(where: { $0.type == .soa }),
                let soaData = soa.data.first
            else {
                continue
            }
            let ns = node.rrsets.first(where: { $0.type == .ns })?.records(owner: apex) ?? []
            zones[apex] = CompiledZone(
                apex: apex, soa: Record(owner: apex, type: .soa, ttl: soa.ttl, data: soaData), nameServers: ns)
        }
        var nodes: [DomainName: Node] = [:]
        nodes.reserveCapacity(self.nodes.count)
        for (name, builder) in self.nodes {
            // Type order makes ANY answers and exports independent of the order records were written in.
            nodes[name] = Node(rrsets: builder.rrsets.sorted { $0.type < $1.type }, apex: builder.apex)
        }
        return CompiledView(
            name: self.view.name, index: index, networks: self.view.networks, matchesAll: self.view.matchesAll,
            recursion: self.view.recursion, zones: zones, nodes: nodes)
    }
}

/// A stable 64-bit hash (FNV-1a) of records, the same in every process, for detecting changed zone data.
enum ContentHash {
    static func record(_ owner: DomainName, _ type: RecordType, _ ttl: UInt32, _ data: RData) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        for byte in owner.wire { mix(byte) }
        mix(UInt8(type.rawValue >> 8))
        mix(UInt8(type.rawValue & 0xFF))
        for shift in stride(from: 24, through: 0, by: -8) { mix(UInt8(truncatingIfNeeded: ttl >> UInt32(shift))) }
        for byte in data.wire { mix(byte) }
        // Sum of per-record hashes is order-free; finalise so that sums of similar records spread out.
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return hash
    }
}

/// The whole pipeline from a directory: load, validate, compile.
package enum Pipeline {
    /// Everything `check`, `export`, `explain` and `run` need from one directory.
    package struct Result {
        package var model: Model
        package var snapshot: Snapshot?
        package var diagnostics: Diagnostics
    }

    package static func run(directory: String, files: any SourceFiles = DiskFiles(), inputs: CompileInputs) -> Result {
        var (model, diagnostics) = ModelLoader.load(directory: directory, files: files)
        return Pipeline.finish(&model, diagnostics: diagnostics, inputs: inputs)
    }

    package static func finish(_ model: inout Model, diagnostics: Diagnostics, inputs: CompileInputs) -> Result {
        var diagnostics = diagnostics
        diagnostics.append(contentsOf: Validator.validate(&model))
        // Compile even after errors so that one pass reports every problem; only a clean model is published.
        let (snapshot, compileDiagnostics) = Compiler.compile(model, inputs: inputs)
        diagnostics.append(contentsOf: compileDiagnostics)
        return Result(model: model, snapshot: diagnostics.hasErrors ? nil : snapshot, diagnostics: diagnostics)
    }
}
