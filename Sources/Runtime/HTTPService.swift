import CSys
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// How the proxy runs.
public struct HTTPOptions: Sendable {
    public var listeners: [SocketAddress]
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

    public init(options: HTTPOptions, store: SnapshotStore) throws(SocketError) {
        var resolved: [SocketAddress] = []
        var perWorker: [[Int32]] = Array(repeating: [], count: max(1, options.workers))
        var opened: [Int32] = []
        do throws(SocketError) {
            // Before any of ours is bound: a listener may overlap another of ours (0.0.0.0 and 192.0.2.1).
            for listener in options.listeners where listener.port != 0 {
                try Sockets.ensureUnclaimed(listener, stream: true, service: "http")
            }
            for listener in options.listeners {
                var address = listener
                for worker in 0..<perWorker.count {
                    let fd = try Sockets.tcpListener(address, shared: true, backlog: 4096)
                    opened.append(fd)
                    // Clients speak first: accept them once their request is there, and read it at once.
                    _ = csys_set_defer_accept(fd, 5)
                    if address.port == 0, let port = Sockets.localPort(fd) {
                        address = SocketAddress(address: address.address, port: port)
                    }
                    perWorker[worker].append(fd)
                }
                resolved.append(address)
            }
        } catch {
            for fd in opened { Sockets.close(fd) }
            throw error
        }
        self.boundListeners = resolved
        let board = HealthBoard()
        self.board = board
        self.prober = HealthProber(store: store, board: board, interval: options.healthInterval)
        var workers: [HTTPWorker] = []
        for (index, listeners) in perWorker.enumerated() {
            workers.append(
                try HTTPWorker(index: index, options: options, store: store, board: board, listeners: listeners))
        }
        self.workers = workers
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

/// Bytes waiting to be written to one socket.
struct OutQueue {
    var buffer: [UInt8] = []
    var offset = 0

    var count: Int { self.buffer.count - self.offset }
    var isEmpty: Bool { self.offset == self.buffer.count }

    mutating func append(_ bytes: [UInt8]) {
        if self.isEmpty {
            self.buffer = bytes
            self.offset = 0
        } else {
            if self.offset > 64 * 1024 {
                self.buffer.removeFirst(self.offset)
                self.offset = 0
            }
            self.buffer += bytes
        }
    }

    /// Writes as much as the socket takes: false on a write error (the peer is gone). `more` says that more
    /// bytes follow at once (MSG_MORE): the kernel holds a partial segment for them.
    mutating func flush(_ fd: Int32, more: Bool = false) -> Bool {
        let flags = Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0)
        while !self.isEmpty {
            let offset = self.offset
            let written = self.buffer.withUnsafeBytes { raw in
                send(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset, flags)
            }
            if written > 0 {
                self.offset += written
            } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return true
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        self.buffer = []
        self.offset = 0
        return true
    }
}

/// A site's balancer state, shared by reference: connections update it in place, without a lookup.
final class Balancer {
    var pool: BackendPool
    init(_ pool: BackendPool) { self.pool = pool }
}

/// A backend connection in use by one client connection.
final class BackendLink {
    let fd: Int32
    let address: SocketAddress
    let site: DomainName
    let index: Int
    var connected: Bool
    var out = OutQueue()
    var interest: UInt32 = 0
    var closedByPeer = false
    /// The balancer of the site it serves, which counts its requests and failures.
    var balancer: Balancer

    init(fd: Int32, address: SocketAddress, site: DomainName, index: Int, connected: Bool, balancer: Balancer) {
        self.balancer = balancer
        self.fd = fd
        self.address = address
        self.site = site
        self.index = index
        self.connected = connected
    }
}

/// One client connection.
final class ClientConnection {
    let fd: Int32
    let slot: Int
    var session: ProxySession
    var out = OutQueue()
    var backend: BackendLink?
    /// The backend connection of the previous request, kept on this client connection for a short grace
    /// (BackendReuse.parkGrace): the next request that goes to the same backend uses it without touching the
    /// pool or epoll. Never set while `backend` is (both share the backend token).
    var parked: BackendLink?
    var parkedSince: UInt64 = 0
    var interest: UInt32 = 0
    var deadline: UInt64 = 0
    var lastPhase: ProxySession.Phase = .idle
    var tunnel = false
    var closing = false
    /// In a tunnel: a side that closed; the other is closed once its queue is written.
    var halfClosed = false
    /// A pipe for splicing response bodies backend → client, made on first use; bytes in it still owed to
    /// the client come before anything in `out`.
    var pipe: (read: Int32, write: Int32)?
    var pipeBytes = 0

    /// Nothing is waiting to be written to the client.
    var clientQueueEmpty: Bool { self.pipeBytes == 0 && self.out.isEmpty }

    init(fd: Int32, slot: Int, session: ProxySession) {
        self.fd = fd
        self.slot = slot
        self.session = session
    }
}

/// One proxy loop on its own thread: its listeners, clients, backend connections and idle pools.
final class HTTPWorker: @unchecked Sendable {
    enum Kind: UInt64 {
        case listener = 0
        case client = 1
        case backend = 2
        /// An idle pooled backend connection; the index is its descriptor.
        case idle = 3
    }

    let index: Int
    let options: HTTPOptions
    let store: SnapshotStore
    let board: HealthBoard
    let poller: Poller
    var listeners: [Int32]
    var listening = true
    /// Where backend connections go after a response: parked, pooled or closed.
    let reuse: BackendReuse
    /// Set while accepting is paused because the process ran out of descriptors (see AcceptBackoff).
    var acceptBackoff = AcceptBackoff()
    var slots: [ClientConnection?] = []
    var freeSlots: [Int] = []
    /// Slots freed during the current epoll batch: reused only after it, so a stale event of the batch can
    /// never reach a new connection in the same slot.
    var releasedSlots: [Int] = []
    var openCount = 0
    let readBuffer: UnsafeMutableRawBufferPointer
    var actions: [ProxyAction] = []
    /// Idle keep-alive connections per backend address.
    var pools: [SocketAddress: [(fd: Int32, since: UInt64)]] = [:]
    /// Pooled descriptors stay registered with epoll (read interest): a backend that closes an idle
    /// connection is noticed at once, and taking one from the pool costs one epoll_ctl and no probe.
    var idleAddresses: [Int32: SocketAddress] = [:]
    /// Balancers per site, rebuilt when the snapshot changes.
    var balancers: [DomainName: Balancer] = [:]
    /// The balancer looked up last: requests in a row mostly go to one site.
    var recentBalancer: (site: DomainName, balancer: Balancer)?
    var snapshot: Snapshot
    var snapshotGeneration: Int
    var boardGeneration = -1
    var logBuffer: [UInt8] = []
    var clock = LogClock()
    let drainDeadline = Atomic<UInt64>(0)
    var draining = false
    let requests = Atomic<Int>(0)
    /// Requests by site and status, counted on the loop; published for the admin listener each tick.
    var counts: [LoopCountKey: Int] = [:]
    /// The key of the latest requests and how many of them are not yet in `counts`: consecutive requests
    /// mostly share site and status, and comparing a name with itself is cheaper than hashing it.
    var recentKey: LoopCountKey?
    var recentCount = 0
    let publishedCounts = Mutex<[LoopCountKey: Int]>([:])
    let open = Atomic<Int>(0)
    let reused = Atomic<Int>(0)
    let splicedTotal = Atomic<Int>(0)
    var trusted: [CIDR]

    init(index: Int, options: HTTPOptions, store: SnapshotStore, board: HealthBoard, listeners: [Int32])
        throws(SocketError)
    {
        self.index = index
        self.options = options
        self.reuse = BackendReuse(maximumIdle: options.maximumIdlePerBackend)
        self.store = store
        self.board = board
        self.listeners = listeners
        self.poller = try Poller(capacity: 512)
        // 48 KiB, not 64: a full 64 KiB read written on is a few bytes more than one 64 KiB TCP segment can
        // carry, and those few went out as a segment of their own (3 segments for a 100 KB response where 2 do).
        self.readBuffer = .allocate(byteCount: 48 * 1024, alignment: 16)
        self.snapshotGeneration = store.generation
        self.snapshot = store.tables().snapshot
        self.trusted = self.snapshot.settings.trustedProxies
        for (position, fd) in listeners.enumerated() {
            try self.poller.add(fd, events: Poller.readable, token: HTTPWorker.token(.listener, position))
        }
    }

    deinit {
        self.readBuffer.deallocate()
    }

    static func token(_ kind: Kind, _ index: Int) -> UInt64 { UInt64(index) << 2 | kind.rawValue }

    func requestDrain(until deadline: UInt64) {
        self.drainDeadline.store(deadline, ordering: .releasing)
        self.poller.wake()
    }

    func run() {
        var lastTick: UInt64 = 0
        while true {
            self.poller.wait(timeout: 250) { token, events in
                if token == Poller.wakeToken { return }
                self.dispatch(token: token, events: events)
            }
            if !self.releasedSlots.isEmpty {
                self.freeSlots += self.releasedSlots
                self.releasedSlots.removeAll(keepingCapacity: true)
            }
            let now = monotonicMilliseconds()
            if now &- lastTick >= 250 {
                lastTick = now
                if self.tick(now: now) { break }
            }
        }
        self.flushLog()
        for slot in self.slots.indices { if let connection = self.slots[slot] { self.destroy(connection) } }
        for (_, idle) in self.pools { for entry in idle { Sockets.close(entry.fd) } }
        self.pools = [:]
        self.idleAddresses = [:]
        for fd in self.listeners { Sockets.close(fd) }
        self.listeners = []
    }

    func refreshSnapshot() {
        let generation = self.store.generation
        guard generation != self.snapshotGeneration else { return }
        self.snapshotGeneration = generation
        self.snapshot = self.store.tables().snapshot
        self.trusted = self.snapshot.settings.trustedProxies
        self.balancers = [:]
        self.recentBalancer = nil
        self.boardGeneration = -1
    }

    func dispatch(token: UInt64, events: UInt32) {
        let index = Int(token >> 2)
        switch Kind(rawValue: token & 3) {
        case .listener:
            // A new connection reads its request at once: it must see the latest model.
            self.refreshSnapshot()
            self.accept(self.listeners[index])
        case .client:
            guard index < self.slots.count, let connection = self.slots[index] else { return }
            self.refreshSnapshot()
            self.clientEvent(connection, events: events)
        case .backend:
            guard index < self.slots.count, let connection = self.slots[index] else { return }
            self.refreshSnapshot()
            self.backendEvent(connection, events: events)
        case .idle:
            // An idle backend connection spoke or closed: it is no longer usable.
            let fd = Int32(index)
            guard let address = self.idleAddresses.removeValue(forKey: fd) else { return }
            self.pools[address]?.removeAll { $0.fd == fd }
            Sockets.close(fd)
        case nil:
            break
        }
    }

    // MARK: - Accepting

    func accept(_ listener: Int32) {
        var peer = sockaddr_storage()
        var length = socklen_t(0)
        for _ in 0..<64 {
            guard self.listening, self.openCount < self.options.maximumConnections else { return }
            let fd = csys_accept(listener, &peer, &length)
            guard fd >= 0 else {
                if AcceptBackoff.isExhaustion(-fd) {
                    let now = monotonicMilliseconds()
                    if let line = self.acceptBackoff.exhausted(-fd, service: "http", open: self.openCount, now: now) {
                        Log.error(line)
                    }
                    self.pauseAccepting()
                }
                return
            }
            _ = csys_set_nodelay(fd)
            let client = withUnsafePointer(to: &peer) { IPAddress(peer: $0) } ?? .v4(IPv4Address(0))
            let trusted = self.trusted.contains { $0.contains(client) }
            let slot: Int
            if let free = self.freeSlots.popLast() {
                slot = free
            } else {
                slot = self.slots.count
                self.slots.append(nil)
            }
            let connection = ClientConnection(
                fd: fd, slot: slot, session: ProxySession(client: client, trustedPeer: trusted))
            connection.deadline = self.options.timeouts.deadline(
                after: .phaseChanged, phase: .readingHead, tunnel: false, now: monotonicMilliseconds(), current: 0)
            self.slots[slot] = connection
            self.openCount += 1
            self.open.store(self.openCount, ordering: .relaxed)
            connection.interest = Poller.readable
            do {
                try self.poller.add(fd, events: Poller.readable, token: HTTPWorker.token(.client, slot))
            } catch {
                self.destroy(connection)
                continue
            }
            if self.openCount >= self.options.maximumConnections { self.pauseAccepting() }
            // With TCP_DEFER_ACCEPT the request is usually already there: no need to wait for epoll.
            self.clientEvent(connection, events: Poller.readable)
        }
    }

    func pauseAccepting() {
        guard self.listening else { return }
        self.listening = false
        for fd in self.listeners { self.poller.remove(fd) }
    }

    func resumeAccepting() {
        guard !self.listening, !self.draining, !self.acceptBackoff.isPaused else { return }
        self.listening = true
        for (position, fd) in self.listeners.enumerated() {
            try? self.poller.add(fd, events: Poller.readable, token: HTTPWorker.token(.listener, position))
        }
    }

    // MARK: - Events

    func clientEvent(_ connection: ClientConnection, events: UInt32) {
        let now = monotonicMilliseconds()
        if events & Poller.writable != 0 || events & (Poller.readable | Poller.hangup) == 0 {
            guard self.drainPipe(connection) else {
                self.abort(connection, now: now)
                return
            }
            if connection.pipeBytes == 0 && !connection.out.flush(connection.fd) {
                self.abort(connection, now: now)
                return
            }
        }
        if events & (Poller.readable | Poller.hangup) != 0 && connection.interest & Poller.readable != 0 {
            let got = recv(connection.fd, self.readBuffer.baseAddress, self.readBuffer.count, 0)
            if got > 0 {
                let bytes = UnsafeRawBufferPointer(rebasing: self.readBuffer[0..<got])
                if connection.tunnel {
                    if let backend = connection.backend {
                        backend.out.append(Array(bytes))
                        if !backend.out.flush(backend.fd) {
                            self.abort(connection, now: now)
                            return
                        }
                    }
                } else {
                    connection.session.clientData(Array(bytes), snapshot: self.snapshot, now: now, into: &self.actions)
                }
                self.activity(connection, now: now)
            } else if got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                if connection.tunnel {
                    self.tunnelSideClosed(connection, now: now)
                    return
                }
                connection.session.clientClosed(into: &self.actions)
            }
        } else if events & Poller.hangup != 0 && connection.out.count > 0 && events & Poller.writable == 0 {
            // The peer is gone and we were only waiting to write.
            self.abort(connection, now: now)
            return
        }
        self.perform(connection, now: now)
    }

    func backendEvent(_ connection: ClientConnection, events: UInt32) {
        guard let backend = connection.backend else {
            // A parked connection has nothing to say between requests: data or a close means it is unusable.
            if let parked = connection.parked {
                connection.parked = nil
                self.closeBackend(parked)
            }
            return
        }
        let now = monotonicMilliseconds()
        if !backend.connected {
            guard events & (Poller.writable | Poller.hangup) != 0 else { return }
            if csys_socket_error(backend.fd) != 0 {
                connection.session.backendFailed(
                    connectFailed: true, snapshot: self.snapshot, now: now, into: &self.actions)
                self.perform(connection, now: now)
                return
            }
            backend.connected = true
            _ = csys_set_nodelay(backend.fd)
            connection.session.backendReady(into: &self.actions)
            self.perform(connection, now: now)
            return
        }
        if events & Poller.writable != 0 {
            if !backend.out.flush(backend.fd) {
                if connection.tunnel {
                    self.abort(connection, now: now)
                    return
                }
                connection.session.backendFailed(
                    connectFailed: false, snapshot: self.snapshot, now: now, into: &self.actions)
                self.perform(connection, now: now)
                return
            }
            self.activity(connection, now: now)
        }
        if events & (Poller.readable | Poller.hangup) != 0 && backend.interest & Poller.readable != 0
            && !connection.tunnel && connection.clientQueueEmpty
        {
            // A Content-Length body goes socket → pipe → socket without being copied through here.
            let spliceable = connection.session.spliceableBytes
            if spliceable >= HTTPWorker.spliceThreshold {
                switch self.splice(connection, backend: backend, limit: spliceable, now: now) {
                case .moved, .wouldBlock:
                    self.perform(connection, now: now)
                    return
                case .clientGone:
                    self.abort(connection, now: now)
                    return
                case .fallBack:
                    break
                }
            }
        }
        if events & (Poller.readable | Poller.hangup) != 0 && backend.interest & Poller.readable != 0 {
            let got = recv(backend.fd, self.readBuffer.baseAddress, self.readBuffer.count, 0)
            if got > 0 {
                let bytes = UnsafeRawBufferPointer(rebasing: self.readBuffer[0..<got])
                if connection.tunnel {
                    connection.out.append(Array(bytes))
                    if !connection.out.flush(connection.fd) {
                        self.abort(connection, now: now)
                        return
                    }
                } else {
                    connection.session.backendData(bytes, snapshot: self.snapshot, now: now, into: &self.actions)
                    // A full buffer of a response whose body will be spliced: the rest is most likely waiting
                    // already. Its first part leaves corked and the splice follows at once, so the client gets
                    // the response in one burst (one wake-up) instead of two.
                    if got == self.readBuffer.count && connection.session.spliceableBytes >= HTTPWorker.spliceThreshold
                    {
                        self.activity(connection, now: now)
                        self.perform(connection, now: now, corkClient: true)
                        self.spliceAfterCork(connection, now: now)
                        return
                    }
                }
                self.activity(connection, now: now)
            } else if got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                if connection.tunnel {
                    self.tunnelSideClosed(connection, now: now)
                    return
                }
                backend.closedByPeer = true
                if got == 0 {
                    connection.session.backendClosed(snapshot: self.snapshot, now: now, into: &self.actions)
                } else {
                    connection.session.backendFailed(
                        connectFailed: false, snapshot: self.snapshot, now: now, into: &self.actions)
                }
            }
        } else if events & Poller.hangup != 0 && events & Poller.readable == 0
            && backend.interest & Poller.readable == 0
        {
            // Not reading (backpressure) and the backend hung up: its data is still readable later.
        }
        self.perform(connection, now: now)
    }

