import ACME
import DynDNS
import Foundation
import Glibc
import TestSupport
import Testing
import ZoneModel

/// Certificates from a real ACME CA: Debian's pebble on loopback, validating DNS-01 by asking Frontdoor's own
/// DNS listener, with `frontdoor run` as a process, nginx behind it and curl as the client.
@Suite(.serialized) struct ACMEEndToEndTests {
    /// A config directory (views: 127.0.0.1 is the LAN, every other address the WAN), pebble, nginx and the
    /// ports of one `frontdoor run`.
    final class Setup {
        let directory: String
        let pebble: PebbleServer
        let nginx: NginxServer
        let dnsPort: UInt16
        let httpPort: UInt16
        let httpsPort: UInt16
        let adminPort: UInt16
        var pid: pid_t?
        var runs = 0

        /// `pebbleDNS`: where pebble asks (nil: Frontdoor); `validity`: pebble's certificate lifetime in seconds.
        /// `http01`: example.com's public DNS is "elsewhere" (`http-01=example.com`), and the proxy's LAN
        /// address is loopback, where pebble connects for HTTP-01. `extra`: more lines for frontdoor.conf and
        /// options for its `acme` line.
        init?(
            pebbleEnvironment: [String] = [], pebbleDNS: UInt16? = nil, validity: Int? = nil, http01: Bool = false,
            extraConfig: String = "", acmeOptions: String = "", extraZones: [(String, String)] = [],
            dnsPort: UInt16? = nil, binding: (keyID: String, key: String)? = nil
        ) throws {
            guard Tool.find("curl") != nil else {
                Tool.skip("curl", package: "curl")
                return nil
            }
            let dnsPort = try dnsPort ?? freePort()
            let httpPort = try freePort()
            guard
                let pebble = try PebbleServer(
                    dnsPort: pebbleDNS ?? dnsPort, httpPort: httpPort, environment: pebbleEnvironment,
                    validity: validity, binding: binding),
                let nginx = try NginxServer()
            else { return nil }
            self.pebble = pebble
            self.nginx = nginx
            self.dnsPort = dnsPort
            self.httpPort = httpPort
            self.httpsPort = try freePort()
            self.adminPort = try freePort()
            self.directory = try Tool.temporaryDirectory()
            let config = """
                view lan 127.0.0.1/32
                view wan *
                state-dir state
                acme \(pebble.directoryURL) agree-terms email=admin@example.com ca-file=\(pebble.listenerAuthority)\(http01 ? " http-01=example.com" : "") \(acmeOptions)
                \(extraConfig)
                """
            try config.write(toFile: self.directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
            let zone = """
                $ORIGIN example.com.
                $TTL 300
                $PROXY reverseproxy lan=\(http01 ? "127.0.0.1" : "192.0.2.42") wan=203.0.113.1
                $SITE www http://127.0.0.1:\(nginx.port)
                $SITE nas http://127.0.0.1:\(nginx.port) views=lan
                $SITE x.deep http://127.0.0.1:\(nginx.port)
                """
            try zone.write(toFile: self.directory + "/example.com.zone", atomically: true, encoding: .utf8)
            for (name, text) in extraZones {
                try text.replacingOccurrences(of: "NGINX", with: "\(nginx.port)").write(
                    toFile: self.directory + "/\(name).zone", atomically: true, encoding: .utf8)
            }
        }

        deinit {
            self.stop()
            try? FileManager.default.removeItem(atPath: self.directory)
        }

        var logPath: String { self.directory + "/log.\(self.runs)" }
        var log: String { Fixtures.textAt(self.logPath) }
        var state: String { self.directory + "/state/acme" }

        func start() throws {
            self.runs += 1
            let logFD = open(self.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            defer { close(logFD) }
            self.pid = try Tool.spawn(
                Tool.frontdoor,
                [
                    "run", "--config", self.directory, "--dns", "127.0.0.1:\(self.dnsPort)", "--http",
                    "127.0.0.1:\(self.httpPort)", "--https", "127.0.0.1:\(self.httpsPort)", "--admin",
                    "127.0.0.1:\(self.adminPort)", "--workers", "1",
                ], stderr: logFD)
            #expect(self.waitFor("serving http", seconds: 10), "\(self.log)")
        }

        func stop() {
            if let pid { Tool.stop(pid) }
            self.pid = nil
        }

        /// Whether `text` shows up in this run's log within `seconds`.
        func waitFor(_ text: String, seconds: Int) -> Bool {
            for _ in 0..<(seconds * 20) {
                if self.log.contains(text) { return true }
                usleep(50_000)
            }
            return self.log.contains(text)
        }

        /// curl to https://NAME/ trusting only `root`, from `source`.
        func curl(_ name: String, root: String, source: String = "127.0.0.1") throws -> Tool.Outcome {
            try Tool.run(
                Tool.find("curl") ?? "curl",
                [
                    "-sS", "--max-time", "10", "--cacert", root, "--interface", source, "--resolve",
                    "\(name):\(self.httpsPort):127.0.0.1", "https://\(name):\(self.httpsPort)/",
                ])
        }

        /// The TXT answers for the challenge name, from `source`.
        func challengeRecords(source: String) throws -> [String]? {
            try Dig.ask(port: self.dnsPort, ["+short", "_acme-challenge.example.com", "TXT"], source: source).map {
                $0.output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") && !$0.isEmpty }
            }
        }
    }

    @Test(.bug(id: "16")) func wildcardCertificateProvedFromItsOwnZone() throws {
        guard let setup = try Setup() else { return }
        try setup.start()
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        #expect(setup.log.contains("(example.com, *.example.com, *.deep.example.com)"), "\(setup.log)")
        let root = try setup.pebble.root()
        // A LAN-only site (asked from the LAN), a WAN site (asked from the WAN) and one two labels down.
        let lanOnly = try setup.curl("nas.example.com", root: root)
        #expect(lanOnly.status == 0 && lanOnly.stdout == "hello from nginx\n", "\(lanOnly.stderr)")
        let wan = try setup.curl("www.example.com", root: root, source: "127.0.0.2")
        #expect(wan.status == 0 && wan.stdout == "hello from nginx\n", "\(wan.stderr)")
        let deep = try setup.curl("x.deep.example.com", root: root, source: "127.0.0.2")
        #expect(deep.status == 0 && deep.stdout == "hello from nginx\n", "\(deep.stderr)")
        // The proofs are gone from both views.
        #expect(try setup.challengeRecords(source: "127.0.0.1") == [])
        #expect(try setup.challengeRecords(source: "127.0.0.2") == [])
        #expect(setup.pebble.orders == 1)
        // A real browser that trusts pebble's root loads the site; one that does not, refuses it.
        if let chromium = HeadlessChromium() {
            let url = "https://www.example.com:\(setup.httpsPort)/"
            try chromium.profile(setup.directory + "/trusting", trusting: [root])
            let page = try chromium.browse(url, home: setup.directory + "/trusting", host: "www.example.com")
            #expect(page.stdout.contains("hello from nginx"), "\(page.stdout) \(page.stderr.suffix(2000))")
            let refused = try chromium.browse(url, home: setup.directory + "/untrusting", host: "www.example.com")
            #expect(!refused.stdout.contains("hello from nginx"), "without pebble's root the browser refuses the page")
        }
        // explain says which certificate a name gets.
        let explained = try Tool.run(
            Tool.frontdoor, ["explain", "nas.example.com", "--from", "127.0.0.1", setup.directory])
        #expect(
            explained.stdout.contains(
                "https: certificate example.com from \(setup.pebble.directoryURL) (valid until "),
            "\(explained.stdout)")
        // status, /metrics and the status page show it.
        let status = try Tool.run(Tool.frontdoor, ["status", setup.directory])
        #expect(
            status.stdout.contains("  example.com: example.com, *.example.com, *.deep.example.com"), "\(status.stdout)")
        #expect(status.stdout.contains("valid until") && status.stdout.contains("orders: 1 valid, 0 failed"))
        let metrics = try Tool.run(Tool.find("curl") ?? "curl", ["-sS", "http://127.0.0.1:\(setup.adminPort)/metrics"])
        #expect(metrics.stdout.contains("frontdoor_acme_certificate_expiry_seconds{certificate=\"example.com\"}"))
        #expect(metrics.stdout.contains("frontdoor_acme_orders_total{certificate=\"example.com\",result=\"valid\"} 1"))
        let page = try Tool.run(Tool.find("curl") ?? "curl", ["-sS", "http://127.0.0.1:\(setup.adminPort)/"])
        #expect(page.stdout.contains("<h2>Certificates (ACME)</h2>"), "\(page.stdout)")
        // Keys are the owner's alone.
        var info = stat()
        #expect(stat(setup.state + "/certs/example.com.key", &info) == 0 && info.st_mode & 0o077 == 0)
        #expect(stat(setup.state + "/account.key", &info) == 0 && info.st_mode & 0o077 == 0)
        // A restart serves the same certificate from disk and orders nothing.
        setup.stop()
        try setup.start()
        #expect(try setup.curl("www.example.com", root: root).status == 0)
        usleep(1_000_000)
        #expect(setup.pebble.orders == 1, "\(setup.log)")
        #expect(!setup.log.contains("registered account"), "the account is kept: \(setup.log)")
    }

