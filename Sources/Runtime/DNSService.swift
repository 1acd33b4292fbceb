import CSys
import DNSServer
import DNSWire
import EventLoop
import Synchronization
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// How the DNS service runs: listeners, threads, limits, upstreams.
public struct DNSOptions: Sendable {
    public var listeners: [SocketAddress]
    public var workers: Int
    public var upstreams: [SocketAddress]
    /// Responses per second per client /24 or /56 for views without recursion; 0 turns limiting off.
    public var rateLimit: Int = 200
    public var tcpIdleMilliseconds: UInt64 = 10_000
    public var tcpConnectionsPerWorker = 512
    public var tcpConnectionsPerSource = 32
    public var cacheBytesPerWorker = 16 << 20
    public var upstreamAttemptMilliseconds: UInt64 = 1000
    public var upstreamDeadlineMilliseconds: UInt64 = 3500
    /// Serve-stale (RFC 8767): how long past expiry a cached answer may still be given when every upstream
    /// fails (0: never), and how long a client waits for the upstreams before it gets one.
    public var staleMilliseconds: UInt64 = 86_400_000
    public var staleAfterMilliseconds: UInt64 = 1800
    /// Whether each upstream answers (shared by the workers).
    public var upstreamHealth: UpstreamHealth
    /// What the secondaries did lately (transfers, refusals), shared with the notifier and the status page.
    public var secondaries = SecondaryActivity()
    /// The forwarding cache every UDP thread answers hits from (one for the process).
    public var wireCache = WireCache(bytes: 16 << 20)
    /// Per upstream: the certificate name when it is reached over DNS over TLS (nil: plain UDP/TCP), and the
    /// TLS client those connections use.
    public var upstreamTLSNames: [String?] = []
    public var tlsClient: TLSClient?

    public init(listeners: [SocketAddress], workers: Int, upstreams: [SocketAddress]) {
        self.listeners = listeners
        self.workers = workers
        self.upstreams = upstreams
        self.upstreamHealth = UpstreamHealth(upstreams: upstreams)
    }
}

extension DNSService {
    /// The shared forwarding cache the UDP threads answer hits from.
    public var wireCache: WireCache { self.workers.first?.options.wireCache ?? WireCache(bytes: 0) }

    /// What the secondaries did lately.
    public var secondaries: SecondaryActivity {
        self.workers.first?.options.secondaries ?? SecondaryActivity()
    }

    /// Whether each upstream resolver answers.
    public var upstreamHealth: UpstreamHealth {
        self.workers.first?.options.upstreamHealth ?? UpstreamHealth(upstreams: [])
    }
}

/// The DNS service: one worker thread per core, each with its own sockets on every listener
/// (SO_REUSEPORT), so the kernel spreads queries and no lock is taken while answering.
public final class DNSService: @unchecked Sendable {
    let workers: [DNSWorker]
    var threads: [pthread_t] = []
    /// The listeners as bound (ports resolved when 0 was asked for).
    public let boundListeners: [SocketAddress]

