import DynDNS
import Foundation
import Glibc
import TestSupport
import Testing
import ZoneModel

/// dyndns2 against the real nsupdate.info service (PyPI `nsupdate`), which pushes to a real BIND primary:
/// the ordinary exchange a user of that service has.
@Suite(.serialized) struct NsupdateInfoTests {
    static let secret = "q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="

    @Test func frontdoorUpdatesAHostAtNsupdateInfo() throws {
        guard let python = Tool.find("python3") else { return Tool.skip("python3", package: "python3") }
        guard (try Tool.run(python, ["-c", "import nsupdate, argon2"])).status == 0 else {
            print("SKIP: PyPI nsupdate is not installed (pip install nsupdate argon2-cffi); .ci/run installs it")
            return
        }
        guard geteuid() == 0 else {
            print("SKIP: nsupdate.info talks to its primary on port 53 only, which needs root")
            return
        }
        // named shares ports (SO_REUSEPORT): with another DNS server on 127.0.0.1:53 — a system resolver, or
        // this suite running twice at once — the updates could reach the other one.
        guard isFree(53) else {
            print("SKIP: 127.0.0.1:53 is in use; nsupdate.info's primary needs it (.ci/run frees it)")
            return
        }
        let zoneText = """
            $TTL 60
            @    IN SOA ns.example.org. admin.example.org. 1 3600 600 86400 60
            @    IN NS  ns.example.org.
            ns   IN A   127.0.0.1
            home IN A   192.0.2.1
            """
        // nsupdate.info signs updates with a key named after the domain.
        guard
            let named = try BINDServer(
                zone: "example.org", zoneText: zoneText, keyName: "example.org.", algorithm: "hmac-sha256",
                secret: Self.secret, address: "127.0.0.1", fixedPort: 53)
        else { return }
        defer { withExtendedLifetime(named) {} }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try freePort()
        let log = open("\(directory)/server.log", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let server = try Tool.spawn(
            python,
            [Fixtures.path("Tests/Fixtures/nsupdate_server.py"), "\(port)", directory, "127.0.0.1", Self.secret],
            stdout: log, stderr: log)
        close(log)
        defer { Tool.stop(server) }
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: "\(directory)/ready") { usleep(50_000) }
        guard FileManager.default.fileExists(atPath: "\(directory)/ready") else {
            Issue.record("nsupdate.info did not start: \(Fixtures.textAt("\(directory)/server.log"))")
            return
        }
        let passwordFile = "\(directory)/password"
        try "hostsecret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o600)
        func push(_ address: String, password: String = passwordFile) -> PushOutcome {
            let provider = Provider(
                name: "nsupdate",
                kind: .dyndns2(
                    url: "http://127.0.0.1:\(port)/nic/update", hostname: "home.example.org",
                    username: "home.example.org", passwordFile: password),
                location: SourceLocation(file: "t", line: 1, column: 1))
            return ProviderClient().push(provider, address: IPAddress(address)!)
        }
        #expect(push("203.0.113.5") == .updated, "\(Fixtures.textAt("\(directory)/server.log"))")
        guard let dig = Tool.find("dig") else { return Tool.skip("dig", package: "dnsutils") }
        let answer = try Tool.run(dig, ["@127.0.0.1", "+short", "home.example.org", "A"])
        #expect(answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "203.0.113.5")
        #expect(push("203.0.113.5") == .unchanged, "the service says nochg")
        let wrong = "\(directory)/wrong"
        try "guess".write(toFile: wrong, atomically: true, encoding: .utf8)
        #expect(push("203.0.113.6", password: wrong) == .fatal("badauth: the username or password is wrong"))
        let unchanged = try Tool.run(dig, ["@127.0.0.1", "+short", "home.example.org", "A"])
        #expect(unchanged.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "203.0.113.5")
    }
}