    /// Pebble refusing half of all good nonces: the client retries with the nonce each refusal carries (twenty
    /// tries: a request is refused twenty times in a row once in a million).
    @Test(.bug(id: "16")) func nonceRejectionsAreRetried() throws {
        guard let setup = try Setup(pebbleEnvironment: ["PEBBLE_WFE_NONCEREJECT=50"]) else { return }
        try setup.start()
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        #expect(try setup.curl("www.example.com", root: try setup.pebble.root()).status == 0)
        // About 17 requests: some nonce was refused (none would be one run in 100,000).
        #expect(!setup.log.contains(" 0 sent again after a refused nonce"), "\(setup.log)")
    }

    /// Pebble asks a port where nobody answers: validation fails, the error says why, and the next attempt
    /// waits — also across a restart. One order in all.
    @Test(.bug(id: "16")) func aChallengeThatCannotSucceedBacksOff() throws {
        let silent = try freePort()
        guard let setup = try Setup(pebbleDNS: silent) else { return }
        try setup.start()
        #expect(setup.waitFor("acme: example.com (new) failed:", seconds: 60), "\(setup.log)")
        #expect(setup.log.contains("next attempt at") && setup.log.contains("(failure 1)"), "\(setup.log)")
        let line = setup.log.split(separator: "\n").first { $0.contains("failed:") }.map(String.init) ?? ""
        #expect(line.contains("HTTP") || line.contains("timed out") || line.contains("unauthorized"), "\(line)")
        usleep(3_000_000)
        #expect(setup.pebble.orders == 1, "\(setup.log)")
        setup.stop()
        try setup.start()
        usleep(3_000_000)
        #expect(setup.pebble.orders == 1, "the backoff survives a restart: \(setup.log)")
        let progress = Fixtures.textAt(setup.state + "/state/example.com.json")
        #expect(progress.contains("\"failures\": 1") && progress.contains("\"lastError\""), "\(progress)")
        let status = try Tool.run(Tool.frontdoor, ["status", setup.directory])
        #expect(
            status.stdout.contains("not issued yet") && status.stdout.contains("last error: ")
                && status.stdout.contains("next attempt") && status.stdout.contains("orders: 0 valid, 1 failed"),
            "\(status.stdout)")
        // Nothing is left published.
        #expect(try setup.challengeRecords(source: "127.0.0.2") == [])
    }

    /// A run that stopped after placing its order (its account, the order's URL and the pending key on disk):
    /// the next run continues that order with that account — no second registration, no second order.
    @Test(.bug(id: "16")) func aRestartContinuesTheOrderItLeft() throws {
        guard let setup = try Setup() else { return }
        let key = try ECKey.generate()
        let client = ACMEClient(
            directoryURL: setup.pebble.directoryURL, key: key,
            transport: ACMEClient.httpTransport(caFile: setup.pebble.listenerAuthority), pause: { _ in true })
        let account = try client.register(contact: [], agreeTerms: true, binding: nil)
        let names = ["example.com", "*.example.com", "*.deep.example.com"]
        let (orderURL, order) = try client.newOrder(names, replaces: nil)
        #expect(order.status == .pending)
        let state = setup.state
        try FileManager.default.createDirectory(atPath: state + "/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state + "/certs", withIntermediateDirectories: true)
        try Data(key.pem).write(to: URL(fileURLWithPath: state + "/account.key"))
        chmod(state + "/account.key", 0o600)
        try JSON.object([("directory", .string(setup.pebble.directoryURL)), ("account", .string(account))]).text()
            .write(toFile: state + "/account.json", atomically: true, encoding: .utf8)
        try JSON.object([("names", .array(names.map { .string($0) })), ("order", .string(orderURL))]).text()
            .write(toFile: state + "/state/example.com.json", atomically: true, encoding: .utf8)
        try Data(try ECKey.generate().pem).write(to: URL(fileURLWithPath: state + "/certs/example.com.key.pending"))
        try setup.start()
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        #expect(setup.pebble.orders == 1, "the order was continued: \(setup.log)")
        #expect(setup.pebble.accounts == 1, "the account was kept: \(setup.log)")
        #expect(!FileManager.default.fileExists(atPath: state + "/certs/example.com.key.pending"))
    }
}