    public init(options: DNSOptions, store: SnapshotStore) throws(SocketError) {
        var resolved: [SocketAddress] = []
        var perWorker: [[(udp: Int32, tcp: Int32)]] = Array(repeating: [], count: max(1, options.workers))
        var opened: [Int32] = []
        do throws(SocketError) {
            // Before any of ours is bound: a listener may overlap another of ours (0.0.0.0 and 192.0.2.1).
            for listener in options.listeners where listener.port != 0 {
                try Sockets.ensureUnclaimed(listener, stream: false, service: "dns")
                try Sockets.ensureUnclaimed(listener, stream: true, service: "dns")
            }
            for listener in options.listeners {
                var attempt = 0
                while true {
                    attempt += 1
                    // Port 0 (tests): one port that nobody holds, then every worker's sockets on it.
                    let address =
                        listener.port == 0
                        ? SocketAddress(address: listener.address, port: try Sockets.unsharedPort(listener)) : listener
                    var sockets: [(udp: Int32, tcp: Int32)] = []
                    var bound: [Int32] = []
                    do throws(SocketError) {
                        for _ in perWorker.indices {
                            let udp = try Sockets.udpListener(address, shared: true)
                            bound.append(udp)
                            let tcp = try Sockets.tcpListener(address, shared: true)
                            bound.append(tcp)
                            sockets.append((udp, tcp))
                        }
                    } catch {
                        for fd in bound { Sockets.close(fd) }
                        // Another socket took the port between the pick and the bind: pick again.
                        guard listener.port == 0, error.errno == EADDRINUSE, attempt < 20 else { throw error }
                        continue
                    }
                    opened += bound
                    for (worker, pair) in sockets.enumerated() { perWorker[worker].append(pair) }
                    resolved.append(address)
                    break
                }
            }
        } catch {
            for fd in opened { Sockets.close(fd) }
            throw error
        }
        self.boundListeners = resolved
        var workers: [DNSWorker] = []
        for (index, sockets) in perWorker.enumerated() {
            workers.append(try DNSWorker(index: index, options: options, store: store, sockets: sockets))
        }
        self.workers = workers
    }

    /// Starts the worker threads: per worker one epoll loop (TCP, upstreams) and one thread per UDP socket.
    public func start() {
        for worker in self.workers {
            if let thread = startThread(name: "dns-\(worker.index)", { worker.run() }) { self.threads.append(thread) }
            for loop in worker.udpLoops {
                if let thread = startThread(name: "dns-udp-\(worker.index)", { loop.run() }) {
                    self.threads.append(thread)
                }
            }
        }
    }

    /// Stops every worker after the batch it is in and waits for them.
    public func stop() {
        for worker in self.workers { worker.requestStop() }
        for thread in self.threads { joinThread(thread) }
        self.threads = []
    }

    /// Responses by view and rcode, cache and upstream figures, summed over every thread.
    public var statistics: DNSStatistics {
        var total = DNSStatistics()
        for worker in self.workers {
            total.add(worker.counters)
            for loop in worker.udpLoops { total.add(loop.counters) }
        }
        return total
    }

    /// Queries answered so far, summed over workers (approximate while running).
    public var answered: Int {
        self.workers.reduce(0) { total, worker in
            total + worker.answered.load(ordering: .relaxed)
                + worker.udpLoops.reduce(0) { $0 + $1.answered.load(ordering: .relaxed) }
        }
    }
}

/// Where a response goes.
enum Endpoint {
    /// `local` is the address the query came to: the reply must leave from it (multi-address hosts).
    case udp(fd: Int32, peer: sockaddr_storage, local: LocalAddress)
    case tcp(fd: Int32, serial: UInt64)
    /// Nobody: a prefetch, refreshing a cached answer before it expires.
    case prefetch
}

/// One TCP client (RFC 7766): bytes in, complete messages answered as they arrive (pipelining), bytes out.
struct TCPConnection {
    var fd: Int32
    var serial: UInt64
    var client: IPAddress
    var input: [UInt8] = []
    var output: [UInt8] = []
    var outputOffset = 0
    var lastActive: UInt64
    var pendingForwards = 0
    var peerClosed = false
    var wantsWrite = false
    /// A zone transfer being sent: its messages are made as the output drains.
    var transfer: TransferStream?
    var transferNote: TransferNote?
}

/// One DNS worker: an epoll loop over its TCP listeners, TCP clients and upstream sockets, plus a thread per
/// UDP socket (`UDPLoop`) that hands it the questions to forward.
final class DNSWorker: @unchecked Sendable {
    enum Kind: UInt64 {
        case tcpListener = 2
        case tcpClient = 3
        case upstream = 4
        /// A DNS-over-TLS connection to an upstream, shared by the questions sent on it.
        case tlsUpstream = 5
    }

