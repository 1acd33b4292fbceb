import CSys
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// How the proxy runs.
public struct HTTPOptions: Sendable {
    public var listeners: [SocketAddress]
    /// HTTPS listeners: TLS terminated with the certificates `tls` holds (see TLSServerStore).
    public var tlsListeners: [SocketAddress] = []
    public var tls: TLSServerStore?
    /// ACME HTTP-01 proofs the plain-HTTP listeners answer.
    public var challenges: ChallengeTokens?
    public var workers: Int
    public var timeouts = ProxyTimeouts()
    /// Client connections per worker; at the limit a worker stops accepting (the kernel queues the rest).
    public var maximumConnections = 8192
    /// Idle keep-alive connections kept per backend and worker.
    public var maximumIdlePerBackend = 64
    /// Milliseconds between active health checks.
    public var healthInterval: UInt64 = 5_000
    public var accessLog: AccessLog?
    /// Bytes queued towards one side before reading from the other side pauses (backpressure).
    public var queueLimit = 256 * 1024

    public init(listeners: [SocketAddress], workers: Int) {
        self.listeners = listeners
        self.workers = workers
    }
}

/// The reverse proxy: one epoll loop per core, each with its own listening sockets (SO_REUSEPORT), its own
/// connections, keep-alive pools and passive health. Active health checks run on one thread and reach the
/// loops through `HealthBoard`.
public final class HTTPService: @unchecked Sendable {
    let workers: [HTTPWorker]
    let prober: HealthProber
    let board: HealthBoard
    let threads = Mutex<[pthread_t]>([])
    public let boundListeners: [SocketAddress]
    public let boundTLSListeners: [SocketAddress]

    public init(options: HTTPOptions, store: SnapshotStore) throws(SocketError) {
        var resolved: [SocketAddress] = []
        var resolvedTLS: [SocketAddress] = []
        var perWorker: [[HTTPWorker.Listener]] = Array(repeating: [], count: max(1, options.workers))
        var opened: [Int32] = []
        let all = options.listeners.map { ($0, false) } + options.tlsListeners.map { ($0, true) }
        do throws(SocketError) {
            // Before any of ours is bound: a listener may overlap another of ours (0.0.0.0 and 192.0.2.1).
            for (listener, tls) in all where listener.port != 0 {
                try Sockets.ensureUnclaimed(listener, stream: true, service: tls ? "https" : "http")
            }
            for (listener, tls) in all {
                var address = listener
                for worker in 0..<perWorker.count {
                    let fd = try Sockets.tcpListener(address, shared: true, backlog: 4096)
                    opened.append(fd)
                    // Clients speak first: accept them once their request is there, and read it at once.
                    _ = csys_set_defer_accept(fd, 5)
                    if address.port == 0, let port = Sockets.localPort(fd) {
                        address = SocketAddress(address: address.address, port: port)
                    }
                    perWorker[worker].append(HTTPWorker.Listener(fd: fd, tls: tls))
                }
                if tls { resolvedTLS.append(address) } else { resolved.append(address) }
            }
        } catch {
            for fd in opened { Sockets.close(fd) }
            throw error
        }
        self.boundListeners = resolved
        self.boundTLSListeners = resolvedTLS
        let board = HealthBoard()
        self.board = board
        var workers: [HTTPWorker] = []
        for (index, listeners) in perWorker.enumerated() {
            workers.append(
                try HTTPWorker(index: index, options: options, store: store, board: board, listeners: listeners))
        }
        self.workers = workers
        let trimmer = HeapTrimmer(workers: workers)
        self.prober = HealthProber(
            store: store, board: board, interval: options.healthInterval, housekeeping: { trimmer.run() })
    }

    public func start() {
        var started: [pthread_t] = []
        for worker in self.workers {
            if let thread = startThread(name: "http-\(worker.index)", { worker.run() }) { started.append(thread) }
        }
        let prober = self.prober
        if let thread = startThread(name: "http-health", { prober.run() }) { started.append(thread) }
        self.threads.withLock { $0 += started }
    }

    /// Stops accepting, lets requests in progress finish for up to `grace` milliseconds, then closes
    /// everything and waits for the threads. Safe to call again (or from another thread): later calls
    /// find nothing left to wait for.
    public func drain(grace: UInt64) {
        let deadline = monotonicMilliseconds() + grace
        for worker in self.workers { worker.requestDrain(until: deadline) }
        self.prober.stop()
        let threads = self.threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in threads { joinThread(thread) }
    }

    public func stop() { self.drain(grace: 0) }

