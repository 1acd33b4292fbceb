import CSys
import DynDNS
import EventLoop
import HTTPProxy
import Synchronization
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// One backend of one site, as health checks know it.
struct HealthKey: Hashable, Sendable {
    var site: DomainName
    var backend: SocketAddress
}

/// Results of active health checks, written by the prober and read by the proxy loops: a loop compares the
/// generation (one atomic load per tick) and copies the table only when it changed.
final class HealthBoard: Sendable {
    let table = Mutex<[HealthKey: Bool]>([:])
    let counter = Atomic<Int>(0)

    var generation: Int { self.counter.load(ordering: .acquiring) }

    func results() -> [HealthKey: Bool] { self.table.withLock { $0 } }

    /// Records a check; bumps the generation only when a result changed.
    func record(_ key: HealthKey, passed: Bool) {
        let changed = self.table.withLock { table in
            let old = table[key]
            table[key] = passed
            return old != passed
        }
        if changed { self.counter.add(1, ordering: .releasing) }
    }
}

/// Runs active health checks on its own thread: `GET <health path>` on every backend of every site that
/// names one, each interval. A check passes on a 2xx or 3xx status within two seconds.
final class HealthProber: Sendable {
    let store: SnapshotStore
    let board: HealthBoard
    let interval: UInt64
    let stopped = Atomic<Bool>(false)
    /// Control-plane chores that run once per interval on this thread (the heap trimmer).
    let housekeeping: @Sendable () -> Void

    init(store: SnapshotStore, board: HealthBoard, interval: UInt64, housekeeping: @escaping @Sendable () -> Void = {})
    {
        self.store = store
        self.board = board
        self.interval = max(100, interval)
        self.housekeeping = housekeeping
    }

    func stop() { self.stopped.store(true, ordering: .releasing) }

    /// TLS contexts for checking `https://` backends, made once per settings (on this thread only).
    let clients = Mutex<[BackendTLS: TLSClient]>([:])

    func client(_ settings: BackendTLS) -> TLSClient? {
        if let client = self.clients.withLock({ $0[settings] }) { return client }
        guard let client = try? TLSClient(verify: settings.verify, caFile: settings.caFile) else { return nil }
        self.clients.withLock { $0[settings] = client }
        return client
    }

    func run() {
        while !self.stopped.load(ordering: .acquiring) {
            let started = monotonicMilliseconds()
            let snapshot = self.store.tables().snapshot
            for site in snapshot.routes.sites {
                guard let path = site.healthPath else { continue }
                for backend in site.backends {
                    if self.stopped.load(ordering: .acquiring) { return }
                    var tls: (client: TLSClient, name: String?)?
                    if backend.tls, let settings = site.backendTLS {
                        guard let client = self.client(settings) else { continue }
                        tls = (client, settings.serverName ?? backend.host)
                    }
                    let passed = HealthProber.check(
                        backend.address, host: site.name.hostDescription, path: path, tls: tls)
                    let key = HealthKey(site: site.name, backend: backend.address)
                    let before = self.board.results()[key]
                    if before != passed {
                        Log.info(
                            "health: \(site.name.hostDescription) backend \(backend.address) is \(passed ? "up" : "down")"
                        )
                    }
                    self.board.record(key, passed: passed)
                }
            }
            self.housekeeping()
            while !self.stopped.load(ordering: .acquiring) && monotonicMilliseconds() &- started < self.interval {
                usleep(50_000)
            }
        }
    }

