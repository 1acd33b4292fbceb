import DNSServer
import EventLoop
import Foundation
import HTTPProxy
import HTTPWire
import Runtime
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// nginx on 127.0.0.1 as a real backend: static files from `root`, WebDAV PUT under /dav/, and a few
/// locations that show what arrived (`/echo` prints method, X-Forwarded-For, Host, X-Real-IP, Via and the
/// connection serial; `/chunked` answers with a chunked body; `/slow/` sends files at 1 MB/s).
package final class NginxServer {
    package let port: UInt16
    package let directory: String
    package var pid: pid_t?

    /// nil when nginx is not installed (the test prints why and returns). Without a fixed `port` it retries
    /// on another when the one picked was taken meanwhile.
    /// `extra`: more configuration inside its `http` block (say TLS servers on ports of their own).
    package init?(port: UInt16? = nil, extra: String = "") throws {
        guard let nginx = Tool.find("nginx") else {
            Tool.skip("nginx", package: "nginx-light")
            return nil
        }
        self.directory = try Tool.temporaryDirectory()
        let root = "\(self.directory)/www"
        try FileManager.default.createDirectory(atPath: "\(root)/dav", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/slow", withIntermediateDirectories: true)
        try "hello from nginx\n".write(toFile: "\(root)/index.html", atomically: true, encoding: .utf8)
        try "ok\n".write(toFile: "\(root)/healthz", atomically: true, encoding: .utf8)
        var attempt = 0
        while true {
            attempt += 1
            let candidate = try port ?? freePort()
            try NginxServer.writeConfig(directory: self.directory, port: candidate, extra: extra)
            let pid = try Tool.spawn(nginx, ["-c", "\(self.directory)/nginx.conf", "-p", self.directory])
            if waitForPort(candidate) {
                self.port = candidate
                self.pid = pid
                return
            }
            Tool.stop(pid)
            let log = Fixtures.textAt("\(self.directory)/error.log")
            guard port == nil, attempt < 5, log.contains("Address already in use") else {
                throw FixtureError(message: "nginx did not start: \(log)")
            }
        }
    }

    static func writeConfig(directory: String, port: UInt16, extra: String = "") throws {
        let root = "\(directory)/www"
        let echoModule = ["/usr/lib/nginx/modules/ngx_http_echo_module.so"].first {
            FileManager.default.fileExists(atPath: $0)
        }
        let chunked =
            echoModule != nil
            ? "location /chunked { echo \"first\"; echo_flush; echo \"second\"; }"
            : "location /chunked { return 404; }"
        let config = """
            daemon off;
            \(geteuid() == 0 ? "user root root;" : "")
            worker_processes 1;
            worker_rlimit_nofile 8192;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log;
            \(echoModule.map { "load_module \($0);" } ?? "")
            events { worker_connections 4096; }
            http {
              access_log off;
              client_body_temp_path \(directory)/body;
              proxy_temp_path \(directory)/proxy;
              fastcgi_temp_path \(directory)/fastcgi;
              uwsgi_temp_path \(directory)/uwsgi;
              scgi_temp_path \(directory)/scgi;
              keepalive_requests 100000;
              server {
                listen 127.0.0.1:\(port);
                root \(root);
                client_max_body_size 0;
                location /echo {
                  return 200 "$request_method|$http_x_forwarded_for|$http_host|$http_x_real_ip|$http_via|$connection|$http_x_forwarded_proto|$http_connection|$http_te\\n";
                }
                location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }
                location /slow/ { limit_rate 1m; }
                \(chunked)
              }
              \(extra)
            }
            """
        try config.write(toFile: "\(directory)/nginx.conf", atomically: true, encoding: .utf8)
    }

    package var root: String { "\(self.directory)/www" }

    /// Kills nginx at once (SIGKILL), as a crashing backend.
    package func kill() {
        guard let pid = self.pid else { return }
        Glibc.kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        self.pid = nil
    }

    deinit {
        if let pid { Tool.stop(pid) }
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// Waits up to two seconds for something to accept on 127.0.0.1:`port`.
package func waitForPort(_ port: UInt16) -> Bool {
    for _ in 0..<100 {
        if let socket = try? TestSocket(port: port) {
            socket.close()
            return true
        }
        usleep(20_000)
    }
    return false
}

/// Frontdoor's proxy on 127.0.0.1 (kernel-chosen port) over zones compiled in memory.
package final class FrontdoorHTTP {
    package let service: HTTPService
    package let store: SnapshotStore
    package let port: UInt16

    package init(
        zones: [(name: String, text: String)], config: String = Fixtures.config, workers: Int = 1,
        tweak: (inout HTTPOptions) -> Void = { _ in }
    ) throws {
        let result = Fixtures.compile(zones: zones, config: config)
        guard let snapshot = result.snapshot else {
            throw FixtureError(message: "model has errors: \(result.diagnostics.sorted.map(\.description))")
        }
        self.store = SnapshotStore(DNSTables(snapshot: snapshot))
        var options = HTTPOptions(
            listeners: [SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: 0)], workers: workers)
        tweak(&options)
        self.service = try HTTPService(options: options, store: self.store)
        self.port = self.service.boundListeners[0].port
        self.service.start()
    }

    deinit { self.service.stop() }
}

/// A blocking TCP client for tests: raw bytes out, whole responses in (framing read with the proxy's own
/// response parser, which has its own tests).
package final class TestSocket {
    package let fd: Int32
    var buffered: [UInt8] = []
    var closed = false
    /// The peer ended the connection (end of stream, or a reset when it closed with our bytes unread), as
    /// opposed to a read timing out.
    package private(set) var peerClosed = false

    /// Connects to 127.0.0.1:`port` from 127.0.0.`source`.
    package init(port: UInt16, source: UInt8 = 1, timeout: Int = 10) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError(message: "socket failed") }
        var seconds = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        if source != 1 {
            let bound = withLoopbackAddress(port: 0, host: source) { bind(fd, $0, $1) }
            guard bound == 0 else {
                Glibc.close(fd)
                throw FixtureError(message: "cannot bind 127.0.0.\(source)")
            }
        }
        let connected = withLoopbackAddress(port: port) { connect(fd, $0, $1) }
        guard connected == 0 else {
            Glibc.close(fd)
            throw FixtureError(message: "cannot connect to port \(port)")
        }
        self.fd = fd
    }

    package func send(_ text: String) { self.send(Array(text.utf8)) }

    package func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(self.fd, raw.baseAddress.map { $0 + offset }, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Reads more bytes; false at end of stream, on error or on timeout.
    func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var got = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        // A signal (another test's child ending) interrupts the wait: that is no end of stream.
        while got < 0 && errno == EINTR {
            got = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        }
        guard got > 0 else {
            if got == 0 || errno == ECONNRESET { self.peerClosed = true }
            return false
        }
        self.buffered += chunk[0..<got]
        return true
    }

    /// Bytes until the peer closes (or the timeout passes).
    package func readToEnd() -> [UInt8] {
        while self.fill() {}
        defer { self.buffered = [] }
        return self.buffered
    }

    /// Reads exactly `count` bytes (fewer at end of stream).
    package func read(count: Int) -> [UInt8] {
        while self.buffered.count < count && self.fill() {}
        let taken = Array(self.buffered.prefix(count))
        self.buffered.removeFirst(taken.count)
        return taken
    }

    /// One whole response: status, head text and body (de-chunked); nil when the stream ends first.
    package func readResponse(headRequest: Bool = false) -> TestResponse? {
        var head: HTTPResponseHead?
        while head == nil {
            head = self.buffered.withUnsafeBytes { try? HTTPResponseParser.parse($0, headRequest: headRequest) }
            if head == nil && !self.fill() { return nil }
        }
        guard let head else { return nil }
        let headText = String(decoding: self.buffered[0..<head.length], as: UTF8.self)
        self.buffered.removeFirst(head.length)
        var body: [UInt8] = []
        switch head.framing {
        case .none:
            break
        case .contentLength(let length):
            body = self.read(count: Int(length))
        case .untilClose:
            body = self.readToEnd()
        case .chunked:
            var decoder = ChunkedDecoder()
            while !decoder.isComplete {
                if self.buffered.isEmpty && !self.fill() { return nil }
                let input = self.buffered
                let used = input.withUnsafeBytes { raw in
                    (try? decoder.feed(raw) { body += input[$0] }) ?? -1
                }
                guard used >= 0 else { return nil }
                self.buffered.removeFirst(used)
            }
        }
        return TestResponse(status: head.status, head: headText, body: body)
    }

    /// Closes the socket now; the deinit then does nothing. Closing twice would close whatever descriptor
    /// the number was handed to in between, another test's socket or file (seen as EBADF in another test).
    package func close() {
        guard !self.closed else { return }
        self.closed = true
        Glibc.close(self.fd)
    }

    deinit { self.close() }
}

package struct TestResponse {
    package var status: Int
    package var head: String
    package var body: [UInt8]

    package var text: String { String(decoding: self.body, as: UTF8.self) }

    /// The first value of a header field (case-insensitive name).
    package func field(_ name: String) -> String? {
        for line in self.head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

/// Resident memory of this process in KiB (VmRSS).
package func residentKiB() -> Int {
    let status = Fixtures.textAt("/proc/self/status")
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
    return 0
}
