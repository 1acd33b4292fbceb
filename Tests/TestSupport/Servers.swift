import DNSServer
import EventLoop
import Files
import Foundation
import Glibc
import Runtime
import Synchronization
import ZoneFile
import ZoneModel

/// A Frontdoor DNS service on 127.0.0.1 (a kernel-chosen port), serving zones compiled in memory.
package final class FrontdoorDNS {
    package let service: DNSService
    package let store: SnapshotStore
    package let port: UInt16

    /// Compiles `zones` with `config` (the fixture config by default) and starts serving on loopback.
    package init(
        zones: [(name: String, text: String)], config: String = Fixtures.config, upstreams: [SocketAddress] = [],
        workers: Int = 2, rateLimit: Int = 0, tweak: (inout DNSOptions) -> Void = { _ in }
    ) throws {
        let result = Fixtures.compile(zones: zones, config: config)
        guard let snapshot = result.snapshot else {
            throw FixtureError(message: "model has errors: \(result.diagnostics.sorted.map(\.description))")
        }
        self.store = SnapshotStore(DNSTables(snapshot: snapshot))
        var options = DNSOptions(
            listeners: [SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: 0)], workers: workers,
            upstreams: upstreams)
        options.rateLimit = rateLimit
        tweak(&options)
        // A port from freePort, not the kernel's pick: see there why a test server stays out of the ephemeral range.
        for index in options.listeners.indices where options.listeners[index].port == 0 {
            options.listeners[index] = SocketAddress(address: options.listeners[index].address, port: try freePort())
        }
        self.service = try DNSService(options: options, store: self.store)
        self.port = self.service.boundListeners[0].port
        self.service.start()
    }

    /// Publishes a recompiled model, as SIGHUP does.
    package func publish(zones: [(name: String, text: String)], config: String = Fixtures.config) throws {
        guard let snapshot = Fixtures.compile(zones: zones, config: config).snapshot else {
            throw FixtureError(message: "model has errors")
        }
        self.store.publish(DNSTables(snapshot: snapshot))
    }

    deinit { self.service.stop() }
}

package struct FixtureError: Error, CustomStringConvertible {
    package var message: String
    package init(message: String) { self.message = message }
    package var description: String { self.message }
}

