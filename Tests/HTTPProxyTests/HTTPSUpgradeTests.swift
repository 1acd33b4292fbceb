import HTTPProxy
import HTTPWire
import TestSupport
import Testing
import ZoneModel

/// Plain HTTP to a site HTTPS serves: a 308 to the same place over https, with the exceptions.
@Suite struct HTTPSUpgradeTests {
    static let snapshot = Fixtures.compile(
        zones: [
            (
                "example.com.zone",
                """
                ; apex: example.com.
                $ORIGIN example.com.
                $TTL 300
                $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
                $SITE www http://192.0.2.69:80
                $SITE plain http://192.0.2.69:80 https=off
                $SITE nocert http://192.0.2.69:80
                $SITE *.lab http://192.0.2.69:80
                """
            )
        ]
    ).snapshot

    func route(_ request: String, port: UInt16 = 443) throws -> RouteDecision {
        let snapshot = try #require(Self.snapshot)
        // What the worker builds: the sites a certificate covers that did not opt out.
        let covered = snapshot.routes.sites.filter {
            $0.httpsRedirect && ["www.example.com.", "*.lab.example.com."].contains($0.name.description)
        }
        let upgrade = HTTPSUpgrade(sites: Set(covered.map(\.name)), port: port)
        let bytes = Array(request.utf8)
        return try bytes.withUnsafeBytes { buffer in
            let head = try #require(try HTTPRequestParser.parse(buffer))
            return RequestRouter.route(
                head, in: buffer, client: try #require(IPAddress("192.0.2.9")), snapshot: snapshot, upgrade: upgrade)
        }
    }

    @Test(
        .bug(id: "15"),
        arguments: [
            ("GET /a/b?c=d HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 443, "https://www.example.com/a/b?c=d"),
            ("GET / HTTP/1.1\r\nHost: WWW.Example.com:80\r\n\r\n", 443, "https://WWW.Example.com/"),
            ("GET /x HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n", 8443, "https://www.example.com:8443/x"),
            ("GET http://www.example.com:80/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 443, "https://www.example.com/p?q"),
            ("GET http://www.example.com?q HTTP/1.1\r\nHost: other\r\n\r\n", 443, "https://www.example.com/?q"),
            ("HEAD /x HTTP/1.1\r\nHost: git.lab.example.com\r\n\r\n", 443, "https://git.lab.example.com/x"),
            (
                "GET /.well-known/acme-challengeX HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 443,
                "https://www.example.com/.well-known/acme-challengeX"
            ),
        ])
    func redirectsToTheSamePlaceOverHTTPS(request: String, port: UInt16, location: String) throws {
        #expect(try self.route(request, port: port) == .redirect(location: Array(location.utf8)))
    }

    @Test(
        .bug(id: "15"),
        arguments: [
            "GET /.well-known/acme-challenge/token HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: plain.example.com\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: nocert.example.com\r\n\r\n",
        ])
    func whatStaysOnPlainHTTP(request: String) throws {
        guard case .forward = try self.route(request) else {
            Issue.record("forwarded, not redirected: \(request)")
            return
        }
    }

    @Test(.bug(id: "15")) func unknownAndHiddenSitesAreAnsweredAsBefore() throws {
        #expect(try self.route("GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n") == .respond(status: 421))
    }

    @Test(.bug(id: "15")) func theRedirectIsA308WithItsLocation() {
        let page = String(
            decoding: ProxyResponses.errorPage(
                308, close: false, location: Array("https://www.example.com/a".utf8)), as: UTF8.self)
        #expect(page.hasPrefix("HTTP/1.1 308 Permanent Redirect\r\n"))
        #expect(page.contains("\r\nLocation: https://www.example.com/a\r\n"))
    }
}
