import Files
import ZoneModel

/// Parses `frontdoor.conf`: one setting per line, `#` or `;` comments, parentheses to continue a line.
///
/// ```
/// view lan 192.0.2.0/24 2001:db8:1::/48 recursion
/// view wan *
/// listen dns 0.0.0.0:53 [::]:53
/// upstream 192.0.2.1
/// ```
package struct ConfigParser {
    let files: any SourceFiles
    /// Relative secret paths are taken from here.
    let directory: String
    package var diagnostics = Diagnostics()

    package init(files: any SourceFiles, directory: String) {
        self.files = files
        self.directory = directory
    }

    /// The settings and views of the file at `path`; missing settings take their defaults.
    package mutating func parse(path: String) -> (Settings, [ViewDefinition]) {
        switch self.files.read(path) {
        case .success(let bytes):
            return self.parse(bytes: bytes, file: path)
        case .failure(let problem):
            self.diagnostics.append(
                Diagnostic(
                    .fileUnreadable, "cannot read config: \(problem)",
                    at: SourceLocation(file: path, line: 1, column: 1)))
            return (Settings(), [])
        }
    }

    package mutating func parse(bytes: [UInt8], file: String) -> (Settings, [ViewDefinition]) {
        var settings = Settings()
        settings.location = SourceLocation(file: file, line: 1, column: 1)
        var views: [ViewDefinition] = []
        var internalCAHead: Token?
        let entries = Lexer.entries(
            of: bytes, file: file, commentBytes: [UInt8(ascii: "#"), UInt8(ascii: ";")], diagnostics: &self.diagnostics)
        for entry in entries where !entry.damaged {
            let head = entry.tokens[0]
            let arguments = Array(entry.tokens.dropFirst())
            switch head.string {
            case "view": self.view(head, arguments, file: file, into: &views)
            case "listen": self.listen(head, arguments, file: file, into: &settings)
            case "upstream":
                let found = self.upstreams(head, arguments, file: file)
                settings.upstreams += found.map(\.address)
                settings.upstreamTLSNames += found.map(\.tlsName)
                settings.upstreamLocation = settings.upstreamLocation ?? head.location(in: file)
                // A bad address is reported once, not again as "no upstream" for every recursing view.
                if found.count < arguments.count || arguments.isEmpty { settings.upstreamsHadErrors = true }
            case "serve-stale":
                guard let token = self.single(head, arguments, file: file, what: "a duration or 'off'") else {
                    continue
                }
                if token.string == "off" {
                    settings.serveStale = 0
                } else if let seconds = TTLText.parse(token) {
                    settings.serveStale = seconds
                } else {
                    self.error(
                        .badSetting,
                        "serve-stale: \(token.quotedForMessage) is not a duration (like 1d or 12h) or 'off'",
                        token, file)
                }
            case "trusted-proxy":
                settings.trustedProxies += self.networks(arguments, file: file)
            case "user":
                guard let name = self.single(head, arguments, file: file, what: "a user name") else { continue }
                settings.user = name.string
            case "state-dir":
                guard let path = self.single(head, arguments, file: file, what: "a directory") else { continue }
                settings.stateDirectory = joinPath(self.directory, path.string)
            case "ca-file":
                guard let path = self.single(head, arguments, file: file, what: "a PEM file of trusted CAs") else {
                    continue
                }
                settings.caFile = joinPath(self.directory, path.string)
            case "tls":
                self.tls(head, arguments, file: file, into: &settings)
            case "internal-ca":
                var suffixes: [DomainName] = []
                for argument in arguments {
                    guard let name = try? DomainName(argument.string) else {
                        self.error(
                            .badSetting, "internal-ca: \(argument.quotedForMessage) is not a domain name", argument,
                            file)
                        continue
                    }
                    suffixes.append(name)
                }
                settings.internalCA = suffixes
                internalCAHead = head
            case "wan":
                self.wan(head, arguments, file: file, into: &settings)
            case "provider":
                self.provider(head, arguments, file: file, into: &settings)
            case "secondary":
                self.secondary(head, arguments, file: file, into: &settings)
            case "acme":
                self.acme(head, arguments, file: file, into: &settings)
            case "router":
                guard arguments.first?.string == "forward", arguments.count >= 2 else {
                    self.error(
                        .missingField,
                        "'router' takes 'forward PROTO/PORT... [lifetime=DURATION]' (router forward tcp/80 tcp/443)",
                        head,
                        file)
                    continue
                }
                for token in arguments.dropFirst() {
                    if token.string.hasPrefix("lifetime=") {
                        guard let seconds = TTLText.parse(Array(token.text.dropFirst(9))), seconds >= 2 else {
                            self.error(
                                .badOption, "router forward: \(token.quotedForMessage) is not a duration of 2s or more",
                                token, file)
                            continue
                        }
                        settings.routerForwardLifetime = seconds
                        continue
                    }
                    let parts = token.string.split(separator: "/")
                    guard parts.count == 2, parts[0] == "tcp" || parts[0] == "udp", let port = UInt16(parts[1]),
                        port > 0
                    else {
                        self.error(
                            .badOption, "router forward: \(token.quotedForMessage) is not tcp/PORT or udp/PORT", token,
                            file)
                        continue
                    }
                    let forward = RouterForward(transport: String(parts[0]), port: port)
                    if !settings.routerForwards.contains(forward) { settings.routerForwards.append(forward) }
                }
                settings.routerForwardLocation = head.location(in: file)
            default:
                self.error(
                    .unknownSetting,
                    "unknown setting \(head.quotedForMessage) (view, listen, upstream, trusted-proxy, user, state-dir, ca-file, tls, internal-ca, acme, wan, router, provider, secondary, serve-stale)",
                    head, file)
            }
        }
        self.checkSecondaries(settings.secondaries, views: views)
        if let head = internalCAHead, settings.stateDirectory == nil {
            self.error(
                .missingField, "'internal-ca' keeps its root key in the state directory: add 'state-dir DIR'", head,
                file)
        }
        if let location = settings.routerForwardLocation, settings.routerGateway == nil {
            self.diagnostics.append(
                Diagnostic(
                    .missingField,
                    "'router forward' asks the router named by a 'wan router GATEWAY' line (or wan pcp, natpmp, upnp): add one",
                    at: location))
        }
        if let acme = settings.acme, settings.stateDirectory == nil {
            self.diagnostics.append(
                Diagnostic(
                    .missingField,
                    "'acme' keeps its account key and certificates in the state directory: add 'state-dir DIR'",
                    at: acme.location))
        }
        if let acme = settings.acme {
            for name in acme.updateProviders {
                guard let provider = settings.providers.first(where: { $0.name == name }) else {
                    self.diagnostics.append(
                        Diagnostic(.badSetting, "acme: dns-update=\(name): no provider of that name", at: acme.location)
                    )
                    continue
                }
                switch provider.kind {
                case .rfc2136, .cloudflare: continue
                default:
                    self.diagnostics.append(
                        Diagnostic(
                            .badSetting,
                            "acme: dns-update=\(name): only an rfc2136 or cloudflare provider can publish the proofs",
                            at: acme.location))
                }
            }
        }
        return (settings, views)
    }

    /// `acme DIRECTORY-URL [email=ADDRESS] agree-terms [eab=KEY-ID:FILE] [ca-file=FILE] [per-site]
    /// [http-01=ZONE[,ZONE]]`;
    /// `letsencrypt` and `letsencrypt-staging` stand for Let's Encrypt's directories.
    mutating func acme(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard let first = arguments.first else {
            return self.error(
                .missingField,
                "'acme' needs the CA's directory URL (or letsencrypt, letsencrypt-staging) and agree-terms", head, file)
        }
        if settings.acme != nil { return self.error(.badSetting, "'acme' is set twice", head, file) }
        let directory: String
        switch first.string {
        case "letsencrypt": directory = ACMESettings.letsEncrypt
        case "letsencrypt-staging": directory = ACMESettings.letsEncryptStaging
        default:
            guard first.string.hasPrefix("https://") || first.string.hasPrefix("http://") else {
                return self.error(
                    .badSetting,
                    "acme: \(first.quotedForMessage) is not a directory URL (https://...), letsencrypt or letsencrypt-staging",
                    first, file)
            }
            directory = first.string
        }
        var acme = ACMESettings(directory: directory, location: head.location(in: file))
        for token in arguments.dropFirst() {
            let text = token.string
            switch text {
            case "agree-terms":
                acme.agreeTerms = true
                continue
            case "per-site":
                acme.perSite = true
                continue
            default: break
            }
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                self.error(
                    .badOption,
                    "acme: unknown option \(token.quotedForMessage) (email=, agree-terms, eab=, ca-file=, per-site, http-01=, dns-update=, delegate=)",
                    token, file)
                continue
            }
            let value = String(text[text.index(after: equals)...])
            switch text[..<equals] {
            case "email":
                guard value.contains("@"), !value.contains(":"), !value.hasPrefix("@"), !value.hasSuffix("@") else {
                    self.error(.badOption, "acme: email=\(value) is not an e-mail address", token, file)
                    continue
                }
                acme.email = value
            case "eab":
                guard let colon = value.firstIndex(of: ":"), colon != value.startIndex,
                    value.index(after: colon) != value.endIndex
                else {
                    self.error(
                        .badOption,
                        "acme: eab=KEY-ID:FILE (the CA's key identifier, then the file holding its MAC key)",
                        token, file)
                    continue
                }
                let path = joinPath(self.directory, String(value[value.index(after: colon)...]))
                self.checkSecret(path, token: token, file: file)
                acme.bindingKeyID = String(value[..<colon])
                acme.bindingKeyFile = path
            case "ca-file":
                acme.caFile = joinPath(self.directory, value)
            case "delegate":
                for part in value.split(separator: ",") {
                    let halves = part.split(separator: ":", omittingEmptySubsequences: false)
                    guard halves.count == 2, let zone = try? DomainName(String(halves[0])),
                        let target = try? DomainName(String(halves[1])), !zone.isRoot, !target.isRoot
                    else {
                        self.error(
                            .badOption,
                            "acme: delegate=\(part): ZONE:TARGET (the zone whose proofs are CNAMEs into TARGET, a "
                                + "zone Frontdoor serves)", token, file)
                        continue
                    }
                    acme.delegations.append(ACMEDelegation(zone: zone, target: target))
                }
            case "dns-update":
                acme.updateProviders += value.split(separator: ",").map(String.init)
            case "per-site":
                acme.perSiteZones += self.zones("per-site", value, token: token, file: file)
            case "http-01":
                acme.httpZones += self.zones("http-01", value, token: token, file: file)
            default:
                self.error(
                    .badOption,
                    "acme: unknown option \(token.quotedForMessage) (email=, agree-terms, eab=, ca-file=, per-site, http-01=, dns-update=, delegate=)",
                    token, file)
            }
        }
        if !acme.agreeTerms {
            self.error(
                .missingField,
                "acme: add agree-terms once you have read the CA's terms of service (CAs refuse accounts without it)",
                head, file)
        }
        settings.acme = acme
    }

    /// The zones of an acme option's `ZONE[,ZONE]` value (a final dot optional); a part that is no name is
    /// reported at the option.
    mutating func zones(_ option: String, _ value: String, token: Token, file: String) -> [DomainName] {
        var zones: [DomainName] = []
        for part in value.split(separator: ",") {
            guard let zone = try? DomainName(String(part)) else {
                self.error(.badOption, "acme: \(option)=\(part) is not a zone name", token, file)
                continue
            }
            zones.append(zone)
        }
        return zones
    }

    mutating func error(_ code: DiagnosticCode, _ message: String, _ token: Token, _ file: String) {
        self.diagnostics.append(Diagnostic(code, message, at: token.location(in: file)))
    }

    mutating func single(_ head: Token, _ arguments: [Token], file: String, what: String) -> Token? {
        guard let first = arguments.first else {
            self.error(.missingField, "'\(head.string)' needs \(what)", head, file)
            return nil
        }
        if let extra = arguments.dropFirst().first {
            self.error(.unexpectedToken, "unexpected \(extra.quotedForMessage) after '\(head.string)'", extra, file)
        }
        return first
    }

    /// `view NAME (PREFIX... | *) [recursion]`.
    mutating func view(_ head: Token, _ arguments: [Token], file: String, into views: inout [ViewDefinition]) {
        guard let nameToken = arguments.first else {
            return self.error(.missingField, "'view' needs a name and client prefixes (or '*')", head, file)
        }
        let name = nameToken.string
        guard !name.isEmpty,
            name.utf8.allSatisfy({
                $0 == 45 || $0 == 95 || ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122)
            }),
            !["auto", "auto6", "ttl", "*"].contains(name)
        else {
            return self.error(
                .badSetting, "bad view name \(nameToken.quotedForMessage) (letters, digits, '-' and '_')", nameToken,
                file)
        }
        var networks: [CIDR] = []
        var matchesAll = false
        var recursion = false
        for token in arguments.dropFirst() {
            switch token.string {
            case "*": matchesAll = true
            case "recursion": recursion = true
            default: networks += self.networks([token], file: file)
            }
        }
        if networks.isEmpty && !matchesAll {
            self.error(
                .missingField, "view '\(name)' has no client prefixes; list some, or '*' for everyone", nameToken, file)
        }
        views.append(
            ViewDefinition(
                name: name, networks: networks, matchesAll: matchesAll, recursion: recursion,
                location: nameToken.location(in: file)))
    }

    mutating func networks(_ tokens: [Token], file: String) -> [CIDR] {
        var result: [CIDR] = []
        for token in tokens {
            switch CIDR.parse(token.string) {
            case .success(let cidr): result.append(cidr)
            case .failure(.hostBitsSet(let suggestion)):
                self.error(
                    .badAddress, "prefix \(token.quotedForMessage) has host bits set; did you mean '\(suggestion)'?",
                    token, file)
            case .failure(.badLength):
                self.error(.badAddress, "bad prefix length in \(token.quotedForMessage)", token, file)
            case .failure(.badAddress):
                self.error(.badAddress, "bad address prefix \(token.quotedForMessage)", token, file)
            }
        }
        return result
    }

    mutating func addresses(_ head: Token, _ arguments: [Token], file: String, defaultPort: UInt16?, what: String)
        -> [SocketAddress]
    {
        if arguments.isEmpty { self.error(.missingField, "'\(head.string)' needs at least one address", head, file) }
        var result: [SocketAddress] = []
        for token in arguments {
            if let address = SocketAddress(token.string, defaultPort: defaultPort) {
                result.append(address)
            } else {
                let hint = defaultPort == nil ? "ADDRESS:PORT or [IPv6]:PORT" : "ADDRESS[:PORT] or [IPv6][:PORT]"
                self.error(.badAddress, "bad \(what) \(token.quotedForMessage) (\(hint))", token, file)
            }
        }
        return result
    }

    /// `upstream ADDRESS[:PORT]...`, each also `tls://ADDRESS[:PORT]@NAME` (DNS over TLS, port 853 by default,
    /// the certificate checked against NAME).
    mutating func upstreams(_ head: Token, _ arguments: [Token], file: String) -> [(
        address: SocketAddress, tlsName: String?
    )] {
        if arguments.isEmpty { self.error(.missingField, "'upstream' needs at least one address", head, file) }
        var result: [(SocketAddress, String?)] = []
        for token in arguments {
            let text = token.string
            guard text.hasPrefix("tls://") else {
                guard let address = SocketAddress(text, defaultPort: 53) else {
                    self.error(
                        .badAddress,
                        "bad upstream resolver \(token.quotedForMessage) (ADDRESS[:PORT] or [IPv6][:PORT], or "
                            + "tls://ADDRESS[:PORT]@NAME for DNS over TLS)", token, file)
                    continue
                }
                result.append((address, nil))
                continue
            }
            let rest = text.dropFirst(6)
            guard let at = rest.lastIndex(of: "@"), let address = SocketAddress(String(rest[..<at]), defaultPort: 853),
                let name = try? DomainName(String(rest[rest.index(after: at)...])),
                !rest[rest.index(after: at)...].isEmpty
            else {
                self.error(
                    .badAddress,
                    "bad DNS-over-TLS upstream \(token.quotedForMessage): tls://ADDRESS[:PORT]@NAME, NAME being what "
                        + "its certificate says (tls://9.9.9.9@dns.quad9.net)", token, file)
                continue
            }
            result.append((address, name.hostDescription))
        }
        return result
    }

    /// `listen dns|http|admin ADDRESS:PORT...`.
    mutating func listen(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard let kind = arguments.first else {
            return self.error(.missingField, "'listen' needs a service (dns, http, admin) and addresses", head, file)
        }
        // `listen SERVICE off` switches a service off (its default listeners are not applied).
        if arguments.count == 2 && arguments[1].string == "off" {
            guard ["dns", "http", "https", "admin"].contains(kind.string) else {
                return self.error(
                    .badSetting, "unknown service \(kind.quotedForMessage) (dns, http, https or admin)", kind, file)
            }
            settings.disabledServices.insert(kind.string)
            return
        }
        let addresses = self.addresses(
            kind, Array(arguments.dropFirst()), file: file, defaultPort: nil, what: "listen address")
        switch kind.string {
        case "dns": settings.dnsListeners += addresses
        case "http": settings.httpListeners += addresses
        case "https": settings.httpsListeners += addresses
        case "admin": settings.adminListeners += addresses
        default:
            self.error(.badSetting, "unknown service \(kind.quotedForMessage) (dns, http, https or admin)", kind, file)
        }
    }

    /// `tls DIRECTORY [default NAME]`: the certificates the HTTPS listeners serve.
    mutating func tls(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard let directory = arguments.first else {
            return self.error(
                .missingField, "'tls' needs a directory of NAME.crt and NAME.key pairs", head, file)
        }
        settings.tlsDirectory = joinPath(self.directory, directory.string)
        let rest = Array(arguments.dropFirst())
        guard !rest.isEmpty else { return }
        guard rest.count == 2, rest[0].string == "default" else {
            return self.error(
                .badSetting,
                "after the directory, 'tls' takes only 'default NAME' (the certificate for clients "
                    + "that send no name or an unknown one)", rest[0], file)
        }
        settings.tlsDefault = rest[1].string
    }

    /// `wan interface NAME | natpmp GATEWAY | dns NAME TYPE SERVER | http URL | policy first|agree=N | interval SECONDS`.
    mutating func wan(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard let kind = arguments.first else {
            return self.error(
                .missingField,
                "'wan' needs a source (interface, router, natpmp, pcp, upnp, dns, http) or policy/interval",
                head,
                file)
        }
        let rest = Array(arguments.dropFirst())
        let location = kind.location(in: file)
        switch kind.string {
        case "interface":
            guard let name = self.single(kind, rest, file: file, what: "an interface name") else { return }
            settings.wanSources.append(WANSource(kind: .interface(name: name.string), location: location))
        case "interface6":
            // `wan interface6 NAME [::IID]`: the interface's global IPv6 address, or its /64 prefix with a
            // fixed interface ID (the proxy's stable address when the ISP's prefix changes).
            guard let name = rest.first, rest.count <= 2 else {
                return self.error(
                    .missingField, "'wan interface6' needs NAME and optionally ::INTERFACE-ID", kind, file)
            }
            var suffix: IPv6Address? = nil
            if rest.count == 2 {
                guard let parsed = IPv6Address(rest[1].string), parsed.high == 0 else {
                    return self.error(
                        .badAddress, "bad interface ID \(rest[1].quotedForMessage) (like ::1234:5678)", rest[1], file)
                }
                suffix = parsed
            }
            settings.wanSources.append(
                WANSource(kind: .interface6(name: name.string, interfaceID: suffix), location: location))
        case "natpmp", "upnp", "pcp", "router":
            guard let gateway = self.single(kind, rest, file: file, what: "the router's address (or auto)") else {
                return
            }
            // `auto`: the default route's gateway (UPnP: the device a search on the LAN finds), kept as the
            // unspecified address, which no router has.
            guard let address = gateway.string == "auto" ? WANSource.auto : IPAddress(gateway.string),
                gateway.string == "auto" || !address.isUnspecified
            else {
                return self.error(
                    .badAddress, "bad gateway address \(gateway.quotedForMessage) (an address, or auto)", gateway, file)
            }
            let source: WANSource.Kind =
                switch kind.string {
                case "natpmp": .natPMP(gateway: address)
                case "upnp": .upnp(gateway: address)
                case "pcp": .pcp(gateway: address)
                default: .router(gateway: address)
                }
            settings.wanSources.append(WANSource(kind: source, location: location))
        case "dns":
            guard rest.count == 3 else {
                return self.error(
                    .missingField, "'wan dns' needs NAME TYPE SERVER, e.g. 'wan dns myip.example. A 192.0.2.53'", kind,
                    file)
            }
            guard let name = try? DomainName(rest[0].string) else {
                return self.error(.badName, "bad name \(rest[0].quotedForMessage)", rest[0], file)
            }
            guard let type = RecordType(mnemonic: rest[1].string), [.a, .aaaa, .txt].contains(type) else {
                return self.error(
                    .badSetting, "'wan dns' asks for A, AAAA or TXT, not \(rest[1].quotedForMessage)", rest[1], file)
            }
            guard let server = SocketAddress(rest[2].string, defaultPort: 53) else {
                return self.error(.badAddress, "bad server address \(rest[2].quotedForMessage)", rest[2], file)
            }
            settings.wanSources.append(
                WANSource(kind: .dns(name: name, type: type, server: server), location: location))
        case "http":
            guard let url = self.single(kind, rest, file: file, what: "a URL") else { return }
            guard url.string.hasPrefix("http://") || url.string.hasPrefix("https://") else {
                return self.error(.badSetting, "WAN echo URL must start with http:// or https://", url, file)
            }
            settings.wanSources.append(WANSource(kind: .http(url: url.string), location: location))
        case "policy":
            guard let value = self.single(kind, rest, file: file, what: "'first' or 'agree=N'") else { return }
            if value.string == "first" {
                settings.wanPolicy = .firstAnswer
            } else if value.string.hasPrefix("agree="), let count = Int(value.string.dropFirst(6)), count >= 1 {
                settings.wanPolicy = .agreement(count)
            } else {
                self.error(.badSetting, "bad WAN policy \(value.quotedForMessage) ('first' or 'agree=N')", value, file)
            }
        case "interval":
            guard let value = self.single(kind, rest, file: file, what: "a duration") else { return }
            guard let seconds = TTLText.parse(value), seconds >= 2 else {
                return self.error(
                    .badSetting, "bad WAN poll interval \(value.quotedForMessage) (at least 2s)", value, file)
            }
            settings.wanInterval = seconds
        case "confirm":
            guard let value = self.single(kind, rest, file: file, what: "a duration") else { return }
            guard let seconds = TTLText.parse(value) else {
                return self.error(.badSetting, "bad WAN confirmation time \(value.quotedForMessage)", value, file)
            }
            settings.wanConfirmation = seconds
        case "grace":
            guard let value = self.single(kind, rest, file: file, what: "a duration or 'forever'") else { return }
            if value.string == "forever" {
                settings.wanGrace = nil
            } else if let seconds = TTLText.parse(value) {
                settings.wanGrace = seconds
            } else {
                return self.error(
                    .badSetting, "bad WAN grace period \(value.quotedForMessage) (like 1d or 'forever')", value, file)
            }
        case "test-addresses":
            guard rest.isEmpty else {
                return self.error(.badSetting, "'wan test-addresses' takes no value", rest[0], file)
            }
            settings.wanAcceptDocumentation = true
        default:
            self.error(
                .badSetting,
                "unknown WAN setting \(kind.quotedForMessage) (interface, interface6, router, natpmp, pcp, upnp, dns, http, policy, interval, confirm, grace, test-addresses)",
                kind,
                file)
        }
    }

    /// `provider NAME KIND key=value...`, checking that secrets exist and are private.
    mutating func provider(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard arguments.count >= 2 else {
            return self.error(
                .missingField, "'provider' needs a name, a kind (rfc2136, dyndns2, cloudflare) and options", head, file)
        }
        let nameToken = arguments[0]
        let kindToken = arguments[1]
        var options: [String: (String, Token)] = [:]
        for token in arguments.dropFirst(2) {
            let text = token.string
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                self.error(.badOption, "expected key=value, found \(token.quotedForMessage)", token, file)
                continue
            }
            options[String(text[..<equals])] = (String(text[text.index(after: equals)...]), token)
        }
        if settings.providers.contains(where: { $0.name == nameToken.string }) {
            return self.error(.duplicateProvider, "provider '\(nameToken.string)' is defined twice", nameToken, file)
        }
        let required: [String]
        switch kindToken.string {
        case "rfc2136": required = ["server", "zone", "record", "key"]
        case "dyndns2": required = ["url", "hostname", "username", "password-file"]
        case "cloudflare": required = ["zone-id", "record", "token-file"]
        default:
            return self.error(
                .badSetting, "unknown provider kind \(kindToken.quotedForMessage) (rfc2136, dyndns2, cloudflare)",
                kindToken, file)
        }
        let allowed = required + ["refresh"]
        for (key, (_, token)) in options where !allowed.contains(key) {
            self.error(
                .badOption, "unknown \(kindToken.string) option '\(key)' (\(allowed.joined(separator: ", ")))", token,
                file)
        }
        var refresh = Provider.defaultRefresh
        if let (text, token) = options["refresh"] {
            let durationToken = Token(
                text: Array(text.utf8), quoted: false, line: token.line, column: token.column + 8)
            guard let seconds = TTLText.parse(durationToken), seconds >= 1 else {
                return self.error(
                    .badOption, "refresh='\(text)': a duration (like 25d or 12h; the default is 25d)", token, file)
            }
            refresh = seconds
        }
        var missing = false
        var values: [String: String] = [:]
        for key in required {
            if let (value, _) = options[key], !value.isEmpty {
                values[key] = value
            } else {
                missing = true
                self.error(
                    .missingField, "\(kindToken.string) provider '\(nameToken.string)' needs \(key)=", kindToken, file)
            }
        }
        guard !missing else { return }
        let kind: Provider.Kind
        switch kindToken.string {
        case "rfc2136":
            guard let server = SocketAddress(values["server", default: ""], defaultPort: 53) else {
                return self.error(
                    .badAddress, "bad server address '\(values["server", default: ""])'",
                    options["server"]?.1 ?? kindToken, file)
            }
            guard let zone = try? DomainName(values["zone", default: ""]),
                let record = try? DomainName(values["record", default: ""])
            else {
                return self.error(.badName, "bad zone= or record= name", kindToken, file)
            }
            kind = .rfc2136(
                server: server, zone: zone, record: record,
                keyFile: joinPath(self.directory, values["key", default: ""]))
        case "dyndns2":
            let url = values["url", default: ""]
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                return self.error(
                    .badSetting, "dyndns2 url must start with https:// (or http://)", options["url"]?.1 ?? kindToken,
                    file)
            }
            kind = .dyndns2(
                url: url, hostname: values["hostname", default: ""], username: values["username", default: ""],
                passwordFile: joinPath(self.directory, values["password-file", default: ""]))
        default:
            kind = .cloudflare(
                zoneID: values["zone-id", default: ""], record: values["record", default: ""],
                tokenFile: joinPath(self.directory, values["token-file", default: ""]))
        }
        var provider = Provider(name: nameToken.string, kind: kind, location: nameToken.location(in: file))
        provider.refresh = refresh
        for secret in provider.secretFiles {
            self.checkSecret(secret, token: kindToken, file: file)
        }
        settings.providers.append(provider)
    }

    /// `secondary NAME ADDRESS[:PORT] view=VIEW [key=FILE] [notify=yes|no]`.
    mutating func secondary(_ head: Token, _ arguments: [Token], file: String, into settings: inout Settings) {
        guard arguments.count >= 2 else {
            return self.error(
                .missingField, "'secondary' needs a name, an address and view=VIEW (key=FILE to sign with TSIG)", head,
                file)
        }
        let nameToken = arguments[0]
        if settings.secondaries.contains(where: { $0.name == nameToken.string }) {
            return self.error(.badSecondary, "secondary '\(nameToken.string)' is defined twice", nameToken, file)
        }
        guard let address = SocketAddress(arguments[1].string, defaultPort: 53) else {
            return self.error(
                .badAddress, "secondary '\(nameToken.string)': \(arguments[1].quotedForMessage) is not an address",
                arguments[1], file)
        }
        var view: String?
        var keyFile: String?
        var key: TSIGKey?
        var notify = true
        for token in arguments.dropFirst(2) {
            let text = token.string
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                self.error(.badOption, "expected key=value, found \(token.quotedForMessage)", token, file)
                continue
            }
            let value = String(text[text.index(after: equals)...])
            switch text[..<equals] {
            case "view": view = value
            case "notify":
                guard value == "yes" || value == "no" else {
                    self.error(.badOption, "notify=\(value): yes or no", token, file)
                    continue
                }
                notify = value == "yes"
            case "key":
                let path = joinPath(self.directory, value)
                keyFile = path
                let before = self.diagnostics.errors.count
                self.checkSecret(path, token: token, file: file)
                guard self.diagnostics.errors.count == before,
                    case .success(let bytes) = self.files.read(SecretFiles.resolve(path, files: self.files))
                else { continue }
                do {
                    key = try TSIGKey.parse(bindKeyFile: String(decoding: bytes, as: UTF8.self))
                } catch {
                    self.error(
                        .badSecondary, "secondary '\(nameToken.string)': key file \(path): \(error)", token, file)
                }
            default:
                self.error(
                    .badOption, "unknown secondary option \(token.quotedForMessage) (view, key, notify)", token, file)
            }
        }
        guard let view else {
            return self.error(
                .missingField, "secondary '\(nameToken.string)' needs view=VIEW: the view whose zones it copies",
                nameToken, file)
        }
        settings.secondaries.append(
            Secondary(
                name: nameToken.string, address: address, view: view, keyFile: keyFile, key: key, notify: notify,
                location: nameToken.location(in: file)))
    }

    /// Each secondary names a view that exists; a key or a keyless address picks one view only.
    mutating func checkSecondaries(_ secondaries: [Secondary], views: [ViewDefinition]) {
        for (index, secondary) in secondaries.enumerated() {
            if !views.contains(where: { $0.name == secondary.view }) {
                self.diagnostics.append(
                    Diagnostic(
                        .unknownView,
                        "secondary '\(secondary.name)': no view '\(secondary.view)' (views: \(views.map(\.name).joined(separator: ", ")))",
                        at: secondary.location))
            }
            for other in secondaries[..<index] {
                if let key = secondary.key, let otherKey = other.key, key.name == otherKey.name,
                    other.view != secondary.view || key != otherKey
                {
                    self.diagnostics.append(
                        Diagnostic(
                            .badSecondary,
                            "secondaries '\(other.name)' and '\(secondary.name)' use key \(key.name) with different "
                                + "views or secrets: a key picks one view; give each view its own key",
                            at: secondary.location))
                }
                if secondary.key == nil, other.key == nil, secondary.address.address == other.address.address,
                    other.view != secondary.view
                {
                    self.diagnostics.append(
                        Diagnostic(
                            .badSecondary,
                            "secondaries '\(other.name)' and '\(secondary.name)' share the address "
                                + "\(secondary.address.address) without keys but copy different views: give them keys",
                            at: secondary.location))
                }
            }
        }
    }

    /// A secret must exist and be unreadable to group and others, as ssh insists for keys.
    /// A secret must be a readable, non-empty file, read from systemd's credential directory when it holds
    /// one of that name (see SecretFiles).
    mutating func checkSecret(_ configured: String, token: Token, file: String) {
        let path = SecretFiles.resolve(configured, files: self.files)
        guard let mode = self.files.mode(path) else {
            return self.error(.secretMissing, "secret file '\(path)' does not exist", token, file)
        }
        switch self.files.read(path) {
        case .failure(let problem) where problem.description == "is a directory":
            return self.error(
                .secretMissing, "secret file '\(path)' is a directory; name the file that holds the secret", token,
                file)
        case .failure(let problem):
            return self.error(
                .secretMissing,
                "secret file '\(path)' cannot be read: \(problem) (under systemd, give it to the service with "
                    + "LoadCredential=\(configured.split(separator: "/").last ?? ""):\(path); see deploy/)", token, file
            )
        case .success(let bytes) where bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }):
            return self.error(.secretMissing, "secret file '\(path)' is empty", token, file)
        case .success:
            break
        }
        if mode & 0o077 != 0 {
            self.error(
                .secretExposed,
                "secret file '\(path)' is readable by others (mode \(String(mode, radix: 8))); run chmod 600 on it",
                token, file)
        }
    }
}
