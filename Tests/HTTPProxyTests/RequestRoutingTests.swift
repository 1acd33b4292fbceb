import HTTPProxy
import HTTPWire
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Routing by Host through the shared snapshot, and the head sent to a backend.
@Suite struct RequestRoutingTests {
    static let snapshot = Fixtures.compile(zones: [("sites.zone", Fixtures.text("Tests/Fixtures/zones/ok/sites.zone"))])
        .snapshot

    func route(_ request: String, from client: String) throws -> RouteDecision {
        let snapshot = try #require(Self.snapshot)
        let bytes = Array(request.utf8)
        return try bytes.withUnsafeBytes { buffer in
            let head = try #require(try HTTPRequestParser.parse(buffer))
            return RequestRouter.route(head, in: buffer, client: try #require(IPAddress(client)), snapshot: snapshot)
        }
    }

    @Test func hostPicksTheSiteAndViewsDecideVisibility() throws {
        guard
            case .forward(let site) = try self.route(
                "GET / HTTP/1.1\r\nHost: MyApp.Example.com:80\r\n\r\n", from: "198.51.100.7")
        else {
            Issue.record("myapp should be forwarded")
            return
        }
        #expect(site.name.description == "myapp.example.com.")
        #expect(
            try self.route("GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n", from: "192.0.2.9")
                == .respond(status: 421))
        #expect(
            try self.route("GET / HTTP/1.1\r\nHost: nas.example.com\r\n\r\n", from: "198.51.100.7")
                == .respond(status: 403))
        guard case .forward = try self.route("GET / HTTP/1.1\r\nHost: nas.example.com\r\n\r\n", from: "192.0.2.9")
        else {
            Issue.record("the LAN reaches the LAN-only site")
            return
        }
        // The absolute-form authority wins over Host.
        #expect(
            try self.route(
                "GET http://nas.example.com/x HTTP/1.1\r\nHost: myapp.example.com\r\n\r\n", from: "198.51.100.7")
                == .respond(status: 403))
    }

    func rewrite(_ request: String, client: String = "192.0.2.9", trusted: Bool = false) throws -> String {
        let bytes = Array(request.utf8)
        let out = try bytes.withUnsafeBytes { buffer in
            let head = try #require(try HTTPRequestParser.parse(buffer))
            return RequestRewriter.upstreamHead(
                head, in: buffer, client: try #require(IPAddress(client)), trustedPeer: trusted)
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func hopByHopFieldsGoAndForwardingFieldsCome() throws {
        let request =
            "GET /a?b HTTP/1.1\r\nHost: myapp.example.com\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
            + "X-Secret: 1\r\nTE: trailers\r\nProxy-Connection: x\r\nX-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 6.6.6.6\r\n"
            + "Accept: text/html\r\n\r\n"
        #expect(
            try self.rewrite(request) == """
                GET /a?b HTTP/1.1\r
                Host: myapp.example.com\r
                Accept: text/html\r
                X-Forwarded-For: 192.0.2.9\r
                X-Real-IP: 192.0.2.9\r
                X-Forwarded-Proto: http\r
                X-Forwarded-Host: myapp.example.com\r
                Via: 1.1 frontdoor\r
                Connection: keep-alive\r
                \r

                """)
    }

    @Test(.bug(id: "13")) func forwardedIsTreatedAsXForwardedFor() throws {
        let request =
            "GET / HTTP/1.1\r\nHost: a.example\r\nForwarded: for=203.0.113.66;proto=https\r\n"
            + "forwarded: for=198.51.100.1\r\n\r\n"
        let untrusted = try self.rewrite(request)
        #expect(!untrusted.contains("203.0.113.66") && !untrusted.contains("198.51.100.1"), "\(untrusted)")
        #expect(untrusted.contains("\r\nForwarded: for=192.0.2.9;host=\"a.example\";proto=http\r\n"))
        let trusted = try self.rewrite(request, trusted: true)
        #expect(
            trusted.contains(
                "\r\nForwarded: for=203.0.113.66;proto=https, for=198.51.100.1, for=192.0.2.9;host=\"a.example\";proto=http\r\n"
            ), "\(trusted)")
        let six = try self.rewrite(
            "GET / HTTP/1.1\r\nHost: a.example\r\nForwarded: for=unknown\r\n\r\n", client: "2001:db8::7")
        #expect(six.contains("Forwarded: for=\"[2001:db8::7]\";host="), "RFC 7239 §6: IPv6 bracketed and quoted")
        let none = try self.rewrite("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        #expect(!none.contains("Forwarded: "), "none added where none came: X-Forwarded-* carry the same")
    }

    @Test func aTrustedProxysForwardedForIsExtended() throws {
        let request = "GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 203.0.113.66, 198.51.100.1\r\n\r\n"
        let out = try self.rewrite(request, client: "192.0.2.2", trusted: true)
        #expect(out.contains("X-Forwarded-For: 203.0.113.66, 198.51.100.1, 192.0.2.2\r\n"))
        #expect(out.contains("X-Real-IP: 203.0.113.66\r\n"))
    }

    @Test func absoluteFormBecomesOriginFormAndUpgradesStay() throws {
        let out = try self.rewrite("GET http://a.example HTTP/1.0\r\n\r\n")
        #expect(out.hasPrefix("GET / HTTP/1.1\r\nHost: a.example\r\n"))
        #expect(out.contains("Via: 1.0 frontdoor\r\n"))
        let ws = try self.rewrite(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
        #expect(
            ws.contains("Upgrade: websocket\r\n") && ws.contains("Connection: upgrade\r\n")
                && ws.contains("Sec-WebSocket-Key: k\r\n"))
    }

    /// The head is built into an array of bounded size: the heads that grow most still fit, whole.
    @Test func headsThatGrowTheMostStillFit() throws {
        // An absolute-form target with a long authority (copied into Host and X-Forwarded-Host), many minimal
        // fields (each gains a space), and a trusted X-Forwarded-For whose first entry is copied again.
        let host = String(repeating: "h", count: 2000) + ".example"
        let first = String(repeating: "2", count: 3000)
        var request = "GET http://\(host)/ HTTP/1.1\r\nHost: \(host)\r\nX-Forwarded-For: \(first), 192.0.2.1\r\n"
        for index in 0..<96 { request += "x\(index):v\r\n" }
        request += "\r\n"
        let out = try self.rewrite(request, trusted: true)
        #expect(out.hasPrefix("GET / HTTP/1.1\r\nHost: \(host)\r\n"))
        #expect(out.contains("x95: v\r\n"))
        #expect(out.contains("X-Forwarded-For: \(first), 192.0.2.1, 192.0.2.9\r\n"))
        #expect(out.contains("X-Real-IP: \(first)\r\n"))
        #expect(out.contains("X-Forwarded-Host: \(host)\r\n"))
        #expect(out.hasSuffix("Connection: keep-alive\r\n\r\n"))
    }
}
