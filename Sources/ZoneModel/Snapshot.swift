/// The compiled model: immutable, shared by every worker, replaced whole on reload. A class, so handing it to
/// the per-request code costs one reference count, not one per table.
public final class Snapshot: Sendable {
    /// In match order; the first whose networks contain the client serves it.
    public let views: [CompiledView]
    public let routes: RouteTable
    public let settings: Settings
    /// Serials as compiled, for the runtime to persist so they never go backwards.
    public let serials: SerialBook

    public init(views: [CompiledView], routes: RouteTable, settings: Settings, serials: SerialBook) {
        self.views = views
        self.routes = routes
        self.settings = settings
        self.serials = serials
    }

    /// The view that serves `client`, or nil when no view matches (the client is refused).
    public func view(for client: IPAddress) -> CompiledView? {
        self.views.first { $0.matches(client) }
    }

    /// The index of the view that serves `client` (as `view(for:)`, without copying the view).
    public func viewIndex(for client: IPAddress) -> Int? {
        for position in self.views.indices where self.views[position].matches(client) {
            return self.views[position].index
        }
        return nil
    }

    public func view(named name: String) -> CompiledView? {
        self.views.first { $0.name == name }
    }
}

/// An RRset: the records of one type at one name, with one TTL (RFC 2181 §5).
public struct RRset: Hashable, Sendable {
    public var type: RecordType
    public var ttl: UInt32
    public var data: [RData]

    public init(type: RecordType, ttl: UInt32, data: [RData]) {
        self.type = type
        self.ttl = ttl
        self.data = data
    }

    public func records(owner: DomainName) -> [Record] {
        self.data.map { Record(owner: owner, type: self.type, ttl: self.ttl, data: $0) }
    }
}

/// The data at one owner name in one view; an empty non-terminal has no RRsets.
public struct Node: Sendable {
    public var rrsets: [RRset]
    /// Apex of the zone this name belongs to.
    public var apex: DomainName

    public init(rrsets: [RRset], apex: DomainName) {
        self.rrsets = rrsets
        self.apex = apex
    }

    public func rrset(_ type: RecordType) -> RRset? {
        self.rrsets.first { $0.type == type }
    }
}

/// What a served zone contributes to negative answers and referrals.
public struct CompiledZone: Sendable {
    public var apex: DomainName
    public var soa: Record
    public var nameServers: [Record]

    public init(apex: DomainName, soa: Record, nameServers: [Record]) {
        self.apex = apex
        self.soa = soa
        self.nameServers = nameServers
    }

    /// The SOA as RFC 2308 §3 wants it in a negative answer: TTL = min(SOA TTL, SOA MINIMUM).
    public var negativeSOA: Record {
        guard case .soa(let data) = self.soa.data else { return self.soa }
        var record = self.soa
        record.ttl = min(self.soa.ttl, data.minimum)
        return record
    }
}

/// How one question resolved in one view.
public enum Lookup: Hashable, Sendable {
    /// The records asked for, after any CNAME chain that led to them; additional A/AAAA for MX/SRV/NS targets.
    case answer([Record], additional: [Record])
    /// The name exists without the asked type (RFC 2308 §2.2); `chain` holds CNAMEs that led there.
    case noData(chain: [Record], soa: Record)
    /// The name does not exist (RFC 2308 §2.1).
    case nxDomain(chain: [Record], soa: Record)
    /// The name lies below a zone cut: the child's NS records and any glue.
    case referral(chain: [Record], nameServers: [Record], glue: [Record])
    /// A CNAME chain left the served zones; `chain` is what we know (a resolver continues from its end).
    case partial(chain: [Record])
    /// The name is in no zone served to this view.
    case notAuthoritative
    /// A CNAME chain longer than the limit or looping (validation rejects these; this is the safety net).
    case chainTooLong(chain: [Record])
}

