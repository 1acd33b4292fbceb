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