    /// Follows a corked client write with the splice of what the backend has ready; pushes the corked bytes
    /// out when nothing can follow them at once.
    func spliceAfterCork(_ connection: ClientConnection, now: UInt64) {
        guard self.slots[connection.slot] === connection, !connection.closing else { return }
        if let backend = connection.backend, backend.connected, connection.clientQueueEmpty {
            let spliceable = connection.session.spliceableBytes
            if spliceable >= HTTPWorker.spliceThreshold {
                switch self.splice(connection, backend: backend, limit: spliceable, now: now) {
                case .moved:
                    self.perform(connection, now: now)
                    return
                case .clientGone:
                    self.abort(connection, now: now)
                    return
                case .wouldBlock, .fallBack:
                    break
                }
            }
        }
        // Nothing followed: setting TCP_NODELAY again sends what MSG_MORE held back.
        _ = csys_set_nodelay(connection.fd)
        self.perform(connection, now: now)
    }

    /// Bodies smaller than this are read and written as usual (two system calls either way).
    static let spliceThreshold: UInt64 = 16 * 1024

    enum SpliceOutcome {
        case moved
        case wouldBlock
        case clientGone
        /// End of stream or an error on the backend: let the ordinary read report it.
        case fallBack
    }

    /// Moves up to `limit` body octets from the backend into the connection's pipe and on to the client.
    func splice(_ connection: ClientConnection, backend: BackendLink, limit: UInt64, now: UInt64) -> SpliceOutcome {
        if connection.pipe == nil {
            var fds: [Int32] = [0, 0]
            guard csys_pipe(&fds) == 0 else { return .fallBack }
            connection.pipe = (fds[0], fds[1])
        }
        guard let pipe = connection.pipe else { return .fallBack }
        let moved = csys_splice(backend.fd, pipe.write, Int(min(limit, 256 * 1024)))
        if moved == -Int(EAGAIN) { return .wouldBlock }
        guard moved > 0 else { return .fallBack }
        connection.pipeBytes += moved
        self.splicedTotal.add(moved, ordering: .relaxed)
        connection.session.spliced(UInt64(moved), snapshot: self.snapshot, now: now, into: &self.actions)
        self.activity(connection, now: now)
        return self.drainPipe(connection) ? .moved : .clientGone
    }