    let index: Int
    let options: DNSOptions
    let store: SnapshotStore
    let poller: Poller
    let sockets: [(udp: Int32, tcp: Int32)]
    /// One per UDP socket, each on a thread of its own.
    private(set) var udpLoops: [UDPLoop] = []
    /// Questions the UDP threads hand over for forwarding; drained by this loop when woken.
    let handoff = Mutex<[(Waiter, Endpoint)]>([])
    /// Held while this loop handles what its wait returned, and by a UDP thread that sends a question upstream
    /// itself (`resolveNow`): whoever holds it owns the forwarder, the TCP connections and the counters.
    let busy = ThreadLock()
    /// When this loop's current wait ends (monotonic ms; 0 while it is not waiting): a question a UDP thread
    /// started whose timer comes sooner wakes it.
    let sleepsUntil = Atomic<UInt64>(0)
    let scratch: UnsafeMutableRawBufferPointer
    let output: UnsafeMutableRawBufferPointer
    let stopFlag = Atomic<Bool>(false)
    let answered = Atomic<Int>(0)
    /// TCP answers and forwarded answers (the UDP threads keep their own).
    let counters = DNSCounters()
    var tables: DNSTables
    var generation: Int
    var connections: [Int32: TCPConnection] = [:]
    var perSource: [IPAddress: Int] = [:]
    var nextSerial: UInt64 = 1
    var forwarder: Forwarder?
    var lastSweep: UInt64 = 0
    /// Set while the TCP listeners are not watched because the process ran out of descriptors.
    var acceptBackoff = AcceptBackoff()

    init(index: Int, options: DNSOptions, store: SnapshotStore, sockets: [(udp: Int32, tcp: Int32)]) throws(SocketError)
    {
        self.index = index
        self.options = options
        self.store = store
        self.sockets = sockets
        self.poller = try Poller()
        self.scratch = .allocate(byteCount: 1024, alignment: 16)
        self.output = .allocate(byteCount: Responder.maximumMessage + 2, alignment: 16)
        self.generation = store.generation
        self.tables = store.tables()
        for socket in sockets {
            try self.poller.add(socket.tcp, events: Poller.readable, token: DNSWorker.token(.tcpListener, socket.tcp))
        }
        self.forwarder = Forwarder(worker: self)
        for socket in sockets {
            guard let loop = UDPLoop(fd: socket.udp, worker: self) else {
                throw SocketError(errno: ENOMEM, context: "udp batch")
            }
            self.udpLoops.append(loop)
        }
    }

    deinit {
        self.scratch.deallocate()
        self.output.deallocate()
        for socket in self.sockets {
            Sockets.close(socket.udp)
            Sockets.close(socket.tcp)
        }
        for fd in self.connections.keys { Sockets.close(fd) }
    }

    static func token(_ kind: Kind, _ fd: Int32) -> UInt64 { kind.rawValue << 56 | UInt64(UInt32(bitPattern: fd)) }

    func requestStop() {
        self.stopFlag.store(true, ordering: .releasing)
        self.poller.wake()
    }

    /// Picks up a newly published snapshot between batches.
    @inline(__always)
    func refreshTables() {
        let current = self.store.generation
        if current != self.generation {
            self.generation = current
            self.tables = self.store.tables()
        }
    }

