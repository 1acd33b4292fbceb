import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Model-wide checks that need a particular config beside the zone.
@Suite struct ValidatorTests {
    func codes(_ zone: String, config: String = Fixtures.config) -> [String] {
        Fixtures.compile(zones: [("z.zone", zone)], config: config).diagnostics.sorted.map {
            "\($0.location.line) \($0.severity.rawValue) \($0.code.rawValue)"
        }
    }

    @Test func wanAutoNeedsWANDetection() {
        let config = "view lan 192.0.2.0/24 recursion\nview wan *\nupstream 192.0.2.1\n"
        #expect(
            self.codes("$PROXY reverseproxy lan=192.0.2.42 wan=auto\n", config: config) == [
                "1 error wan-auto-without-detection"
            ])
    }

    @Test func recursionNeedsAnUpstream() {
        let config = "view lan 192.0.2.0/24 recursion\nview wan *\n"
        #expect(
            self.codes("$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1\n", config: config) == [
                "1 error no-upstream"
            ])
    }

    /// Issue 17, point 3: an address the internet cannot reach in the view the internet gets.
    @Test(.bug(id: "17")) func aPrivateAddressForTheWANViewIsWarnedAbout() {
        let config = "view lan 192.0.2.0/24 recursion\nview wan *\nupstream 192.0.2.1\n"
        for (address, kind) in [
            ("192.168.1.5", "a private address"), ("100.64.3.4", "a carrier-grade NAT address"),
            ("127.0.0.1", "a loopback"), ("fd00::5", "a private address"),
        ] {
            let result = Fixtures.compile(
                zones: [("z.zone", "$PROXY reverseproxy lan=192.0.2.42 wan=\(address)\n")], config: config)
            let texts = result.diagnostics.warnings.map(\.message)
            #expect(result.diagnostics.warnings.map(\.code) == [.unroutableWAN], "\(address)")
            #expect(
                texts.first?.contains("gives view 'wan' (every other client, the internet) \(address): \(kind)")
                    == true, "\(texts)")
        }
        // Public and documentation addresses, and the LAN view's private one, are as they should be.
        #expect(self.codes("$PROXY reverseproxy lan=192.168.1.5 wan=203.0.113.1,8.8.8.8\n", config: config).isEmpty)
    }

    /// Issue 17, point 3: recursion for the internet under another name, and an upstream that is Frontdoor
    /// itself.
    @Test(.bug(id: "17")) func recursionReachAndForwardingLoops() {
        let zone = "$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1\n"
        func codes(_ config: String) -> [String] {
            self.codes(zone, config: config + "view wan *\n").map { String($0.drop { $0 != " " }.dropFirst()) }
        }
        #expect(codes("view lan 0.0.0.0/0 recursion\nupstream 192.0.2.1\n") == ["error open-resolver"])
        #expect(codes("view lan ::/0 recursion\nupstream 192.0.2.1\n") == ["error open-resolver"])
        #expect(codes("view lan 10.0.0.0/7 recursion\nupstream 192.0.2.1\n") == ["error open-resolver"])
        #expect(codes("view lan 8.8.8.0/24 recursion\nupstream 192.0.2.1\n") == ["warning open-resolver"])
        #expect(codes("view lan 10.0.0.0/8 2001:db8:1::/48 2a02:1234::/32 recursion\nupstream 192.0.2.1\n").isEmpty)
        // The default listeners take every address on port 53: 127.0.0.1 and ::1 there are Frontdoor itself.
        #expect(codes("view lan 10.0.0.0/8 recursion\nupstream 127.0.0.1\n") == ["error forwarding-loop"])
        #expect(codes("view lan 10.0.0.0/8 recursion\nupstream [::1]:53\n") == ["error forwarding-loop"])
        #expect(codes("view lan 10.0.0.0/8 recursion\nupstream 127.0.0.1:5353\n").isEmpty)
        #expect(
            codes("listen dns 192.0.2.42:53\nview lan 10.0.0.0/8 recursion\nupstream 192.0.2.42\n")
                == ["error forwarding-loop"])
        #expect(codes("listen dns 192.0.2.42:53\nview lan 10.0.0.0/8 recursion\nupstream 127.0.0.1\n").isEmpty)
        // A bad upstream is reported once, not again as "no upstream".
        #expect(codes("view lan 10.0.0.0/8 recursion\nupstream 192.0.2.1:53x\n") == ["error bad-address"])
    }

    @Test func aSiteNeedsAProxyRecord() {
        #expect(
            self.codes("$TTL 60\n@ NS ns1\nns1 A 192.0.2.53\n$SITE app http://192.0.2.69:80\n") == ["4 error no-proxy"])
    }

    @Test func aSiteMayNameAProxyThatExists() {
        #expect(
            self.codes(
                "$PROXY rp lan=192.0.2.42 wan=203.0.113.1\n$SITE app http://192.0.2.69:80 proxy=other.home.arpa.\n")
                == ["2 error no-proxy"])
    }

    @Test func aProxyWithoutAnAddressForAViewIsAWarning() {
        #expect(self.codes("$PROXY reverseproxy lan=192.0.2.42\n") == ["1 warning no-proxy"])
    }

    @Test func sitesAndTheProxyMustLieInTheirZone() {
        let zone =
            "$PROXY rp.example.org. lan=192.0.2.42 wan=203.0.113.1\n$SITE app.example.org. http://192.0.2.69:80\n"
        let codes = self.codes(zone)
        #expect(codes.contains("1 error out-of-zone") && codes.contains("2 error out-of-zone"))
    }

    @Test func aSiteNamedLikeTheProxyIsRefused() {
        #expect(
            self.codes("$PROXY rp lan=192.0.2.42 wan=203.0.113.1\n$SITE rp http://192.0.2.69:80\n") == [
                "2 error site-has-records"
            ])
    }

    @Test func theImplicitViewServesEveryoneWithoutRecursion() throws {
        let result = Fixtures.compile(zones: [("z.zone", "@ NS ns1\nns1 A 192.0.2.53\n")], config: "")
        let snapshot = try #require(result.snapshot)
        #expect(snapshot.views.map(\.name) == ["default"])
        #expect(snapshot.views[0].matchesAll && !snapshot.views[0].recursion)
    }

    @Test func aSiteInOneViewOnlyAndARecordPointingAtItFromEverywhere() {
        let zone =
            "$PROXY rp lan=192.0.2.42 wan=203.0.113.1\n$SITE nas http://192.0.2.10:80 views=lan\n$TTL 60\n@ MX 10 nas\n"
        #expect(self.codes(zone) == ["4 error hidden-site-reference"])
    }

    @Test func aSiteVisibleOnlyToAViewWithoutAProxyAddressStillCompiles() throws {
        let result = Fixtures.compile(zones: [
            ("z.zone", "$PROXY rp lan=192.0.2.42 wan=auto\n$SITE app http://192.0.2.69:80\n")
        ])
        // Before WAN detection the proxy name exists with no address: NODATA, not NXDOMAIN.
        let wan = try #require(result.snapshot?.view(named: "wan"))
        let lines = Fixtures.answerLines(wan.lookup(try DomainName("app.home.arpa."), .a))
        #expect(lines.first == "NODATA")
    }
}
