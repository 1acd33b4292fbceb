import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Unbound on 127.0.0.1 (one thread, in the foreground, its own directory): a DNS-over-TLS upstream, or a
/// recursive resolver with stub zones on loopback. `server` and `tail` are more configuration lines: inside
/// its `server:` clause, and after it (stub zones).
package final class UnboundServer {
    package let port: UInt16
    package let directory: String
    let pid: pid_t

    /// nil when unbound is not installed.
    package init?(port: UInt16? = nil, server: String = "", tail: String = "") throws {
        guard let unbound = Tool.find("unbound") else {
            Tool.skip("unbound", package: "unbound")
            return nil
        }
        let port = try port ?? freePort()
        self.port = port
        self.directory = try Tool.temporaryDirectory()
        let config = """
            server:
              interface: 127.0.0.1@\(port)
              do-daemonize: no
              username: ""
              chroot: ""
              directory: "\(self.directory)"
              pidfile: "\(self.directory)/unbound.pid"
              use-syslog: no
              logfile: ""
              verbosity: 0
              num-threads: 1
              access-control: 127.0.0.0/8 allow
            \(server)
            \(tail)
            """
        try config.write(toFile: "\(self.directory)/unbound.conf", atomically: true, encoding: .utf8)
        let log = open("\(self.directory)/unbound.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        self.pid = try Tool.spawn(unbound, ["-d", "-c", "\(self.directory)/unbound.conf"], stdout: log, stderr: log)
        close(log)
        for _ in 0..<100 where isFree(port) { usleep(50_000) }
    }

    deinit {
        Tool.stop(self.pid)
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
