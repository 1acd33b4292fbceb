import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// NSD, Knot or BIND on 127.0.0.1 as a secondary of one zone pulled from a primary on loopback, with a TSIG
/// key for transfers and NOTIFY: the public name servers of a hidden-primary setup.
package final class SecondaryServer {
    package enum Kind: String, CaseIterable, Sendable {
        case nsd, knot, bind
    }

    package let kind: Kind
    package let port: UInt16
    package let directory: String
    package let pid: pid_t
    package let log: String

    /// nil (with a printed reason) when the server is not installed. The key is hmac-sha256.
    package init?(
        _ kind: Kind, port: UInt16, zone: String, primaryPort: UInt16, keyName: String, secret: String
    ) throws {
        let program: String
        switch kind {
        case .nsd: program = "nsd"
        case .knot: program = "knotd"
        case .bind: program = "named"
        }
        guard let path = Tool.find(program) else {
            Tool.skip(program, package: kind == .bind ? "bind9" : kind == .knot ? "knot" : "nsd")
            return nil
        }
        self.kind = kind
        self.port = port
        self.directory = try Tool.temporaryDirectory()
        let directory = self.directory
        self.log = "\(directory)/\(kind).log"
        let arguments: [String]
        switch kind {
        case .nsd:
            try """
            server:
              ip-address: 127.0.0.1@\(port)
              zonesdir: "\(directory)"
              pidfile: "\(directory)/nsd.pid"
              database: ""
              username: ""
              chroot: ""
              logfile: "\(self.log)"
              xfrdfile: "\(directory)/xfrd.state"
              xfrdir: "\(directory)"
              zonelistfile: "\(directory)/zone.list"
              rrl-ratelimit: 0
              server-count: 1
              verbosity: 2
            remote-control:
              control-enable: no
            key:
              name: "\(keyName)"
              algorithm: hmac-sha256
              secret: "\(secret)"
            zone:
              name: "\(zone)"
              zonefile: "\(zone).zone"
              request-xfr: 127.0.0.1@\(primaryPort) \(keyName)
              allow-notify: 127.0.0.1 \(keyName)
              provide-xfr: 127.0.0.1 NOKEY

            """.write(toFile: "\(directory)/nsd.conf", atomically: true, encoding: .utf8)
            arguments = ["-d", "-c", "\(directory)/nsd.conf"]
        case .knot:
            try FileManager.default.createDirectory(atPath: "\(directory)/db", withIntermediateDirectories: true)
            try
                (SecondaryServer.knotHead(port: port, directory: directory, log: self.log, level: "info") + """
                    key:
                      - id: \(keyName)
                        algorithm: hmac-sha256
                        secret: \(secret)
                    remote:
                      - id: primary
                        address: 127.0.0.1@\(primaryPort)
                        key: \(keyName)
                    acl:
                      - id: notify-from-primary
                        address: 127.0.0.1
                        key: \(keyName)
                        action: notify
                    template:
                      - id: default
                        storage: "\(directory)"
                    zone:
                      - domain: \(zone)
                        master: primary
                        acl: notify-from-primary

                    """).write(toFile: "\(directory)/knot.conf", atomically: true, encoding: .utf8)
            arguments = ["-c", "\(directory)/knot.conf"]
        case .bind:
            try
                (SecondaryServer.bindOptions(port: port, directory: directory) + """
                    key "\(keyName)" { algorithm hmac-sha256; secret "\(secret)"; };
                    zone "\(zone)" {
                      type secondary;
                      primaries port \(primaryPort) { 127.0.0.1 key "\(keyName)"; };
                      file "\(directory)/\(zone).copy";
                    };

                    """).write(toFile: "\(directory)/named.conf", atomically: true, encoding: .utf8)
            arguments = ["-g", "-c", "\(directory)/named.conf"]
        }
        let logFD = open(kind == .bind ? self.log : "\(directory)/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        self.pid = try Tool.spawn(path, arguments, stdout: logFD, stderr: logFD)
        close(logFD)
    }

    /// The start of a Knot configuration: one worker of each kind on 127.0.0.1:`port`, its files in `directory`.
    static func knotHead(port: UInt16, directory: String, log: String, level: String) -> String {
        """
        server:
            listen: 127.0.0.1@\(port)
            rundir: "\(directory)"
            udp-workers: 1
            tcp-workers: 1
            background-workers: 1
        log:
          - target: "\(log)"
            any: \(level)
        database:
            storage: "\(directory)/db"

        """
    }

    /// BIND's options for a test server on 127.0.0.1:`port`: no recursion, no validation, no NOTIFY of its own.
    static func bindOptions(port: UInt16, directory: String) -> String {
        """
        options {
          directory "\(directory)";
          listen-on port \(port) { 127.0.0.1; };
          listen-on-v6 { none; };
          pid-file "\(directory)/named.pid";
          session-keyfile "\(directory)/session.key";
          recursion no;
          dnssec-validation no;
          notify no;
        };
        controls { };

        """
    }

    /// The log so far (for failure messages).
    package var logText: String {
        Fixtures.textAt(self.log) + Fixtures.textAt("\(self.directory)/stderr")
    }

    /// `dig +short` for a question to this secondary (empty when it does not answer).
    package func short(_ name: String, _ type: String) -> [String] {
        guard let dig = Tool.find("dig"),
            let outcome = try? Tool.run(
                dig, ["@127.0.0.1", "-p", "\(self.port)", "+time=1", "+tries=1", "+norec", name, type, "+short"])
        else { return [] }
        return outcome.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") }
    }

    /// Waits up to `seconds` for `name TYPE` to be answered with `expected`; whether it was.
    package func waitFor(_ name: String, _ type: String, _ expected: [String], seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if self.short(name, type) == expected { return true }
            usleep(100_000)
        } while Date() < deadline
        return false
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Knot or BIND on 127.0.0.1 as the primary of zones given as text: references for differential tests
/// (NSD has `NSDServer`).
package final class ReferenceServer {
    package let kind: SecondaryServer.Kind
    package let port: UInt16
    package let directory: String
    package let pid: pid_t

    /// nil (with a printed reason) when the server is not installed.
    package init?(_ kind: SecondaryServer.Kind, zones: [(apex: String, text: String)]) throws {
        let program = kind == .knot ? "knotd" : kind == .bind ? "named" : "nsd"
        guard kind != .nsd, let path = Tool.find(program) else {
            Tool.skip(program, package: kind == .bind ? "bind9" : "knot")
            return nil
        }
        self.kind = kind
        self.directory = try Tool.temporaryDirectory()
        self.port = try freePort()
        let directory = self.directory
        for zone in zones {
            try zone.text.write(toFile: "\(directory)/\(zone.apex)zone", atomically: true, encoding: .utf8)
        }
        let arguments: [String]
        if kind == .knot {
            try FileManager.default.createDirectory(atPath: "\(directory)/db", withIntermediateDirectories: true)
            var config =
                SecondaryServer.knotHead(
                    port: self.port, directory: directory, log: "\(directory)/knot.log", level: "warning") + """
                    template:
                      - id: default
                        storage: "\(directory)"
                        file: "%s.zone"
                    zone:

                    """
            for zone in zones { config += "  - domain: \(zone.apex)\n" }
            try config.write(toFile: "\(directory)/knot.conf", atomically: true, encoding: .utf8)
            arguments = ["-c", "\(directory)/knot.conf"]
        } else {
            var config = SecondaryServer.bindOptions(port: self.port, directory: directory) + "\n"
            for zone in zones {
                config += "zone \"\(zone.apex)\" { type primary; file \"\(directory)/\(zone.apex)zone\"; };\n"
            }
            try config.write(toFile: "\(directory)/named.conf", atomically: true, encoding: .utf8)
            arguments = ["-g", "-c", "\(directory)/named.conf"]
        }
        let log = open("\(directory)/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        self.pid = try Tool.spawn(path, arguments, stdout: log, stderr: log)
        close(log)
        for _ in 0..<100 {
            if let dig = Tool.find("dig"),
                let outcome = try? Tool.run(
                    dig, ["@127.0.0.1", "-p", "\(self.port)", "+time=1", "+tries=1", zones[0].apex, "SOA", "+short"]),
                outcome.stdout.split(separator: "\n").contains(where: { !$0.hasPrefix(";") })
            {
                return
            }
            usleep(50_000)
        }
        let text = Fixtures.textAt("\(directory)/stderr") + Fixtures.textAt("\(directory)/knot.log")
        Tool.stop(self.pid)
        throw FixtureError(message: "\(program) did not start: \(text)")
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