extension ACMEEndToEndTests {
    /// Certificates living 30 seconds: Frontdoor renews at two thirds of that by itself; a new connection gets
    /// the new certificate while one opened before keeps working with the old.
    @Test(.bug(id: "16")) func renewsByItselfWithoutDroppingConnections() throws {
        guard let python = Tool.find("python3") else { return Tool.skip("python3", package: "python3") }
        guard let setup = try Setup(validity: 30) else { return }
        try setup.start()
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        let root = try setup.pebble.root()
        let script = Fixtures.path("Tests/Fixtures/tls_hold.py")
        let go = setup.directory + "/go"
        func hold(_ output: String) throws -> pid_t {
            let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            defer { close(fd) }
            return try Tool.spawn(
                python, [script, "\(setup.httpsPort)", "www.example.com", root, go], stdout: fd, stderr: fd)
        }
        let oldOutput = setup.directory + "/old.out"
        let old = try hold(oldOutput)
        defer { Tool.stop(old) }
        for _ in 0..<100 where !Fixtures.textAt(oldOutput).contains("response") { usleep(50_000) }
        let before = Fixtures.textAt(oldOutput)
        #expect(before.contains("response HTTP/1.1 200"), "\(before)")
        #expect(setup.waitFor("reason: renewal", seconds: 45), "\(setup.log)")
        usleep(200_000)
        // A new connection: the renewed certificate.
        let newOutput = setup.directory + "/new.out"
        let fresh = try hold(newOutput)
        defer { Tool.stop(fresh) }
        for _ in 0..<100 where !Fixtures.textAt(newOutput).contains("response") { usleep(50_000) }
        let after = Fixtures.textAt(newOutput)
        let firstCertificate = before.split(separator: "\n").first ?? ""
        let secondCertificate = after.split(separator: "\n").first ?? ""
        #expect(after.contains("response HTTP/1.1 200"), "\(after)")
        #expect(
            firstCertificate.hasPrefix("certificate ") && firstCertificate != secondCertificate, "\(before) \(after)")
        // The old connection's second request, on the old certificate.
        FileManager.default.createFile(atPath: go, contents: Data())
        for _ in 0..<100 where Fixtures.textAt(oldOutput).components(separatedBy: "response").count < 3 {
            usleep(50_000)
        }
        let held = Fixtures.textAt(oldOutput)
        #expect(held.components(separatedBy: "response HTTP/1.1 200").count == 3, "\(held)")
        #expect(setup.pebble.orders == 2, "one order each: \(setup.log)")
    }
}