    /// Requests answered so far (approximate while running).
    public var requests: Int { self.workers.reduce(0) { $0 + $1.requests.load(ordering: .relaxed) } }
    /// Client connections open now.
    public var openConnections: Int { self.workers.reduce(0) { $0 + $1.open.load(ordering: .relaxed) } }
    /// Requests answered by site and status (as of each loop's last tick, four times a second).
    public var requestCounts: [RequestKey: Int] {
        var total: [RequestKey: Int] = [:]
        for worker in self.workers {
            for (key, count) in worker.publishedCounts.withLock({ $0 }) {
                total[RequestKey(site: key.site?.hostDescription ?? "-", status: key.status), default: 0] += count
            }
        }
        return total
    }

    /// Active health-check results: site, backend, passed.
    public var healthChecks: [(site: String, backend: String, up: Bool)] {
        self.board.results().map { ($0.key.site.hostDescription, $0.key.backend.description, $0.value) }
    }

    /// Response body octets moved with splice(2), never copied through the process.
    public var splicedBytes: Int { self.workers.reduce(0) { $0 + $1.splicedTotal.load(ordering: .relaxed) } }

    /// Backend connections that were taken from a keep-alive pool.
    public var reusedBackendConnections: Int { self.workers.reduce(0) { $0 + $1.reused.load(ordering: .relaxed) } }

    /// The certificates the HTTPS listeners serve (nil without HTTPS).
    public var tlsStore: TLSServerStore? { self.workers.first?.options.tls }

    /// TLS handshakes so far: full, resumed, failed (closed before finishing), plain HTTP to the HTTPS port,
    /// relayed to passthrough backends (not ours to finish), and finished ones by version.
    /// TLS handshakes to `https://` backends that failed.
    public var backendTLSFailures: Int {
        self.workers.reduce(0) { $0 + $1.tls.backendFailed.load(ordering: .relaxed) }
    }

    public var tlsHandshakes:
        (full: Int, resumed: Int, failed: Int, plainHTTP: Int, passthrough: Int, tls12: Int, tls13: Int)
    {
        var totals = (full: 0, resumed: 0, failed: 0, plainHTTP: 0, passthrough: 0, tls12: 0, tls13: 0)
        for worker in self.workers {
            let counters = worker.tls
            totals.full += counters.full.load(ordering: .relaxed)
            totals.resumed += counters.resumed.load(ordering: .relaxed)
            totals.failed += counters.failed.load(ordering: .relaxed)
            totals.plainHTTP += counters.plainHTTP.load(ordering: .relaxed)
            totals.passthrough += counters.passthrough.load(ordering: .relaxed)
            totals.tls12 += counters.tls12.load(ordering: .relaxed)
            totals.tls13 += counters.tls13.load(ordering: .relaxed)
        }
        return totals
    }
}

/// The loop's own key: the site's name as it is (no text built per request).
struct LoopCountKey: Hashable, Sendable {
    var site: DomainName?
    var status: Int
}

/// A site and a status, for request counts.
public struct RequestKey: Hashable, Sendable {
    public var site: String
    public var status: Int
}

/// The certificates the HTTPS listeners serve, replaced as a whole on reload: a worker takes the current
/// server when it accepts a TLS connection (the lock only when the generation moved), and a connection keeps
/// the server it started with.
public final class TLSServerStore: Sendable {
    let server: Mutex<TLSServer?>
    let generation = Atomic<Int>(0)

    public init(_ server: TLSServer?) {
        self.server = Mutex(server)
    }

    /// Serves `server` to connections accepted from now on.
    public func replace(_ server: TLSServer?) {
        self.server.withLock { $0 = server }
        self.generation.add(1, ordering: .releasing)
    }

    /// The server now.
    public var current: TLSServer? { self.server.withLock { $0 } }
}

/// TLS handshakes allocate and free tens of kilobytes each (handshake buffers, key shares) between the
/// longer-lived per-connection state, and glibc keeps the freed pages: 10,000 idle TLS clients held 11.7 KiB
/// each, 10.9 KiB after giving them back. Runs on the health thread, never on a worker: once per interval
/// (5 s) while new handshakes happen.
final class HeapTrimmer: Sendable {
    let workers: [HTTPWorker]
    let trimmedAt = Atomic<Int>(0)

    init(workers: [HTTPWorker]) {
        self.workers = workers
    }

    func run() {
        let handshakes = self.workers.reduce(0) {
            $0 + $1.tls.full.load(ordering: .relaxed) + $1.tls.resumed.load(ordering: .relaxed)
        }
        guard handshakes != self.trimmedAt.load(ordering: .relaxed) else { return }
        self.trimmedAt.store(handshakes, ordering: .relaxed)
        csys_trim_heap()
    }
}