/// NSD serving plain zone files on a loopback port, rate limiting off: an upstream and a reference.
package final class NSDServer {
    package let pid: pid_t
    package let port: UInt16
    package let directory: String

    /// Starts `nsd` on 127.0.0.1 with `zones` (apex → zone text); nil when NSD is not installed.
    package init?(zones: [(apex: String, text: String)]) throws {
        guard let nsd = Tool.find("nsd") else {
            Tool.skip("nsd", package: "nsd")
            return nil
        }
        self.directory = try Tool.temporaryDirectory()
        self.port = try freePort()
        var config = """
            server:
              ip-address: 127.0.0.1@\(self.port)
              zonesdir: "\(self.directory)"
              pidfile: "\(self.directory)/nsd.pid"
              database: ""
              username: ""
              chroot: ""
              logfile: "\(self.directory)/nsd.log"
              xfrdfile: "\(self.directory)/xfrd.state"
              zonelistfile: "\(self.directory)/zone.list"
              rrl-ratelimit: 0
              server-count: 1
              verbosity: 0
            remote-control:
              control-enable: no

            """
        for zone in zones {
            try zone.text.write(toFile: "\(self.directory)/\(zone.apex)zone", atomically: true, encoding: .utf8)
            config += "zone:\n  name: \"\(zone.apex)\"\n  zonefile: \"\(zone.apex)zone\"\n"
        }
        try config.write(toFile: "\(self.directory)/nsd.conf", atomically: true, encoding: .utf8)
        self.pid = try Tool.spawn(nsd, ["-d", "-c", "\(self.directory)/nsd.conf"])
        // Ready when it answers.
        for _ in 0..<100 {
            if let outcome = try? Tool.run(
                Tool.find("dig") ?? "/usr/bin/dig",
                ["@127.0.0.1", "-p", "\(self.port)", "+time=1", "+tries=1", "\(zones[0].apex)", "SOA", "+short"]),
                !outcome.stdout.isEmpty
            {
                return
            }
            usleep(50_000)
        }
        Tool.stop(self.pid)
        throw FixtureError(message: "nsd did not start: \(Fixtures.textAt("\(self.directory)/nsd.log"))")
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Ports handed out by `freePort`, counting up from a random start so that no two tests of this process get
/// the same one, even after the first has closed it.
private let nextPort = Atomic<Int>(Int(UInt16.random(in: 0..<UInt16.max)))

/// A port on which nothing listens on 127.0.0.1 or ::1 (UDP or TCP), for a test's server, chosen below the
/// kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range).
///
/// Outside that range on purpose: `dig` binds its source port with SO_REUSEPORT, and the kernel may then hand
/// it a port that a test server's SO_REUSEPORT socket of the same user holds. dig's own connected socket then
/// receives its query and takes it for the answer (seen in CI as a reply with QR unset). No kernel-chosen port
/// comes from below the range, so a server there can share its port with no client.
package func freePort() throws -> UInt16 {
    let range = Fixtures.textAt("/proc/sys/net/ipv4/ip_local_port_range").split(whereSeparator: {
        $0 == " " || $0 == "\t" || $0 == "\n"
    })
    let ephemeralLow = range.first.flatMap { Int($0) } ?? 32768
    let low = max(1024, ephemeralLow - 12_000)
    let count = ephemeralLow - low
    guard count > 0 else { throw FixtureError(message: "no ports below the ephemeral range") }
    for _ in 0..<200 {
        let port = UInt16(low + nextPort.add(1, ordering: .relaxed).oldValue % count)
        if isFree(port) { return port }
    }
    throw FixtureError(message: "no free port on 127.0.0.1 below \(ephemeralLow)")
}

/// Whether exclusive binds (no reuse options) of UDP and TCP succeed on 127.0.0.1 and ::1 at `port`.
package func isFree(_ port: UInt16) -> Bool {
    for family in [AF_INET, AF_INET6] {
        for type in [SOCK_DGRAM, SOCK_STREAM] {
            let fd = socket(family, Int32(type.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            let bound: Int32
            if family == AF_INET {
                bound = withLoopbackAddress(port: port) { bind(fd, $0, $1) }
            } else {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = port.bigEndian
                address.sin6_addr = in6addr_loopback
                bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
            // ::1 may be missing (no IPv6): then only IPv4 counts.
            if bound != 0 && !(family == AF_INET6 && errno == EADDRNOTAVAIL) { return false }
        }
    }
    return true
}

extension Fixtures {
    package static func textAt(_ path: String) -> String {
        guard case .success(let bytes) = DiskFiles().read(path) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `dig` as the client: runs it and splits its output into the parts tests look at.
package struct Dig {
    package var status: String
    package var flags: Set<String>
    package var answer: [String]
    package var authority: [String]
    package var additional: [String]
    package var output: String

    /// Runs `dig @127.0.0.1 -p PORT ARGUMENTS` (+ options that make its output stable); nil when dig is missing.
    package static func ask(port: UInt16, _ arguments: [String], source: String? = nil, tool: String = "dig") throws
        -> Dig?
    {
        guard let dig = Tool.find(tool) else {
            Tool.skip(tool, package: tool == "dig" ? "dnsutils" : "knot-dnsutils")
            return nil
        }
        var all = ["@127.0.0.1", "-p", "\(port)", "+time=3", tool == "dig" ? "+tries=1" : "+retry=0"]
        if let source { all += ["-b", source] }
        let outcome = try Tool.run(dig, all + arguments)
        return Dig(parsing: outcome.stdout + outcome.stderr)
    }

    /// Asks every question of `questions` (each the arguments of one query) in one `dig -f` run, in order:
    /// one process instead of one per question. Nil when dig is missing or its output does not split into
    /// one answer per question.
    package static func askAll(port: UInt16, _ questions: [[String]], source: String? = nil) throws -> [Dig]? {
        guard let dig = Tool.find("dig") else {
            Tool.skip("dig", package: "dnsutils")
            return nil
        }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let batch = "\(directory)/questions"
        try questions.map { $0.joined(separator: " ") + "\n" }.joined().write(
            toFile: batch, atomically: true, encoding: .utf8)
        var all = ["@127.0.0.1", "-p", "\(port)", "+time=3", "+tries=1"]
        if let source { all += ["-b", source] }
        let outcome = try Tool.run(dig, all + ["-f", batch])
        // Each answer's output begins with dig's banner line.
        let parts = outcome.stdout.components(separatedBy: "\n; <<>> DiG").dropFirst().map { "; <<>> DiG" + $0 }
        guard parts.count == questions.count else { return nil }
        return parts.map { Dig(parsing: $0) }
    }

    init(parsing output: String) {
        self.output = output
        self.status = ""
        self.flags = []
        self.answer = []
        self.authority = []
        self.additional = []
        var section = ""
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if let range = line.range(of: "status: ") {
                self.status = String(line[range.upperBound...].prefix { $0 != "," && $0 != ";" })
            }
            if line.lowercased().hasPrefix(";; flags: ") {
                let text = line.dropFirst(10).prefix { $0 != ";" }
                self.flags = Set(text.split(separator: " ").map(String.init))
            }
            if line.hasPrefix(";; ANSWER SECTION") || line.hasPrefix(";; AUTHORITY SECTION")
                || line.hasPrefix(";; ADDITIONAL SECTION") || line.hasPrefix(";; OPT") || line.hasPrefix(";; QUESTION")
            {
                section = String(line.dropFirst(3).prefix { $0 != " " })
                continue
            }
            if line.isEmpty || line.hasPrefix(";") {
                if line.isEmpty { section = "" }
                continue
            }
            let record = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            switch section {
            case "ANSWER": self.answer.append(record)
            case "AUTHORITY": self.authority.append(record)
            case "ADDITIONAL": self.additional.append(record)
            default: break
            }
        }
    }
}

/// Calls `body` with 127.0.0.`host`:`port` as a `sockaddr`, for tests that drive raw sockets.
package func withLoopbackAddress<T>(port: UInt16, host: UInt8 = 1, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T)
    -> T
{
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = (UInt32(0x7F00_0000) | UInt32(host)).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
