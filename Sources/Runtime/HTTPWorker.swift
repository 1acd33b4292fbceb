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
    /// A listening socket and whether TLS is terminated on what it accepts.
    struct Listener {
        var fd: Int32
        var tls: Bool
    }
    var listeners: [Listener]
    /// The TLS server of the latest generation seen (see TLSServerStore).
    var tlsServer: TLSServer?
    var tlsGeneration = -1
    /// The port of this worker's first HTTPS listener, which plain-HTTP redirects point at.
    var tlsPort: UInt16?
    /// The sites plain HTTP is redirected away from; rebuilt when the model or the certificates change.
    var httpsUpgrade: HTTPSUpgrade?
    var httpsUpgradeStale = true
    /// Some site is SNI passthrough: HTTPS connections read their ClientHello before TLS starts.
    var hasPassthrough = false
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
    /// Idle keep-alive connections per backend address (and TLS settings, for `https://` backends).
    var pools: [PoolKey: [(fd: Int32, transport: Transport, since: UInt64)]] = [:]
    /// Pooled descriptors stay registered with epoll (read interest): a backend that closes an idle
    /// connection is noticed at once, and taking one from the pool costs one epoll_ctl and no probe.
    var idleAddresses: [Int32: PoolKey] = [:]
    /// Balancers per site, rebuilt when the snapshot changes.
    var balancers: [DomainName: Balancer] = [:]
    /// TLS contexts for `https://` backends, made on first use and dropped when the snapshot changes; a
    /// context that cannot be made (a bad `ca=` file) is remembered with its reason.
    var tlsClients: [BackendTLS: Result<TLSClient, TLSError>] = [:]
    /// When a backend's failed TLS handshake was last logged ("site address"): once a minute each.
    var handshakeWarnings: [String: UInt64] = [:]
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
    /// TLS handshakes by outcome, counted once per connection (see `countHandshake`).
    let tls = TLSCounters()
    var trusted: [CIDR]

    init(index: Int, options: HTTPOptions, store: SnapshotStore, board: HealthBoard, listeners: [Listener])
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
        self.hasPassthrough = self.snapshot.routes.sites.contains(where: \.passthrough)
        for (position, listener) in listeners.enumerated() {
            try self.poller.add(listener.fd, events: Poller.readable, token: HTTPWorker.token(.listener, position))
        }
        self.tlsPort = listeners.first(where: \.tls).flatMap { Sockets.localPort($0.fd) }
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
        for listener in self.listeners { Sockets.close(listener.fd) }
        self.listeners = []
    }

    func refreshSnapshot() {
        let generation = self.store.generation
        guard generation != self.snapshotGeneration else { return }
        self.snapshotGeneration = generation
        self.snapshot = self.store.tables().snapshot
        self.trusted = self.snapshot.settings.trustedProxies
        self.hasPassthrough = self.snapshot.routes.sites.contains(where: \.passthrough)
        self.httpsUpgradeStale = true
        self.balancers = [:]
        self.tlsClients = [:]
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

    func accept(_ listener: Listener) {
        var peer = sockaddr_storage()
        var length = socklen_t(0)
        for _ in 0..<64 {
            guard self.listening, self.openCount < self.options.maximumConnections else { return }
            let fd = csys_accept(listener.fd, &peer, &length)
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
            var transport = Transport.plain
            // With passthrough sites, TLS starts only once the ClientHello says the site is not one of them.
            let sniff = listener.tls && self.hasPassthrough
            if listener.tls && !sniff {
                guard let server = self.currentTLSServer(), let stream = server.stream(fd) else {
                    Sockets.close(fd)
                    continue
                }
                transport = .tls(stream)
            }
            let connection = ClientConnection(
                fd: fd, transport: transport, slot: slot,
                session: ProxySession(
                    client: client, trustedPeer: trusted, scheme: listener.tls ? "https" : "http",
                    upgrade: listener.tls ? nil : self.currentUpgrade(), challenges: self.options.challenges))
            if sniff { connection.sniffed = [] }
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
        for listener in self.listeners { self.poller.remove(listener.fd) }
    }

    func resumeAccepting() {
        guard !self.listening, !self.draining, !self.acceptBackoff.isPaused else { return }
        self.listening = true
        for (position, listener) in self.listeners.enumerated() {
            try? self.poller.add(listener.fd, events: Poller.readable, token: HTTPWorker.token(.listener, position))
        }
    }

    /// The TLS server new connections get: the store's, re-read only when its generation moved.
    func currentTLSServer() -> TLSServer? {
        guard let store = self.options.tls else { return nil }
        let generation = store.generation.load(ordering: .acquiring)
        if generation != self.tlsGeneration {
            self.tlsGeneration = generation
            self.tlsServer = store.current
            self.httpsUpgradeStale = true
        }
        return self.tlsServer
    }

    /// The redirect policy for a new plain-HTTP connection: the sites a certificate covers (and that did not
    /// opt out), sent to this worker's HTTPS port. Nil without HTTPS.
    func currentUpgrade() -> HTTPSUpgrade? {
        let server = self.currentTLSServer()
        guard self.httpsUpgradeStale else { return self.httpsUpgrade }
        self.httpsUpgradeStale = false
        guard let port = self.tlsPort else {
            self.httpsUpgrade = nil
            return nil
        }
        let covered = self.snapshot.routes.sites.filter {
            $0.passthrough || ($0.httpsRedirect && server?.table.covering($0.name.hostDescription) != nil)
        }
        self.httpsUpgrade = covered.isEmpty ? nil : HTTPSUpgrade(sites: Set(covered.map(\.name)), port: port)
        return self.httpsUpgrade
    }
}