/// One view compiled: every owner name with its RRsets, plus each zone's SOA and NS.
public struct CompiledView: Sendable {
    public let name: String
    public let index: Int
    public let networks: [CIDR]
    public let matchesAll: Bool
    public let recursion: Bool
    public let zones: [DomainName: CompiledZone]
    public let nodes: [DomainName: Node]

    /// RFC 1034 §3.6.2 chains are short; the validator holds them to this many links.
    public static let maximumChain = 8

    public init(
        name: String, index: Int, networks: [CIDR], matchesAll: Bool, recursion: Bool,
        zones: [DomainName: CompiledZone], nodes: [DomainName: Node]
    ) {
        self.name = name
        self.index = index
        self.networks = networks
        self.matchesAll = matchesAll
        self.recursion = recursion
        self.zones = zones
        self.nodes = nodes
    }

    public func matches(_ client: IPAddress) -> Bool {
        self.matchesAll || self.networks.contains { $0.contains(client) }
    }

    /// The served zone that holds `name`: the one with the longest apex above it.
    public func zone(containing name: DomainName) -> CompiledZone? {
        var candidate = name
        while true {
            if let zone = self.zones[candidate] { return zone }
            if candidate.isRoot { return nil }
            candidate = candidate.parent
        }
    }

    /// Answers `type` at `name` the way an authoritative server does (RFC 1034 §4.3.2, RFC 4592, RFC 2308).
    public func lookup(_ name: DomainName, _ type: RecordType) -> Lookup {
        var chain: [Record] = []
        var current = name
        var seen: Set<DomainName> = []
        while true {
            guard let zone = self.zone(containing: current) else {
                return chain.isEmpty ? .notAuthoritative : .partial(chain: chain)
            }
            if let referral = self.referral(for: current, in: zone, chain: chain) {
                // DS lives on the parent's side of a cut (RFC 4035 §3.1.4.1): at the delegation point itself the
                // parent answers it, with authority — the RRset, or NODATA with the SOA.
                guard type == .ds, self.topCut(for: current, in: zone) == current else { return referral }
                let records = self.nodes[current]?.rrset(.ds)?.records(owner: current) ?? []
                if records.isEmpty { return .noData(chain: chain, soa: zone.negativeSOA) }
                return .answer(chain + records, additional: [])
            }
            var owner = current
            var node = self.nodes[current]
            if node == nil {
                // RFC 4592 §3.3.1: the source of synthesis is `*.` + the closest encloser, if it exists.
                let encloser = self.closestEncloser(of: current, apex: zone.apex)
                guard let wildcard = encloser.wildcardChild, let source = self.nodes[wildcard] else {
                    return .nxDomain(chain: chain, soa: zone.negativeSOA)
                }
                node = source
                owner = current
            }
            guard let node else { return .nxDomain(chain: chain, soa: zone.negativeSOA) }
            if type != .cname, type != .any, let cname = node.rrset(.cname), let target = cname.data.first?.target {
                chain += cname.records(owner: owner)
                guard seen.insert(current).inserted, chain.count <= CompiledView.maximumChain else {
                    return .chainTooLong(chain: chain)
                }
                current = target
                continue
            }
            let records: [Record]
            if type == .any {
                // RFC 8482 is the server's business; the lookup reports what exists.
                records = node.rrsets.flatMap { $0.records(owner: owner) }
            } else {
                records = node.rrset(type)?.records(owner: owner) ?? []
            }
            guard !records.isEmpty else { return .noData(chain: chain, soa: zone.negativeSOA) }
            return .answer(chain + records, additional: self.additional(for: records))
        }
    }

    /// The node that answers for `name`: its own, or for a name that does not exist the wildcard that
    /// synthesises it (RFC 4592 §3.3.1); nil when neither exists or the name is in no served zone.
    public func answeringNode(for name: DomainName) -> Node? {
        if let node = self.nodes[name] { return node }
        guard let zone = self.zone(containing: name) else { return nil }
        let encloser = self.closestEncloser(of: name, apex: zone.apex)
        guard let wildcard = encloser.wildcardChild else { return nil }
        return self.nodes[wildcard]
    }

