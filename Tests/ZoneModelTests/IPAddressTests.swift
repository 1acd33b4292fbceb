import Testing
import ZoneModel

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("2001:db8::", "2001:db8::"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ("2001:db8:1::42", "2001:db8:1::42"),
    ])
    func parsesAndPrintsRFC5952(text: String, expected: String) {
        #expect(IPAddress(text)?.description == expected)
    }

    @Test(arguments: [
        "192.0.2", "192.0.2.256", "192.0.2.1.5", "01.2.3.4", "1.2.3.", "", "1..2.3", "2001:db8:::1", ":1::",
        "1:2:3:4:5:6:7:8:9", "2001:db8::1::2", "12345::", "g::1", "1:2:3:4:5:6:7:", "::1.2.3", "1.2.3.4::",
    ])
    func rejectsBadAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func prefixesContainTheirAddressesOnly() throws {
        guard case .success(let lan) = CIDR.parse("192.0.2.0/24"), case .success(let v6) = CIDR.parse("2001:db8:1::/48")
        else {
            Issue.record("prefixes did not parse")
            return
        }
        #expect(lan.contains(try #require(IPAddress("192.0.2.200"))))
        #expect(!lan.contains(try #require(IPAddress("192.0.3.1"))))
        #expect(
            lan.contains(try #require(IPAddress("::ffff:192.0.2.9"))), "dual-stack sockets report IPv4 clients mapped")
        #expect(v6.contains(try #require(IPAddress("2001:db8:1:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db8:2::1"))))
        #expect(!v6.contains(try #require(IPAddress("192.0.2.1"))))
    }

    @Test func prefixWithHostBitsSuggestsTheNetwork() {
        #expect(CIDR.parse("192.0.2.1/24") == .failure(.hostBitsSet(suggestion: "192.0.2.0/24")))
        #expect(CIDR.parse("192.0.2.0/33") == .failure(.badLength))
        #expect(CIDR.parse("2001:db8::/129") == .failure(.badLength))
    }

    @Test func coverageBetweenPrefixes() {
        guard case .success(let wide) = CIDR.parse("192.0.2.0/24"),
            case .success(let narrow) = CIDR.parse("192.0.2.128/25"),
            case .success(let everything) = CIDR.parse("0.0.0.0/0")
        else {
            Issue.record("prefixes did not parse")
            return
        }
        #expect(wide.covers(narrow))
        #expect(!narrow.covers(wide))
        #expect(everything.covers(wide))
    }

    @Test(arguments: [
        ("192.0.2.1:53", "192.0.2.1:53"), ("[2001:db8::1]:8080", "[2001:db8::1]:8080"), ("[::]:53", "[::]:53"),
    ])
    func parsesSocketAddresses(text: String, expected: String) {
        #expect(SocketAddress(text)?.description == expected)
    }

    @Test func socketAddressDefaultsAndRejections() {
        #expect(SocketAddress("192.0.2.1", defaultPort: 53)?.port == 53)
        #expect(SocketAddress("2001:db8::1", defaultPort: 53)?.description == "[2001:db8::1]:53")
        #expect(SocketAddress("192.0.2.1") == nil)
        #expect(SocketAddress("192.0.2.1:0") == nil)
        #expect(SocketAddress("192.0.2.1:65536") == nil)
        #expect(SocketAddress("[2001:db8::1]8080") == nil)
        #expect(SocketAddress("[192.0.2.1]:80") == nil)
    }
}
