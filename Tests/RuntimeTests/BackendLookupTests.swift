import DNSWire
import Runtime
import TestSupport
import Testing
import ZoneModel

/// Named backends: where a name is looked up (the LAN's view of Frontdoor's zones, then upstream), what an
/// upstream's reply means, and how the sites look once names have addresses.
@Suite struct BackendLookupTests {
    static var snapshot: Snapshot? { Self.result.snapshot }
    static let result = Fixtures.compile(
        zones: [
            (
                "example.com.zone",
                """
                ; apex: example.com.
                $ORIGIN example.com.
                $TTL 300
                $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
                $SITE www http://app.example.com:8080 http://192.0.2.9 http://media.lan.test
                $SITE none http://nothere.example.com
                app   60 A 192.0.2.10
                app   60 AAAA 2001:db8::10
                alias 30 CNAME app
                away  CNAME media.lan.test.
                txt   TXT "no address"
                $VIEW wan
                wanonly A 203.0.113.9
                """
            )
        ]
    )

    @Test(.bug(id: "15")) func ownZonesAnswerFirstAsTheLANSeesThem() throws {
        let snapshot = try #require(Self.snapshot, "\(Self.result.diagnostics.all)")
        let view = try #require(BackendLookup.view(of: snapshot))
        #expect(view.name == "lan", "the recursing view")
        func local(_ name: String) throws -> BackendLookup { BackendLookup.local(view, try DomainName(name)) }
        let both: [IPAddress] = [IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!]
        #expect(try local("app.example.com.") == .addresses(both, ttl: 60))
        #expect(try local("alias.example.com.") == .addresses(both, ttl: 30), "the chain's lowest TTL")
        #expect(try local("away.example.com.") == .upstream(try DomainName("media.lan.test.")))
        #expect(try local("media.lan.test.") == .upstream(try DomainName("media.lan.test.")))
        #expect(try local("jellyfin.") == .upstream(try DomainName("jellyfin.")))
        guard case .none(let reason) = try local("nothere.example.com.") else { return #expect(Bool(false)) }
        #expect(reason == "NXDOMAIN in view 'lan'")
        guard case .none(let noData) = try local("txt.example.com.") else { return #expect(Bool(false)) }
        #expect(noData == "no A or AAAA record in view 'lan'")
        guard case .none = try local("wanonly.example.com.") else { return #expect(Bool(false), "not the LAN's") }
    }

    /// Upstream replies as bytes on the wire: what the resolver makes of each.
    @Test(.bug(id: "15")) func upstreamRepliesAreReadCarefully() throws {
        let name = try DomainName("media.lan.test.")
        let other = try DomainName("other.lan.test.")
        func reply(
            rcode: UInt16 = 0, qr: Bool = true, question: DomainName? = nil, type: UInt16 = 1,
            _ answers: [(DomainName, UInt16, UInt32, [UInt8])]
        ) throws -> DNSMessage {
            var writer = MessageWriter(base: 0)
            for value in [0x1234, (qr ? 0x8180 : 0x0100) | rcode, 1, UInt16(answers.count), 0, 0] as [UInt16] {
                writer.writeUInt16(value)
            }
            writer.writeName(question ?? name, compress: false)
            writer.writeUInt16(type)
            writer.writeUInt16(1)
            for (owner, rtype, ttl, data) in answers {
                writer.writeRecord(owner: owner, type: rtype, rrClass: 1, ttl: ttl, data: data)
            }
            return try DNSMessage.decode(writer.bytes)
        }
        let a: [UInt8] = [192, 0, 2, 5]
        var cname = MessageWriter(base: 0)
        cname.writeName(other, compress: false)
        #expect(
            BackendLookup.answer(try reply([(name, 1, 120, a)]), name: name, type: .a)
                == .addresses([IPAddress("192.0.2.5")!], ttl: 120))
        #expect(
            BackendLookup.answer(try reply([(name, 5, 30, cname.bytes), (other, 1, 90, a)]), name: name, type: .a)
                == .addresses([IPAddress("192.0.2.5")!], ttl: 30), "through the CNAME, its TTL counting")
        #expect(
            BackendLookup.answer(try reply([(other, 1, 90, a)]), name: name, type: .a) == .none("no A record"),
            "an address for another name is not this name's")
        #expect(
            BackendLookup.answer(try reply([(name, 1, 120, [1, 2, 3])]), name: name, type: .a) == .none("no A record"))
        #expect(BackendLookup.answer(try reply(rcode: 3, []), name: name, type: .a) == .none("NXDOMAIN"))
        #expect(BackendLookup.answer(try reply(rcode: 2, []), name: name, type: .a) == .failed("rcode 2"))
        let notAReply = BackendLookup.answer(try reply(qr: false, [(name, 1, 120, a)]), name: name, type: .a)
        let otherQuestion = BackendLookup.answer(try reply(question: other, [(other, 1, 9, a)]), name: name, type: .a)
        let otherType = BackendLookup.answer(try reply(type: 28, [(name, 1, 9, a)]), name: name, type: .a)
        for outcome in [notAReply, otherQuestion, otherType] {
            #expect(outcome == .failed("a reply that does not answer the question"))
        }
        #expect(BackendLookup.refresh(ttl: 0) == 5 && BackendLookup.refresh(ttl: 300) == 300)
        #expect(BackendLookup.refresh(ttl: 86_400) == 3600)
    }

    @Test(.bug(id: "15")) func sitesGetOneBackendPerAddressAndNoneWhileUnresolved() throws {
        let snapshot = try #require(Self.snapshot)
        #expect(snapshot.backendNames == ["app.example.com", "media.lan.test", "nothere.example.com"])
        let www = try #require(snapshot.routes.sites.first { $0.name.description == "www.example.com." })
        #expect(
            www.backends.map(\.description) == [
                "http://app.example.com:8080", "http://192.0.2.9:80", "http://media.lan.test:80",
            ])
        let resolved = snapshot.resolvingBackends([
            "app.example.com": [IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!],
            "nothere.example.com": [],
        ])
        let site = try #require(resolved.routes.sites.first { $0.name.description == "www.example.com." })
        #expect(
            site.backends.map(\.description) == [
                "http://app.example.com:8080 (192.0.2.10)", "http://app.example.com:8080 (2001:db8::10)",
                "http://192.0.2.9:80",
            ])
        #expect(site.backends.map(\.address.description) == ["192.0.2.10:8080", "[2001:db8::10]:8080", "192.0.2.9:80"])
        let none = try #require(resolved.routes.sites.first { $0.name.description == "none.example.com." })
        #expect(none.backends.isEmpty, "unresolved: no backend, so a 502")
        #expect(resolved.routes.route(host: Array("www.example.com".utf8))?.backends.count == 3, "routing intact")
    }
}