    /// The longest existing ancestor of a missing `name`, the apex at worst (RFC 4592 §3.3.1).
    func closestEncloser(of name: DomainName, apex: DomainName) -> DomainName {
        var candidate = name.parent
        while candidate != apex && self.nodes[candidate] == nil && !candidate.isRoot {
            candidate = candidate.parent
        }
        return candidate
    }

    /// The zone cut nearest the apex at or above `name` (the delegation a referral for it names).
    func topCut(for name: DomainName, in zone: CompiledZone) -> DomainName? {
        var cut: DomainName? = nil
        var candidate = name
        while candidate != zone.apex && !candidate.isRoot {
            if self.nodes[candidate]?.rrset(.ns) != nil { cut = candidate }
            candidate = candidate.parent
        }
        return cut
    }

    /// A referral when `name` is at or below a zone cut inside `zone` (NS below the apex).
    func referral(for name: DomainName, in zone: CompiledZone, chain: [Record]) -> Lookup? {
        guard name != zone.apex else { return nil }
        var cut: DomainName? = nil
        var candidate = name
        while candidate != zone.apex && !candidate.isRoot {
            if self.nodes[candidate]?.rrset(.ns) != nil { cut = candidate }
            candidate = candidate.parent
        }
        guard let cut, let ns = self.nodes[cut]?.rrset(.ns) else { return nil }
        let nameServers = ns.records(owner: cut)
        return .referral(
            chain: chain, nameServers: nameServers, glue: self.addresses(of: nameServers.compactMap(\.data.target)))
    }

    /// A/AAAA records for in-view targets of MX, SRV and NS answers (RFC 1035 §3.3.9, RFC 2782).
    public func additional(for records: [Record]) -> [Record] {
        let targets = records.compactMap { record -> DomainName? in
            switch record.type.rawValue {
            case RecordType.mx.rawValue, RecordType.srv.rawValue, RecordType.ns.rawValue: record.data.target
            // SVCB and HTTPS (RFC 9460 §4.2): the TargetName's addresses; "." in ServiceMode means the owner.
            case 64, 65: CompiledView.serviceTarget(record)
            default: nil
            }
        }
        return self.addresses(of: targets)
    }

    /// The name an SVCB/HTTPS record's addresses are looked up at (nil for AliasMode to ".", which means
    /// "no service").
    static func serviceTarget(_ record: Record) -> DomainName? {
        guard case .generic(let bytes) = record.data, bytes.count >= 3 else { return nil }
        var labels: [[UInt8]] = []
        var position = 2
        while position < bytes.count, bytes[position] != 0 {
            let length = Int(bytes[position])
            guard position + 1 + length <= bytes.count else { return nil }
            labels.append(Array(bytes[(position + 1)..<(position + 1 + length)]))
            position += 1 + length
        }
        guard let target = try? DomainName(labels: labels) else { return nil }
        let aliasMode = bytes[0] == 0 && bytes[1] == 0
        if target.isRoot { return aliasMode ? nil : record.owner }
        return target
    }

    func addresses(of names: [DomainName]) -> [Record] {
        var result: [Record] = []
        var seen: Set<DomainName> = []
        for name in names where seen.insert(name).inserted {
            guard let node = self.nodes[name] else { continue }
            for type in [RecordType.a, .aaaa] {
                if let rrset = node.rrset(type) { result += rrset.records(owner: name) }
            }
        }
        return result
    }
}

extension Snapshot {
    /// The host names of every named backend (`http://jellyfin:8096`), for the proxy's resolver.
    public var backendNames: Set<String> {
        Set(self.routes.sites.flatMap { $0.backends.compactMap(\.host) })
    }

