import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// BIND's `named` on 127.0.0.1 as the primary of one zone that accepts RFC 2136 updates signed with one TSIG
/// key: the outside DNS provider the DynDNS updater pushes to.
package final class BINDServer {
    package let port: UInt16
    package let directory: String
    package let pid: pid_t
    /// The key file (BIND format) the zone accepts updates with.
    package let keyFile: String

    /// nil when named is not installed.
    /// Listens on 127.0.0.1 and a free port, or on `address`:`fixedPort` when given (peers that can only
    /// talk to port 53).
    package init?(
        zone: String, zoneText: String, keyName: String, algorithm: String, secret: String,
        address: String = "127.0.0.1", fixedPort: UInt16? = nil
    ) throws {
        guard let named = Tool.find("named") else {
            Tool.skip("named", package: "bind9")
            return nil
        }
        self.directory = try Tool.temporaryDirectory()
        self.keyFile = "\(self.directory)/update.key"
        try "key \"\(keyName)\" {\n\talgorithm \(algorithm);\n\tsecret \"\(secret)\";\n};\n".write(
            toFile: self.keyFile, atomically: true, encoding: .utf8)
        chmod(self.keyFile, 0o600)
        try zoneText.write(toFile: "\(self.directory)/\(zone).zone", atomically: true, encoding: .utf8)
        var attempt = 0
        while true {
            attempt += 1
            let port = try fixedPort ?? freePort()
            let config = """
                options {
                  directory "\(self.directory)";
                  listen-on port \(port) { \(address); };
                  listen-on-v6 { none; };
                  pid-file "\(self.directory)/named.pid";
                  session-keyfile "\(self.directory)/session.key";
                  recursion no;
                  dnssec-validation no;
                  notify no;
                };
                controls { };
                include "\(self.keyFile)";
                zone "\(zone)" { type primary; file "\(self.directory)/\(zone).zone"; allow-update { key "\(keyName)"; }; };
                """
            try config.write(toFile: "\(self.directory)/named.conf", atomically: true, encoding: .utf8)
            let log = open("\(self.directory)/named.log", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let pid = try Tool.spawn(named, ["-g", "-c", "\(self.directory)/named.conf"], stdout: log, stderr: log)
            close(log)
            var ready = false
            for _ in 0..<100 {
                let text = Fixtures.textAt("\(self.directory)/named.log")
                // Ready when the zone itself is loaded ("running" alone also appears when it failed to load).
                if text.contains("running") && text.contains("zone \(zone)/IN: loaded serial") {
                    ready = true
                    break
                }
                usleep(50_000)
            }
            if ready {
                self.port = port
                self.pid = pid
                return
            }
            Tool.stop(pid)
            let text = Fixtures.textAt("\(self.directory)/named.log")
            guard fixedPort == nil, attempt < 5, text.contains("address in use") else {
                throw FixtureError(message: "named did not start: \(text)")
            }
        }
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
