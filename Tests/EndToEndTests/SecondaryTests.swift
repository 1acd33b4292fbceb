import DNSServer
import DynDNS
import EventLoop
import Foundation
import Runtime
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Issue 14, point 4: Frontdoor as a hidden primary. Real NSD, Knot and BIND secondaries copy the `wan` view
/// by AXFR with TSIG, are told of a WAN address change by NOTIFY, fetch it by IXFR and serve it; one bound to
/// the `lan` view by its key gets the LAN data; one with a wrong secret gets nothing.
@Suite(.serialized) struct SecondaryTests {
    static let secret = "q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="
    static let lanSecret = "c2VjcmV0LWZvci10aGUtbGFuLXZpZXctb25seS0xMjM="
    static let wrongSecret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZzE="

    /// A Frontdoor primary in this process: the appliance, the DNS service, the notifier and the updater.
    final class Primary {
        let directory: String
        let appliance: Appliance
        let service: DNSService
        let notifier: Notifier
        let thread: pthread_t?
        let port: UInt16

        init(directory: String, port: UInt16, restoresWAN: Bool = false) throws {
            self.directory = directory
            self.port = port
            self.appliance = Appliance(directory: directory, wan: WANAddresses())
            self.appliance.restoresWAN = restoresWAN
            if let diagnostics = self.appliance.load(dateSerial: 2_026_120_500) {
                throw FixtureError(message: "model: \(diagnostics.sorted.map(\.description))")
            }
            var options = DNSOptions(
                listeners: [SocketAddress(address: IPAddress("127.0.0.1")!, port: port)], workers: 1, upstreams: [])
            options.rateLimit = 0
            self.service = try DNSService(options: options, store: try #require(self.appliance.store))
            self.service.start()
            let notifier = Notifier(activity: self.service.secondaries)
            self.notifier = notifier
            self.appliance.published = { old, new in notifier.changed(old: old, new: new) }
            if let compiled = self.appliance.compiledSnapshot { notifier.changed(old: nil, new: compiled) }
            self.thread = startThread(name: "notify") { notifier.run() }
        }

        deinit {
            self.notifier.stop()
            if let thread { joinThread(thread) }
            self.service.stop()
        }
    }

