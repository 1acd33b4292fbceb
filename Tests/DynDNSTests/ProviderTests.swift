import DynDNS
import EventLoop
import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing
import ZoneModel

/// dyndns2 and Cloudflare's API against a local HTTPS server with a test CA, and the HTTP echo source.
@Suite(.serialized) struct ProviderTests {
    static let address = IPAddress("198.51.100.30")!

    @Test func dyndns2EveryAnswerOverHTTPS() throws {
        guard let server = try ProviderServer(tls: true) else { return }
        let password = try server.secret("password", "secret\n")
        var client = ProviderClient(caFile: server.caFile)
        client.timeout = 5_000
        func push(user: String = "user") -> PushOutcome {
            let provider = Provider(
                name: "dyn",
                kind: .dyndns2(
                    url: server.base + "/nic/update", hostname: "home.example.net", username: user,
                    passwordFile: password),
                location: SourceLocation(file: "t", line: 1, column: 1))
            return client.push(provider, address: Self.address)
        }
        #expect(push() == .updated)
        #expect(server.requests.last == "GET /nic/update?hostname=home.example.net&myip=198.51.100.30")
        #expect(push(user: "intruder") == .fatal("badauth: the username or password is wrong"))
        let cases: [(String, PushOutcome)] = [
            ("nochg 198.51.100.30", .unchanged),
            ("notfqdn", .fatal("notfqdn: the hostname is not a fully qualified domain name")),
            ("nohost", .fatal("nohost: the hostname does not exist in this account")),
            ("numhost", .fatal("numhost: too many hosts in one request")),
            ("abuse", .fatal("abuse: the provider blocked this hostname for too many updates")),
            ("badagent", .fatal("badagent: the provider refused this client")),
            ("dnserr", .failed("dnserr: the provider's DNS failed", retryAfter: 1_800_000)),
            ("911", .failed("911: the provider is in trouble", retryAfter: 1_800_000)),
        ]
        for (answer, expected) in cases {
            try server.setAnswer(answer)
            #expect(push() == expected, "\(answer)")
        }
        try server.setAnswer("<html>maintenance</html>")
        guard case .failed(let reason, nil) = push() else {
            Issue.record("a garbled answer is a retryable failure")
            return
        }
        #expect(reason.contains("unexpected answer"))
    }

    @Test func certificatesAreVerified() throws {
        guard let server = try ProviderServer(tls: true) else { return }
        let password = try server.secret("password", "secret")
        let provider = Provider(
            name: "dyn",
            kind: .dyndns2(
                url: server.base + "/nic/update", hostname: "h.example.net", username: "user", passwordFile: password),
            location: SourceLocation(file: "t", line: 1, column: 1))
        // The system trust store does not know the test CA.
        let untrusted = ProviderClient(caFile: nil).push(provider, address: Self.address)
        guard case .failed(let reason, _) = untrusted else {
            Issue.record("expected a failure, got \(untrusted)")
            return
        }
        #expect(reason.contains("certificate not trusted"), "\(reason)")
        #expect(server.requests.isEmpty, "nothing was sent over the unverified connection")
        #expect(Detectors.http(server.base + "/ip", caFile: nil) != .success(Self.address))
    }

    @Test func cloudflareCreatesThenChangesOnlyWhenDifferent() throws {
        guard let server = try ProviderServer(tls: true) else { return }
        let token = try server.secret("token", "cf-token")
        var client = ProviderClient(caFile: server.caFile)
        client.cloudflareAPI = server.base + "/client/v4"
        let provider = Provider(
            name: "cf", kind: .cloudflare(zoneID: "zone123", record: "home.example.net", tokenFile: token),
            location: SourceLocation(file: "t", line: 1, column: 1))
        #expect(client.push(provider, address: Self.address) == .updated)
        #expect(server.requests.last?.hasPrefix("POST /client/v4/zones/zone123/dns_records") == true)
        #expect(client.push(provider, address: Self.address) == .unchanged)
        #expect(server.requests.last?.hasPrefix("GET ") == true, "no write when the record already holds the address")
        #expect(client.push(provider, address: IPAddress("198.51.100.31")!) == .updated)
        #expect(server.requests.last == "PATCH /client/v4/zones/zone123/dns_records/rec1")
        let badToken = try server.secret("bad", "nope")
        let refused = client.push(
            Provider(
                name: "cf", kind: .cloudflare(zoneID: "zone123", record: "home.example.net", tokenFile: badToken),
                location: SourceLocation(file: "t", line: 1, column: 1)), address: Self.address)
        #expect(refused == .fatal("HTTP 403: the API token is not valid for this zone"))
    }

