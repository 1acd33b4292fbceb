/// Global settings from `frontdoor.conf`: listeners, upstream resolvers, WAN detection and DDNS providers.
public struct Settings: Sendable {
    public var dnsListeners: [SocketAddress] = []
    public var httpListeners: [SocketAddress] = []
    public var adminListeners: [SocketAddress] = []
    /// HTTPS listeners (TLS terminated with `tlsDirectory`'s certificates).
    public var httpsListeners: [SocketAddress] = []
    /// A directory of `NAME.crt` (PEM chain) + `NAME.key` (PEM key) pairs; the names served are each
    /// certificate's subjectAltName DNS names. nil: no HTTPS.
    public var tlsDirectory: String?
    /// The name whose certificate clients get when they send no SNI or an unknown name (nil: an alert).
    public var tlsDefault: String?
    /// `internal-ca [SUFFIX...]`: sites no certificate file covers get one from Frontdoor's own CA (kept in
    /// the state directory) — all of them (empty), or those under these names. nil: off.
    public var internalCA: [DomainName]?
    /// Resolvers that LAN views forward other names to.
    public var upstreams: [SocketAddress] = []
    /// Per upstream (same order): the name its certificate must carry when it is reached over DNS over TLS
    /// (`upstream tls://ADDR[:PORT]@NAME`, RFC 7858), nil for plain UDP/TCP.
    public var upstreamTLSNames: [String?] = []
    /// Seconds past expiry a cached answer may still be served when every upstream fails (RFC 8767); 0: off.
    public var serveStale: UInt32 = 86_400
    /// Where the first `upstream` line is, for diagnostics about it.
    public var upstreamLocation: SourceLocation?
    /// An `upstream` line had an address that did not parse (already reported).
    public var upstreamsHadErrors = false
    /// Peers whose X-Forwarded-For the proxy believes.
    public var trustedProxies: [CIDR] = []
    /// Services switched off with `listen SERVICE off` ("dns", "http", "https", "admin").
    public var disabledServices: Set<String> = []
    /// The user `run` switches to once its ports are bound (nil: stay as started).
    public var user: String?
    /// Trusted CAs for HTTPS to providers and echo URLs (PEM); nil uses the system's store.
    public var caFile: String?
    /// Where serials and DynDNS state persist; nil keeps nothing across restarts.
    public var stateDirectory: String?
    public var wanSources: [WANSource] = []
    public var wanPolicy: WANPolicy = .firstAnswer
    /// Seconds between WAN polls.
    public var wanInterval: UInt32 = 300
    /// Seconds a new WAN address must hold before it is published (no flapping).
    public var wanConfirmation: UInt32 = 60
    /// Ports the router is asked to forward to this host (`router forward tcp/80 tcp/443`), over the protocol
    /// of the first router source (`wan router|pcp|natpmp|upnp GATEWAY`).
    public var routerForwards: [RouterForward] = []
    public var routerForwardLocation: SourceLocation?
    /// The lifetime asked for each forward, in seconds (`lifetime=DURATION` on the line; default an hour);
    /// renewed at half.
    public var routerForwardLifetime: UInt32 = 3600
    /// Seconds the published WAN address is kept while no source gives a usable one (`wan grace DURATION|forever`):
    /// then the wan view answers without it and providers are left alone. nil: for ever.
    public var wanGrace: UInt32? = 86_400
    /// Accept documentation addresses (192.0.2.0/24, 2001:db8::/32...) as WAN addresses: test networks only.
    public var wanAcceptDocumentation = false
    public var providers: [Provider] = []
    /// Servers that copy a view's zones by zone transfer (hidden primary).
    public var secondaries: [Secondary] = []
    /// Certificates from an ACME CA for the sites (`acme DIRECTORY ...`); nil: none.
    public var acme: ACMESettings?
    /// Where each setting was written, for diagnostics that concern the settings as a whole.
    public var location: SourceLocation?

    public init() {}
}

/// One way of learning the WAN address.
public struct WANSource: Hashable, Sendable {
    /// A router's address written `auto` (found at run time): the unspecified address, which no router has.
    public static let auto = IPAddress.v4(IPv4Address(0))