    /// Writes what the pipe holds to the client; false when the client is gone.
    func drainPipe(_ connection: ClientConnection) -> Bool {
        guard let pipe = connection.pipe else { return true }
        while connection.pipeBytes > 0 {
            let moved = csys_splice(pipe.read, connection.fd, connection.pipeBytes)
            if moved > 0 {
                connection.pipeBytes -= moved
            } else if moved == -Int(EAGAIN) || moved == -Int(EINTR) {
                return true
            } else {
                return false
            }
        }
        return true
    }

    /// Traffic moved: push the idle deadline of the body and tunnel phases.
    func activity(_ connection: ClientConnection, now: UInt64) {
        connection.deadline = self.options.timeouts.deadline(
            after: .activity, phase: connection.session.phase, tunnel: connection.tunnel, now: now,
            current: connection.deadline)
    }

    func tunnelSideClosed(_ connection: ClientConnection, now: UInt64) {
        // Write what is queued towards each side, then close both: a WebSocket closes with a close frame
        // first, so nothing is lost.
        if let backend = connection.backend { _ = backend.out.flush(backend.fd) }
        _ = connection.out.flush(connection.fd)
        self.destroy(connection)
    }

    // MARK: - Actions

    /// Carries out the session's actions (which may produce more), then sets deadline and epoll interest.
    /// `corkClient`: the client write is sent with MSG_MORE, because the caller sends more right after it.
    func perform(_ connection: ClientConnection, now: UInt64, corkClient: Bool = false) {
        // Writes are queued and flushed together after the actions, so a head and a small body leave in one
        // system call (and one segment); backend writes are flushed before anything that depends on them.
        var position = 0
        var backendDirty = false
        func flushBackend() {
            guard backendDirty, let backend = connection.backend else { return }
            backendDirty = false
            if backend.connected && !backend.out.flush(backend.fd) {
                connection.session.backendFailed(
                    connectFailed: false, snapshot: self.snapshot, now: now, into: &self.actions)
            }
        }
        while true {
            if position == self.actions.count {
                flushBackend()
                if position == self.actions.count { break }
            }
            let action = self.actions[position]
            position += 1
            switch action {
            case .writeClient(let bytes):
                connection.out.append(bytes)
                continue
            case .writeBackend(let bytes):
                guard let backend = connection.backend else { continue }
                backend.out.append(bytes)
                backendDirty = true
                continue
            default:
                flushBackend()
            }
            switch action {
            case .writeClient, .writeBackend:
                break
            case .connectBackend(let site, let excluding):
                self.connect(connection, site: site, excluding: excluding, now: now)
            case .releaseBackend(let reusable, let failed):
                self.release(connection, reusable: reusable, failed: failed, now: now)
            case .startTunnel:
                connection.tunnel = true
                connection.deadline = self.options.timeouts.deadline(
                    after: .phaseChanged, phase: .tunnel, tunnel: true, now: now, current: connection.deadline)
                let held = connection.session.takeHeldClientBytes()
                if let backend = connection.backend, !held.isEmpty {
                    backend.out.append(held)
                    _ = backend.out.flush(backend.fd)
                }
            case .closeClient:
                connection.closing = true
                if let parked = connection.parked {
                    connection.parked = nil
                    self.pool(parked, now: now)
                }
                if let backend = connection.backend {
                    connection.backend = nil
                    self.closeBackend(backend)
                }
            case .log(let record):
                self.log(record, now: now)
            }
        }
        self.actions.removeAll(keepingCapacity: true)
        if connection.pipeBytes == 0 && !connection.out.isEmpty
            && !connection.out.flush(connection.fd, more: corkClient)
        {
            self.abort(connection, now: now)
            return
        }
        if connection.closing && connection.clientQueueEmpty {
            self.destroy(connection)
            return
        }
        let phase = connection.session.phase
        if phase != connection.lastPhase && !connection.tunnel {
            connection.lastPhase = phase
            connection.deadline = self.options.timeouts.deadline(
                after: .phaseChanged, phase: phase, tunnel: false, now: now, current: connection.deadline)
        }
        self.updateInterest(connection)
    }

