import DNSServer
import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The DNS service over real sockets on loopback, asked by the real `dig` and `kdig`.
///
/// 127.0.0.1 is in the fixture config's `lan` view (with recursion); 127.0.0.2 falls in `wan`.
@Suite(.serialized) struct DNSEndToEndTests {
    static let bigZone =
        "; apex: big.example.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n"
        + (0..<40).map { "big TXT \"\(String(repeating: "x", count: 40))-\($0)\"" }.joined(separator: "\n") + "\n"

    static func zones() -> [(name: String, text: String)] {
        ["sites.zone", "syntax.zone", "delegation.zone"].map { ($0, Fixtures.text("Tests/Fixtures/zones/ok/\($0)")) }
            + [("big.zone", Self.bigZone), ("edge.zone", Self.edgeZone)]
    }

    /// What issue 14 found answered differently from NSD, Knot and BIND: a CNAME into a wildcard, DS at a
    /// delegation point (with a DS RRset and without).
    static let edgeZone = """
        ; apex: edge.example.
        $TTL 300
        @ NS ns1
        ns1 A 192.0.2.53
        *.w A 192.0.2.99
        cwild CNAME x.w
        del NS ns.del
        ns.del A 192.0.2.55
        signed NS ns.del
        signed TYPE43 \\# 36 3039 0d 02 \(String(repeating: "ab", count: 32))
        """