    static func writeKey(_ name: String, _ secret: String, to path: String) throws {
        try "key \"\(name)\" {\n\talgorithm hmac-sha256;\n\tsecret \"\(secret)\";\n};\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    @Test func nsdKnotAndBindFollowTheWanViewByNotifyAndIXFR() throws {
        guard Tool.find("nsd") != nil || Tool.find("knotd") != nil || Tool.find("named") != nil else {
            Tool.skip("nsd, knotd or named", package: "nsd knot bind9")
            return
        }
        guard let echo = try ProviderServer(tls: false) else { return }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let primaryPort = try freePort()
        var ports: [SecondaryServer.Kind: UInt16] = [:]
        for kind in SecondaryServer.Kind.allCases { ports[kind] = try freePort() }
        let lanPort = try freePort()
        let wrongPort = try freePort()
        for kind in SecondaryServer.Kind.allCases {
            try Self.writeKey("xfr-\(kind)", Self.secret, to: "\(directory)/xfr-\(kind).key")
        }
        try Self.writeKey("lan-key", Self.lanSecret, to: "\(directory)/lan.key")
        var config = """
            view lan 192.0.2.0/24 recursion
            view wan *
            upstream 127.0.0.1:9
            state-dir \(directory)/state
            wan http \(echo.base)/ip
            wan interval 2s
            wan confirm 0
            wan test-addresses
            secondary lan-copy 127.0.0.1:\(lanPort) view=lan key=lan.key

            """
        for kind in SecondaryServer.Kind.allCases {
            config += "secondary \(kind) 127.0.0.1:\(ports[kind]!) view=wan key=xfr-\(kind).key\n"
        }
        try config.write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        try """
        $ORIGIN example.com.
        $TTL 300
        $PROXY reverseproxy lan=192.0.2.42 wan=auto
        $SITE www http://127.0.0.1:9
        $SITE media http://127.0.0.1:9 views=lan
        mail IN A 192.0.2.25
        @    IN MX 10 mail
        @    IN TXT "v=spf1 mx -all"
        """.write(toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)

        try echo.setEcho("203.0.113.10")
        let primary = try Primary(directory: directory, port: primaryPort)
        let updater = WANUpdater(appliance: primary.appliance)
        updater.poll()
        func wanSerial(_ primary: Primary) -> UInt32? {
            let key = SerialBook.key(view: "wan", apex: try! DomainName("example.com."))
            return primary.appliance.store?.tables().snapshot.serials.entries[key]?.serial
        }
        let firstSerial = try #require(wanSerial(primary))

        var secondaries: [SecondaryServer] = []
        for kind in SecondaryServer.Kind.allCases {
            guard
                let server = try SecondaryServer(
                    kind, port: ports[kind]!, zone: "example.com", primaryPort: primaryPort, keyName: "xfr-\(kind)",
                    secret: Self.secret)
            else { continue }
            secondaries.append(server)
        }
        let lanCopy = try SecondaryServer(
            .nsd, port: lanPort, zone: "example.com", primaryPort: primaryPort, keyName: "lan-key",
            secret: Self.lanSecret)
        let wrong = try SecondaryServer(
            .nsd, port: wrongPort, zone: "example.com", primaryPort: primaryPort, keyName: "xfr-nsd",
            secret: Self.wrongSecret)

        // The first transfer: each serves the wan view's data.
        for server in secondaries {
            #expect(
                server.waitFor("reverseproxy.example.com", "A", ["203.0.113.10"], seconds: 15),
                "\(server.kind) did not get the zone: \(server.logText)")
            #expect(server.short("www.example.com", "CNAME") == ["reverseproxy.example.com."])
            #expect(server.short("media.example.com", "CNAME").isEmpty, "a LAN-only site stays off the wan copy")
        }
        if let lanCopy {
            #expect(
                lanCopy.waitFor("reverseproxy.example.com", "A", ["192.0.2.42"], seconds: 15),
                "the lan-bound secondary: \(lanCopy.logText)")
            #expect(lanCopy.short("media.example.com", "CNAME") == ["reverseproxy.example.com."])
        }

