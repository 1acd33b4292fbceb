/// Everything the user wrote, parsed but not yet checked or compiled: plain values with their locations.
public struct Model: Sendable {
    public var settings: Settings
    public var views: [ViewDefinition]
    public var zones: [ZoneSource]

    public init(settings: Settings = Settings(), views: [ViewDefinition] = [], zones: [ZoneSource] = []) {
        self.settings = settings
        self.views = views
        self.zones = zones
    }

    /// Every site of every zone.
    public var sites: [Site] { self.zones.flatMap(\.sites) }

    /// Every `$PROXY` of every zone.
    public var proxies: [ProxyRecord] { self.zones.compactMap(\.proxy) }
}

/// A view: the clients it serves and what they may do (first match wins).
public struct ViewDefinition: Hashable, Sendable {
    public var name: String
    /// Source prefixes; empty with `matchesAll` for the catch-all `*`.
    public var networks: [CIDR]
    public var matchesAll: Bool
    /// Whether names outside the served zones are forwarded upstream for these clients.
    public var recursion: Bool
    public var location: SourceLocation

    public init(name: String, networks: [CIDR], matchesAll: Bool, recursion: Bool, location: SourceLocation) {
        self.name = name
        self.networks = networks
        self.matchesAll = matchesAll
        self.recursion = recursion
        self.location = location
    }

    public func matches(_ client: IPAddress) -> Bool {
        self.matchesAll || self.networks.contains { $0.contains(client) }
    }
}

/// Which views a piece of data belongs to.
public enum ViewScope: Hashable, Sendable {
    /// Every view.
    case all
    /// Only the named views.
    case only(Set<String>)

    public func includes(_ view: String) -> Bool {
        switch self {
        case .all: true
        case .only(let names): names.contains(view)
        }
    }
}

/// One record as written, with the views it belongs to and where it was written.
public struct SourceRecord: Hashable, Sendable {
    public var record: Record
    public var scope: ViewScope
    public var location: SourceLocation
    /// Whether the TTL was written on the line (not inherited), for RFC 2181 §5.2 advice.
    public var explicitTTL: Bool

    public init(record: Record, scope: ViewScope, location: SourceLocation, explicitTTL: Bool = true) {
        self.record = record
        self.scope = scope
        self.location = location
        self.explicitTTL = explicitTTL
    }
}

/// One zone file: the apex, its records, and the proxy record and sites it declares.
public struct ZoneSource: Sendable {
    public var apex: DomainName
    public var file: String
    public var records: [SourceRecord]
    public var proxy: ProxyRecord?
    public var sites: [Site]
    /// The `$TTL` in force at the end of the file, the default for synthesised records.
    public var defaultTTL: UInt32

    public init(
        apex: DomainName, file: String, records: [SourceRecord] = [], proxy: ProxyRecord? = nil, sites: [Site] = [],
        defaultTTL: UInt32 = 3600
    ) {
        self.apex = apex
        self.file = file
        self.records = records
        self.proxy = proxy
        self.sites = sites
        self.defaultTTL = defaultTTL
    }
}

/// One address of the proxy record in one view.
public enum ProxyAddress: Hashable, Sendable, CustomStringConvertible {
    /// Written in the file.
    case fixed(IPAddress)
    /// The WAN IPv4 address the DynDNS updater detects (`auto`).
    case autoV4
    /// The WAN IPv6 address the DynDNS updater detects (`auto6`).
    case autoV6
    /// A name kept elsewhere (a DynDNS service's, the router's): in this view the proxy record is a CNAME to
    /// it, chased no further by Frontdoor (`wan=home.dyndns.example.`).
    case name(DomainName)

    public var description: String {
        switch self {
        case .fixed(let address): address.description
        case .autoV4: "auto"
        case .autoV6: "auto6"
        case .name(let name): name.description
        }
    }
}

/// `$PROXY`: the single name every site's CNAME points at, with an address set per view.
public struct ProxyRecord: Hashable, Sendable {
    public var name: DomainName
    /// View name → addresses (A and/or AAAA, fixed or detected).
    public var addresses: [String: [ProxyAddress]]
    public var ttl: UInt32
    public var location: SourceLocation

    public init(name: DomainName, addresses: [String: [ProxyAddress]], ttl: UInt32, location: SourceLocation) {
        self.name = name
        self.addresses = addresses
        self.ttl = ttl
        self.location = location
    }
}

/// How a site spreads requests over its backends.
public enum BalancePolicy: String, Hashable, Sendable, CaseIterable {
    case roundRobin = "round-robin"
    case leastConnections = "least-conn"
    case firstAvailable = "first"
}

