import DNSAuth
import DynDNS
import Foundation
import Runtime
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The DynDNS updater end to end: an HTTP echo source whose answer the test changes, the appliance's wan
/// view following at once, a real BIND primary receiving the RFC 2136 push, state surviving a restart, and
/// `frontdoor status` showing it.
@Suite(.serialized) struct WANUpdaterTests {
    static let secret = "q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="

    @Test func addressChangesReachTheWanViewAndTheProviderOnceEach() throws {
        guard let echo = try ProviderServer(tls: false) else { return }
        let zoneText = """
            $TTL 300
            @    IN SOA ns.example.org. admin.example.org. 1 3600 600 86400 60
            @    IN NS  ns.example.org.
            ns   IN A   192.0.2.53
            home IN A   192.0.2.1
            """
        guard
            let named = try BINDServer(
                zone: "example.org", zoneText: zoneText, keyName: "frontdoor-key", algorithm: "hmac-sha256",
                secret: Self.secret)
        else { return }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        view lan 127.0.0.1/32 recursion
        view wan *
        upstream 127.0.0.1:9
        state-dir \(directory)/state
        wan http \(echo.base)/ip
        wan interval 2s
        wan confirm 0
        wan test-addresses
        provider primary rfc2136 server=127.0.0.1:\(named.port) zone=example.org record=home.example.org key=\(named.keyFile)
        """.write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        try """
        $ORIGIN example.com.
        $TTL 300
        $PROXY reverseproxy lan=192.0.2.42 wan=auto,auto6
        $SITE www http://127.0.0.1:9
        """.write(toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        // What a write killed halfway leaves behind is cleared at start.
        try "{ half".write(toFile: "\(directory)/state/dyndns.json.tmp.4242", atomically: false, encoding: .utf8)

        let appliance = Appliance(directory: directory, wan: WANAddresses())
        #expect(appliance.load(dateSerial: 2_026_112_600) == nil)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/state/dyndns.json.tmp.4242"))
        let store = try #require(appliance.store)
        let proxyName = try DomainName("reverseproxy.example.com.")
        func wanAnswer() -> [String] {
            guard let view = store.tables().snapshot.view(named: "wan") else { return [] }
            return Fixtures.answerLines(view.lookup(proxyName, .a))
        }
        func serial(_ view: String) -> UInt32? {
            store.tables().snapshot.serials.entries[SerialBook.key(view: view, apex: try! DomainName("example.com."))]?
                .serial
        }
        let lanSerial = serial("lan")
        #expect(wanAnswer().first == "NODATA", "no WAN address known yet")

        try echo.setEcho("203.0.113.10")
        let updater = WANUpdater(appliance: appliance)
        updater.poll()
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.10"])
        let primary = SocketAddress(address: IPAddress("127.0.0.1")!, port: named.port)
        let home = try DomainName("home.example.org.")
        #expect(try DNSUpdate.current(server: primary, record: home, v4: true) == [IPAddress("203.0.113.10")!])
        let wanSerialBefore = serial("wan")

        // The router's address moves: the wan view follows at once, LAN data (and serial) stay as they were.
        try echo.setEcho("203.0.113.11")
        updater.poll()
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.11"])
        #expect(try DNSUpdate.current(server: primary, record: home, v4: true) == [IPAddress("203.0.113.11")!])
        #expect(serial("lan") == lanSerial)
        #expect(serial("wan") ?? 0 > wanSerialBefore ?? 0)
        let statePath = "\(directory)/state/dyndns.json"
        let afterChange = UpdaterState.load(path: statePath)
        #expect(afterChange.address == "203.0.113.11")
        #expect(afterChange.history.map(\.address) == ["203.0.113.10", "203.0.113.11"])
        let pushed = try #require(afterChange.providers["primary"])
        #expect(pushed.lastPushed == "203.0.113.11" && pushed.lastResult == "updated")

        // Nothing new: no push. A restart neither pushes again nor forgets.
        updater.poll()
        #expect(UpdaterState.load(path: statePath).providers["primary"]?.lastAttempt == pushed.lastAttempt)
        let restarted = WANUpdater(appliance: appliance)
        restarted.poll()
        let afterRestart = UpdaterState.load(path: statePath)
        #expect(afterRestart.providers["primary"]?.lastAttempt == pushed.lastAttempt)
        #expect(afterRestart.history.count == 2)

        // An IPv6 answer is judged on its own: the AAAA follows, the A stays, the primary gets both.
        try echo.setEcho("2001:db8::10")
        restarted.poll()
        let aaaa = store.tables().snapshot.view(named: "wan").map { Fixtures.answerLines($0.lookup(proxyName, .aaaa)) }
        #expect(aaaa == ["NOERROR", "reverseproxy.example.com. 300 IN AAAA 2001:db8::10"])
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.11"])
        #expect(try DNSUpdate.current(server: primary, record: home, v4: false) == [IPAddress("2001:db8::10")!])
        #expect(try DNSUpdate.current(server: primary, record: home, v4: true) == [IPAddress("203.0.113.11")!])
        // frontdoor status shows it.
        let status = try Tool.run(Tool.frontdoor, ["status", directory])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("WAN address: 203.0.113.11"), "\(status.stdout)")
        #expect(status.stdout.contains("http \(echo.base)/ip: 2001:db8::10"), "\(status.stdout)")
        #expect(status.stdout.contains("primary: updated; has 203.0.113.11"), "\(status.stdout)")
        #expect(status.stdout.contains("WAN IPv6 address: 2001:db8::10"), "\(status.stdout)")
        #expect(status.stdout.contains("primary (IPv6): updated; has 2001:db8::10"), "\(status.stdout)")
    }

    /// Issue 19, point 4: every source says CGNAT or nothing — the published address is kept through `wan
    /// grace`, then withdrawn (the wan view answers NODATA, the state forgets it, status says why); a source
    /// answering again publishes at once.
    @Test(.bug(id: "19")) func aLostAddressIsWithdrawnAfterTheGracePeriod() throws {
        guard let echo = try ProviderServer(tls: false) else { return }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        view lan 127.0.0.1/32
        view wan *
        state-dir \(directory)/state
        wan http \(echo.base)/ip
        wan interval 2s
        wan confirm 0
        wan grace 2s
        wan test-addresses
        """.write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n".write(
            toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        let appliance = Appliance(directory: directory, wan: WANAddresses())
        #expect(appliance.load(dateSerial: 2_026_120_500) == nil)
        let store = try #require(appliance.store)
        let proxyName = try DomainName("reverseproxy.example.com.")
        func wanAnswer() -> [String] {
            guard let view = store.tables().snapshot.view(named: "wan") else { return [] }
            return Fixtures.answerLines(view.lookup(proxyName, .a))
        }
        try echo.setEcho("203.0.113.10")
        let updater = WANUpdater(appliance: appliance)
        updater.poll()
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.10"])
        // The ISP moves the line behind CGNAT: kept for now, and said so.
        try echo.setEcho("100.64.1.2")
        updater.poll()
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.10"])
        let keeping = UpdaterState.load(path: "\(directory)/state/dyndns.json")
        #expect(keeping.note?.contains("keeping 203.0.113.10 for now") == true, "\(keeping.note ?? "")")
        usleep(2_100_000)
        updater.poll()
        #expect(wanAnswer().first == "NODATA", "withdrawn after the grace period")
        let withdrawn = UpdaterState.load(path: "\(directory)/state/dyndns.json")
        #expect(withdrawn.address == nil)
        #expect(withdrawn.note?.contains("203.0.113.10 is withdrawn") == true, "\(withdrawn.note ?? "")")
        #expect(withdrawn.note?.contains("carrier-grade NAT") == true, "\(withdrawn.note ?? "")")
        // A public address again: published at once.
        try echo.setEcho("203.0.113.12")
        updater.poll()
        #expect(wanAnswer() == ["NOERROR", "reverseproxy.example.com. 300 IN A 203.0.113.12"])
    }

