import HTTPProxy
import Testing
import ZoneModel

/// PROXY protocol v2 headers, byte for byte against the specification's layout.
@Suite struct ProxyProtocolTests {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    @Test(.bug(id: "15")) func ipv4() throws {
        let header = ProxyProtocol.header(
            source: try #require(SocketAddress("192.0.2.7:51234")),
            destination: try #require(SocketAddress("203.0.113.1:443")))
        #expect(
            header
                == Self.signature + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 7, 203, 0, 113, 1, 0xC8, 0x22, 0x01, 0xBB])
    }

    @Test(.bug(id: "15")) func ipv6AndMixedFamilies() throws {
        let header = ProxyProtocol.header(
            source: try #require(SocketAddress("[2001:db8::7]:1")),
            destination: try #require(SocketAddress("[::1]:443")))
        #expect(Array(header[12..<16]) == [0x21, 0x21, 0x00, 0x24])
        #expect(Array(header[16..<32]) == [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [7])
        #expect(Array(header[32..<48]) == Array(repeating: 0, count: 15) + [1])
        #expect(Array(header[48..<52]) == [0x00, 0x01, 0x01, 0xBB])
        #expect(header.count == 52)
        // IPv4-mapped on both sides is IPv4; one IPv6 side maps the other.
        let mapped = ProxyProtocol.header(
            source: try #require(SocketAddress("[::ffff:192.0.2.7]:80")),
            destination: try #require(SocketAddress("192.0.2.1:443")))
        #expect(mapped[13] == 0x11 && mapped.count == 28)
        let mixed = ProxyProtocol.header(
            source: try #require(SocketAddress("192.0.2.7:80")), destination: try #require(SocketAddress("[::1]:443")))
        #expect(mixed[13] == 0x21)
        #expect(Array(mixed[16..<32]) == Array(repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 7])
    }
}