/// One backend of a site: `http://ADDR:PORT`, `https://ADDR:PORT` or `tls-passthrough://ADDR:PORT`.
public struct Backend: Hashable, Sendable, CustomStringConvertible {
    public var address: SocketAddress
    /// `tls-passthrough://`: the client's TLS stream is relayed as it is, routed by its SNI name (the
    /// backend keeps its own certificate); else HTTP.
    public var passthrough: Bool
    /// `https://`: HTTP over TLS to the backend, as the site's `BackendTLS` says.
    public var tls: Bool
    /// The host name it was given by (`http://jellyfin:8096`), lower case without a final dot; nil for an
    /// address. A named backend's `address` is its port on the unspecified address until the proxy's
    /// resolver replaces it with what the name resolves to (`RouteTable.resolving`).
    public var host: String?

    public init(address: SocketAddress, passthrough: Bool = false, tls: Bool = false, host: String? = nil) {
        self.address = address
        self.passthrough = passthrough
        self.tls = tls
        self.host = host
    }

    public var scheme: String { self.passthrough ? "tls-passthrough://" : self.tls ? "https://" : "http://" }

    /// `http://192.0.2.5:80`; a named one as given, with the address it resolved to once it has one.
    public var description: String {
        guard let host = self.host else { return self.scheme + "\(self.address)" }
        let given = self.scheme + host + ":\(self.address.port)"
        return self.address.address.isUnspecified ? given : given + " (\(self.address.address))"
    }
}

/// How the proxy speaks TLS to a site's `https://` backends.
public struct BackendTLS: Hashable, Sendable {
    /// The backend's certificate must chain to a trusted CA and name the backend (`tls-verify=off`: anything
    /// is accepted, as home appliances ship self-signed certificates).
    public var verify = true
    /// A PEM file of the CAs to trust (`ca=`); nil: the system's store.
    public var caFile: String?
    /// The name sent as SNI and checked against the certificate (`tls-name=`); nil: none is sent, and the
    /// certificate must name the backend's IP address.
    public var serverName: String?

    public init(verify: Bool = true, caFile: String? = nil, serverName: String? = nil) {
        self.verify = verify
        self.caFile = caFile
        self.serverName = serverName
    }
}

/// `$SITE`: a host name served by the proxy, with its backends and options.
public struct Site: Hashable, Sendable {
    /// The host, possibly a wildcard (`*.lab.example.com.`).
    public var name: DomainName
    public var backends: [Backend]
    public var balance: BalancePolicy
    /// Path for active health checks; nil for passive checks only.
    public var healthPath: String?
    public var scope: ViewScope
    /// The proxy record this site's CNAME points at.
    public var proxyName: DomainName?
    public var ttl: UInt32
    /// Plain-HTTP requests get a 308 to https once a certificate covers the site (`https=off` opts out).
    public var httpsRedirect = true
    /// `Strict-Transport-Security: max-age=N` on the site's HTTPS responses (`hsts=DURATION`); nil: none.
    public var hstsMaxAge: UInt32?
    /// A PROXY protocol v2 header goes first to passthrough backends (`proxy-protocol=v2`).
    public var proxyProtocol = false
    /// How its `https://` backends are spoken to (`tls-verify=`, `ca=`, `tls-name=`).
    public var backendTLS = BackendTLS()
    public var location: SourceLocation

    public init(
        name: DomainName, backends: [Backend], balance: BalancePolicy = .roundRobin, healthPath: String? = nil,
        scope: ViewScope = .all, proxyName: DomainName? = nil, ttl: UInt32, location: SourceLocation
    ) {
        self.name = name
        self.backends = backends
        self.balance = balance
        self.healthPath = healthPath
        self.scope = scope
        self.proxyName = proxyName
        self.ttl = ttl
        self.location = location
    }
}

/// Host names of backends (`http://jellyfin:8096`, `https://nas.lan`).
public enum BackendName {
    /// Letters, digits and '-' in labels of 1–63 characters, 253 at most, a final dot allowed; not all
    /// digits and dots (that is a mistyped address).
    public static func valid(_ text: String) -> Bool {
        let name = text.hasSuffix(".") ? text.dropLast() : Substring(text)
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        guard !name.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy {
                    ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D
                }
        }
    }

    /// Lower case, without a final dot.
    public static func normalised(_ text: String) -> String {
        String((text.hasSuffix(".") ? text.dropLast() : Substring(text)).lowercased())
    }
}

/// Frontdoor's version, for `--version` and the User-Agent of its outgoing requests.
public enum Version {
    public static let text = "1.0"
}