    /// This snapshot with each named backend replaced by one backend per address its name resolves to in
    /// `addresses` (in that order), and left out while its name has none: a site whose backends all are
    /// unresolved has none, and answers 502.
    public func resolvingBackends(_ addresses: [String: [IPAddress]]) -> Snapshot {
        guard !self.backendNames.isEmpty else { return self }
        let sites = self.routes.sites.map { site in
            guard site.backends.contains(where: { $0.host != nil }) else { return site }
            var backends: [Backend] = []
            for backend in site.backends {
                guard let host = backend.host else {
                    backends.append(backend)
                    continue
                }
                for address in addresses[host] ?? [] {
                    var resolved = backend
                    resolved.address = SocketAddress(address: address, port: backend.address.port)
                    if !backends.contains(resolved) { backends.append(resolved) }
                }
            }
            return site.with(backends: backends)
        }
        return Snapshot(
            views: self.views, routes: RouteTable(sites: sites), settings: self.settings, serials: self.serials)
    }
}

/// Host → site, built from every `$SITE`; exact names first, then the closest wildcard.
public struct RouteTable: Sendable {
    public let sites: [CompiledSite]
    let exact: [[UInt8]: Int]
    /// Keyed by the wildcard's parent (`lab.example.com` for `*.lab.example.com`).
    let wildcards: [[UInt8]: Int]

    public init(sites: [CompiledSite]) {
        self.sites = sites
        var exact: [[UInt8]: Int] = [:]
        var wildcards: [[UInt8]: Int] = [:]
        for (index, site) in sites.enumerated() {
            if site.name.isWildcard {
                wildcards[Array(site.name.parent.hostDescription.utf8)] = index
            } else {
                exact[Array(site.name.hostDescription.utf8)] = index
            }
        }
        self.exact = exact
        self.wildcards = wildcards
    }

    /// The site for a Host header value: case folded, port and one trailing dot removed.
    public func route(host: some Collection<UInt8>) -> CompiledSite? {
        var key = RouteTable.normalise(host)
        if let index = self.exact[key] { return self.sites[index] }
        // The closest wildcard: strip one label at a time.
        while let dot = key.firstIndex(of: UInt8(ascii: ".")) {
            key.removeSubrange(0...dot)
            if let index = self.wildcards[key] { return self.sites[index] }
        }
        return nil
    }

    public func route(host: String) -> CompiledSite? {
        self.route(host: Array(host.utf8))
    }

    static func normalise(_ host: some Collection<UInt8>) -> [UInt8] {
        var bytes = Array(host)
        if bytes.first == UInt8(ascii: "[") {
            // An IPv6 literal never names a site; keep it whole so it matches nothing.
            return bytes
        }
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) { bytes.removeSubrange(colon...) }
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        for index in bytes.indices where bytes[index] >= 0x41 && bytes[index] <= 0x5A { bytes[index] |= 0x20 }
        return bytes
    }
}

/// A site as the proxy uses it.
/// A class, not a struct: a request's route carries its site through several values (the route decision, the
/// connect action), and copying a class reference costs one retain where copying the struct's nine
/// reference-counted fields cost nine each time.
public final class CompiledSite: Hashable, Sendable {
    public let name: DomainName
    public let backends: [Backend]
    public let balance: BalancePolicy
    public let healthPath: String?
    /// Indices of the views that may see this site.
    public let viewIndices: Set<Int>
    /// Plain-HTTP requests are redirected to https when a certificate covers the site.
    public let httpsRedirect: Bool
    /// The `Strict-Transport-Security` field its HTTPS responses carry ("max-age=N"), as a whole line.
    public let hstsField: [UInt8]?
    public let hstsMaxAge: UInt32?
    /// Its backends take the TLS stream as it is (SNI passthrough): no HTTP is spoken to them.
    public let passthrough: Bool
    /// A PROXY protocol v2 header goes first to its passthrough backends.
    public let proxyProtocol: Bool
    /// How TLS is spoken to its `https://` backends; nil when it has none.
    public let backendTLS: BackendTLS?