extension ACMEEndToEndTests {
    /// A zone whose public DNS is elsewhere: each site proved by HTTP-01, which the proxy answers on its
    /// plain-HTTP listener before any routing; one certificate per site.
    @Test(.bug(id: "16")) func http01ThroughTheProxy() throws {
        guard let setup = try Setup(http01: true) else { return }
        try setup.start()
        for name in ["www.example.com", "nas.example.com", "x.deep.example.com"] {
            #expect(setup.waitFor("acme: issued \(name) (\(name))", seconds: 60), "\(setup.log)")
        }
        let root = try setup.pebble.root()
        let site = try setup.curl("www.example.com", root: root, source: "127.0.0.2")
        #expect(site.status == 0 && site.stdout == "hello from nginx\n", "\(site.stderr)")
        #expect(setup.pebble.orders == 3)
        // The proofs are withdrawn: the path goes to the site again (nginx's 404).
        let after = try Tool.run(
            Tool.find("curl") ?? "curl",
            [
                "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: www.example.com",
                "http://127.0.0.1:\(setup.httpPort)/.well-known/acme-challenge/abcdefghijklmnopqrstuvwxyz",
            ])
        #expect(after.stdout == "404", "\(after.stdout)")
        #expect(try setup.challengeRecords(source: "127.0.0.1") == [])
    }
}