    func updateInterest(_ connection: ClientConnection) {
        let limit = self.options.queueLimit
        let backend = connection.backend
        var client: UInt32 = 0
        if connection.closing {
            client = 0
        } else if connection.tunnel {
            if (backend?.out.count ?? 0) < limit { client |= Poller.readable }
        } else if connection.session.wantsClientData && (backend?.out.count ?? 0) < limit {
            client |= Poller.readable
        }
        if !connection.clientQueueEmpty { client |= Poller.writable }
        if client != connection.interest {
            connection.interest = client
            self.poller.modify(connection.fd, events: client, token: HTTPWorker.token(.client, connection.slot))
        }
        if let backend {
            var wanted: UInt32 = 0
            if !backend.connected {
                wanted = Poller.writable
            } else {
                if connection.out.count < limit && connection.pipeBytes == 0 && !backend.closedByPeer {
                    wanted |= Poller.readable
                }
                if !backend.out.isEmpty { wanted |= Poller.writable }
            }
            if wanted != backend.interest {
                backend.interest = wanted
                self.poller.modify(backend.fd, events: wanted, token: HTTPWorker.token(.backend, connection.slot))
            }
        }
    }

    func balancer(for site: CompiledSite) -> Balancer {
        if let recent = self.recentBalancer, recent.site == site.name { return recent.balancer }
        if let balancer = self.balancers[site.name] {
            self.recentBalancer = (site.name, balancer)
            return balancer
        }
        var pool = BackendPool(backends: site.backends.count, policy: site.balance)
        let checks = self.board.results()
        for (index, backend) in site.backends.enumerated() {
            if let passed = checks[HealthKey(site: site.name, backend: backend.address)] {
                pool.checked(index, passed: passed)
            }
        }
        let balancer = Balancer(pool)
        self.balancers[site.name] = balancer
        self.recentBalancer = (site.name, balancer)
        return balancer
    }

