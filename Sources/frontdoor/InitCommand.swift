import DynDNS
import Files
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// `frontdoor init DIR`: a first model from what this machine can tell (its LAN address and prefix from the
/// interface of the default route, the router from the route's gateway) and what the flags say. Writes a
/// commented frontdoor.conf and DOMAIN.zone that `check` accepts, and says what to do next. Never overwrites.
enum InitCommand {
    static let help = """
        usage: frontdoor init DIR --domain NAME [--site NAME=URL]... [--provider 'NAME KIND OPTION=VALUE...']...
                                  [--lan ADDRESS/PREFIX] [--router ADDRESS]

        Writes a first model into DIR (made if missing): frontdoor.conf and NAME.zone. It finds this machine's
        LAN address and prefix (the interface of the default route) and the router (the route's gateway),
        which it uses as the upstream resolver and asks for the WAN address over NAT-PMP; --lan and --router
        say them instead. --site adds a site (repeatable), e.g. --site jellyfin=http://192.168.1.20:8096.
        --provider adds a DynDNS provider line as frontdoor.conf writes it (repeatable), e.g.
        --provider 'home dyndns2 url=https://dyn.example.net/nic/update hostname=h.example.net username=me
        password-file=dyndns.secret' (put the secret in that file, chmod 600).
        Refuses to overwrite a file that exists. Then: frontdoor check DIR, and the steps it prints.
        """