extension ACMEEndToEndTests {
    /// A BIND primary for `zone` outside Frontdoor (its SOA, NS and glue, then `extra` lines), taking UPDATEs
    /// signed with `keyName`; nil when BIND is missing.
    static func outsidePrimary(_ zone: String, keyName: String, extra: String = "") throws -> BINDServer? {
        let text = """
            $TTL 300
            @ IN SOA ns.\(zone). admin.\(zone). 1 3600 600 86400 60
            @ IN NS ns.\(zone).
            ns IN A 192.0.2.53
            \(extra)
            """
        return try BINDServer(
            zone: zone, zoneText: text, keyName: keyName, algorithm: "hmac-sha256",
            secret: "c2VjcmV0LWZvci10aGUtYWNtZS10ZXN0LW9ubHktMzI=")
    }

    /// The zone's public DNS is a BIND primary elsewhere: the proofs go there by RFC 2136 UPDATE signed with the
    /// rfc2136 provider's TSIG key, and pebble asks that primary.
    @Test(.bug(id: "16")) func dns01ThroughAnRFC2136Primary() throws {
        guard let named = try Self.outsidePrimary("example.com", keyName: "acme-key") else { return }
        guard
            let setup = try Setup(
                pebbleDNS: named.port,
                extraConfig:
                    "provider public rfc2136 server=127.0.0.1:\(named.port) zone=example.com record=home.example.com "
                    + "key=\(named.keyFile)",
                acmeOptions: "dns-update=public")
        else { return }
        try setup.start()
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        let site = try setup.curl("www.example.com", root: try setup.pebble.root(), source: "127.0.0.2")
        #expect(site.status == 0 && site.stdout == "hello from nginx\n", "\(site.stderr)")
        // BIND took the UPDATEs (add, then delete), and holds no proof any more.
        let bindLog = Fixtures.textAt(named.directory + "/named.log")
        #expect(bindLog.contains("adding an RR at '_acme-challenge.example.com' TXT"), "\(bindLog)")
        #expect(bindLog.contains("deleting an RR at _acme-challenge.example.com TXT"), "\(bindLog)")
        let left = try Dig.ask(port: named.port, ["+short", "_acme-challenge.example.com", "TXT"])
        #expect(
            left?.output.split(separator: "\n").filter { !$0.hasPrefix(";") }.isEmpty == true, "\(left?.output ?? "")")
        // Frontdoor's own zone never held them.
        #expect(!setup.log.contains("acme challenge"), "\(setup.log)")
    }
}

extension ACMEEndToEndTests {
    /// The acme-dns pattern without a second server: example.org's public DNS is a BIND primary holding, once,
    /// `_acme-challenge.example.org CNAME acme.example.com.`; the proof is published by Frontdoor in its own
    /// example.com. Pebble asks Unbound, which follows the CNAME from BIND to Frontdoor.
    @Test(.bug(id: "16")) func delegatedChallengeFollowsTheCNAME() throws {
        guard
            let named = try Self.outsidePrimary(
                "example.org", keyName: "unused", extra: "_acme-challenge IN CNAME acme.example.com.")
        else { return }
        let unboundPort = try freePort()
        let frontdoorDNS = try freePort()
        let home = """
            $ORIGIN example.org.
            $TTL 300
            $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
            $SITE app http://127.0.0.1:NGINX
            """
        // Frontdoor's DNS port is only known once Setup picked it: Unbound is configured after.
        guard
            let setup = try Setup(
                pebbleDNS: unboundPort, extraConfig: "upstream 127.0.0.1:\(unboundPort)",
                acmeOptions: "delegate=example.org:acme.example.com", extraZones: [("example.org", home)],
                dnsPort: frontdoorDNS)
        else { return }
        let stubs = """
            stub-zone:
              name: "example.org."
              stub-addr: 127.0.0.1@\(named.port)
            stub-zone:
              name: "example.com."
              stub-addr: 127.0.0.1@\(frontdoorDNS)
            """
        let resolver = """
              do-not-query-localhost: no
              qname-minimisation: no
              cache-max-ttl: 0
              cache-max-negative-ttl: 0
            """
        guard let unbound = try UnboundServer(port: unboundPort, server: resolver, tail: stubs) else { return }
        defer { withExtendedLifetime(unbound) {} }
        // `check` names the CNAME to create.
        let check = try Tool.run(Tool.frontdoor, ["check", setup.directory])
        #expect(
            check.stderr.contains(
                "acme: create at the DNS host of example.org: _acme-challenge.example.org. CNAME acme.example.com."),
            "\(check.stderr)")
        let explained = try Tool.run(
            Tool.frontdoor, ["explain", "app.example.org", "--from", "127.0.0.1", setup.directory])
        #expect(
            explained.stdout.contains(
                "(not issued yet); create at the DNS host of example.org: _acme-challenge.example.org. CNAME "
                    + "acme.example.com."),
            "\(explained.stdout)")
        try setup.start()
        #expect(setup.waitFor("acme: issued example.org (example.org, *.example.org)", seconds: 60), "\(setup.log)")
        #expect(setup.waitFor("acme: issued example.com", seconds: 60), "\(setup.log)")
        let site = try setup.curl("app.example.org", root: try setup.pebble.root(), source: "127.0.0.2")
        #expect(site.status == 0 && site.stdout == "hello from nginx\n", "\(site.stderr)")
        let left = try Dig.ask(port: frontdoorDNS, ["+short", "acme.example.com", "TXT"], source: "127.0.0.2")
        #expect(left?.output.split(separator: "\n").filter { !$0.hasPrefix(";") }.isEmpty == true)
    }
}