    func connect(_ connection: ClientConnection, site: CompiledSite, excluding: [Int], now: UInt64) {
        let balancer = self.balancer(for: site)
        var excluded = Set(excluding)
        while let choice = balancer.pool.pick(now: now, excluding: excluded) {
            let address = site.backends[choice].address
            balancer.pool.started(choice)
            if let parked = connection.parked {
                connection.parked = nil
                if parked.index == choice && parked.site == site.name && parked.address == address {
                    parked.balancer = balancer
                    connection.backend = parked
                    self.reused.add(1, ordering: .relaxed)
                    connection.session.backendChosen(choice, reused: true)
                    connection.session.backendReady(into: &self.actions)
                    return
                }
                self.pool(parked, now: now)
            }
            // An idle pooled connection first (the most recently used: the least likely to have been closed).
            if var idle = self.pools[address], let entry = idle.popLast() {
                self.pools[address] = idle
                self.idleAddresses[entry.fd] = nil
                let link = BackendLink(
                    fd: entry.fd, address: address, site: site.name, index: choice, connected: true,
                    balancer: balancer)
                link.interest = Poller.readable
                self.poller.modify(
                    entry.fd, events: Poller.readable, token: HTTPWorker.token(.backend, connection.slot))
                connection.backend = link
                self.reused.add(1, ordering: .relaxed)
                connection.session.backendChosen(choice, reused: true)
                connection.session.backendReady(into: &self.actions)
                return
            }
            let fd: Int32
            do {
                fd = try Sockets.tcpClient(address)
            } catch {
                balancer.pool.finished(choice)
                balancer.pool.failed(choice, now: now)
                excluded.insert(choice)
                continue
            }
            let link = BackendLink(
                fd: fd, address: address, site: site.name, index: choice, connected: false, balancer: balancer)
            do {
                try self.poller.add(fd, events: Poller.writable, token: HTTPWorker.token(.backend, connection.slot))
            } catch {
                Sockets.close(fd)
                balancer.pool.finished(choice)
                excluded.insert(choice)
                continue
            }
            link.interest = Poller.writable
            connection.backend = link
            connection.session.backendChosen(choice, reused: false)
            return
        }
        connection.session.noBackend(now: now, snapshot: self.snapshot, into: &self.actions)
    }