    @Test func splitHorizonAnswersDependOnTheSourceAddress() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        guard let lan = try Dig.ask(port: server.port, ["myserver.example.com", "A"], source: "127.0.0.1"),
            let wan = try Dig.ask(port: server.port, ["myserver.example.com", "A"], source: "127.0.0.2")
        else { return }
        #expect(lan.status == "NOERROR" && lan.flags == ["qr", "aa", "rd", "ra"], "\(lan.output)")
        #expect(
            lan.answer == [
                "myserver.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 192.0.2.42",
            ])
        #expect(wan.flags == ["qr", "aa", "rd"], "the WAN view never offers recursion")
        #expect(wan.answer.last == "reverseproxy.example.com. 60 IN A 203.0.113.1")
    }

    @Test func negativeAnswersCarryTheSOA() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        guard let nx = try Dig.ask(port: server.port, ["nas.example.com", "A"], source: "127.0.0.2"),
            let noData = try Dig.ask(port: server.port, ["myserver.example.com", "AAAA"], source: "127.0.0.2")
        else { return }
        #expect(nx.status == "NXDOMAIN" && nx.answer.isEmpty)
        #expect(
            nx.authority == [
                "example.com. 300 IN SOA reverseproxy.example.com. hostmaster.example.com. \(Fixtures.dateSerial) 3600 900 1209600 300"
            ])
        #expect(
            noData.status == "NOERROR"
                && noData.answer == ["myserver.example.com. 300 IN CNAME reverseproxy.example.com."])
        #expect(noData.authority.count == 1)
    }

    @Test func kdigSeesTheSameAnswersOverUDPAndTCP() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        guard
            let udp = try Dig.ask(
                port: server.port, ["grafana.lab.example.com", "A"], source: "127.0.0.1", tool: "kdig"),
            let tcp = try Dig.ask(
                port: server.port, ["+tcp", "grafana.lab.example.com", "A"], source: "127.0.0.1", tool: "kdig")
        else { return }
        let expected = [
            "grafana.lab.example.com. 300 IN CNAME reverseproxy.example.com.",
            "reverseproxy.example.com. 60 IN A 192.0.2.42",
        ]
        #expect(udp.answer == expected, "\(udp.output)")
        #expect(tcp.answer == expected, "\(tcp.output)")
    }

    @Test func truncatedOverUDPThenWholeOverTCP() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        guard let result = try Dig.ask(port: server.port, ["+noedns", "big.big.example", "TXT"]) else { return }
        defer { withExtendedLifetime(server) {} }
        #expect(result.output.contains("Truncated, retrying in TCP mode"))
        #expect(result.answer.count == 40)
        guard let ignored = try Dig.ask(port: server.port, ["+noedns", "+ignore", "big.big.example", "TXT"]) else {
            return
        }
        #expect(ignored.flags.contains("tc") && ignored.answer.isEmpty)
    }

    @Test func tcpCarriesSeveralPipelinedQueriesOnOneConnection() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        // kdig sends all questions on one TCP connection back to back.
        guard let kdig = Tool.find("kdig") else { return Tool.skip("kdig", package: "knot-dnsutils") }
        let outcome = try Tool.run(
            kdig,
            [
                "@127.0.0.1", "-p", "\(server.port)", "+tcp", "+keepopen", "myserver.example.com", "A",
                "myapp.example.com", "A",
                "example.com", "MX",
            ])
        #expect(outcome.stdout.components(separatedBy: "status: NOERROR").count == 4, "\(outcome.stdout)")
        #expect(
            outcome.stdout.contains("example.com.       \t300\tIN\tMX\t10 mail.provider.example.")
                || outcome.stdout.contains("10 mail.provider.example."))
    }

    @Test func edgeCasesOfTheProtocol() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        guard let axfr = try Dig.ask(port: server.port, ["example.com", "AXFR"]),
            let badVersion = try Dig.ask(port: server.port, ["+edns=1", "+noednsneg", "example.com", "A"]),
            let chaos = try Dig.ask(port: server.port, ["version.bind", "TXT", "CH"]),
            let any = try Dig.ask(port: server.port, ["example.com", "ANY"])
        else { return }
        #expect(axfr.output.contains("Transfer failed"))
        #expect(badVersion.status == "BADVERS", "\(badVersion.output)")
        #expect(chaos.status == "REFUSED")
        #expect(Set(any.answer.map { $0.split(separator: " ")[3] }).count == 1, "RFC 8482: one RRset for ANY")
    }

    @Test func forwardsForTheLANAndRefusesTheWAN() throws {
        let upstreamZone = """
            $ORIGIN example.org.
            $TTL 120
            @ SOA ns hostmaster 1 3600 900 1209600 60
            @ NS ns
            ns A 192.0.2.53
            www A 198.51.100.80
            """
        guard let nsd = try NSDServer(zones: [("example.org.", upstreamZone)]) else { return }
        defer { withExtendedLifetime(nsd) {} }
        let upstream = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: nsd.port)
        let proxied =
            Self.zones() + [
                ("link.zone", "; apex: link.example.\n$TTL 60\n@ NS ns\nns A 192.0.2.1\nout CNAME www.example.org.\n")
            ]
        // One worker: each worker keeps its own cache, and the countdown below must hit the same one.
        let server = try FrontdoorDNS(zones: proxied, upstreams: [upstream], workers: 1)
        defer { withExtendedLifetime(server) {} }
        guard let lan = try Dig.ask(port: server.port, ["www.example.org", "A"], source: "127.0.0.1"),
            let wan = try Dig.ask(port: server.port, ["www.example.org", "A"], source: "127.0.0.2"),
            let negative = try Dig.ask(port: server.port, ["nothing.example.org", "A"], source: "127.0.0.1"),
            let chained = try Dig.ask(port: server.port, ["out.link.example", "A"], source: "127.0.0.1")
        else { return }
        #expect(lan.status == "NOERROR" && lan.flags.isSuperset(of: ["qr", "rd", "ra"]) && !lan.flags.contains("aa"))
        #expect(lan.answer == ["www.example.org. 120 IN A 198.51.100.80"], "\(lan.output)")
        #expect(wan.status == "REFUSED" && wan.answer.isEmpty)
        #expect(negative.status == "NXDOMAIN" && negative.authority.first?.contains("SOA") == true)
        // Our CNAME leads out of our zones: the chain comes first, the upstream answer completes it.
        #expect(
            chained.answer == [
                "out.link.example. 60 IN CNAME www.example.org.", "www.example.org. 120 IN A 198.51.100.80",
            ], "\(chained.output)")
        // A second ask comes from the cache, its TTL counting down (never up).
        sleep(2)
        guard let again = try Dig.ask(port: server.port, ["www.example.org", "A"], source: "127.0.0.1") else { return }
        let ttl = Int(again.answer.first?.split(separator: " ")[1] ?? "") ?? 999
        #expect(ttl < 120 && ttl >= 115, "\(again.output)")
    }

    @Test func deadUpstreamsGiveSERVFAILAtTheDeadlineAndALiveOneIsUsed() throws {
        // An upstream that never answers: a bound socket nobody reads.
        let silentPort = try freePort()
        let silent = try bindSilentSocket(port: silentPort)
        defer { close(silent) }
        let dead = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: silentPort)
        let server = try FrontdoorDNS(zones: Self.zones(), upstreams: [dead]) { options in
            options.upstreamAttemptMilliseconds = 300
            options.upstreamDeadlineMilliseconds = 900
        }
        defer { withExtendedLifetime(server) {} }
        let start = Date()
        guard let failed = try Dig.ask(port: server.port, ["www.example.org", "A"], source: "127.0.0.1") else { return }
        let elapsed = Date().timeIntervalSince(start)
        #expect(failed.status == "SERVFAIL", "\(failed.output)")
        #expect(elapsed < 2.5, "the deadline bounds the wait")

        let upstreamZone =
            "$ORIGIN example.org.\n$TTL 120\n@ SOA ns hostmaster 1 3600 900 1209600 60\n@ NS ns\nns A 192.0.2.53\nwww A 198.51.100.80\n"
        guard let nsd = try NSDServer(zones: [("example.org.", upstreamZone)]) else { return }
        defer { withExtendedLifetime(nsd) {} }
        let live = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: nsd.port)
        let retrying = try FrontdoorDNS(zones: Self.zones(), upstreams: [dead, live]) { options in
            options.upstreamAttemptMilliseconds = 300
            options.upstreamDeadlineMilliseconds = 2000
        }
        defer { withExtendedLifetime(retrying) {} }
        for _ in 0..<3 {
            guard let answer = try Dig.ask(port: retrying.port, ["www.example.org", "A"], source: "127.0.0.1") else {
                return
            }
            #expect(answer.status == "NOERROR" && answer.answer.count == 1, "\(answer.output)")
        }
    }

    @Test func answersMatchNSDServingTheExportedZones() throws {
        guard Tool.find("nsd") != nil else { return Tool.skip("nsd", package: "nsd") }
        let server = try FrontdoorDNS(zones: Self.zones())
        defer { withExtendedLifetime(server) {} }
        let snapshot = try #require(Fixtures.compile(zones: Self.zones()).snapshot)
        for (viewName, source) in [("lan", "127.0.0.1"), ("wan", "127.0.0.2")] {
            let view = try #require(snapshot.view(named: viewName))
            let zones = view.zones.keys.sorted().compactMap { apex in
                exportZone(view, apex).map { (apex: apex.description, text: $0) }
            }
            guard let nsd = try NSDServer(zones: zones) else { return }
            defer { withExtendedLifetime(nsd) {} }
            var names = view.nodes.keys.map(\.description)
            names += [
                "nothing.example.com.", "a.b.lab.example.com.", "x.wild.home.arpa.", "deep.x.wild.home.arpa.",
                "down.sub.home.arpa.", "www.del.edge.example.",
            ]
            // Every question in one dig run per server (one process each, not one per question).
            let questions = names.sorted().flatMap { name in
                ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "SOA", "DS"].map { ["+norec", name, $0] }
            }
            let ours = try #require(try Dig.askAll(port: server.port, questions, source: source))
            let theirs = try #require(try Dig.askAll(port: nsd.port, questions))
            for (index, question) in questions.enumerated() {
                #expect(
                    ours[index].status == theirs[index].status
                        && ours[index].answer.sorted() == theirs[index].answer.sorted(),
                    "\(viewName) \(question[1]) \(question[2])\nours:\n\(ours[index].output)\nNSD's:\n\(theirs[index].output)"
                )
                #expect(!ours[index].status.isEmpty, "an answer came: \(question)")
            }
        }
    }

    /// Issue 14, point 2: common types in their own syntax (HINFO, RP, NAPTR, CERT, DS, SSHFP, DNSKEY, TLSA,
    /// SMIMEA, CDS, CDNSKEY, OPENPGPKEY, URI). NSD serving the same zone text answers byte for byte as
    /// Frontdoor does, and named-checkzone accepts Frontdoor's export of it.
    @Test(.bug(id: "14")) func commonTypesInTheirOwnSyntaxMatchNSD() throws {
        guard Tool.find("nsd") != nil else { return Tool.skip("nsd", package: "nsd") }
        let key =
            "AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8zlj65KYatR5wBWMrh18TYzK/ig6Y1t5YTWCO68bynorpNu9fqNFALX7bVl9/gybA0v0EhF+dgXmoUfRX7ksMGgBvtfa2/Y9a3klXNLqkTszIQ4PEMVCjtryl19Be9/PkFeC9ITjgMRQsQhmB39eyMYnal+f3bUxKk4fq7cuEU0dbRpue4H/N6jPucXWOwiMAkTJhghqgy+o9FfIp+tR/emKao94/wpVXDcPf5B18j7xz2SvTTxiuqCzCMtsxnikZHcoh1j4g+Y1B8zIMIvrEM+pZGhh/Yuf4RwCBgaYCi9hpiMWVvS4WBzx0/lU="
        let zone = """
            $ORIGIN types.example.
            $TTL 300
            @ NS ns1
            ns1 A 192.0.2.53
            @ DNSKEY 257 3 8 \(key)
            @ CDNSKEY 257 3 8 \(key)
            @ CDS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
            child NS ns.child
            ns.child A 192.0.2.54
            child DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
            host HINFO "PC-Intel" "Linux"
            host RP admin.types.example. host.types.example.
            host SSHFP 4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789
            sip NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.types.example.
            _443._tcp.www TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
            mail SMIMEA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
            mail OPENPGPKEY \(key)
            cert CERT PKIX 12345 8 \(key)
            cert2 CERT 3 12345 8 \(key)
            _http._tcp URI 10 1 "http://www.types.example/path"
            """
        let server = try FrontdoorDNS(zones: [("types.zone", "; apex: types.example.\n" + zone)])
        defer { withExtendedLifetime(server) {} }
        guard let nsd = try NSDServer(zones: [("types.example.", "@ SOA ns1 hostmaster 1 3600 600 86400 60\n" + zone)])
        else { return }
        defer { withExtendedLifetime(nsd) {} }
        let questions: [(String, String)] = [
            ("types.example", "DNSKEY"), ("types.example", "CDNSKEY"), ("types.example", "CDS"),
            ("child.types.example", "DS"), ("host.types.example", "HINFO"), ("host.types.example", "RP"),
            ("host.types.example", "SSHFP"), ("sip.types.example", "NAPTR"),
            ("_443._tcp.www.types.example", "TLSA"), ("mail.types.example", "SMIMEA"),
            ("mail.types.example", "OPENPGPKEY"), ("cert.types.example", "CERT"), ("cert2.types.example", "CERT"),
            ("_http._tcp.types.example", "URI"),
        ]
        for (name, type) in questions {
            guard let ours = try Dig.ask(port: server.port, ["+norec", name, type], source: "127.0.0.1"),
                let theirs = try Dig.ask(port: nsd.port, ["+norec", name, type])
            else { return }
            #expect(ours.status == "NOERROR" && ours.answer.count == 1, "\(name) \(type): \(ours.output)")
            #expect(ours.answer == theirs.answer, "\(name) \(type)\nours:\n\(ours.output)\nNSD's:\n\(theirs.output)")
        }
        // The export prints them in the same syntax, and BIND accepts it.
        let snapshot = try #require(
            Fixtures.compile(zones: [("types.zone", "; apex: types.example.\n" + zone)]).snapshot)
        let view = try #require(snapshot.view(named: "lan"))
        let exported = try #require(exportZone(view, try DomainName("types.example.")))
        #expect(exported.contains("\tIN\tTLSA\t3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"))
        #expect(exported.contains("\tIN\tURI\t10 1 \"http://www.types.example/path\""), "\(exported)")
        if let checker = Tool.find("named-checkzone") {
            let directory = try Tool.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try exported.write(toFile: "\(directory)/types.zone", atomically: true, encoding: .utf8)
            let checked = try Tool.run(
                checker, ["-k", "fail", "-i", "full", "types.example", "\(directory)/types.zone"])
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)\n\(exported)")
        }
    }

    @Test func aReloadUnderLoadDropsNoQuery() throws {
        let server = try FrontdoorDNS(zones: Self.zones())
        guard let dig = Tool.find("dig") else { return Tool.skip("dig", package: "dnsutils") }
        defer { withExtendedLifetime(server) {} }
        // dig -f reads many questions from a file and asks them one after another.
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let batch = (0..<300).map { _ in "myserver.example.com A +short +time=5 +tries=1" }.joined(separator: "\n")
        try batch.write(toFile: directory + "/batch", atomically: true, encoding: .utf8)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: dig)
        load.arguments = ["@127.0.0.1", "-p", "\(server.port)", "-f", directory + "/batch"]
        let pipe = Pipe()
        load.standardOutput = pipe
        try load.run()
        for round in 0..<10 {
            var zones = Self.zones()
            zones.append(("extra.zone", "; apex: extra.example.\n$TTL 60\n@ NS ns\nns A 192.0.2.\(round + 1)\n"))
            try server.publish(zones: zones)
            usleep(20_000)
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        load.waitUntilExit()
        let lines = output.split(separator: "\n")
        #expect(
            lines.filter { $0 == "192.0.2.42" }.count == 300,
            "every query answered: \(lines.filter { $0 != "192.0.2.42" })")
        #expect(!output.contains("timed out"))
    }
}

/// A UDP socket bound on loopback that never reads: an upstream that does not answer.
func bindSilentSocket(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard withLoopbackAddress(port: port, { bind(fd, $0, $1) }) == 0 else { throw FixtureError(message: "bind failed") }
    return fd
}

/// The exporter, reached through ZoneFile.
func exportZone(_ view: CompiledView, _ apex: DomainName) -> String? {
    ZoneExporter.export(view, apex: apex)
}