    func run() {
        while !self.stopFlag.load(ordering: .acquiring) {
            // The timeout and the moment it ends are set under the lock, so a question a UDP thread starts
            // right after is either counted in it or sees when this wait ends (and wakes it if sooner).
            let timeout = self.busy.withLock {
                let now = monotonicMilliseconds()
                var timeout = self.forwarder?.nextTimeout(now: now) ?? 1000
                if self.acceptBackoff.isPaused { timeout = min(timeout, AcceptBackoff.pause) }
                timeout = min(timeout, 1000)
                self.sleepsUntil.store(now + timeout, ordering: .releasing)
                return timeout
            }
            self.poller.wait(timeout: Int32(timeout)) { token, events in
                self.sleepsUntil.store(0, ordering: .releasing)
                self.busy.withLock { self.handle(token, events: events) }
            }
            self.sleepsUntil.store(0, ordering: .releasing)
            self.busy.withLock {
                let now = monotonicMilliseconds()
                self.forwarder?.expire(now: now)
                // After the answers went out: the next questions' sockets, ready before they come.
                self.forwarder?.refillSpares(now: now)
                if self.acceptBackoff.resumes(now: now) {
                    for socket in self.sockets {
                        try? self.poller.add(
                            socket.tcp, events: Poller.readable, token: DNSWorker.token(.tcpListener, socket.tcp))
                    }
                }
                if now >= self.lastSweep + 1000 {
                    self.lastSweep = now
                    self.sweepIdleConnections(now: now)
                }
            }
        }
    }