    func release(_ connection: ClientConnection, reusable: Bool, failed: Bool, now: UInt64) {
        guard let backend = connection.backend else { return }
        connection.backend = nil
        // A balancer replaced by a reload since still takes the counts; nobody reads them any more.
        let balancer = backend.balancer
        if backend.index < balancer.pool.health.count {
            balancer.pool.finished(backend.index)
            if failed { balancer.pool.failed(backend.index, now: now) } else { balancer.pool.succeeded(backend.index) }
        }
        let placement = self.reuse.placement(
            reusable: reusable && backend.out.isEmpty && !backend.closedByPeer, clientClosing: connection.closing,
            clientHasParked: connection.parked != nil, draining: self.draining)
        switch placement {
        case .park:
            connection.parked = backend
            connection.parkedSince = now
            if backend.interest != Poller.readable {
                backend.interest = Poller.readable
                self.poller.modify(
                    backend.fd, events: Poller.readable, token: HTTPWorker.token(.backend, connection.slot))
            }
        case .pool:
            self.pool(backend, now: now)
        case .close:
            self.closeBackend(backend)
        }
    }

    /// Puts a reusable backend connection into the worker's idle pool (or closes it when the pool is full).
    func pool(_ backend: BackendLink, now: UInt64) {
        var idle = self.pools[backend.address] ?? []
        guard self.reuse.poolAccepts(idle: idle.count, draining: self.draining) else {
            self.closeBackend(backend)
            return
        }
        self.poller.modify(backend.fd, events: Poller.readable, token: HTTPWorker.token(.idle, Int(backend.fd)))
        idle.append((backend.fd, now))
        self.pools[backend.address] = idle
        self.idleAddresses[backend.fd] = backend.address
    }

