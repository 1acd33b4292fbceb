import DynDNS
import Testing
import ZoneModel

@Suite struct RouterDiscoveryTests {
    static let header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"

    /// `/proc/net/route` as the kernel prints it: the default route's interface and gateway.
    @Test(.bug(id: "19")) func defaultRoutes() {
        let table: [(text: String, interface: String?, gateway: String?, why: String)] = [
            (
                Self.header + "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
                    + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n",
                "eth0", "192.168.1.1", "a home LAN"
            ),
            (
                Self.header + "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                    + "wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n",
                "wlan0", "192.0.2.1", "the default route not first"
            ),
            (Self.header + "ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", "ppp0", nil, "no gateway"),
            (Self.header + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n", nil, nil, "no default"),
            ("", nil, nil, "empty"),
            (Self.header + "eth0\t00000000\tnot-hex\n", nil, nil, "garbage"),
        ]
        for row in table {
            let route = RouterDiscovery.defaultRoute(table: Array(row.text.utf8))
            #expect(route?.interface == row.interface, "\(row.why)")
            #expect(route?.gateway.map { "\($0)" } == row.gateway, "\(row.why)")
        }
    }

    /// A configured address is asked as it is; `auto` is the unspecified address and shown as `auto`.
    @Test(.bug(id: "19")) func autoAndConfigured() throws {
        let router = try #require(IPAddress("192.0.2.1"))
        #expect(try RouterDiscovery.resolve(router, upnp: true).get() == router)
        #expect(WANSource.describe(gateway: router) == "192.0.2.1")
        #expect(WANSource.describe(gateway: WANSource.auto) == "auto")
        #expect(WANSource.auto.isUnspecified)
    }
}