extension ACMEEndToEndTests {
    /// A CA that requires external account binding (as ZeroSSL does): refused without it, with a clear
    /// message; registered with `eab=KEY-ID:FILE`.
    @Test(.bug(id: "16")) func externalAccountBinding() throws {
        let binding = (keyID: "kid-1", key: "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W")
        guard let without = try Setup(binding: binding) else { return }
        try without.start()
        #expect(without.waitFor("external account binding", seconds: 30), "\(without.log)")
        #expect(without.pebble.accounts == 0)
        without.stop()
        guard let with = try Setup(acmeOptions: "eab=kid-1:eab.key", binding: binding) else { return }
        try binding.key.write(toFile: with.directory + "/eab.key", atomically: true, encoding: .utf8)
        chmod(with.directory + "/eab.key", 0o600)
        try with.start()
        #expect(with.waitFor("acme: issued example.com", seconds: 60), "\(with.log)")
        #expect(with.pebble.accounts == 1)
    }
}

extension ACMEEndToEndTests {
    /// `check` tells how each certificate will be proved: its own zone, a Cloudflare zone through the API, and
    /// refuses a provider kind that cannot publish TXT records.
    @Test(.bug(id: "16")) func checkExplainsThePlan() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "cf-token".write(toFile: directory + "/cf.token", atomically: true, encoding: .utf8)
        chmod(directory + "/cf.token", 0o600)
        try "pw".write(toFile: directory + "/dyn.pw", atomically: true, encoding: .utf8)
        chmod(directory + "/dyn.pw", 0o600)
        let config = """
            view lan 192.0.2.0/24
            view wan *
            state-dir state
            provider cf cloudflare zone-id=z1 record=home.example.org token-file=cf.token
            provider dyn dyndns2 url=https://dyn.example/nic/update hostname=h.example.net username=u password-file=dyn.pw
            acme letsencrypt-staging agree-terms dns-update=cf
            """
        try config.write(toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        for zone in ["example.org", "example.com"] {
            try
                "$ORIGIN \(zone).\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1\n$SITE www http://192.0.2.9\n"
                .write(toFile: directory + "/\(zone).zone", atomically: true, encoding: .utf8)
        }
        let check = try Tool.run(Tool.frontdoor, ["check", directory])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(
            check.stderr.contains(
                "acme: certificate example.org for example.org, *.example.org from "
                    + "\(ACMESettings.letsEncryptStaging), proved by DNS-01 through provider cf (RFC 2136 or its API)"),
            "\(check.stderr)")
        #expect(
            check.stderr.contains("acme: certificate example.com for example.com, *.example.com from "),
            "\(check.stderr)")
        #expect(check.stderr.contains("proved by DNS-01 in its own zone example.com"), "\(check.stderr)")
        try config.replacingOccurrences(of: "dns-update=cf", with: "dns-update=dyn").write(
            toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        let refused = try Tool.run(Tool.frontdoor, ["check", directory])
        #expect(refused.status != 0)
        #expect(
            refused.stderr.contains(
                "acme: dns-update=dyn: only an rfc2136 or cloudflare provider can publish the proofs"),
            "\(refused.stderr)")
    }
}
