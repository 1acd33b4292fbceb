import Files
import ZoneModel

/// Parses one zone file (RFC 1035 §5 plus `$PROXY`, `$SITE` and `$VIEW`) into a `ZoneSource`.
///
/// It reports every problem it finds and keeps going: a bad line is skipped, the rest still parses.
package struct ZoneParser {
    let files: any SourceFiles
    /// `$INCLUDE` may only name files inside this directory (after resolving links).
    let root: String
    /// View names from the config, for checking `$VIEW`, `views=` and `$PROXY` keys.
    let viewNames: [String]
    package var diagnostics = Diagnostics()

    /// The `$INCLUDE` nesting limit, a guard against includes that recurse through different names.
    static let maximumIncludeDepth = 16

    package init(files: any SourceFiles, root: String, viewNames: [String]) {
        self.files = files
        self.root = root
        self.viewNames = viewNames
    }

    /// Where the parser stands: what RFC 1035 §5.1 carries from line to line.
    struct State {
        var file: String
        var origin: DomainName?
        var defaultTTL: UInt32?
        var lastTTL: UInt32?
        var lastOwner: DomainName?
        var scope: ViewScope = .all
        var includeStack: [String] = []
    }

    /// Parses the zone file at `path` (as the user should see it) for the zone `apex`.
    package mutating func parse(path: String, apex: DomainName) -> ZoneSource {
        var zone = ZoneSource(apex: apex, file: path)
        var state = State(file: path, origin: apex)
        switch self.files.read(path) {
        case .success(let bytes):
            state.includeStack = [self.files.resolve(path) ?? path]
            self.parse(bytes: bytes, state: &state, zone: &zone)
        case .failure(let problem):
            self.diagnostics.append(
                Diagnostic(
                    .fileUnreadable, "cannot read zone file: \(problem)",
                    at: SourceLocation(file: path, line: 1, column: 1)))
        }
        zone.defaultTTL = state.defaultTTL ?? zone.defaultTTL
        return zone
    }

    /// Parses text that is already in memory (tests, `export` round trips).
    package mutating func parse(text: String, file: String, apex: DomainName) -> ZoneSource {
        var zone = ZoneSource(apex: apex, file: file)
        var state = State(file: file, origin: apex)
        self.parse(bytes: Array(text.utf8), state: &state, zone: &zone)
        zone.defaultTTL = state.defaultTTL ?? zone.defaultTTL
        return zone
    }

    mutating func parse(bytes: [UInt8], state: inout State, zone: inout ZoneSource) {
        var lexer = Lexer(bytes: bytes, file: state.file)
        while let entry = lexer.next(diagnostics: &self.diagnostics) {
            guard !entry.damaged else { continue }
            if !entry.ownerOmitted, let first = entry.tokens.first, !first.quoted, first.text.first == UInt8(ascii: "$")
            {
                self.directive(entry, state: &state, zone: &zone)
            } else {
                self.record(entry, state: &state, zone: &zone)
            }
        }
    }

    func location(_ token: Token, _ state: State) -> SourceLocation { token.location(in: state.file) }

    mutating func error(_ code: DiagnosticCode, _ message: String, _ token: Token, _ state: State) {
        self.diagnostics.append(Diagnostic(code, message, at: self.location(token, state)))
    }

    // MARK: Directives

    mutating func directive(_ entry: Entry, state: inout State, zone: inout ZoneSource) {
        let head = entry.tokens[0]
        let arguments = entry.tokens.dropFirst()
        switch head.string.uppercased() {
        case "$ORIGIN":
            guard let nameToken = arguments.first else {
                return self.error(.missingField, "$ORIGIN needs a domain name", head, state)
            }
            guard let name = self.name(nameToken, state: state) else { return }
            state.origin = name
            self.expectEnd(arguments.dropFirst(), after: "$ORIGIN", state: state)
        case "$TTL":
            guard let ttlToken = arguments.first else {
                return self.error(.missingField, "$TTL needs a value", head, state)
            }
            guard let ttl = self.ttl(ttlToken, state: state) else { return }
            state.defaultTTL = ttl
            self.expectEnd(arguments.dropFirst(), after: "$TTL", state: state)
        case "$INCLUDE":
            self.include(head, arguments, state: &state, zone: &zone)
        case "$VIEW":
            self.view(head, arguments, state: &state)
        case "$PROXY":
            self.proxy(head, arguments, state: state, zone: &zone)
        case "$SITE":
            self.site(head, arguments, state: &state, zone: &zone)
        case "$GENERATE":
            self.error(
                .unknownDirective, "$GENERATE is a BIND extension Frontdoor does not take; write the records out", head,
                state)
        default:
            self.error(
                .unknownDirective,
                "unknown directive \(head.quotedForMessage) (known: $ORIGIN, $TTL, $INCLUDE, $VIEW, $PROXY, $SITE)",
                head, state)
        }
    }

    mutating func expectEnd(_ rest: ArraySlice<Token>, after what: String, state: State) {
        if let extra = rest.first {
            self.error(.unexpectedToken, "unexpected \(extra.quotedForMessage) after \(what)", extra, state)
        }
    }

    mutating func include(_ head: Token, _ arguments: ArraySlice<Token>, state: inout State, zone: inout ZoneSource) {
        guard let fileToken = arguments.first else {
            return self.error(.missingField, "$INCLUDE needs a file name", head, state)
        }
        let relative: String
        do {
            relative = String(decoding: try Unescape.bytes(fileToken, file: state.file), as: UTF8.self)
        } catch {
            return self.diagnostics.append(error)
        }
        var origin = state.origin
        if let originToken = arguments.dropFirst().first {
            guard let name = self.name(originToken, state: state) else { return }
            origin = name
            self.expectEnd(arguments.dropFirst(2), after: "$INCLUDE", state: state)
        }
        let path = joinPath(self.root, relative)
        let rootResolved = self.files.resolve(self.root) ?? normalisePath(self.root)
        let inside = { (candidate: String) in
            candidate.hasPrefix(rootResolved.hasSuffix("/") ? rootResolved : rootResolved + "/")
        }
        // Check the path as written first (`..`), then where its links lead.
        guard inside(normalisePath(joinPath(rootResolved, relative))) else {
            return self.error(
                .includeOutsideDirectory,
                "$INCLUDE \(fileToken.quotedForMessage) leaves the zones directory; only files inside it may be included",
                fileToken, state)
        }
        guard let resolved = self.files.resolve(path) else {
            return self.error(
                .fileUnreadable, "cannot read included file \(fileToken.quotedForMessage): no such file", fileToken,
                state)
        }
        guard inside(resolved) else {
            return self.error(
                .includeOutsideDirectory,
                "$INCLUDE \(fileToken.quotedForMessage) leads outside the zones directory through a link",
                fileToken, state)
        }
        guard !state.includeStack.contains(resolved), state.includeStack.count < ZoneParser.maximumIncludeDepth else {
            return self.error(.includeLoop, "$INCLUDE \(fileToken.quotedForMessage) includes itself", fileToken, state)
        }
        switch self.files.read(path) {
        case .failure(let problem):
            self.error(
                .fileUnreadable, "cannot read included file \(fileToken.quotedForMessage): \(problem)", fileToken, state
            )
        case .success(let bytes):
            // RFC 1035 §5.1: the included file starts at the given origin; ours is unchanged after it.
            var inner = state
            inner.file = path
            inner.origin = origin
            inner.includeStack.append(resolved)
            self.parse(bytes: bytes, state: &inner, zone: &zone)
            state.lastOwner = inner.lastOwner
            state.lastTTL = inner.lastTTL
        }
    }

    mutating func view(_ head: Token, _ arguments: ArraySlice<Token>, state: inout State) {
        guard let token = arguments.first else {
            return self.error(
                .missingField, "$VIEW needs a view name, a comma-separated list, or '*' for every view", head, state)
        }
        self.expectEnd(arguments.dropFirst(), after: "$VIEW", state: state)
        if token.string == "*" {
            state.scope = .all
            return
        }
        if let names = self.viewList(token, state: state) { state.scope = .only(names) }
    }

    /// `lan,wan` → the set, each name checked against the config.
    mutating func viewList(_ token: Token, state: State) -> Set<String>? {
        var names: Set<String> = []
        var ok = true
        for part in token.string.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part)
            if self.viewNames.contains(name) {
                names.insert(name)
            } else {
                ok = false
                self.error(
                    .unknownView, "unknown view '\(name)' (defined: \(self.viewNames.joined(separator: ", ")))", token,
                    state)
            }
        }
        return ok ? names : nil
    }

    mutating func proxy(_ head: Token, _ arguments: ArraySlice<Token>, state: State, zone: inout ZoneSource) {
        guard let nameToken = arguments.first else {
            return self.error(.missingField, "$PROXY needs a name and view=address pairs", head, state)
        }
        guard let name = self.name(nameToken, state: state) else { return }
        if let existing = zone.proxy {
            return self.error(
                .duplicateProxy, "second $PROXY in zone \(zone.apex); the first is at \(existing.location)", head, state
            )
        }
        var addresses: [String: [ProxyAddress]] = [:]
        var ttl = state.defaultTTL ?? zone.defaultTTL
        for token in arguments.dropFirst() {
            guard let (key, value) = self.option(token, state: state) else { continue }
            if key == "ttl" {
                if let value = self.ttl(
                    Token(text: Array(value.utf8), quoted: false, line: token.line, column: token.column), state: state)
                {
                    ttl = value
                }
                continue
            }
            guard self.viewNames.contains(key) else {
                self.error(
                    .unknownView,
                    "unknown view '\(key)' in $PROXY (defined: \(self.viewNames.joined(separator: ", ")))",
                    token, state)
                continue
            }
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                switch part {
                case "auto": addresses[key, default: []].append(.autoV4)
                case "auto6": addresses[key, default: []].append(.autoV6)
                default:
                    if let address = IPAddress(part) {
                        addresses[key, default: []].append(.fixed(address))
                    } else if BackendName.valid(String(part)),
                        let target = try? DomainName(part.hasSuffix(".") ? String(part) : part + ".")
                    {
                        // A name kept elsewhere (a DynDNS service's): the proxy is a CNAME to it in this view.
                        addresses[key, default: []].append(.name(target))
                    } else {
                        self.error(
                            .badAddress,
                            "bad address '\(part)' for view '\(key)' (an IP address, 'auto', 'auto6', or a host name "
                                + "such as your DynDNS name)", token, state)
                    }
                }
            }
            if let list = addresses[key], list.count > 1,
                list.contains(where: { if case .name = $0 { true } else { false } })
            {
                self.error(
                    .badAddress,
                    "view '\(key)' of $PROXY names a host and something else: the proxy is then a CNAME, which "
                        + "cannot sit beside other data; give the name alone", token, state)
                addresses[key] = nil
            }
        }
        if addresses.isEmpty {
            self.error(.missingField, "$PROXY \(nameToken.quotedForMessage) has no view=address pair", head, state)
        }
        zone.proxy = ProxyRecord(name: name, addresses: addresses, ttl: ttl, location: self.location(head, state))
    }

    mutating func site(_ head: Token, _ arguments: ArraySlice<Token>, state: inout State, zone: inout ZoneSource) {
        guard let nameToken = arguments.first else {
            return self.error(.missingField, "$SITE needs a host name and at least one backend", head, state)
        }
        guard let name = self.name(nameToken, state: state) else { return }
        var site = Site(
            name: name, backends: [], ttl: state.defaultTTL ?? zone.defaultTTL, location: self.location(head, state))
        var ok = true
        for token in arguments.dropFirst() {
            let text = token.string
            if text.contains("://") {
                if let backend = self.backend(token, state: state) { site.backends.append(backend) } else { ok = false }
                continue
            }
            if !text.contains("="),
                SocketAddress(text) != nil || IPAddress(text) != nil
                    || (text.contains(":") && BackendName.valid(String(text.prefix { $0 != ":" })))
            {
                ok = false
                self.error(
                    .badBackend,
                    "backend \(token.quotedForMessage) needs a scheme: http://\(text) (or https://, tls-passthrough://)",
                    token, state)
                continue
            }
            guard let (key, value) = self.option(token, state: state) else {
                ok = false
                continue
            }
            switch key {
            case "balance":
                guard let policy = BalancePolicy(rawValue: value) else {
                    ok = false
                    self.error(
                        .badOption, "unknown balance '\(value)' (round-robin, least-conn or first)", token, state)
                    continue
                }
                site.balance = policy
            case "health":
                guard value.hasPrefix("/"),
                    !value.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 0x21 || $0 == 0x7F } ?? false })
                else {
                    ok = false
                    self.error(.badOption, "health check path must start with '/' and contain no spaces", token, state)
                    continue
                }
                site.healthPath = value
            case "views":
                let viewToken = Token(
                    text: Array(value.utf8), quoted: false, line: token.line, column: token.column + 6)
                if let names = self.viewList(viewToken, state: state) { site.scope = .only(names) } else { ok = false }
            case "ttl":
                let ttlToken = Token(text: Array(value.utf8), quoted: false, line: token.line, column: token.column + 4)
                if let ttl = self.ttl(ttlToken, state: state) { site.ttl = ttl } else { ok = false }
            case "proxy":
                let proxyToken = Token(
                    text: Array(value.utf8), quoted: false, line: token.line, column: token.column + 6)
                if let proxy = self.name(proxyToken, state: state) { site.proxyName = proxy } else { ok = false }
            case "https":
                switch value {
                case "redirect": site.httpsRedirect = true
                case "off": site.httpsRedirect = false
                default:
                    ok = false
                    self.error(
                        .badOption,
                        "https='\(value)': 'redirect' (plain HTTP gets a 308 to https once a certificate covers the "
                            + "site; the default) or 'off' (plain HTTP is served as is)", token, state)
                }
            case "proxy-protocol":
                switch value {
                case "v2": site.proxyProtocol = true
                case "off": site.proxyProtocol = false
                default:
                    ok = false
                    self.error(
                        .badOption,
                        "proxy-protocol='\(value)': 'v2' (a PROXY v2 header to passthrough backends) or 'off'",
                        token, state)
                }
            case "tls-verify":
                switch value {
                case "on": site.backendTLS.verify = true
                case "off": site.backendTLS.verify = false
                default:
                    ok = false
                    self.error(
                        .badOption,
                        "tls-verify='\(value)': 'on' (the https:// backends' certificates are checked; the default) or "
                            + "'off' (any certificate is accepted, as for an appliance's self-signed one)", token, state
                    )
                }
            case "ca":
                guard !value.isEmpty else {
                    ok = false
                    self.error(
                        .badOption, "ca= needs a PEM file of the CAs the https:// backends chain to", token, state)
                    continue
                }
                site.backendTLS.caFile = joinPath(self.root, value)
            case "tls-name":
                // As written, never completed with $ORIGIN: it is the backend's own name (often a .lan one).
                let absolute = value.hasSuffix(".") ? value : value + "."
                if let name = try? DomainName(absolute), !name.isRoot, !name.isWildcard {
                    site.backendTLS.serverName = name.hostDescription
                } else {
                    ok = false
                    self.error(
                        .badOption, "tls-name='\(value)': the host name the https:// backends' certificates carry",
                        token, state)
                }
            case "hsts":
                let hstsToken = Token(
                    text: Array(value.utf8), quoted: false, line: token.line, column: token.column + 5)
                if let seconds = TTLText.parse(hstsToken) {
                    site.hstsMaxAge = seconds
                } else {
                    ok = false
                    self.error(
                        .badOption, "hsts='\(value)': a duration (seconds, or units like 52w or 180d)", token, state)
                }
            default:
                ok = false
                self.error(
                    .badOption,
                    "unknown $SITE option '\(key)' (balance, health, views, ttl, proxy, https, hsts, proxy-protocol, "
                        + "tls-verify, ca, tls-name)",
                    token, state)
            }
        }
        let passthrough = site.backends.filter(\.passthrough).count
        if passthrough > 0 && passthrough < site.backends.count {
            self.error(
                .badBackend,
                "$SITE \(nameToken.quotedForMessage) mixes HTTP (http://, https://) and tls-passthrough:// backends",
                head,
                state)
            ok = false
        }
        if passthrough > 0 && site.healthPath != nil {
            self.error(
                .badOption, "health= checks speak HTTP; a tls-passthrough:// site cannot have them", head, state)
            ok = false
        }
        if !site.backends.contains(where: \.tls) && site.backendTLS != BackendTLS() {
            self.error(.badOption, "tls-verify=, ca= and tls-name= apply to https:// backends only", head, state)
            ok = false
        }
        if !site.backendTLS.verify && site.backendTLS.caFile != nil {
            self.error(.badOption, "ca= has no use with tls-verify=off (nothing is checked)", head, state)
            ok = false
        }
        if passthrough == 0 && site.proxyProtocol {
            self.error(.badOption, "proxy-protocol= applies to tls-passthrough:// backends only", head, state)
            ok = false
        }
        if site.backends.isEmpty && ok {
            self.error(
                .missingField, "$SITE \(nameToken.quotedForMessage) has no backend (http://ADDRESS:PORT)", head, state)
            ok = false
        }
        if ok { zone.sites.append(site) }
    }

    /// `key=value`; reports a token without `=`.
    mutating func option(_ token: Token, state: State) -> (String, String)? {
        let text = token.string
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            self.error(.badOption, "expected key=value, found \(token.quotedForMessage)", token, state)
            return nil
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// `http://ADDRESS[:PORT][/]`, `https://…`, `tls-passthrough://…`; names, paths and other schemes are
    /// refused with the reason.
    mutating func backend(_ token: Token, state: State) -> Backend? {
        var text = token.string
        let scheme = String(text.prefix { $0 != ":" })
        let passthrough = scheme == "tls-passthrough"
        let tls = scheme == "https"
        guard scheme == "http" || tls || passthrough else {
            self.error(
                .badBackend,
                "backend scheme '\(scheme)' is not supported; use http://ADDRESS:PORT, https://ADDRESS:PORT (TLS to the "
                    + "backend) or tls-passthrough://ADDRESS:PORT (the client's TLS relayed as it is)", token, state)
            return nil
        }
        text.removeFirst(scheme.count + 3)
        if text.hasSuffix("/") { text.removeLast() }
        guard !text.contains("/") else {
            self.error(.badBackend, "backend \(token.quotedForMessage) may not carry a path", token, state)
            return nil
        }
        let defaultPort: UInt16 = passthrough || tls ? 443 : 80
        if let address = SocketAddress(text, defaultPort: defaultPort) {
            return Backend(address: address, passthrough: passthrough, tls: tls)
        }
        let hostOnly = text.hasPrefix("[") ? text : String(text.prefix { $0 != ":" })
        let portText = text.hasPrefix("[") ? nil : text.firstIndex(of: ":").map { text[text.index(after: $0)...] }
        let port = portText.map { UInt16($0).flatMap { $0 == 0 ? nil : $0 } } ?? defaultPort
        if IPAddress(hostOnly.trimmingBrackets) != nil || (BackendName.valid(hostOnly) && port == nil) {
            self.error(.badPort, "bad port in backend \(token.quotedForMessage) (1-65535)", token, state)
            return nil
        }
        guard let port, BackendName.valid(hostOnly) else {
            self.error(
                .badBackend,
                "backend host '\(hostOnly)' is neither an IP address nor a host name (letters, digits, '-' and '.')",
                token, state)
            return nil
        }
        // Resolved by the proxy (its zones, then its upstreams) when it runs; until then, no address.
        return Backend(
            address: SocketAddress(address: .v4(IPv4Address(0)), port: port), passthrough: passthrough, tls: tls,
            host: BackendName.normalised(hostOnly))
    }

    // MARK: Records

    mutating func record(_ entry: Entry, state: inout State, zone: inout ZoneSource) {
        var tokens = entry.tokens[...]
        let ownerToken: Token
        let owner: DomainName
        if entry.ownerOmitted {
            ownerToken = tokens[tokens.startIndex]
            guard let last = state.lastOwner else {
                return self.error(.missingField, "record has no owner and there is no previous one", ownerToken, state)
            }
            owner = last
        } else {
            ownerToken = tokens.removeFirst()
            guard let name = self.name(ownerToken, state: state) else { return }
            owner = name
            state.lastOwner = name
        }
        var ttl: UInt32? = nil
        var sawClass = false
        var typeToken: Token? = nil
        while let token = tokens.popFirst() {
            // No type or class starts with a digit: such a token can only be a TTL, good or bad.
            if !token.quoted, ttl == nil, let first = token.text.first, first >= 48 && first <= 57 {
                guard let value = self.ttl(token, state: state) else { return }
                ttl = value
                continue
            }
            if !sawClass, token.matches("IN") {
                sawClass = true
                continue
            }
            if !sawClass,
                ["CH", "HS", "CS", "NONE"].contains(where: token.matches)
                    || token.string.uppercased().hasPrefix("CLASS")
            {
                return self.error(
                    .unsupportedClass, "class \(token.quotedForMessage) is not served; Frontdoor serves class IN only",
                    token, state)
            }
            typeToken = token
            break
        }
        guard let typeToken else {
            return self.error(.missingField, "record for \(owner) has no type", ownerToken, state)
        }
        // DNAME is refused outright, in any form: served as plain data it would answer as if it were not there
        // for every name below it, and its CNAME synthesis (RFC 6672) does not fit answers compiled ahead.
        if typeToken.string.uppercased() == "DNAME" || typeToken.string.uppercased() == "TYPE39" {
            return self.error(
                .unknownRecordType,
                "DNAME is not served: Frontdoor does not synthesise CNAMEs from it (RFC 6672); write a CNAME per "
                    + "name, or a wildcard CNAME (*.old CNAME new.example.)", typeToken, state)
        }
        guard let type = RecordType(mnemonic: typeToken.string), !typeToken.quoted else {
            if RecordType.isGenericOnly(typeToken.string) {
                return self.error(
                    .unknownRecordType,
                    "record type \(typeToken.quotedForMessage) is only taken in RFC 3597 form here: TYPEnnn \\# LENGTH HEX",
                    typeToken, state)
            }
            return self.error(.unknownRecordType, "unknown record type \(typeToken.quotedForMessage)", typeToken, state)
        }
        guard ![.any, .axfr, .ixfr, .opt].contains(type) else {
            return self.error(
                .unknownRecordType, "\(type) is a query type and cannot appear in zone data", typeToken, state)
        }
        let parser = RDataParser(file: state.file, origin: state.origin, owner: typeToken)
        let data: RData
        do {
            data = try parser.parse(type, tokens)
        } catch {
            return self.diagnostics.append(error)
        }
        let explicit = ttl != nil
        var effectiveTTL: UInt32
        if let ttl {
            effectiveTTL = ttl
        } else if let defaultTTL = state.defaultTTL {
            effectiveTTL = defaultTTL
        } else if let last = state.lastTTL {
            effectiveTTL = last
        } else if case .soa(let soa) = data {
            // RFC 1035 files before $TTL: the SOA's own minimum was the default.
            effectiveTTL = soa.minimum
        } else {
            effectiveTTL = zone.defaultTTL
            self.diagnostics.append(
                .warning(
                    .badTTL, "no TTL on this record and no $TTL before it; using \(effectiveTTL)",
                    at: self.location(ownerToken, state)))
        }
        if explicit { state.lastTTL = effectiveTTL }
        if effectiveTTL > UInt32(TTLText.maximum) { effectiveTTL = UInt32(TTLText.maximum) }
        let record = Record(owner: owner, type: type, ttl: effectiveTTL, data: data)
        if record.data.wire.count > 65535 {
            return self.error(.rdataTooLong, "record data is longer than 65535 octets", typeToken, state)
        }
        zone.records.append(
            SourceRecord(
                record: record, scope: state.scope, location: self.location(ownerToken, state), explicitTTL: explicit))
    }

    // MARK: Fields

    mutating func name(_ token: Token, state: State) -> DomainName? {
        guard !token.quoted else {
            self.error(.badName, "a domain name may not be quoted: \(token.quotedForMessage)", token, state)
            return nil
        }
        do {
            return try DomainName(parsing: token.text, origin: state.origin)
        } catch .relativeWithoutOrigin {
            self.error(.noOrigin, "relative name \(token.quotedForMessage) with no $ORIGIN in force", token, state)
        } catch {
            self.error(.badName, "bad name \(token.quotedForMessage): \(error)", token, state)
        }
        return nil
    }

    mutating func ttl(_ token: Token, state: State) -> UInt32? {
        if let value = TTLText.parse(token) { return value }
        if !token.quoted, TTLText.looksLikeTTL(token.text) {
            self.error(.badTTL, "TTL \(token.quotedForMessage) exceeds 2147483647 seconds (RFC 2181 §8)", token, state)
        } else {
            self.error(.badTTL, "bad TTL \(token.quotedForMessage) (seconds, or units like 1h30m)", token, state)
        }
        return nil
    }
}

extension String {
    var trimmingBrackets: String {
        var text = self
        if text.hasPrefix("[") { text.removeFirst() }
        if let close = text.firstIndex(of: "]") { text = String(text[..<close]) }
        return text
    }
}