    /// A router's address as the operator wrote it.
    public static func describe(gateway: IPAddress) -> String { gateway == WANSource.auto ? "auto" : "\(gateway)" }

    /// Where the address comes from.
    public enum Kind: Hashable, Sendable {
        /// A local interface's global address (`interface eth0`).
        case interface(name: String)
        /// A local interface's global IPv6 address, or its /64 prefix with `interfaceID` as the low bits.
        case interface6(name: String, interfaceID: IPv6Address?)
        /// The router's NAT-PMP external address (RFC 6886).
        case natPMP(gateway: IPAddress)
        /// The router's UPnP IGD `GetExternalIPAddress` (SSDP, its description, SOAP).
        case upnp(gateway: IPAddress)
        /// The external address of a PCP MAP response from the router (RFC 6887).
        case pcp(gateway: IPAddress)
        /// The router asked over PCP, then NAT-PMP, then UPnP IGD — the one that answered is asked first the
        /// next time.
        case router(gateway: IPAddress)
        /// A DNS question whose answer is the asker's address, asked of `server`.
        case dns(name: DomainName, type: RecordType, server: SocketAddress)
        /// A URL that returns the address as text.
        case http(url: String)
    }

    public var kind: Kind
    public var location: SourceLocation

    public init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
    }
}

/// What to do when WAN sources disagree.
public enum WANPolicy: Hashable, Sendable {
    /// The first source that answers wins.
    case firstAnswer
    /// At least this many sources must report the same address.
    case agreement(Int)
}

/// An outside DNS provider the updater pushes the WAN address to.
public struct Provider: Hashable, Sendable {
    /// Protocol and its parameters.
    public enum Kind: Hashable, Sendable {
        /// RFC 2136 UPDATE signed with the TSIG key in `keyFile` (BIND key-file format).
        case rfc2136(server: SocketAddress, zone: DomainName, record: DomainName, keyFile: String)
        /// dyndns2 `/nic/update` with basic auth; the password lives in `passwordFile`.
        case dyndns2(url: String, hostname: String, username: String, passwordFile: String)
        /// Cloudflare's DNS record API with the token in `tokenFile`.
        case cloudflare(zoneID: String, record: String, tokenFile: String)
    }

    public var name: String
    public var kind: Kind
    public var location: SourceLocation
    /// Seconds after which the address is pushed again although it did not change (`refresh=`): some
    /// dyndns2 services expire hosts that never update, and a record changed at the provider is repaired.
    public var refresh: UInt32 = Provider.defaultRefresh

    /// 25 days, as ddclient's `max-interval` (inadyn forces an update every 30).
    public static let defaultRefresh: UInt32 = 25 * 86_400

    public init(name: String, kind: Kind, location: SourceLocation) {
        self.name = name
        self.kind = kind
        self.location = location
    }

    /// The secret files this provider reads.
    public var secretFiles: [String] {
        switch self.kind {
        case .rfc2136(_, _, _, let keyFile): [keyFile]
        case .dyndns2(_, _, _, let passwordFile): [passwordFile]
        case .cloudflare(_, _, let tokenFile): [tokenFile]
        }
    }
}

/// A secondary name server that copies one view's zones from Frontdoor (AXFR/IXFR) and is told of changes
/// (NOTIFY): `secondary NAME ADDRESS[:PORT] view=VIEW [key=FILE] [notify=no]`.
///
/// A transfer or query signed with `key` is answered from `view`; without a key, one from `address` is.
public struct Secondary: Hashable, Sendable {
    public var name: String
    /// Where NOTIFY goes (port 53 unless given); unsigned transfers are accepted from this address.
    public var address: SocketAddress
    public var view: String
    /// The BIND key file the key was read from (nil: the secondary is known by its address only).
    public var keyFile: String?
    public var key: TSIGKey?
    /// Whether Frontdoor sends NOTIFY when the view's serials change.
    public var notify: Bool
    public var location: SourceLocation

    public init(
        name: String, address: SocketAddress, view: String, keyFile: String? = nil, key: TSIGKey? = nil,
        notify: Bool = true, location: SourceLocation
    ) {
        self.name = name
        self.address = address
        self.view = view
        self.keyFile = keyFile
        self.key = key
        self.notify = notify
        self.location = location
    }
}