    /// One event of this loop's wait (the lock held).
    func handle(_ token: UInt64, events: UInt32) {
        let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: token))
        if token == Poller.wakeToken {
            self.drainHandoff()
            return
        }
        switch Kind(rawValue: token >> 56) {
        case .tcpListener: self.accept(fd)
        case .tcpClient: self.serveTCP(fd, events: events)
        case .upstream: self.forwarder?.upstreamReady(fd, events: events, now: monotonicMilliseconds())
        case .tlsUpstream: self.forwarder?.tlsReady(fd, now: monotonicMilliseconds())
        case nil: break
        }
    }

    /// Called from a UDP thread with a question for the resolver: when this loop is idle (in its wait), the
    /// UDP thread takes the forwarder and sends the question upstream itself — no hand-off, no wake-up before
    /// the question leaves (on a busy core that hop cost as much as the upstream's own answer). The answer
    /// arrives on this loop's epoll as before. False when the loop is busy: hand the question over instead.
    func resolveNow(_ waiter: Waiter, _ endpoint: Endpoint) -> Bool {
        let done: Bool? = self.busy.withLockIfAvailable {
            guard let forwarder = self.forwarder else { return false }
            let now = monotonicMilliseconds()
            forwarder.resolve(waiter, endpoint: endpoint, now: now)
            // A new question's first timer may end before this loop's wait does: wake it to wait less.
            let until = self.sleepsUntil.load(ordering: .acquiring)
            if until != 0 && now + UInt64(self.options.upstreamAttemptMilliseconds) < until { self.poller.wake() }
            return true
        }
        return done ?? false
    }

    // MARK: UDP hand-off

    /// The most questions waiting for this loop; past it the UDP threads answer SERVFAIL themselves.
    static let maximumHandoff = 4096

    /// Called from a UDP thread: queue a question for the forwarder and wake this loop. Returns false when
    /// the queue is full (the caller answers SERVFAIL rather than let memory grow).
    func handOff(_ waiter: Waiter, _ endpoint: Endpoint) -> Bool {
        let queued = self.handoff.withLock { queue in
            guard queue.count < DNSWorker.maximumHandoff else { return false }
            queue.append((waiter, endpoint))
            return true
        }
        if queued { self.poller.wake() }
        return queued
    }

    func drainHandoff() {
        let items = self.handoff.withLock { queue in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        let now = monotonicMilliseconds()
        for (waiter, endpoint) in items { self.forwarder?.resolve(waiter, endpoint: endpoint, now: now) }
    }

    /// Sends a finished response to where its query came from.
    func deliver(_ endpoint: Endpoint, _ bytes: [UInt8]) {
        switch endpoint {
        case .udp(let fd, let peer, let local):
            Sockets.send(fd, bytes, to: peer, from: local)
        case .prefetch:
            return
        case .tcp(let fd, let serial):
            guard var connection = self.connections[fd], connection.serial == serial else { return }
            connection.pendingForwards -= 1
            connection.output += TCPFraming.framed(bytes)
            self.connections[fd] = connection
            self.flush(fd)
        }
    }

    // MARK: TCP

    func accept(_ listener: Int32) {
        for _ in 0..<64 {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = csys_accept(listener, &peer, &length)
            if fd < 0 {
                if AcceptBackoff.isExhaustion(-fd) {
                    let now = monotonicMilliseconds()
                    let open = self.connections.count
                    if let line = self.acceptBackoff.exhausted(-fd, service: "dns (tcp)", open: open, now: now) {
                        Log.error(line)
                    }
                    for socket in self.sockets { self.poller.remove(socket.tcp) }
                }
                return
            }
            guard let client = IPAddress(peer: &peer),
                self.connections.count < self.options.tcpConnectionsPerWorker,
                self.perSource[client, default: 0] < self.options.tcpConnectionsPerSource
            else {
                Sockets.close(fd)
                continue
            }
            do {
                try self.poller.add(fd, events: Poller.readable, token: DNSWorker.token(.tcpClient, fd))
            } catch {
                Sockets.close(fd)
                continue
            }
            self.perSource[client, default: 0] += 1
            self.connections[fd] = TCPConnection(
                fd: fd, serial: self.nextSerial, client: client, lastActive: monotonicMilliseconds())
            self.nextSerial += 1
        }
    }

    func serveTCP(_ fd: Int32, events: UInt32) {
        guard var connection = self.connections[fd] else { return }
        if events & Poller.writable != 0 {
            self.flush(fd)
            guard let updated = self.connections[fd] else { return }
            connection = updated
        }
        guard events & (Poller.readable | Poller.hangup) != 0 else { return }
        while true {
            let count = read(fd, self.output.baseAddress, 16384)
            if count > 0 {
                connection.input += UnsafeRawBufferPointer(rebasing: self.output[0..<count])
                if connection.input.count > 2 * 65537 { break }
                continue
            }
            if count == 0 || (errno != EAGAIN && errno != EINTR) { connection.peerClosed = true }
            break
        }
        connection.lastActive = monotonicMilliseconds()
        self.refreshTables()
        var consumed = 0
        var close = false
        while connection.transfer == nil, let frame = TCPFraming.message(in: connection.input, from: consumed) {
            let (start, length) = (frame.lowerBound, frame.count)
            consumed = frame.upperBound
            let action: ResponderAction
            let query: DNSQuery?
            (action, query) = connection.input.withUnsafeBytes { raw in
                let packet = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                return Responder.respond(
                    to: packet, from: connection.client, tcp: true, tables: self.tables, scratch: self.scratch,
                    into: self.output)
            }
            switch action {
            case .reply(let size, let view):
                connection.output += TCPFraming.prefix(size)
                connection.output += UnsafeRawBufferPointer(rebasing: self.output[0..<size])
                self.answered.add(1, ordering: .relaxed)
                self.counters.response(view: view, rcode: self.output[3])
            case .drop:
                close = true
            case .transfer:
                let request = Array(connection.input[start..<(start + length)])
                let (reply, note) = ZoneTransfer.respond(
                    to: request, from: connection.client, tcp: true, tables: self.tables, now: UInt64(time(nil)))
                switch reply {
                case .message(let bytes):
                    self.options.secondaries.record(note)
                    connection.output += TCPFraming.framed(bytes)
                    self.answered.add(1, ordering: .relaxed)
                case .stream(let stream):
                    // Sent as the connection drains (see flush); later requests wait until it is done.
                    connection.transfer = stream
                    connection.transferNote = note
                case .drop:
                    self.options.secondaries.record(note)
                    close = true
                }
            case .forward(let view, let prefix):
                guard let query else { continue }
                let tables = self.tables
                let waiter = connection.input.withUnsafeBytes { raw in
                    Waiter(
                        query: query, packet: UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]),
                        prefix: prefix,
                        view: view, tables: tables, tcp: true)
                }
                connection.pendingForwards += 1
                self.connections[fd] = connection
                self.forwarder?.resolve(
                    waiter, endpoint: .tcp(fd: fd, serial: connection.serial), now: monotonicMilliseconds())
                guard let updated = self.connections[fd] else { return }
                connection.pendingForwards = updated.pendingForwards
                connection.output = updated.output
                connection.outputOffset = updated.outputOffset
            }
            if close { break }
        }
        if consumed > 0 { connection.input.removeFirst(consumed) }
        // A frame can never exceed 65535 octets; more buffered than two frames means a client not reading.
        if close || connection.input.count > 2 * 65537 || connection.output.count - connection.outputOffset > 1 << 20 {
            self.closeConnection(fd)
            return
        }
        self.connections[fd] = connection
        self.flush(fd)
    }

    /// Writes what a connection has queued; waits for EPOLLOUT when the socket is full.
    func flush(_ fd: Int32) {
        guard var connection = self.connections[fd] else { return }
        var transferEnded = false
        while true {
            if connection.transfer != nil && connection.output.count - connection.outputOffset < 1 << 16 {
                transferEnded = self.refill(&connection)
            }
            guard connection.outputOffset < connection.output.count else { break }
            let count = connection.output.withUnsafeBytes { raw in
                // send with MSG_NOSIGNAL, not write: a client gone before its answer must not raise SIGPIPE.
                send(
                    fd, raw.baseAddress.map { $0 + connection.outputOffset }, raw.count - connection.outputOffset,
                    Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                connection.outputOffset += count
                if connection.transfer != nil && connection.outputOffset > 1 << 16 {
                    connection.output.removeFirst(connection.outputOffset)
                    connection.outputOffset = 0
                }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { break }
            self.closeConnection(fd)
            return
        }
        if connection.outputOffset == connection.output.count {
            connection.output.removeAll(keepingCapacity: true)
            connection.outputOffset = 0
        }
        let blocked = !connection.output.isEmpty
        if blocked != connection.wantsWrite {
            connection.wantsWrite = blocked
            self.poller.modify(
                fd, events: Poller.readable | (blocked ? Poller.writable : 0), token: DNSWorker.token(.tcpClient, fd))
        }
        self.connections[fd] = connection
        if connection.peerClosed && !blocked && connection.pendingForwards == 0 && connection.transfer == nil {
            self.closeConnection(fd)
            return
        }
        // Requests that arrived behind a transfer are answered now.
        if transferEnded && !connection.input.isEmpty { self.serveTCP(fd, events: Poller.readable) }
    }

    /// Appends the transfer's next messages to the output (up to 64 KB of them); true when it has ended.
    func refill(_ connection: inout TCPConnection) -> Bool {
        guard var stream = connection.transfer else { return false }
        let now = UInt64(time(nil))
        connection.lastActive = monotonicMilliseconds()
        while connection.output.count - connection.outputOffset < 1 << 16 {
            guard let message = stream.next(now: now) else {
                connection.transfer = nil
                if let note = connection.transferNote { self.options.secondaries.record(note, stream: stream) }
                connection.transferNote = nil
                self.answered.add(1, ordering: .relaxed)
                return true
            }
            connection.output += TCPFraming.framed(message)
        }
        connection.transfer = stream
        return false
    }

    func closeConnection(_ fd: Int32) {
        guard let connection = self.connections.removeValue(forKey: fd) else { return }
        self.poller.remove(fd)
        Sockets.close(fd)
        let remaining = self.perSource[connection.client, default: 1] - 1
        self.perSource[connection.client] = remaining > 0 ? remaining : nil
    }

    /// RFC 7766 §6.2.3: idle connections are closed so they cannot pin resources.
    func sweepIdleConnections(now: UInt64) {
        for (fd, connection) in self.connections
        where now > connection.lastActive + self.options.tcpIdleMilliseconds && connection.pendingForwards == 0 {
            self.closeConnection(fd)
        }
    }
}
