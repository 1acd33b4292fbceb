import Foundation
import Glibc
import TestSupport
import Testing

/// The WAN address from a real router daemon: miniupnpd in network namespaces (see MiniUPnPRouter), with
/// `frontdoor run` on the home side and dig asking its wan view.
@Suite(.serialized) struct RouterTests {
    /// Runs Frontdoor in the home namespace with `source` as its only WAN source; the wan view's address.
    func wanAddress(_ router: MiniUPnPRouter, source: String) throws -> (address: String, log: String) {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        view lan 192.0.2.0/24
        view wan *
        wan \(source)
        wan interval 2s
        wan confirm 2s
        """.write(toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 60\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n".write(
            toFile: directory + "/example.com.zone", atomically: true, encoding: .utf8)
        let logFD = open(directory + "/log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let pid = try router.spawnInHome(
            Tool.frontdoor,
            [
                "run", "--config", directory, "--dns", "127.0.0.1:5300", "--http", "off", "--admin", "off", "--workers",
                "1",
            ],
            stderr: logFD)
        close(logFD)
        defer { Tool.stop(pid) }
        var address = ""
        for _ in 0..<100 {
            if Fixtures.textAt(directory + "/log").contains("wan: address is now") {
                address =
                    try router.inHome(
                        "dig",
                        ["@127.0.0.1", "-p", "5300", "+short", "+time=1", "+tries=1", "reverseproxy.example.com", "A"]
                    )
                    .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                break
            }
            usleep(50_000)
        }
        return (address, Fixtures.textAt(directory + "/log"))
    }

    @Test(.bug(id: "19")) func theAddressOverUPnPIGDWithNATPMPSwitchedOff() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: false, upnp: true) else { return }
        let (address, log) = try self.wanAddress(router, source: "upnp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        #expect(log.contains("wan: address is now 11.22.33.44"), "\(log)")
    }

    @Test(.bug(id: "19")) func theAddressOverNATPMP() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: false) else { return }
        let (address, log) = try self.wanAddress(router, source: "natpmp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
    }

    @Test(.bug(id: "19")) func theAddressOverPCP() throws {
        guard Tool.find("dig") != nil, let router = try MiniUPnPRouter(natpmp: true, upnp: false) else { return }
        let (address, log) = try self.wanAddress(router, source: "pcp 192.0.2.1")
        #expect(address == "11.22.33.44", "\(log)\n\(router.log)")
        // The mapping that told the address was made, then deleted at once: none is left in the router's table.
        #expect(router.log.contains("PCP MAP: added mapping UDP"), "\(router.log)")
        for _ in 0..<20 where !router.log.contains("mapping removed") { usleep(50_000) }
        #expect(router.log.contains("mapping removed"), "\(router.log)")
        let rules = try router.rules()
        #expect(!rules.contains("dnat"), "\(rules)")
    }
}