    public init(
        name: DomainName, backends: [Backend], balance: BalancePolicy, healthPath: String?, viewIndices: Set<Int>,
        httpsRedirect: Bool = true, hstsMaxAge: UInt32? = nil, proxyProtocol: Bool = false,
        backendTLS: BackendTLS = BackendTLS(), passthrough: Bool? = nil
    ) {
        self.passthrough = passthrough ?? (!backends.isEmpty && backends.allSatisfy(\.passthrough))
        self.proxyProtocol = proxyProtocol
        self.backendTLS = backends.contains(where: \.tls) ? backendTLS : nil
        self.name = name
        self.backends = backends
        self.balance = balance
        self.healthPath = healthPath
        self.viewIndices = viewIndices
        self.httpsRedirect = httpsRedirect
        self.hstsField = hstsMaxAge.map { Array("Strict-Transport-Security: max-age=\($0)\r\n".utf8) }
        self.hstsMaxAge = hstsMaxAge
    }

    public static func == (lhs: CompiledSite, rhs: CompiledSite) -> Bool {
        lhs === rhs
            || (lhs.name == rhs.name && lhs.backends == rhs.backends && lhs.balance == rhs.balance
                && lhs.healthPath == rhs.healthPath && lhs.viewIndices == rhs.viewIndices
                && lhs.httpsRedirect == rhs.httpsRedirect && lhs.hstsMaxAge == rhs.hstsMaxAge
                && lhs.passthrough == rhs.passthrough && lhs.proxyProtocol == rhs.proxyProtocol
                && lhs.backendTLS == rhs.backendTLS)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.name)
        hasher.combine(self.backends)
    }

    /// The same site with other backends (named ones resolved).
    public func with(backends: [Backend]) -> CompiledSite {
        CompiledSite(
            name: self.name, backends: backends, balance: self.balance, healthPath: self.healthPath,
            viewIndices: self.viewIndices, httpsRedirect: self.httpsRedirect, hstsMaxAge: self.hstsMaxAge,
            proxyProtocol: self.proxyProtocol, backendTLS: self.backendTLS ?? BackendTLS(),
            passthrough: self.passthrough)
    }

    public func isVisible(to view: CompiledView) -> Bool { self.viewIndices.contains(view.index) }
    public func isVisible(toView index: Int) -> Bool { self.viewIndices.contains(index) }
}

/// Per (view, zone): the hash of the compiled data and the serial it was given, so serials bump on change
/// and never go backwards across restarts.
public struct SerialBook: Hashable, Sendable {
    /// What a zone's data looked like when it got its serial.
    public struct Entry: Hashable, Sendable {
        public var contentHash: UInt64
        public var serial: UInt32

        public init(contentHash: UInt64, serial: UInt32) {
            self.contentHash = contentHash
            self.serial = serial
        }
    }

    public var entries: [String: Entry]

    public init(entries: [String: Entry] = [:]) {
        self.entries = entries
    }

    public static func key(view: String, apex: DomainName) -> String { "\(view) \(apex)" }

    /// One line per entry: `VIEW APEX HASH SERIAL`, sorted, for the state file.
    public var text: String {
        self.entries.keys.sorted().map { key in
            let entry = self.entries[key] ?? Entry(contentHash: 0, serial: 0)
            return "\(key) \(String(entry.contentHash, radix: 16)) \(entry.serial)\n"
        }.joined()
    }

    /// Reads `text`; lines that do not parse are skipped (a damaged file only costs a serial bump).
    public init(text: String) {
        var entries: [String: Entry] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let hash = UInt64(fields[2], radix: 16), let serial = UInt32(fields[3]) else {
                continue
            }
            entries["\(fields[0]) \(fields[1])"] = Entry(contentHash: hash, serial: serial)
        }
        self.entries = entries
    }
}
