import EventLoop
import Foundation
import Glibc
import TestSupport
import Testing

/// The WAN address from a real router daemon: miniupnpd in network namespaces (see MiniUPnPRouter), with
/// `frontdoor run` on the home side and dig asking its wan view.
@Suite(.serialized) struct RouterTests {
    /// Frontdoor in the home namespace with `sources` as its WAN lines; stopped with `Tool.stop(pid)`, its
    /// directory removed by the caller. `http`: its HTTP listener (off by default).
    func start(_ router: MiniUPnPRouter, _ lines: [String], http: String = "off") throws -> (
        pid: pid_t, directory: String
    ) {
        let directory = try Tool.temporaryDirectory()
        try (["view lan 192.0.2.0/24", "view wan *"] + lines).joined(separator: "\n").write(
            toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 60\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n".write(
            toFile: directory + "/example.com.zone", atomically: true, encoding: .utf8)
        let logFD = open(directory + "/log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(logFD) }
        let pid = try router.spawnInHome(
            Tool.frontdoor,
            [
                "run", "--config", directory, "--dns", "127.0.0.1:5300", "--http", http, "--admin", "off", "--workers",
                "1",
            ],
            stderr: logFD)
        return (pid, directory)
    }

    /// The wan view's proxy address as dig in the home namespace gets it.
    func wanView(_ router: MiniUPnPRouter) throws -> String {
        try router.inHome(
            "dig", ["@127.0.0.1", "-p", "5300", "+short", "+time=1", "+tries=1", "reverseproxy.example.com", "A"]
        )
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs Frontdoor in the home namespace with `source` as its only WAN source; the wan view's address.
    func wanAddress(_ router: MiniUPnPRouter, source: String) throws -> (address: String, log: String) {
        let (pid, directory) = try self.start(router, ["wan \(source)", "wan interval 2s", "wan confirm 2s"])
        defer {
            Tool.stop(pid)
            try? FileManager.default.removeItem(atPath: directory)
        }
        var address = ""
        for _ in 0..<100 {
            if Fixtures.textAt(directory + "/log").contains("wan: address is now") {
                address = try self.wanView(router)
                break
            }
            usleep(50_000)
        }
        return (address, Fixtures.textAt(directory + "/log"))
    }

    /// With the poll interval at an hour, the router's announcement of its new address moves the wan view
    /// within `wan confirm` (2 s here) and a poll or two.
    @Test(.bug(id: "19")) func anAnnouncementMovesTheWANViewAtOnce() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: false) else { return }
        let (pid, directory) = try self.start(router, ["wan natpmp 192.0.2.1", "wan interval 1h", "wan confirm 2s"])
        defer {
            Tool.stop(pid)
            try? FileManager.default.removeItem(atPath: directory)
        }
        for _ in 0..<100 where !Fixtures.textAt(directory + "/log").contains("wan: address is now") { usleep(50_000) }
        #expect(try self.wanView(router) == "11.22.33.44", "\(Fixtures.textAt(directory + "/log"))")
        let moved = monotonicMilliseconds()
        // As a DHCP lease change does: the old address goes, the new one comes, and the client's hook tells
        // miniupnpd, which announces the new address to the LAN.
        try router.inRouter("ip", ["addr", "del", "11.22.33.44/24", "dev", "wan0"])
        try router.inRouter("ip", ["addr", "add", "11.22.33.55/24", "dev", "wan0"])
        router.addressChanged()
        var address = ""
        // An hour without the announcement; 30 s is only the test's patience.
        for _ in 0..<300 {
            address = try self.wanView(router)
            if address == "11.22.33.55" { break }
            usleep(100_000)
        }
        let took = monotonicMilliseconds() - moved
        let log = Fixtures.textAt(directory + "/log")
        #expect(address == "11.22.33.55", "\(log)\n\(router.log)")
        #expect(log.contains("wan: the router at 192.0.2.1 announced a change; asking the sources now"), "\(log)")
        print("the wan view followed the router's new address in \(took) ms (wan confirm 2 s)")
    }