    func closeBackend(_ backend: BackendLink) {
        // close() takes the descriptor out of epoll too (it is never duplicated).
        Sockets.close(backend.fd)
    }

    /// A socket error on the client: drop everything of this connection at once.
    func abort(_ connection: ClientConnection, now: UInt64) {
        connection.session.clientClosed(into: &self.actions)
        for action in self.actions {
            if case .log(let record) = action { self.log(record, now: now) }
        }
        self.actions.removeAll(keepingCapacity: true)
        self.destroy(connection)
    }

    func destroy(_ connection: ClientConnection) {
        if let parked = connection.parked {
            connection.parked = nil
            if connection.closing || self.draining {
                self.closeBackend(parked)
            } else {
                self.pool(parked, now: monotonicMilliseconds())
            }
        }
        if let backend = connection.backend {
            connection.backend = nil
            if backend.index < backend.balancer.pool.health.count { backend.balancer.pool.finished(backend.index) }
            self.closeBackend(backend)
        }
        Sockets.close(connection.fd)
        if let pipe = connection.pipe {
            Sockets.close(pipe.read)
            Sockets.close(pipe.write)
            connection.pipe = nil
        }
        guard self.slots[connection.slot] === connection else { return }
        self.slots[connection.slot] = nil
        self.releasedSlots.append(connection.slot)
        self.openCount -= 1
        self.open.store(self.openCount, ordering: .relaxed)
        if self.openCount < self.options.maximumConnections { self.resumeAccepting() }
    }