    /// What the machine said about its network.
    struct Network: Equatable {
        var address: IPv4Address
        var prefix: CIDR
        var router: IPv4Address?
        var interface: String
    }

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(
            words, valued: ["--domain", "--site", "--provider", "--lan", "--router"], boolean: [])
        guard arguments.positional.count == 1, let directory = arguments.positional.first else {
            throw UsageError(message: "init takes one directory")
        }
        guard let domainText = arguments.value("--domain"),
            let domain = try? DomainName(domainText.hasSuffix(".") ? domainText : domainText + "."), !domain.isRoot
        else {
            throw UsageError(message: "init needs --domain NAME (the zone your sites live in, e.g. home.example.com)")
        }
        var sites: [(String, String)] = []
        for text in arguments.values["--site"] ?? [] {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw UsageError(message: "--site '\(text)': NAME=URL, e.g. jellyfin=http://192.168.1.20:8096")
            }
            sites.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
        }
        var network = InitCommand.detect()
        if let lan = arguments.value("--lan") {
            let parts = lan.split(separator: "/")
            guard parts.count == 2, case .v4(let address)? = IPAddress(parts[0]), let length = Int(parts[1]),
                (8...30).contains(length)
            else { throw UsageError(message: "--lan '\(lan)': ADDRESS/PREFIX, e.g. 192.168.1.10/24") }
            let mask = UInt32.max << (32 - UInt32(length))
            let prefix = CIDR(address: .v4(IPv4Address(address.value & mask)), prefixLength: length)
            network = Network(address: address, prefix: prefix, router: network?.router, interface: "(--lan)")
        }
        if let routerText = arguments.value("--router") {
            guard case .v4(let router)? = IPAddress(routerText) else {
                throw UsageError(message: "--router '\(routerText)' is not an IPv4 address")
            }
            network?.router = router
        }
        guard let network else {
            printError(
                "frontdoor init: this machine has no IPv4 default route to learn its LAN from; give --lan ADDRESS/PREFIX "
                    + "(and --router ADDRESS)")
            return .failure
        }
        let files = [
            (ModelLoader.configName, InitCommand.config(network, providers: arguments.values["--provider"] ?? [])),
            ("\(domain.hostDescription).zone", InitCommand.zone(domain: domain, network: network, sites: sites)),
        ]
        _ = mkdir(directory, 0o755)
        for (name, _) in files where access(joinPath(directory, name), F_OK) == 0 {
            printError(
                "frontdoor init: \(joinPath(directory, name)) exists; init never overwrites (move it away first)")
            return .failure
        }
        for (name, text) in files {
            let path = joinPath(directory, name)
            if let problem = DiskFiles().writeAtomically(Array(text.utf8), to: path) {
                printError("frontdoor init: cannot write \(path): \(problem)")
                return .failure
            }
            chmod(path, 0o644)
            printError("wrote \(path)")
        }
        let router = network.router.map { "\($0)" } ?? "your router"
        printError(
            """

            Next:
              1. frontdoor check \(directory)                      (should say 0 error(s))
              2. In the router's DHCP settings, hand out \(network.address) as the DNS server (option 6), so every
                 device asks Frontdoor; names outside \(domain.hostDescription) are forwarded to \(router).
              3. Forward TCP 80 and 443 (and 53, unless public secondaries serve the zone) from the router's WAN
                 side to \(network.address).
              4. frontdoor run --config \(directory)   (as root, or the systemd unit in deploy/)
            """)
        return .ok
    }

    /// The LAN from the default route: its interface's IPv4 address and prefix, and its gateway.
    static func detect() -> Network? {
        guard case .success(let bytes) = DiskFiles().read("/proc/net/route") else { return nil }
        guard let (interface, gateway) = RouterDiscovery.defaultRoute(table: bytes) else { return nil }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard String(cString: entry.pointee.ifa_name) == interface, let address = entry.pointee.ifa_addr,
                address.pointee.sa_family == sa_family_t(AF_INET), let mask = entry.pointee.ifa_netmask
            else { continue }
            let value = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
            }
            let maskValue = mask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
            }
            let prefix = CIDR(address: .v4(IPv4Address(value & maskValue)), prefixLength: maskValue.nonzeroBitCount)
            return Network(address: IPv4Address(value), prefix: prefix, router: gateway, interface: interface)
        }
        return nil
    }

    static func config(_ network: Network, providers: [String]) -> String {
        let router = network.router.map { "\($0)" }
        return """
            # Frontdoor's settings, written by 'frontdoor init' from what this machine said about its network
            # (interface \(network.interface)). 'frontdoor check' after every edit; the running server reloads by itself.

            # Who gets which answers: the home network (and this machine) gets LAN addresses and may resolve any
            # name through Frontdoor; everybody else (the internet) gets the WAN address and only your zone.
            view lan \(network.prefix) 127.0.0.1/32 recursion
            view wan *

            # Where names outside your zones go for the LAN: \(router == nil ? "set your router or ISP resolver" : "the router").
            \(router.map { "upstream \($0)" } ?? "# upstream 192.0.2.1")

            # The WAN address, for the wan view and DynDNS: asked from the router over PCP, NAT-PMP or UPnP IGD
            # (whichever it speaks; its announcements of a new address are heard at once). A router that speaks
            # none of them (UPnP switched off): use an echo service, e.g. 'wan http https://ifconfig.co/ip'.
            \(router.map { "wan router \($0)" } ?? "# wan router 192.0.2.1")
            wan interval 5m
            wan confirm 1m

            # Serials and DynDNS state (made at the first run, 0700).
            state-dir state

            # Push the WAN address to an outside DNS provider (secrets in files only you can read: chmod 600):
            \(providers.isEmpty ? "# provider home dyndns2 url=https://dyndns.example.net/nic/update hostname=home.example.net username=me password-file=dyndns.secret" : providers.map { "provider \($0)" }.joined(separator: "\n"))

            """
    }

    static func zone(domain: DomainName, network: Network, sites: [(String, String)]) -> String {
        var text = """
            ; The zone \(domain.hostDescription), written by 'frontdoor init'. SOA and NS are made for you.
            $ORIGIN \(domain.description)
            $TTL 300

            ; The front door: LAN clients get this machine's LAN address, the internet gets the WAN address that
            ; detection finds ('auto').
            $PROXY reverseproxy lan=\(network.address) wan=auto

            ; Each site: 'NAME CNAME reverseproxy' in DNS and a route in the proxy (the Host header picks it).
            ; Add 'views=lan' to keep a site off the internet.

            """
        if sites.isEmpty {
            text += "; $SITE myapp http://192.0.2.20:8080\n"
        } else {
            let width = sites.map(\.0.count).max() ?? 0
            for (name, url) in sites {
                text += "$SITE \(name + String(repeating: " ", count: width - name.count)) \(url)\n"
            }
        }
        return text
    }
}
