import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Answers per view, stated as zone text: what a client in that view gets for each question.
@Suite struct AnswerTests {
    static let snapshot: Snapshot? = {
        let zones = ["sites.zone", "syntax.zone", "delegation.zone"].map { name in
            (name, Fixtures.text("Tests/Fixtures/zones/ok/\(name)"))
        }
        return Fixtures.compile(zones: zones).snapshot
    }()

    static let exampleSOA =
        "example.com. 300 IN SOA reverseproxy.example.com. hostmaster.example.com. 2024060100 3600 900 1209600 300"
    static let homeSOA = "home.arpa. 300 IN SOA ns1.home.arpa. hostmaster.home.arpa. 2024060100 7200 900 1209600 300"

    func answer(_ question: String, from client: String) throws -> [String] {
        let snapshot = try #require(Self.snapshot)
        let parts = question.split(separator: " ")
        let address = try #require(IPAddress(client))
        let view = try #require(snapshot.view(for: address))
        let type = try #require(RecordType(mnemonic: String(parts[1])))
        return Fixtures.answerLines(view.lookup(try DomainName(String(parts[0])), type))
    }

    @Test(arguments: [
        // The seed story: a site is a CNAME to the proxy record, whose address depends on the view.
        (
            "myserver.example.com. A", "192.0.2.100",
            [
                "NOERROR", "myserver.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 192.0.2.42",
            ]
        ),
        (
            "myserver.example.com. A", "198.51.100.7",
            [
                "NOERROR", "myserver.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 203.0.113.1",
            ]
        ),
        // The WAN view has no AAAA for the proxy: NODATA, never a leaked address.
        (
            "myserver.example.com. AAAA", "198.51.100.7",
            [
                "NODATA", "myserver.example.com. 300 IN CNAME reverseproxy.example.com.", ";authority", exampleSOA,
            ]
        ),
        (
            "myserver.example.com. AAAA", "2001:db8:1::5",
            [
                "NOERROR", "myserver.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN AAAA 2001:db8:1::42",
            ]
        ),
        // A LAN-only site and LAN-only records do not exist for the WAN.
        ("nas.example.com. A", "198.51.100.7", ["NXDOMAIN", ";authority", exampleSOA]),
        ("printer.example.com. A", "198.51.100.7", ["NXDOMAIN", ";authority", exampleSOA]),
        ("printer.example.com. A", "192.0.2.100", ["NOERROR", "printer.example.com. 300 IN A 192.0.2.50"]),
        ("status.example.com. TXT", "192.0.2.100", ["NXDOMAIN", ";authority", exampleSOA]),
        // Chains of two CNAMEs, and a CNAME to a LAN-only site inside the LAN view.
        (
            "www.example.com. A", "198.51.100.7",
            [
                "NOERROR", "www.example.com. 300 IN CNAME myserver.example.com.",
                "myserver.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 203.0.113.1",
            ]
        ),
        (
            "files.example.com. A", "192.0.2.100",
            [
                "NOERROR", "files.example.com. 300 IN CNAME nas.example.com.",
                "nas.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 192.0.2.42",
            ]
        ),
        // Asking for the CNAME itself stops there.
        ("www.example.com. CNAME", "192.0.2.100", ["NOERROR", "www.example.com. 300 IN CNAME myserver.example.com."]),
        // A wildcard site matches any depth below it (RFC 4592), the owner taking the asked name.
        (
            "grafana.lab.example.com. A", "192.0.2.100",
            [
                "NOERROR", "grafana.lab.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 192.0.2.42",
            ]
        ),
        (
            "a.b.lab.example.com. A", "198.51.100.7",
            [
                "NOERROR", "a.b.lab.example.com. 300 IN CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 IN A 203.0.113.1",
            ]
        ),
        // The wildcard's parent is an empty non-terminal: NODATA, not NXDOMAIN.
        ("lab.example.com. A", "192.0.2.100", ["NODATA", ";authority", exampleSOA]),
        // The apex site is flattened to the proxy's addresses beside SOA, NS and MX.
        ("example.com. A", "198.51.100.7", ["NOERROR", "example.com. 300 IN A 203.0.113.1"]),
        ("example.com. MX", "198.51.100.7", ["NOERROR", "example.com. 300 IN MX 10 mail.provider.example."]),
        (
            "example.com. NS", "198.51.100.7",
            [
                "NOERROR", "example.com. 300 IN NS reverseproxy.example.com.", ";additional",
                "reverseproxy.example.com. 60 IN A 203.0.113.1",
            ]
        ),
        // Names outside every served zone are not ours: forwarded for the LAN, refused for the WAN.
        ("www.debian.org. A", "192.0.2.100", ["NOTAUTH"]),
        // RFC 1035 data of every kind, with additional addresses for in-zone targets.
        (
            "mail.home.arpa. MX", "192.0.2.100",
            [
                "NOERROR", "mail.home.arpa. 3600 IN MX 10 mx1.home.arpa.", ";additional",
                "mx1.home.arpa. 3600 IN A 192.0.2.25",
            ]
        ),
        (
            "_sip._tcp.home.arpa. SRV", "192.0.2.100",
            [
                "NOERROR", "_sip._tcp.home.arpa. 3600 IN SRV 10 60 5060 sip.home.arpa.", ";additional",
                "sip.home.arpa. 3600 IN A 192.0.2.60",
            ]
        ),
        ("x.wild.home.arpa. TXT", "192.0.2.100", ["NOERROR", "x.wild.home.arpa. 3600 IN TXT \"wildcard\""]),
        ("x.wild.home.arpa. A", "192.0.2.100", ["NODATA", ";authority", homeSOA]),
        ("down.sub.home.arpa. A", "192.0.2.100", ["NODATA", ";authority", homeSOA]),
        ("nothing.home.arpa. A", "192.0.2.100", ["NXDOMAIN", ";authority", homeSOA]),
        (
            "alias.home.arpa. AAAA", "192.0.2.100",
            [
                "NOERROR", "alias.home.arpa. 3600 IN CNAME www.home.arpa.", "www.home.arpa. 700 IN AAAA 2001:db8::80",
            ]
        ),
        (
            "generic.home.arpa. TYPE65400", "192.0.2.100",
            ["NOERROR", "generic.home.arpa. 3600 IN TYPE65400 \\# 4 0a000001"]
        ),
        // Below a zone cut: a referral with glue.
        (
            "www.child.example.net. A", "192.0.2.100",
            [
                "REFERRAL", ";authority", "child.example.net. 300 IN NS ns.child.example.net.", ";additional",
                "ns.child.example.net. 300 IN A 192.0.2.54",
            ]
        ),
    ])
    func answerDependsOnView(question: String, client: String, expected: [String]) throws {
        #expect(try self.answer(question, from: client) == expected)
    }

