import ZoneModel

/// What `frontdoor run` runs, from frontdoor.conf and the command line: the one precedence rule, pure and
/// table-tested. A flag that is given wins over the config (`off` gives no listeners: the service does not
/// run); a flag that is not given leaves the config's setting; the config's default stands last.
public struct RunConfiguration: Equatable, Sendable {
    /// The command-line flags that override the config (nil: not given).
    public struct Flags: Equatable, Sendable {
        public var dns: [SocketAddress]?
        public var http: [SocketAddress]?
        public var https: [SocketAddress]?
        public var admin: [SocketAddress]?
        public var user: String?
        /// `--wan` fixes the address: no DynDNS detection.
        public var wanFixed = false

        public init(
            dns: [SocketAddress]? = nil, http: [SocketAddress]? = nil, https: [SocketAddress]? = nil,
            admin: [SocketAddress]? = nil, user: String? = nil, wanFixed: Bool = false
        ) {
            self.dns = dns
            self.http = http
            self.https = https
            self.admin = admin
            self.user = user
            self.wanFixed = wanFixed
        }
    }

    public var dnsListeners: [SocketAddress]
    public var httpListeners: [SocketAddress]
    public var httpsListeners: [SocketAddress]
    public var adminListeners: [SocketAddress]
    public var user: String?
    /// Whether the DynDNS updater runs: the config names WAN sources or providers and --wan fixed nothing.
    public var dynDNS: Bool

    public init(settings: Settings, flags: Flags) {
        self.dnsListeners = flags.dns ?? settings.dnsListeners
        self.httpListeners = flags.http ?? settings.httpListeners
        self.httpsListeners = flags.https ?? settings.httpsListeners
        self.adminListeners = flags.admin ?? settings.adminListeners
        self.user = flags.user ?? settings.user
        self.dynDNS = !flags.wanFixed && (!settings.wanSources.isEmpty || !settings.providers.isEmpty)
    }
}
