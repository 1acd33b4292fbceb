import Foundation

/// Headless Chromium as an HTTPS client that trusts only what a test gives it: each profile has its own
/// NSS database (`HOME/.pki/nssdb`), made with certutil, holding the roots passed in.
package struct HeadlessChromium {
    let chromium: String
    let certutil: String

    /// nil (with the reason printed) when chromium or certutil is missing.
    package init?() {
        guard let chromium = Tool.find("chromium"), let certutil = Tool.find("certutil") else {
            Tool.skip("chromium or certutil", package: "chromium libnss3-tools")
            return nil
        }
        self.chromium = chromium
        self.certutil = certutil
    }

    /// Makes a profile under `home` whose browser trusts the PEM roots in `roots` (none: trusts nothing extra).
    package func profile(_ home: String, trusting roots: [String]) throws {
        let database = "sql:" + home + "/.pki/nssdb"
        try FileManager.default.createDirectory(atPath: home + "/.pki/nssdb", withIntermediateDirectories: true)
        let made = try Tool.run(self.certutil, ["-N", "-d", database, "--empty-password"])
        guard made.status == 0 else { throw FixtureError(message: "certutil -N: \(made.stderr)") }
        for (index, root) in roots.enumerated() {
            let added = try Tool.run(
                self.certutil, ["-A", "-d", database, "-t", "C,,", "-n", "root\(index)", "-i", root])
            guard added.status == 0 else { throw FixtureError(message: "certutil -A: \(added.stderr)") }
        }
    }

    /// Loads `url` in the profile at `home` with `host` resolved to 127.0.0.1: the page's DOM on stdout, or a
    /// screenshot at `screenshot`.
    package func browse(_ url: String, home: String, host: String, screenshot: String? = nil) throws -> Tool.Outcome {
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        return try Tool.run(
            "/usr/bin/env",
            [
                "HOME=\(home)", "timeout", "60", self.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--user-data-dir=\(home)/profile", "--host-resolver-rules=MAP \(host) 127.0.0.1",
                screenshot.map { "--screenshot=\($0)" } ?? "--dump-dom", url,
            ])
    }
}