    // MARK: - Timers, health, drain

    /// Runs four times a second: deadlines, health results, idle pools, the access log, draining.
    /// Returns true when the loop should end.
    func tick(now: UInt64) -> Bool {
        self.refreshSnapshot()
        if self.acceptBackoff.resumes(now: now) && self.openCount < self.options.maximumConnections {
            self.resumeAccepting()
        }
        let generation = self.board.generation
        if generation != self.boardGeneration {
            self.boardGeneration = generation
            let checks = self.board.results()
            for site in self.snapshot.routes.sites where site.healthPath != nil {
                let balancer = self.balancer(for: site)
                for (index, backend) in site.backends.enumerated() {
                    if let passed = checks[HealthKey(site: site.name, backend: backend.address)] {
                        balancer.pool.checked(index, passed: passed)
                    }
                }
            }
        }
        for slot in self.slots.indices {
            guard let connection = self.slots[slot] else { continue }
            if let parked = connection.parked, self.reuse.parkExpired(since: connection.parkedSince, now: now) {
                connection.parked = nil
                self.pool(parked, now: now)
            }
            guard connection.deadline <= now else { continue }
            if connection.closing || connection.tunnel {
                self.destroy(connection)
                continue
            }
            connection.session.timedOut(snapshot: self.snapshot, now: now, into: &self.actions)
            self.perform(connection, now: now)
        }
        // Idle pooled connections: close those idle too long (backends commonly close at 60–75 s).
        for (address, idle) in self.pools {
            let kept = idle.filter { !self.reuse.idleExpired(since: $0.since, now: now) }
            if kept.count != idle.count {
                for entry in idle where self.reuse.idleExpired(since: entry.since, now: now) {
                    self.idleAddresses[entry.fd] = nil
                    Sockets.close(entry.fd)
                }
                self.pools[address] = kept
            }
        }
        self.flushLog()
        self.flushRecentCount()
        let counts = self.counts
        self.publishedCounts.withLock { $0 = counts }
        let drainDeadline = self.drainDeadline.load(ordering: .acquiring)
        if drainDeadline != 0 {
            if !self.draining {
                self.draining = true
                self.pauseAccepting()
                for fd in self.listeners { Sockets.close(fd) }
                self.listeners = []
            }
            for slot in self.slots.indices {
                guard let connection = self.slots[slot] else { continue }
                if connection.session.phase == .idle && !connection.tunnel && connection.clientQueueEmpty {
                    self.destroy(connection)
                }
            }
            if self.openCount == 0 || now >= drainDeadline { return true }
        }
        return false
    }

    // MARK: - Access log

    func log(_ record: AccessRecord, now: UInt64) {
        self.requests.add(1, ordering: .relaxed)
        let key = LoopCountKey(site: record.site, status: record.status)
        if key == self.recentKey {
            self.recentCount += 1
        } else {
            self.flushRecentCount()
            self.recentKey = key
            self.recentCount = 1
        }
        guard let accessLog = self.options.accessLog else { return }
        let line = accessLog.format(
            record, time: self.clock.now(), milliseconds: Int(now &- record.started))
        self.logBuffer += line.utf8
        self.logBuffer.append(10)
        if self.logBuffer.count > 32 * 1024 { self.flushLog() }
    }

    func flushRecentCount() {
        guard let key = self.recentKey, self.recentCount > 0 else { return }
        self.counts[key, default: 0] += self.recentCount
        self.recentCount = 0
    }

    func flushLog() {
        guard !self.logBuffer.isEmpty, let accessLog = self.options.accessLog else { return }
        accessLog.write(self.logBuffer)
        self.logBuffer.removeAll(keepingCapacity: true)
    }
}