/// `acme DIRECTORY-URL [email=ADDRESS] agree-terms [eab=KEY-ID:FILE] [ca-file=FILE] [per-site[=ZONE,...]]
/// [http-01=ZONE[,ZONE]] [dns-update=PROVIDER[,PROVIDER]]`.
public struct ACMESettings: Hashable, Sendable {
    /// The CA's directory URL.
    public var directory: String
    public var email: String?
    /// The operator accepted the CA's terms of service (`agree-terms`); CAs refuse accounts without it.
    public var agreeTerms: Bool
    /// External account binding: the CA's key identifier and the file holding its MAC key.
    public var bindingKeyID: String?
    public var bindingKeyFile: String?
    /// Trusted instead of the system's CAs when talking to the CA (a local test CA).
    public var caFile: String?
    /// One certificate per site instead of one wildcard certificate per zone: for every zone, or for
    /// `perSiteZones` (`per-site=ZONE[,ZONE]`).
    public var perSite: Bool
    public var perSiteZones: [DomainName] = []
    /// Zones whose public DNS is not Frontdoor (it serves them to the LAN only): their sites are proved by
    /// HTTP-01 through the proxy, one certificate each (`http-01=ZONE[,ZONE]`).
    public var httpZones: [DomainName] = []
    /// `rfc2136` providers whose zones' proofs go to their primary by UPDATE (`dns-update=NAME[,NAME]`): the
    /// zone's public DNS is that primary, not Frontdoor.
    public var updateProviders: [String] = []
    /// Zones whose proofs are delegated by CNAME into `target`, a zone Frontdoor serves
    /// (`delegate=ZONE:TARGET`).
    public var delegations: [ACMEDelegation] = []
    public var location: SourceLocation

    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
    public static let letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"

    public init(
        directory: String, email: String? = nil, agreeTerms: Bool = false, bindingKeyID: String? = nil,
        bindingKeyFile: String? = nil, caFile: String? = nil, perSite: Bool = false, location: SourceLocation
    ) {
        self.directory = directory
        self.email = email
        self.agreeTerms = agreeTerms
        self.bindingKeyID = bindingKeyID
        self.bindingKeyFile = bindingKeyFile
        self.caFile = caFile
        self.perSite = perSite
        self.location = location
    }
}

/// `delegate=ZONE:TARGET`: `_acme-challenge.NAME.ZONE` is a CNAME (set once at the zone's DNS host) to
/// `NAME.TARGET`, where Frontdoor publishes the proof.
public struct ACMEDelegation: Hashable, Sendable {
    public var zone: DomainName
    public var target: DomainName

    public init(zone: DomainName, target: DomainName) {
        self.zone = zone
        self.target = target
    }
}

/// One port forward asked of the router: the same port outside and in.
public struct RouterForward: Hashable, Sendable, CustomStringConvertible {
    /// "tcp" or "udp".
    public var transport: String
    public var port: UInt16

    public init(transport: String, port: UInt16) {
        self.transport = transport
        self.port = port
    }

    public var description: String { "\(self.transport)/\(self.port)" }
}

extension Settings {
    /// The routers the sources ask (NAT-PMP, PCP, UPnP and router sources), in order.
    public var routerGateways: [IPAddress] {
        self.wanSources.compactMap { source in
            switch source.kind {
            case .natPMP(let gateway), .pcp(let gateway), .upnp(let gateway), .router(let gateway): gateway
            default: nil
            }
        }
    }

    /// The router the port forwards are asked of: the first the sources ask.
    public var routerGateway: IPAddress? { self.routerGateways.first }

    /// The protocol the operator named for that router (`wan natpmp|pcp|upnp GATEWAY`): the forwards use it
    /// too. Nil for `wan router GATEWAY`: whichever the router answers.
    public var routerProtocol: String? {
        for source in self.wanSources {
            switch source.kind {
            case .natPMP: return "natpmp"
            case .pcp: return "pcp"
            case .upnp: return "upnp"
            case .router: return nil
            default: continue
            }
        }
        return nil
    }
}