    /// Issue 17, point 1, against a real BIND primary: a provider stopped by a wrong key is pushed to once the
    /// key file is fixed (no edit of its line), and at once on a reload; a changed record= under the same
    /// provider gets the address although the address did not change; a record changed behind Frontdoor's
    /// back is repaired at the refresh interval.
    @Test(.bug(id: "17")) func fixedMistakesAndDriftAreRepaired() throws {
        guard let echo = try ProviderServer(tls: false) else { return }
        let zoneText = """
            $TTL 300
            @    IN SOA ns.example.org. admin.example.org. 1 3600 600 86400 60
            @    IN NS  ns.example.org.
            ns   IN A   192.0.2.53
            home IN A   192.0.2.1
            away IN A   192.0.2.1
            """
        guard
            let named = try BINDServer(
                zone: "example.org", zoneText: zoneText, keyName: "frontdoor-key", algorithm: "hmac-sha256",
                secret: Self.secret)
        else { return }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyFile = "\(directory)/update.key"
        let wrongKey =
            "key \"frontdoor-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\";\n};\n"
        try wrongKey.write(toFile: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile, 0o600)
        func configure(record: String, refresh: String = "") throws {
            try """
            view lan 127.0.0.1/32 recursion
            view wan *
            upstream 127.0.0.1:9
            state-dir \(directory)/state
            wan http \(echo.base)/ip
            wan confirm 0
            wan test-addresses
            provider primary rfc2136 server=127.0.0.1:\(named.port) zone=example.org record=\(record) key=\(keyFile) \(refresh)
            """.write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        }
        try configure(record: "home.example.org")
        try "$ORIGIN example.com.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n".write(
            toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        let appliance = Appliance(directory: directory, wan: WANAddresses())
        #expect(appliance.load(dateSerial: 2_026_120_500) == nil)
        try echo.setEcho("203.0.113.20")
        let updater = WANUpdater(appliance: appliance)
        let primary = SocketAddress(address: IPAddress("127.0.0.1")!, port: named.port)
        func has(_ name: String) throws -> [IPAddress] {
            try DNSUpdate.current(server: primary, record: try DomainName(name), v4: true)
        }
        func record() -> UpdaterState.ProviderRecord? {
            UpdaterState.load(path: "\(directory)/state/dyndns.json").providers["primary"]
        }
        updater.poll()
        #expect(record()?.stopped == true, "the wrong key is refused: \(String(describing: record()))")
        #expect(try has("home.example.org.") == [IPAddress("192.0.2.1")!])
        updater.poll()
        #expect(record()?.pushes == 1, "stopped: not tried again")
        // A reload after fixing nothing tries once more (and stops again).
        updater.reloaded()
        updater.poll()
        #expect(record()?.pushes == 2 && record()?.stopped == true)
        // The key file fixed, nothing else touched: the next poll pushes.
        try String(contentsOfFile: named.keyFile, encoding: .utf8).write(
            toFile: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile, 0o600)
        updater.poll()
        #expect(try has("home.example.org.") == [IPAddress("203.0.113.20")!], "\(String(describing: record()))")
        #expect(record()?.stopped == false)
        // Another record under the same provider name: pushed although the address is the same.
        try configure(record: "away.example.org")
        #expect(appliance.load(dateSerial: 2_026_120_500) == nil)
        updater.poll()
        #expect(try has("away.example.org.") == [IPAddress("203.0.113.20")!], "\(String(describing: record()))")
        // Someone changes the record at the primary; at the refresh interval Frontdoor puts it right.
        try configure(record: "away.example.org", refresh: "refresh=1s")
        #expect(appliance.load(dateSerial: 2_026_120_500) == nil)
        let key = try TSIGKey.parse(bindKeyFile: String(contentsOfFile: named.keyFile, encoding: .utf8))
        try DNSUpdate.push(
            server: primary, zone: try DomainName("example.org."), record: try DomainName("away.example.org."),
            address: IPAddress("192.0.2.99")!, ttl: 60, key: key)
        #expect(try has("away.example.org.") == [IPAddress("192.0.2.99")!])
        usleep(1_200_000)
        updater.poll()
        #expect(try has("away.example.org.") == [IPAddress("203.0.113.20")!], "repaired at the refresh")
    }
}
