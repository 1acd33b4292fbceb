import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// `upstream` lines: plain resolvers and DNS over TLS (issue 18), and what is refused, where.
@Suite struct UpstreamSettingsTests {
    static func compile(_ upstream: String) -> Pipeline.Result {
        Fixtures.compile(
            zones: [("e.zone", "; apex: home.arpa.\n$TTL 60\n@ NS ns\nns A 192.0.2.1\n")],
            config: "view lan 192.0.2.0/24 recursion\nview wan *\n\(upstream)\nserve-stale 12h\n")
    }

    @Test func plainAndTLSUpstreamsKeepTheirOrderAndNames() throws {
        let result = Self.compile(
            "upstream 192.0.2.1 tls://9.9.9.9@dns.quad9.net tls://[2001:db8::53]:8853@DoT.Example.")
        let settings = try #require(result.snapshot?.settings, "\(result.diagnostics.sorted.map(\.description))")
        #expect(settings.upstreams.map(\.description) == ["192.0.2.1:53", "9.9.9.9:853", "[2001:db8::53]:8853"])
        #expect(settings.upstreamTLSNames == [nil, "dns.quad9.net", "dot.example"])
        #expect(settings.serveStale == 43_200)
    }

    @Test(arguments: [
        ("upstream tls://9.9.9.9", "bad DNS-over-TLS upstream 'tls://9.9.9.9'"),
        ("upstream tls://9.9.9.9@", "bad DNS-over-TLS upstream 'tls://9.9.9.9@'"),
        ("upstream tls://nowhere@dns.quad9.net", "bad DNS-over-TLS upstream"),
        ("upstream 192.0.2.1\nserve-stale soon", "serve-stale: 'soon' is not a duration"),
    ])
    func mistakesAreReportedAtTheirLine(line: String, message: String) {
        let messages = Self.compile(line).diagnostics.errors.map(\.message)
        #expect(messages.contains { $0.contains(message) }, "\(messages)")
    }
}
