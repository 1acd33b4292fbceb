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

// Backend connections: choosing, connecting, parking, pooling, closing; and a client's end.
extension HTTPWorker {
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
            let key = PoolKey(address: address, tls: site.backends[choice].tls ? site.backendTLS : nil)
            if var idle = self.pools[key], let entry = idle.popLast() {
                self.pools[key] = idle
                self.idleAddresses[entry.fd] = nil
                let link = BackendLink(
                    fd: entry.fd, transport: entry.transport, poolKey: key, site: site.name, index: choice,
                    connected: true,
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
            guard let link = self.openBackend(for: connection, site: site, choice: choice, balancer: balancer, now: now)
            else {
                excluded.insert(choice)
                continue
            }
            connection.backend = link
            connection.session.backendChosen(choice, reused: false)
            return
        }
        connection.session.noBackend(now: now, snapshot: self.snapshot, into: &self.actions)
    }

    /// A new connection to backend `choice` of `site` for `connection`, registered for writability (where the
    /// non-blocking connect completes); nil when it cannot be opened, the backend's count given back (and a
    /// failed connect counted against it).
    func openBackend(
        for connection: ClientConnection, site: CompiledSite, choice: Int, balancer: Balancer, now: UInt64
    ) -> BackendLink? {
        let address = site.backends[choice].address
        guard let fd = try? Sockets.tcpClient(address) else {
            balancer.pool.finished(choice)
            balancer.pool.failed(choice, now: now)
            return nil
        }
        guard
            (try? self.poller.add(fd, events: Poller.writable, token: HTTPWorker.token(.backend, connection.slot)))
                != nil
        else {
            Sockets.close(fd)
            balancer.pool.finished(choice)
            return nil
        }
        var transport = Transport.plain
        let key = PoolKey(address: address, tls: site.backends[choice].tls ? site.backendTLS : nil)
        if let settings = key.tls {
            guard let client = self.tlsClient(settings, site: site),
                let stream = client.stream(
                    fd, serverName: settings.serverName ?? site.backends[choice].host, ip: address.address.description)
            else {
                Sockets.close(fd)
                balancer.pool.finished(choice)
                return nil
            }
            transport = .tls(stream)
        }
        let link = BackendLink(
            fd: fd, transport: transport, poolKey: key, site: site.name, index: choice, connected: false,
            balancer: balancer)
        link.interest = Poller.writable
        return link
    }

    /// The TLS context for `settings`, made on first use (a bad CA file is logged once per snapshot).
    func tlsClient(_ settings: BackendTLS, site: CompiledSite) -> TLSClient? {
        if let made = self.tlsClients[settings] { return try? made.get() }
        let made = Result { () throws(TLSError) in try TLSClient(verify: settings.verify, caFile: settings.caFile) }
        if case .failure(let error) = made, self.index == 0 {
            Log.error("proxy: \(site.name.hostDescription): no TLS to its https:// backends: \(error)")
        }
        self.tlsClients[settings] = made
        return try? made.get()
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
        var idle = self.pools[backend.poolKey] ?? []
        guard self.reuse.poolAccepts(idle: idle.count, draining: self.draining) else {
            self.closeBackend(backend)
            return
        }
        self.poller.modify(backend.fd, events: Poller.readable, token: HTTPWorker.token(.idle, Int(backend.fd)))
        idle.append((backend.fd, backend.transport, now))
        self.pools[backend.poolKey] = idle
        self.idleAddresses[backend.fd] = backend.poolKey
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
        if !connection.handshakeCounted, case .tls(let stream) = connection.transport {
            self.countHandshake(connection, stream, ended: true)
        } else if !connection.handshakeCounted && connection.sniffed != nil {
            // Closed (a timeout, say) while its ClientHello was still being read.
            connection.handshakeCounted = true
            self.tls.failed.add(1, ordering: .relaxed)
        }
        connection.transport.finish()
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
}