    @Test func negativeAnswersCarryTheRFC2308TTL() throws {
        // SOA TTL 3600 with MINIMUM 300: the SOA in a negative answer lives min(3600, 300) seconds.
        let lines = try self.answer("nothing.home.arpa. A", from: "192.0.2.1")
        #expect(lines.last?.hasPrefix("home.arpa. 300 IN SOA") == true)
    }

    @Test func theFirstMatchingViewWins() throws {
        let snapshot = try #require(Self.snapshot)
        let names = ["127.0.0.1", "127.0.0.2", "::ffff:192.0.2.9"].map {
            IPAddress($0).flatMap(snapshot.view(for:))?.name
        }
        #expect(names == ["lan", "wan", "lan"])
    }

    @Test func routesFollowSitesAndTheirViews() throws {
        let snapshot = try #require(Self.snapshot)
        let lan = try #require(snapshot.view(named: "lan"))
        let wan = try #require(snapshot.view(named: "wan"))
        let nas = try #require(snapshot.routes.route(host: "NAS.example.com:80"))
        #expect(nas.backends.map(\.description) == ["http://192.0.2.10:5000"])
        #expect(nas.isVisible(to: lan) && !nas.isVisible(to: wan))
        let app = try #require(snapshot.routes.route(host: "myapp.example.com"))
        #expect(app.balance == .leastConnections && app.healthPath == "/healthz")
        #expect(app.backends.map(\.description) == ["http://192.0.2.70:80", "http://192.0.2.71:8080"])
        #expect(
            snapshot.routes.route(host: "x.lab.example.com")?.backends.map(\.description) == [
                "http://[2001:db8:1::7]:8000"
            ])
        #expect(snapshot.routes.route(host: "example.com")?.name.description == "example.com.")
        #expect(snapshot.routes.route(host: "reverseproxy.example.com") == nil)
    }
}