    @Test(.bug(id: "19")) func theAddressOverUPnPIGDWithNATPMPSwitchedOff() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: false, upnp: true) else { return }
        let (address, log) = try self.wanAddress(router, source: "upnp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        #expect(log.contains("wan: address is now 11.22.33.44"), "\(log)")
    }

    @Test(.bug(id: "19")) func theAddressOverNATPMP() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: false) else { return }
        let (address, log) = try self.wanAddress(router, source: "natpmp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
    }

    @Test(.bug(id: "19")) func theAddressOverPCP() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: false) else { return }
        let (address, log) = try self.wanAddress(router, source: "pcp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        // The mapping that told the address was made, then deleted at once: none is left in the router's table.
        #expect(router.log.contains("PCP MAP: added mapping UDP"), "\(router.log)")
        for _ in 0..<20 where !router.log.contains("mapping removed") { usleep(50_000) }
        #expect(router.log.contains("mapping removed"), "\(router.log)")
        let rules = try router.rules()
        #expect(!rules.contains("dnat"), "\(rules)")
    }

    /// `wan router` finds the protocol the router speaks (here only UPnP IGD) and says which.
    @Test(.bug(id: "19")) func wanRouterFindsTheProtocol() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: false, upnp: true) else { return }
        let (address, log) = try self.wanAddress(router, source: "router 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        #expect(log.contains("wan: the router at 192.0.2.1 answers over upnp"), "\(log)")
    }

    /// `auto` for the router's address: `wan router auto` asks the default route's gateway (here over PCP);
    /// `wan upnp auto` finds the IGD by an SSDP search multicast on the LAN (NAT-PMP off); both say which.
    @Test(.bug(id: "19"), arguments: [(true, false, "router auto"), (false, true, "upnp auto")])
    func theRouterIsFoundByItself(natpmp: Bool, upnp: Bool, source: String) throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: natpmp, upnp: upnp) else { return }
        let (address, log) = try self.wanAddress(router, source: source)
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        if source == "router auto" {
            #expect(log.contains("wan: the router at 192.0.2.1 answers over pcp"), "\(log)")
        } else {
            // The search went to the multicast group, not to an address Frontdoor was given.
            #expect(router.log.contains("SSDP M-SEARCH from 192.0.2.42"), "\(router.log)")
        }
    }

    /// A router whose own WAN address becomes carrier-grade NAT (100.64/10) or private (double NAT): NAT-PMP
    /// says "network failure", PCP has no resources, UPnP answers an empty address (miniupnpd hides such an
    /// address of its own) — together they say what is going on; the address published before is kept for
    /// `wan grace` (3 s here), then withdrawn: the wan view answers without it.
    @Test(.bug(id: "19"), arguments: ["100.64.7.8", "10.20.30.40"])
    func aRouterBehindAnotherNATIsExplained(wanAddress: String) throws {
        let explanation =
            "the router at 192.0.2.1 answers but has no public WAN address: its own WAN address is private (a "
            + "second router in front of it: double NAT) or carrier-grade NAT"
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: true) else { return }
        let (pid, directory) = try self.start(
            router, ["wan router 192.0.2.1", "wan interval 1h", "wan confirm 2s", "wan grace 3s"])
        defer {
            Tool.stop(pid)
            try? FileManager.default.removeItem(atPath: directory)
        }
        for _ in 0..<100 where !Fixtures.textAt(directory + "/log").contains("wan: address is now") { usleep(50_000) }
        #expect(try self.wanView(router) == "11.22.33.44", "\(Fixtures.textAt(directory + "/log"))")
        // The ISP moves the router behind its NAT; the router tells the LAN.
        try router.inRouter("ip", ["addr", "del", "11.22.33.44/24", "dev", "wan0"])
        try router.inRouter("ip", ["addr", "add", wanAddress + "/24", "dev", "wan0"])
        router.addressChanged()
        for _ in 0..<200 where !Fixtures.textAt(directory + "/log").contains("11.22.33.44 is withdrawn") {
            usleep(50_000)
        }
        let log = Fixtures.textAt(directory + "/log")
        #expect(log.contains(explanation), "\(log)\n\(router.log)")
        #expect(log.contains("(wan grace): 11.22.33.44 is withdrawn"), "\(log)")
        #expect(try self.wanView(router) == "", "no address is published after the grace period")
    }

    /// `router forward tcp/8080`: the mapping appears in miniupnpd's nftables chain, a client on the WAN side
    /// reaches Frontdoor's HTTP listener through it, and it is gone after SIGTERM — over PCP (`wan router`
    /// finds it first), over NAT-PMP (named by `wan natpmp`: the forwards use it too), and over UPnP IGD when the
    /// router speaks only that.
    @Test(.bug(id: "19"), arguments: [(true, false, "pcp"), (true, false, "natpmp"), (false, true, "upnp")])
    func portForwardsAreOpenedAndRemoved(natpmp: Bool, upnp: Bool, method: String) throws {
        guard Tool.find("curl") != nil, let router = try MiniUPnPRouter(natpmp: natpmp, upnp: upnp) else { return }
        let (pid, directory) = try self.start(
            router,
            [
                method == "natpmp" ? "wan natpmp 192.0.2.1" : "wan router 192.0.2.1", "wan interval 2s",
                "wan confirm 2s", "router forward tcp/8080 lifetime=4s",
                "state-dir state",
            ], http: "192.0.2.42:8080")
        defer {
            Tool.stop(pid)
            try? FileManager.default.removeItem(atPath: directory)
        }
        for _ in 0..<100 where !Fixtures.textAt(directory + "/log").contains("router: forwarding") { usleep(50_000) }
        let log = Fixtures.textAt(directory + "/log")
        #expect(
            log.contains("router: forwarding tcp/8080 on 192.0.2.1 to this host over \(method)"),
            "\(log)\n\(router.log)")
        let rules = try router.rules()
        #expect(rules.contains("dport 8080") && rules.contains("192.0.2.42"), "\(rules)")
        // A client on the WAN side, through the mapping: Frontdoor's 421 for a name it has no site for.
        let through = try router.inWAN(
            "curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "http://11.22.33.44:8080/"])
        #expect(
            through.stdout == "421",
            "\(through.stdout) \(through.stderr) \(rules) \(Fixtures.textAt(directory + "/log"))")
        // Renewed at half the lifetime the router granted (4 s: the test's miniupnpd grants PCP mappings that
        // short, min_lifetime=4); status shows it.
        var status = ""
        for _ in 0..<80 {
            status = try Tool.run(Tool.frontdoor, ["status", directory]).stdout
            if status.contains("renewed 1 time(s)") || status.contains("renewed 2 time(s)") { break }
            usleep(100_000)
        }
        #expect(status.contains("tcp/8080: up, mapped over \(method) for 4 s"), "\(status)")
        #expect(!status.contains("renewed 0 time(s)"), "\(status)\n\(Fixtures.textAt(directory + "/log"))")
        // The router restarts (its mappings gone) and announces itself: the forward is asked for again at once.
        if method == "pcp" {
            try router.restart()
            let announced = "router: the router announced a change; asking for the port forwards again"
            for _ in 0..<100 where !Fixtures.textAt(directory + "/log").contains(announced) { usleep(50_000) }
            #expect(Fixtures.textAt(directory + "/log").contains(announced), "\(router.log)")
            var again = ""
            for _ in 0..<100 {
                again = try router.rules()
                if again.contains("dport 8080") { break }
                usleep(50_000)
            }
            #expect(again.contains("dport 8080"), "\(again)\n\(Fixtures.textAt(directory + "/log"))")
        }
        Tool.stop(pid)
        let after = try router.rules()
        #expect(!after.contains("dport 8080"), "removed at SIGTERM: \(after)")
        #expect(Fixtures.textAt(directory + "/log").contains("router: removed the forward of tcp/8080"))
    }

    /// Another device on the LAN holds tcp/8080 on the router (mapped before by upnpc for 192.0.2.43): Frontdoor
    /// says so with the fix, maps nothing else — over UPnP (ConflictInMappingEntry) and over PCP (the router
    /// offers another port, which is taken back) — and the other device's mapping is left alone.
    @Test(.bug(id: "19"), arguments: [(false, true, "upnp"), (true, true, "pcp")])
    func aPortHeldByAnotherDeviceIsReported(natpmp: Bool, upnp: Bool, method: String) throws {
        guard Tool.find("upnpc") != nil else {
            Tool.skip("upnpc", package: "miniupnpc")
            return
        }
        guard let router = try MiniUPnPRouter(natpmp: natpmp, upnp: upnp, secure: false) else { return }
        let other = try router.inHome(
            "upnpc", ["-u", "http://192.0.2.1:5000/rootDesc.xml", "-a", "192.0.2.43", "8080", "8080", "TCP"])
        let before = try router.rules()
        #expect(before.contains("192.0.2.43"), "\(other.stdout) \(other.stderr) \(before)")
        let (pid, directory) = try self.start(
            router, ["wan \(method) 192.0.2.1", "wan interval 2s", "wan confirm 2s", "router forward tcp/8080"])
        defer {
            Tool.stop(pid)
            try? FileManager.default.removeItem(atPath: directory)
        }
        for _ in 0..<100 where !Fixtures.textAt(directory + "/log").contains("router: cannot forward") {
            usleep(50_000)
        }
        let log = Fixtures.textAt(directory + "/log")
        #expect(
            log.contains("router: cannot forward tcp/8080 on 192.0.2.1: ")
                && log.contains("another device holds tcp/8080 on the router")
                && log.contains("free it in the router's settings"), "\(log)\n\(router.log)")
        // Only the other device's mapping: nothing of Frontdoor's (no rule to 192.0.2.42), on any port.
        var rules = ""
        for _ in 0..<20 {
            rules = try router.rules()
            if !rules.contains("192.0.2.42") { break }
            usleep(50_000)
        }
        #expect(rules.contains("192.0.2.43") && !rules.contains("192.0.2.42"), "\(rules)\n\(router.log)")
    }

    /// `wan interface` follows the kernel's notices (netlink), not only the poll: with `wan interval 1h`, a new
    /// address on the interface reaches the wan view after `wan confirm`; the link going down makes its address
    /// unusable, withdrawn once `wan grace` is over; the link back up publishes it again. The interface is one
    /// end of a veth pair whose both ends are in a namespace of the test's own.
    @Test(.bug(id: "19")) func anInterfaceSourceFollowsTheKernelsNotices() throws {
        guard getuid() == 0, let ip = Tool.find("ip"), Tool.find("dig") != nil else {
            print("SKIP: needs root, ip and dig")
            return
        }
        let namespace = "fdi\(getpid() % 10000)x\(UInt16.random(in: 0...9999))"
        func inside(_ arguments: [String]) throws -> Tool.Outcome {
            try Tool.run(ip, ["netns", "exec", namespace] + arguments)
        }
        defer { _ = try? Tool.run(ip, ["netns", "del", namespace]) }
        for command in [
            ["netns", "add", namespace], ["-n", namespace, "link", "set", "lo", "up"],
            ["-n", namespace, "link", "add", "wan0", "type", "veth", "peer", "name", "modem0"],
            ["-n", namespace, "addr", "add", "198.51.100.7/24", "dev", "wan0"],
            ["-n", namespace, "link", "set", "wan0", "up"], ["-n", namespace, "link", "set", "modem0", "up"],
        ] {
            let outcome = try Tool.run(ip, command)
            #expect(outcome.status == 0, "ip \(command): \(outcome.stderr)")
        }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try [
            "view wan *", "wan interface wan0", "wan test-addresses", "wan interval 1h", "wan confirm 2s",
            "wan grace 3s",
        ].joined(separator: "\n").write(toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 60\n$PROXY reverseproxy wan=auto\n".write(
            toFile: directory + "/example.com.zone", atomically: true, encoding: .utf8)
        let logFD = open(directory + "/log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let pid = try Tool.spawn(
            ip,
            [
                "netns", "exec", namespace, Tool.frontdoor, "run", "--config", directory, "--dns", "127.0.0.1:5300",
                "--http", "off", "--admin", "off", "--workers", "1",
            ], stderr: logFD)
        close(logFD)
        defer { Tool.stop(pid) }
        func wanView() throws -> String {
            try inside(["dig", "@127.0.0.1", "-p", "5300", "+short", "+time=1", "+tries=1", "reverseproxy.example.com"])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func waitFor(_ expected: String) throws -> (String, UInt64) {
            let start = monotonicMilliseconds()
            var seen = ""
            for _ in 0..<150 {
                seen = try wanView()
                if seen == expected { break }
                usleep(100_000)
            }
            return (seen, monotonicMilliseconds() - start)
        }
        var (seen, took) = try waitFor("198.51.100.7")
        #expect(seen == "198.51.100.7", "\(Fixtures.textAt(directory + "/log"))")
        // A new address (as a DHCP or PPP client sets it): the notice asks at once, `wan confirm` later published.
        _ = try inside(["ip", "addr", "add", "203.0.113.8/24", "dev", "wan0"])
        _ = try inside(["ip", "addr", "del", "198.51.100.7/24", "dev", "wan0"])
        (seen, took) = try waitFor("203.0.113.8")
        var log = Fixtures.textAt(directory + "/log")
        #expect(seen == "203.0.113.8", "\(log)")
        #expect(log.contains("wan: wan0: address added"), "\(log)")
        print("the wan view followed the interface's new address in \(took) ms (wan confirm 2 s, interval 1 h)")
        // The link goes down (the modem's end): the address is kept through the grace period, then withdrawn.
        _ = try inside(["ip", "link", "set", "modem0", "down"])
        (seen, took) = try waitFor("")
        log = Fixtures.textAt(directory + "/log")
        #expect(seen == "", "\(log)")
        #expect(log.contains("wan0 has no link (no carrier)") && log.contains("203.0.113.8 is withdrawn"), "\(log)")
        print("withdrawn \(took) ms after the link went down (wan grace 3 s)")
        // And back.
        _ = try inside(["ip", "link", "set", "modem0", "up"])
        (seen, took) = try waitFor("203.0.113.8")
        log = Fixtures.textAt(directory + "/log")
        #expect(seen == "203.0.113.8", "\(log)")
        // The source's failure and its recovery, each logged once.
        #expect(log.contains("wan: interface wan0 stopped answering: wan0 has no link (no carrier)"), "\(log)")
        #expect(log.contains("wan: interface wan0 answers again (203.0.113.8, after "), "\(log)")
    }
}