    /// ACME DNS-01 through Cloudflare's API: a TXT record added (its ID returned), then deleted by that ID.
    @Test(.bug(id: "16")) func cloudflareAddsAndDeletesAProof() throws {
        guard let server = try ProviderServer(tls: true) else { return }
        let token = try server.secret("token", "cf-token")
        var client = ProviderClient(caFile: server.caFile)
        client.cloudflareAPI = server.base + "/client/v4"
        let added = client.cloudflareAddTXT(
            zoneID: "zone123", name: "_acme-challenge.example.net", value: "proof-value", tokenFile: token)
        guard case .success(let id) = added else {
            Issue.record("\(added)")
            return
        }
        #expect(server.requests.last == "POST /client/v4/zones/zone123/dns_records")
        #expect(client.cloudflareDelete(zoneID: "zone123", id: id, tokenFile: token) == nil)
        #expect(server.requests.last == "DELETE /client/v4/zones/zone123/dns_records/\(id)")
        // Deleting it again: the API's own error, as a permanent failure.
        #expect(client.cloudflareDelete(zoneID: "zone123", id: id, tokenFile: token) == .fatal("Record not found"))
        let badToken = try server.secret("bad", "nope")
        let refused = client.cloudflareAddTXT(zoneID: "zone123", name: "x", value: "y", tokenFile: badToken)
        #expect(refused == .failure(.fatal("HTTP 403: the API token is not valid for this zone")))
    }

    @Test func httpEchoSource() throws {
        guard let server = try ProviderServer(tls: true) else { return }
        try server.setEcho("198.51.100.99")
        #expect(Detectors.http(server.base + "/ip", caFile: server.caFile) == .success(IPAddress("198.51.100.99")!))
        try server.setEcho("<html>oops</html>")
        guard case .failure(let error) = Detectors.http(server.base + "/ip", caFile: server.caFile) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.message.contains("did not return an address"))
        let plain = try #require(try ProviderServer(tls: false))
        try plain.setEcho("2001:db8::99")
        #expect(Detectors.http(plain.base + "/ip") == .success(IPAddress("2001:db8::99")!))
    }

    @Test func pushScheduleNeverSpams() {
        var record = UpdaterState.ProviderRecord()
        #expect(PushSchedule.due(record, address: "a", configuration: "c", now: 0))
        record = PushSchedule.after(.updated, record: record, address: "a", configuration: "c", now: 0, random: 0.5)
        #expect(
            !PushSchedule.due(record, address: "a", configuration: "c", now: 10_000), "the same address never again")
        #expect(!PushSchedule.due(record, address: "b", configuration: "c", now: 30), "at most once a minute")
        #expect(PushSchedule.due(record, address: "b", configuration: "c", now: 61))
        // The same address pushed elsewhere (another record, hostname or secret) does not count (issue 17).
        #expect(PushSchedule.due(record, address: "a", configuration: "c2", now: 61))
        // The refresh pushes the same address again once its interval has passed.
        #expect(!PushSchedule.due(record, address: "a", configuration: "c", now: 4_999, refresh: 5_000))
        #expect(PushSchedule.due(record, address: "a", configuration: "c", now: 5_000, refresh: 5_000))
        // Failures back off exponentially (with jitter), and dnserr/911 wait at least 30 minutes.
        var failing = UpdaterState.ProviderRecord()
        var waits: [Double] = []
        for _ in 0..<8 {
            failing = PushSchedule.after(
                .failed("x", retryAfter: nil), record: failing, address: "b", configuration: "c", now: 1000, random: 0.5
            )
            waits.append(failing.nextAttempt - 1000)
        }
        #expect(waits == [60, 120, 240, 480, 960, 1920, 3600, 3600])
        let busy = PushSchedule.after(
            .failed("911", retryAfter: 1_800_000), record: UpdaterState.ProviderRecord(), address: "b",
            configuration: "c",
            now: 0, random: 0)
        #expect(busy.nextAttempt >= 1800)
        // A refusal stops pushes until the provider's settings change.
        let stopped = PushSchedule.after(
            .fatal("badauth"), record: UpdaterState.ProviderRecord(), address: "b", configuration: "c", now: 0,
            random: 0)
        #expect(!PushSchedule.due(stopped, address: "b", configuration: "c", now: 1_000_000))
        #expect(PushSchedule.due(stopped, address: "b", configuration: "c2", now: 1_000_000))
    }

    /// Issue 17, point 7: the Host field carries a non-default port, and the User-Agent names the project
    /// and its version only (what providers ask for), as a raw request on the wire shows.
    @Test(.bug(id: "17")) func requestsCarryThePortAndAnHonestUserAgent() throws {
        let port = try freePort()
        let listener = try Sockets.tcpListener(
            SocketAddress(address: IPAddress("127.0.0.1")!, port: port), shared: false)
        defer { Sockets.close(listener) }
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) & ~O_NONBLOCK)
        let captured = Mutex<String>("")
        let server = Thread {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var text = ""
            while !text.contains("\r\n\r\n") {
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if got <= 0 { break }
                text += String(decoding: buffer[0..<got], as: UTF8.self)
            }
            captured.withLock { $0 = text }
            let reply = Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngood".utf8)
            _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            close(fd)
        }
        server.start()
        let response = try HTTPClient.request(
            HTTPClient.Request(method: "GET", url: "http://127.0.0.1:\(port)/nic/update?x=1", headers: [], body: []))
        #expect(response.status == 200 && response.text == "good")
        let request = captured.withLock { $0 }
        #expect(request.contains("\r\nHost: 127.0.0.1:\(port)\r\n"), "\(request)")
        #expect(request.contains("\r\nUser-Agent: frontdoor/\(Version.text)\r\n"), "\(request)")
        #expect(!request.contains("github"))
    }
}