        // The WAN address changes through the DynDNS path: NOTIFY, then IXFR, then the new address. The
        // SOA refresh is an hour, so only NOTIFY can bring it this fast.
        try echo.setEcho("203.0.113.11")
        updater.poll()
        for server in secondaries {
            #expect(
                server.waitFor("reverseproxy.example.com", "A", ["203.0.113.11"], seconds: 15),
                "\(server.kind) did not follow the change: \(server.logText)")
        }
        let report = primary.service.secondaries.report
        for server in secondaries {
            let entry = report[server.kind.rawValue]
            #expect(
                entry?.lastTransfer?.contains("IXFR of example.com.") == true,
                "\(server.kind): \(String(describing: entry))")
            #expect(entry?.lastNotify?.contains("acknowledged") == true, "\(server.kind): \(String(describing: entry))")
        }
        // The lan copy's data did not change (no NOTIFY owed) and the wrong key got nothing.
        if let lanCopy { #expect(lanCopy.short("reverseproxy.example.com", "A") == ["192.0.2.42"]) }
        if let wrong {
            #expect(wrong.short("example.com", "SOA").isEmpty, "\(wrong.logText)")
            #expect(primary.service.secondaries.refusals.load(ordering: .relaxed) > 0)
        }
        // The journal is on disk for the next start.
        #expect(FileManager.default.fileExists(atPath: "\(directory)/state/journal"))
        // What the operator sees: status (from the state file the notifier keeps), check and explain.
        usleep(400_000)
        let status = try Tool.run(Tool.frontdoor, ["status", directory])
        for server in secondaries {
            #expect(
                status.stdout.contains("  \(server.kind) (127.0.0.1:\(server.port), view wan):"), "\(status.stdout)")
        }
        #expect(status.stdout.contains("last transfer: "), "\(status.stdout)")
        #expect(status.stdout.contains(": acknowledged"), "\(status.stdout)")
        let check = try Tool.run(Tool.frontdoor, ["check", directory])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(
            check.stderr.contains(
                "secondary lan-copy: copies view 'lan' (example.com.) by AXFR/IXFR over TCP; known by TSIG key "
                    + "lan-key. (hmac-sha256); NOTIFY to 127.0.0.1:\(lanPort)"), "\(check.stderr)")
        let explain = try Tool.run(
            Tool.frontdoor, ["explain", "www.example.com", "A", "--from", "198.51.100.1", directory])
        #expect(explain.stdout.contains("copied from this view by: "), "\(explain.stdout) \(explain.stderr)")

        // A restart serves the same wan view at once (from the address published last), so the serial stays
        // and the journal read back still answers an IXFR from before the change with the change only.
        let restarted = try Primary(directory: directory, port: try freePort(), restoresWAN: true)
        #expect(wanSerial(restarted) == wanSerial(primary))
        if let dig = Tool.find("dig") {
            let ixfr = try Tool.run(
                dig,
                [
                    "@127.0.0.1", "-p", "\(restarted.port)", "example.com", "IXFR=\(firstSerial)", "+nocmd",
                    "+nostats", "-y", "hmac-sha256:xfr-nsd:\(Self.secret)",
                ])
            let records = ixfr.stdout.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }
            #expect(records.filter { $0.contains("\tSOA\t") }.count == 4, "\(ixfr.stdout)")
            #expect(records.contains { $0.hasSuffix("\tA\t203.0.113.11") } && records.count == 7, "\(ixfr.stdout)")
        }
    }

    /// The 50,000-site model reaches a real secondary whole: NSD pulls the wan view by AXFR, and what NSD then
    /// transfers on equals `frontdoor export` record for record (canonical form by named-compilezone).
    @Test func theFiftyThousandSiteModelReachesASecondaryWhole() throws {
        guard let dig = Tool.find("dig"), let compile = Tool.find("named-compilezone") else {
            return Tool.skip("dig and named-compilezone", package: "dnsutils bind9-utils")
        }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let primaryPort = try freePort()
        let nsdPort = try freePort()
        try Self.writeKey("xfr-nsd", Self.secret, to: "\(directory)/xfr.key")
        try """
        view lan 192.0.2.0/24
        view wan *
        secondary copy 127.0.0.1:\(nsdPort) view=wan key=xfr.key
        """.write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        var zone = "$ORIGIN example.com.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1\n"
        zone += "@ MX 10 mail\nmail A 192.0.2.25\n@ TXT \"v=spf1 -all\"\n"
        for index in 0..<50_000 { zone += "$SITE site\(index) http://192.0.2.\(index % 250 + 1):80\n" }
        try zone.write(toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        let primary = try Primary(directory: directory, port: primaryPort)
        guard
            let nsd = try SecondaryServer(
                .nsd, port: nsdPort, zone: "example.com", primaryPort: primaryPort, keyName: "xfr-nsd",
                secret: Self.secret)
        else { return }
        #expect(
            nsd.waitFor("site49999.example.com", "CNAME", ["reverseproxy.example.com."], seconds: 60),
            "NSD did not get the zone: \(nsd.logText)")
        let copy = try Tool.run(dig, ["@127.0.0.1", "-p", "\(nsd.port)", "example.com", "AXFR", "+onesoa"])
        let snapshot = try #require(primary.appliance.compiledSnapshot)
        let wan = try #require(snapshot.view(named: "wan"))
        let exported = try #require(exportZone(wan, try DomainName("example.com.")))
        try copy.stdout.write(toFile: "\(directory)/copy.txt", atomically: true, encoding: .utf8)
        try exported.write(toFile: "\(directory)/export.txt", atomically: true, encoding: .utf8)
        func canonical(_ file: String) throws -> [Substring] {
            let outcome = try Tool.run(compile, ["-q", "-i", "none", "-s", "full", "-o", "-", "example.com", file])
            return outcome.stdout.split(separator: "\n").sorted()
        }
        let copied = try canonical("\(directory)/copy.txt")
        let original = try canonical("\(directory)/export.txt")
        #expect(original.count == 50_006)
        #expect(copied == original, "NSD's copy differs from the export (\(copied.count) vs \(original.count) records)")
    }
}
