import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `Tests/Fixtures/provider_server.py` on 127.0.0.1: a dyndns2 server, a Cloudflare-style API and an
/// address echo, over HTTPS with a certificate from a test CA made here with the `openssl` tool (or HTTP).
package final class ProviderServer {
    package let port: UInt16
    package let directory: String
    package let pid: pid_t
    /// The test CA's certificate (HTTPS only): the trust store the client must be given.
    package let caFile: String?

    package var base: String { "\(self.caFile == nil ? "http" : "https")://127.0.0.1:\(self.port)" }

    /// nil when python3 or (for HTTPS) openssl is missing.
    package init?(tls: Bool) throws {
        guard let python = Tool.find("python3") else {
            Tool.skip("python3", package: "python3")
            return nil
        }
        self.directory = try Tool.temporaryDirectory()
        var tlsArguments: [String] = []
        if tls {
            guard let openssl = Tool.find("openssl") else {
                Tool.skip("openssl", package: "openssl")
                return nil
            }
            let d = self.directory
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
                toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
            for step in [
                ["req", "-x509"] + ec + [
                    "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem", "-days", "2", "-subj", "/CN=Frontdoor Test CA",
                ],
                ["req"] + ec + ["-keyout", "\(d)/server.key", "-out", "\(d)/server.csr", "-subj", "/CN=127.0.0.1"],
                [
                    "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key",
                    "-CAcreateserial", "-out", "\(d)/server.pem", "-days", "2", "-extfile", "\(d)/san.ext",
                ],
            ] {
                let outcome = try Tool.run(openssl, step)
                guard outcome.status == 0 else { throw FixtureError(message: "openssl failed: \(outcome.stderr)") }
            }
            self.caFile = "\(d)/ca.pem"
            tlsArguments = ["\(d)/server.pem", "\(d)/server.key"]
        } else {
            self.caFile = nil
        }
        // A port free a moment ago may be taken by the time Python binds it: then try another.
        var attempt = 0
        while true {
            attempt += 1
            try? FileManager.default.removeItem(atPath: "\(self.directory)/ready")
            let port = try freePort()
            let log = open("\(self.directory)/server.log", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let pid = try Tool.spawn(
                python, [Fixtures.path("Tests/Fixtures/provider_server.py"), "\(port)", self.directory] + tlsArguments,
                stdout: log, stderr: log)
            close(log)
            var ready = false
            for _ in 0..<300 {
                if FileManager.default.fileExists(atPath: "\(self.directory)/ready") {
                    ready = true
                    break
                }
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { break }
                usleep(50_000)
            }
            if ready && waitForPort(port) {
                self.port = port
                self.pid = pid
                return
            }
            Tool.stop(pid)
            let text = Fixtures.textAt("\(self.directory)/server.log")
            guard attempt < 5, text.contains("Address already in use") else {
                throw FixtureError(message: "provider server did not start: \(text)")
            }
        }
    }

    /// Sets what `/ip` returns.
    package func setEcho(_ text: String) throws {
        try text.write(toFile: "\(self.directory)/ip", atomically: true, encoding: .utf8)
    }

    /// Sets the dyndns2 answer (nil: "good ADDRESS").
    package func setAnswer(_ text: String?) throws {
        let path = "\(self.directory)/answer"
        if let text {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// The requests seen so far, as "METHOD PATH" lines.
    package var requests: [String] {
        Fixtures.textAt("\(self.directory)/requests").split(separator: "\n").map(String.init)
    }

    /// Writes a secret file readable by its owner only, as the config parser insists.
    package func secret(_ name: String, _ value: String) throws -> String {
        let path = "\(self.directory)/\(name)"
        try value.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