    /// One check: connect (and the TLS handshake for an `https://` backend, with `client`), send the request,
    /// read the status line; at most two seconds.
    static func check(
        _ address: SocketAddress, host: String, path: String, tls: (client: TLSClient, name: String?)? = nil
    ) -> Bool {
        guard let fd = try? Sockets.tcpClient(address) else { return false }
        defer { Sockets.close(fd) }
        let deadline = monotonicMilliseconds() + 2_000
        func wait(_ events: Int16) -> Bool {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let left = Int32(clamping: Int64(deadline) - Int64(monotonicMilliseconds()))
            guard left > 0 else { return false }
            return poll(&entry, 1, left) == 1 && entry.revents & events != 0
        }
        guard wait(Int16(POLLOUT)), csys_socket_error(fd) == 0 else { return false }
        var transport = Transport.plain
        if let tls {
            guard let stream = tls.client.stream(fd, serverName: tls.name, ip: address.address.description) else {
                return false
            }
            transport = .tls(stream)
            handshake: while true {
                switch stream.handshake() {
                case .done: break handshake
                case .wantsReadable: guard wait(Int16(POLLIN)) else { return false }
                case .wantsWritable: guard wait(Int16(POLLOUT)) else { return false }
                case .failed: return false
                }
            }
        }
        defer { transport.finish() }
        let request = Array(
            "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: frontdoor-health\r\nConnection: close\r\n\r\n".utf8)
        var offset = 0
        while offset < request.count {
            let outcome = request.withUnsafeBytes {
                transport.send(fd, UnsafeRawBufferPointer(rebasing: $0[offset...]), more: false)
            }
            switch outcome {
            case .sent(let count): offset += count
            case .wouldBlock: guard wait(Int16(POLLOUT)) else { return false }
            case .failed: return false
            }
        }
        var response: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        while response.count < 12 {
            switch transport.receive(fd, into: buffer) {
            case .bytes(let got): response += buffer[0..<got]
            case .wouldBlock:
                guard wait(Int16(POLLIN) | (transport.readWantsWritable ? Int16(POLLOUT) : 0)) else { return false }
            case .closed, .failed: return false
            }
        }
        // "HTTP/1.x NNN"
        guard response.starts(with: Array("HTTP/1.".utf8)), response[8] == 32 else { return false }
        return response[9] == UInt8(ascii: "2") || response[9] == UInt8(ascii: "3")
    }
}

/// Where access-log lines go and how they look. Each proxy loop collects lines in its own buffer and hands
/// them over a batch at a time, so the request path takes no lock and makes no system call for logging.
public final class AccessLog: Sendable {
    public enum Format: Sendable {
        /// nginx's `combined` plus site, backend and duration.
        case combined
        /// One JSON object per line.
        case json
    }

    let fd: Int32
    let format: Format
    let ownsDescriptor: Bool

    /// Appends to `path`, or writes to standard output for "-".
    public init(path: String, format: Format) throws(SocketError) {
        self.format = format
        if path == "-" {
            self.fd = 1
            self.ownsDescriptor = false
        } else {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw SocketError(errno: errno, context: "cannot open access log \(path)") }
            self.fd = fd
            self.ownsDescriptor = true
        }
    }

    deinit {
        if self.ownsDescriptor { Sockets.close(self.fd) }
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.write(self.fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    func format(_ record: AccessRecord, time: LogClock.Stamp, milliseconds: Int) -> String {
        let client = record.client.unmapped.description
        let backend = record.backendAddress?.description
        let site = record.site?.hostDescription
        switch self.format {
        case .combined:
            return ProxyResponses.accessLogLine(
                client: client, time: time.common, requestLine: record.requestLine, status: record.status,
                bytes: Int(record.bytes), referer: record.referer, userAgent: record.userAgent, site: site,
                backend: backend, milliseconds: milliseconds)
        case .json:
            func string(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }
            return JSON.object([
                ("time", .string(time.iso)), ("client", .string(client)), ("request", .string(record.requestLine)),
                ("host", string(record.host)), ("status", .number(Double(record.status))),
                ("bytes", .number(Double(record.bytes))), ("referer", string(record.referer)),
                ("user_agent", string(record.userAgent)), ("site", string(site)), ("backend", string(backend)),
                ("duration_ms", .number(Double(milliseconds))),
            ]).text()
        }
    }
}

/// Wall-clock stamps for log lines, formatted once per second.
struct LogClock {
    struct Stamp {
        /// `26/Nov/2026:18:11:42 +0000`
        var common: String
        /// `2026-11-26T18:11:42Z`
        var iso: String
    }

    var second = -1
    var stamp = Stamp(common: "", iso: "")
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> Stamp {
        var seconds = time(nil)
        guard Int(seconds) != self.second else { return self.stamp }
        self.second = Int(seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let year = Int(parts.tm_year) + 1900
        let clock = "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        self.stamp = Stamp(
            common: "\(two(parts.tm_mday))/\(LogClock.months[Int(parts.tm_mon)])/\(year):\(clock) +0000",
            iso: "\(year)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(clock)Z")
        return self.stamp
    }
}
