import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Debian's miniupnpd as a home router, in network namespaces of the test's own: `router` between `home`
/// (192.0.2.0/24, the router at 192.0.2.1, Frontdoor's host at 192.0.2.42) and `wan`.
///
/// miniupnpd refuses documentation addresses as its WAN address, so its WAN side is 11.22.33.44/24 — on a
/// veth pair whose two ends are both inside namespaces this test created (`router` and `wan`), with no route
/// out of them: nothing is ever sent to that address range outside the test.
package final class MiniUPnPRouter {
    package let prefix: String
    let ip: String
    let miniupnpd: String
    var pid: pid_t?
    package let directory: String

    package var home: String { self.prefix + "-home" }
    package var router: String { self.prefix + "-router" }

    /// nil (with the reason printed) unless root with ip, nft and miniupnpd. `natpmp`/`upnp`: which protocols
    /// miniupnpd speaks (NAT-PMP includes PCP in Debian's build). `secure`: a LAN host may map ports only to
    /// itself (off, one host can map for another — as the second device of a conflict test).
    package init?(natpmp: Bool, upnp: Bool, wanAddress: String = "11.22.33.44", secure: Bool = true) throws {
        guard getuid() == 0 else {
            print("SKIP: the router tests need root (ip netns)")
            return nil
        }
        guard let ip = Tool.find("ip"), Tool.find("nft") != nil, let miniupnpd = Tool.find("miniupnpd") else {
            Tool.skip("miniupnpd, ip or nft", package: "miniupnpd iproute2 nftables")
            return nil
        }
        self.ip = ip
        self.miniupnpd = miniupnpd
        self.prefix = "fdr\(getpid() % 10000)x\(UInt16.random(in: 0...9999))"
        self.directory = try Tool.temporaryDirectory()
        let (home, router, wan) = (self.prefix + "-home", self.prefix + "-router", self.prefix + "-wan")
        let veth = "v\(UInt32.random(in: 0...0xFFFFF))"
        let commands: [[String]] = [
            ["netns", "add", home], ["netns", "add", router], ["netns", "add", wan],
            ["-n", home, "link", "set", "lo", "up"], ["-n", router, "link", "set", "lo", "up"],
            ["-n", wan, "link", "set", "lo", "up"],
            ["link", "add", veth + "l", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", home],
            ["link", "add", veth + "w", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", wan],
            ["-n", router, "link", "set", veth + "l", "name", "lan0"],
            ["-n", router, "link", "set", veth + "w", "name", "wan0"],
            ["-n", router, "addr", "add", "192.0.2.1/24", "dev", "lan0"],
            ["-n", router, "addr", "add", wanAddress + "/24", "dev", "wan0"],
            ["-n", router, "link", "set", "lan0", "up"], ["-n", router, "link", "set", "wan0", "up"],
            ["-n", home, "addr", "add", "192.0.2.42/24", "dev", "eth0"], ["-n", home, "link", "set", "eth0", "up"],
            ["-n", home, "route", "add", "default", "via", "192.0.2.1"],
            ["-n", wan, "addr", "add", "11.22.33.1/24", "dev", "eth0"], ["-n", wan, "link", "set", "eth0", "up"],
            ["netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ]
        for command in commands {
            let outcome = try Tool.run(ip, command)
            guard outcome.status == 0 else {
                self.removeNamespaces()
                throw FixtureError(message: "ip \(command.joined(separator: " ")): \(outcome.stderr)")
            }
        }
        // The tables and chains miniupnpd's nftables backend fills, made as Debian's nft_init.sh would.
        let made = try Tool.run(
            ip, ["netns", "exec", router, "nft", "-f", Fixtures.path("Tests/Fixtures/upnp/miniupnpd-tables.nft")])
        guard made.status == 0 else {
            self.removeNamespaces()
            throw FixtureError(message: "nft: \(made.stderr)")
        }
        let config = """
            ext_ifname=wan0
            listening_ip=lan0
            enable_natpmp=\(natpmp ? "yes" : "no")
            enable_upnp=\(upnp ? "yes" : "no")
            http_port=5000
            secure_mode=\(secure ? "yes" : "no")
            min_lifetime=4
            uuid=8a2b2a4c-1f0e-4d8e-9c55-1234567890ab
            lease_file=\(self.directory)/leases
            allow 1024-65535 192.0.2.0/24 1024-65535
            deny 0-65535 0.0.0.0/0 0-65535
            """
        try config.write(toFile: self.directory + "/miniupnpd.conf", atomically: true, encoding: .utf8)
        let log = open(self.directory + "/miniupnpd.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(log) }
        self.pid = try Tool.spawn(
            ip, ["netns", "exec", router, miniupnpd, "-d", "-f", self.directory + "/miniupnpd.conf"], stdout: log,
            stderr: log)
        // Ready when it listens (NAT-PMP on 5351/udp or the UPnP HTTP port).
        for _ in 0..<100 {
            let listening =
                try Tool.run(ip, ["netns", "exec", router, "ss", "-lun"]).stdout
                + (try Tool.run(ip, ["netns", "exec", router, "ss", "-ltn"]).stdout)
            if listening.contains(":5351") || listening.contains(":5000") { break }
            usleep(50_000)
        }
    }

    deinit {
        if let pid { Tool.stop(pid) }
        self.removeNamespaces()
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    func removeNamespaces() {
        for name in ["home", "router", "wan"] {
            _ = try? Tool.run(self.ip, ["netns", "del", "\(self.prefix)-\(name)"])
        }
    }

    package var log: String { Fixtures.textAt(self.directory + "/miniupnpd.log") }

    /// The router's NAT rules as nftables lists them (the mappings miniupnpd made).
    package func rules() throws -> String {
        try Tool.run(
            self.ip, ["netns", "exec", self.router, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"]
        )
        .stdout
    }

    /// Runs a program inside the wan namespace (11.22.33.1, beside the router's WAN side) and waits for it.
    package func inWAN(_ program: String, _ arguments: [String]) throws -> Tool.Outcome {
        try Tool.run(self.ip, ["netns", "exec", self.prefix + "-wan", program] + arguments)
    }

    /// Runs a program inside the home namespace and waits for it.
    package func inHome(_ program: String, _ arguments: [String]) throws -> Tool.Outcome {
        try Tool.run(self.ip, ["netns", "exec", self.home, program] + arguments)
    }

    /// Stops miniupnpd (it removes its mappings) and starts it again, as a router reboot does; it then
    /// announces itself to the LAN (PCP ANNOUNCE, RFC 6887 §14.1.3).
    package func restart() throws {
        if let pid { Tool.stop(pid) }
        let log = open(self.directory + "/miniupnpd.log", O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { close(log) }
        self.pid = try Tool.spawn(
            self.ip, ["netns", "exec", self.router, self.miniupnpd, "-d", "-f", self.directory + "/miniupnpd.conf"],
            stdout: log, stderr: log)
    }

    /// Tells miniupnpd its WAN address changed (SIGUSR1), as a router's DHCP client hook does: Debian's build
    /// does not watch the interface itself. It then announces the address to the LAN.
    package func addressChanged() {
        if let pid { kill(pid, SIGUSR1) }
    }

    /// Runs a program inside the router namespace; throws when it fails.
    package func inRouter(_ program: String, _ arguments: [String]) throws {
        let outcome = try Tool.run(self.ip, ["netns", "exec", self.router, program] + arguments)
        guard outcome.status == 0 else {
            throw FixtureError(message: "\(program) \(arguments.joined(separator: " ")): \(outcome.stderr)")
        }
    }

    /// Starts a program inside the home namespace (stop it with Tool.stop).
    package func spawnInHome(_ program: String, _ arguments: [String], stderr: Int32) throws -> pid_t {
        try Tool.spawn(self.ip, ["netns", "exec", self.home, program] + arguments, stderr: stderr)
    }
}
