import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Debian's pebble (Let's Encrypt's test CA) on 127.0.0.1: its ACME API over TLS with a certificate from a
/// test CA of our own, its management API beside it, validating DNS-01 by asking `dnsPort` on loopback and
/// HTTP-01 on `httpPort`. Its log (one line per request) is kept for counting.
package final class PebbleServer {
    package let port: UInt16
    package let managementPort: UInt16
    package let directory: String
    let certificates: TestCertificates
    package var pid: pid_t?

    /// nil when pebble (or openssl) is not installed. `environment`: PEBBLE_* settings, as
    /// "PEBBLE_WFE_NONCEREJECT=50".
    /// `validity`: the lifetime of the certificates it issues, in seconds (its default: five years).
    /// `binding`: require external account binding with this key ID and base64url MAC key.
    package init?(
        dnsPort: UInt16, httpPort: UInt16 = 5002, environment: [String] = [], validity: Int? = nil,
        binding: (keyID: String, key: String)? = nil
    ) throws {
        guard let pebble = Tool.find("pebble") else {
            Tool.skip("pebble", package: "pebble")
            return nil
        }
        guard let certificates = try TestCertificates() else { return nil }
        self.certificates = certificates
        self.directory = try Tool.temporaryDirectory()
        try certificates.issue("pebble", names: ["127.0.0.1", "localhost"])
        var attempt = 0
        while true {
            attempt += 1
            let port = try freePort()
            let managementPort = try freePort()
            let tlsPort = try freePort()
            let config = """
                {"pebble": {"listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(managementPort)",
                "certificate": "\(certificates.path("certs/pebble.crt"))", "privateKey": "\(certificates.path("certs/pebble.key"))",
                "httpPort": \(httpPort), "tlsPort": \(tlsPort), "ocspResponderURL": "", "externalAccountBindingRequired": \(binding != nil)\(validity.map { ", \"certificateValidityPeriod\": \($0)" } ?? "")\(binding.map { ", \"externalAccountMACKeys\": {\"\($0.keyID)\": \"\($0.key)\"}" } ?? "")}}
                """
            try config.write(toFile: self.directory + "/pebble.json", atomically: true, encoding: .utf8)
            let logFD = open(self.directory + "/pebble.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            defer { close(logFD) }
            let pid = try Tool.spawn(
                pebble, ["-config", self.directory + "/pebble.json", "-dnsserver", "127.0.0.1:\(dnsPort)"],
                stdout: logFD, stderr: logFD,
                environment: ["PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0"] + environment)
            if waitForPort(port) && waitForPort(managementPort) {
                self.port = port
                self.managementPort = managementPort
                self.pid = pid
                return
            }
            Tool.stop(pid)
            guard attempt < 5 else {
                let log = Fixtures.textAt(self.directory + "/pebble.log")
                throw FixtureError(message: "pebble did not start: \(log)")
            }
        }
    }

    deinit {
        if let pid { Tool.stop(pid) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    package var directoryURL: String { "https://127.0.0.1:\(self.port)/dir" }

    /// The CA that signed pebble's own listener certificate (for `ca-file=`).
    package var listenerAuthority: String { self.certificates.authority }

    package var log: String { Fixtures.textAt(self.directory + "/pebble.log") }

    /// How many requests to `path` (as "/order-plz") pebble has logged, refused ones (a bad nonce) included.
    package func requests(_ path: String) -> Int {
        self.log.components(separatedBy: "\n").filter { $0.contains("POST \(path)") || $0.contains("GET \(path)") }
            .count
    }

    /// How many orders pebble has created.
    package var orders: Int { self.log.components(separatedBy: "\n").filter { $0.contains("Added order") }.count }

    /// How many accounts pebble has created.
    package var accounts: Int {
        self.log.components(separatedBy: "\n").filter { $0.contains("accounts in memory") }.count
    }

    /// Pebble's root (regenerated at each start), written to a file for `curl --cacert`.
    package func root() throws -> String {
        let path = self.directory + "/root.pem"
        let outcome = try Tool.run(
            Tool.find("curl") ?? "curl",
            ["-sS", "--cacert", self.listenerAuthority, "-o", path, "https://127.0.0.1:\(self.managementPort)/roots/0"])
        guard outcome.status == 0 else { throw FixtureError(message: "pebble's root: \(outcome.stderr)") }
        return path
    }
}
