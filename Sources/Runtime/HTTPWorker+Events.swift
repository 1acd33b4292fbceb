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

// Socket events: reading and writing each side, splicing bodies, tunnels.
extension HTTPWorker {
    func clientEvent(_ connection: ClientConnection, events: UInt32) {
        let now = monotonicMilliseconds()
        if events & Poller.writable != 0 || events & (Poller.readable | Poller.hangup) == 0 {
            guard self.drainPipe(connection) else {
                self.abort(connection, now: now)
                return
            }
            if connection.pipeBytes == 0 && !connection.flush() {
                self.abort(connection, now: now)
                return
            }
        }
        if connection.sniffed != nil {
            self.sniff(connection, now: now)
            return
        }
        // A TLS handshake message that did not fit waits for writability: then the read goes on.
        let readable =
            events & (Poller.readable | Poller.hangup) != 0
            || (events & Poller.writable != 0 && connection.transport.readWantsWritable)
        if readable && connection.interest & Poller.readable != 0 {
            let outcome = connection.transport.receive(connection.fd, into: self.readBuffer)
            if !connection.handshakeCounted, case .tls(let stream) = connection.transport {
                self.countHandshake(connection, stream, ended: false)
            }
            switch outcome {
            case .bytes(let got):
                let bytes = UnsafeRawBufferPointer(rebasing: self.readBuffer[0..<got])
                if connection.tunnel {
                    if let backend = connection.backend {
                        backend.out.append(Array(bytes))
                        if backend.connected && !backend.flush() {
                            self.abort(connection, now: now)
                            return
                        }
                    }
                } else {
                    connection.session.clientData(Array(bytes), snapshot: self.snapshot, now: now, into: &self.actions)
                }
                self.activity(connection, now: now)
            case .wouldBlock:
                break
            case .closed, .failed:
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
            guard events & (backend.connectInterest | Poller.hangup) != 0 else { return }
            if connection.passthrough {
                self.passthroughConnected(connection, backend, now: now)
                return
            }
            if !backend.handshaking {
                if csys_socket_error(backend.fd) != 0 {
                    connection.session.backendFailed(
                        connectFailed: true, snapshot: self.snapshot, now: now, into: &self.actions)
                    self.perform(connection, now: now)
                    return
                }
                _ = csys_set_nodelay(backend.fd)
            }
            if case .tls(let stream) = backend.transport {
                backend.handshaking = true
                switch stream.handshake() {
                case .done:
                    backend.handshaking = false
                case .wantsReadable:
                    backend.connectInterest = Poller.readable
                    self.updateInterest(connection)
                    return
                case .wantsWritable:
                    backend.connectInterest = Poller.writable
                    self.updateInterest(connection)
                    return
                case .failed(let reason):
                    self.backendHandshakeFailed(connection, backend, reason: reason, now: now)
                    return
                }
            }
            backend.connected = true
            connection.session.backendReady(into: &self.actions)
            self.perform(connection, now: now)
            return
        }
        if events & Poller.writable != 0 {
            if !backend.flush() {
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
            if let spliceable = self.spliceable(connection, backend) {
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
            let outcome = backend.transport.receive(backend.fd, into: self.readBuffer)
            switch outcome {
            case .bytes(let got):
                let bytes = UnsafeRawBufferPointer(rebasing: self.readBuffer[0..<got])
                if connection.tunnel {
                    connection.out.append(Array(bytes))
                    if !connection.flush() {
                        self.abort(connection, now: now)
                        return
                    }
                } else {
                    connection.session.backendData(bytes, snapshot: self.snapshot, now: now, into: &self.actions)
                    // A full buffer of a response whose body will be spliced: the rest is most likely waiting
                    // already. Its first part leaves corked and the splice follows at once, so the client gets
                    // the response in one burst (one wake-up) instead of two.
                    if got == self.readBuffer.count && self.spliceable(connection, backend) != nil {
                        self.activity(connection, now: now)
                        self.perform(connection, now: now, corkClient: true)
                        self.spliceAfterCork(connection, now: now)
                        return
                    }
                }
                self.activity(connection, now: now)
            case .wouldBlock:
                break
            case .closed, .failed:
                if connection.tunnel {
                    self.tunnelSideClosed(connection, now: now)
                    return
                }
                backend.closedByPeer = true
                if case .closed = outcome {
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

    /// A backend's TLS handshake failed (its certificate was refused, most often): logged once a minute per
    /// backend with the reason, and the request fails over or gets a 502 as a refused connect would.
    func backendHandshakeFailed(_ connection: ClientConnection, _ backend: BackendLink, reason: String, now: UInt64) {
        let key = "\(backend.site) \(backend.address)"
        if now &- (self.handshakeWarnings[key] ?? 0) >= 60_000 || self.handshakeWarnings[key] == nil {
            self.handshakeWarnings[key] = now
            Log.error(
                "proxy: \(backend.site.hostDescription): TLS to backend https://\(backend.address) failed: \(reason)")
        }
        self.tls.backendFailed.add(1, ordering: .relaxed)
        connection.session.backendFailed(connectFailed: true, snapshot: self.snapshot, now: now, into: &self.actions)
        self.perform(connection, now: now)
    }

    /// Follows a corked client write with the splice of what the backend has ready; pushes the corked bytes
    /// out when nothing can follow them at once.
    func spliceAfterCork(_ connection: ClientConnection, now: UInt64) {
        guard self.slots[connection.slot] === connection, !connection.closing else { return }
        if let backend = connection.backend, backend.connected, connection.clientQueueEmpty {
            if let spliceable = self.spliceable(connection, backend) {
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

    /// The body octets that may be spliced now: the session's Content-Length rest, when it is worth it and
    /// both transports carry the stream's bytes as they are.
    @inline(__always)
    func spliceable(_ connection: ClientConnection, _ backend: BackendLink) -> UInt64? {
        let count = connection.session.spliceableBytes
        guard count >= HTTPWorker.spliceThreshold, connection.transport.splices, backend.transport.splices else {
            return nil
        }
        return count
    }

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
        if let backend = connection.backend { _ = backend.flush() }
        _ = connection.flush()
        self.destroy(connection)
    }

    /// Counts a TLS connection's handshake once: when it has finished, or as failed when the connection ends
    /// (`ended`) before that.
    func countHandshake(_ connection: ClientConnection, _ stream: TLSStream, ended: Bool) {
        if stream.established {
            connection.handshakeCounted = true
            if stream.resumed {
                self.tls.resumed.add(1, ordering: .relaxed)
            } else {
                self.tls.full.add(1, ordering: .relaxed)
            }
            if stream.isTLS13 {
                self.tls.tls13.add(1, ordering: .relaxed)
            } else {
                self.tls.tls12.add(1, ordering: .relaxed)
            }
        } else if ended {
            connection.handshakeCounted = true
            if stream.plainHTTP {
                self.tls.plainHTTP.add(1, ordering: .relaxed)
            } else {
                self.tls.failed.add(1, ordering: .relaxed)
            }
        }
    }

    // MARK: - SNI passthrough

    /// Reads an HTTPS connection's ClientHello: a passthrough site's name relays the connection as it is to
    /// that site's backend; anything else (another name, none, not TLS at all) goes to TLS termination with
    /// the bytes read so far.
    func sniff(_ connection: ClientConnection, now: UInt64) {
        switch Transport.plain.receive(connection.fd, into: self.readBuffer) {
        case .bytes(let got):
            connection.sniffed?.append(contentsOf: UnsafeRawBufferPointer(rebasing: self.readBuffer[0..<got]))
        case .wouldBlock:
            return
        case .closed, .failed:
            self.tls.failed.add(1, ordering: .relaxed)
            connection.handshakeCounted = true
            self.destroy(connection)
            return
        }
        guard let hello = connection.sniffed else { return }
        switch hello.withUnsafeBytes({ ClientHello.peek($0) }) {
        case .needMore:
            // The head-read deadline set at accept ends a ClientHello that never completes.
            return
        case .serverName(let name?):
            let site = Array(name.utf8).withUnsafeBytes { self.snapshot.routes.route(host: $0) }
            if let site, site.passthrough, let view = self.snapshot.view(for: connection.session.client),
                site.isVisible(to: view)
            {
                self.startPassthrough(connection, site: site, hello: hello, now: now)
                return
            }
        case .serverName(nil), .notTLS, .malformed:
            break
        }
        connection.sniffed = nil
        guard let server = self.currentTLSServer(), let stream = server.stream(connection.fd, prefix: hello) else {
            // No certificates at all (a passthrough-only listener): a name that is not passthrough is closed.
            self.tls.failed.add(1, ordering: .relaxed)
            connection.handshakeCounted = true
            self.destroy(connection)
            return
        }
        connection.transport = .tls(stream)
        // The handshake starts from the bytes already read.
        self.clientEvent(connection, events: Poller.readable)
    }

    /// Connects to one of the site's backends and relays the connection to it from now on, the ClientHello
    /// (after a PROXY v2 header when the site asks for one) first.
    func startPassthrough(_ connection: ClientConnection, site: CompiledSite, hello: [UInt8], now: UInt64) {
        connection.sniffed = nil
        connection.passthrough = true
        connection.tunnel = true
        connection.handshakeCounted = true
        self.tls.passthrough.add(1, ordering: .relaxed)
        let balancer = self.balancer(for: site)
        var excluded = Set<Int>()
        while let choice = balancer.pool.pick(now: now, excluding: excluded) {
            balancer.pool.started(choice)
            guard let link = self.openBackend(for: connection, site: site, choice: choice, balancer: balancer, now: now)
            else {
                excluded.insert(choice)
                continue
            }
            if site.proxyProtocol, let client = Sockets.address(of: connection.fd, peer: true),
                let local = Sockets.address(of: connection.fd, peer: false)
            {
                link.out.append(ProxyProtocol.header(source: client, destination: local))
            }
            link.out.append(hello)
            connection.backend = link
            connection.deadline = self.options.timeouts.deadline(
                after: .phaseChanged, phase: .tunnel, tunnel: true, now: now, current: connection.deadline)
            self.updateInterest(connection)
            return
        }
        // Every backend is down: nothing can answer this TLS client.
        self.destroy(connection)
    }

    /// A passthrough backend's connect finished: send what waited, or give up on the client.
    func passthroughConnected(_ connection: ClientConnection, _ backend: BackendLink, now: UInt64) {
        guard csys_socket_error(backend.fd) == 0 else {
            backend.balancer.pool.failed(backend.index, now: now)
            self.destroy(connection)
            return
        }
        backend.connected = true
        _ = csys_set_nodelay(backend.fd)
        backend.balancer.pool.succeeded(backend.index)
        guard backend.flush() else {
            self.destroy(connection)
            return
        }
        self.activity(connection, now: now)
        self.updateInterest(connection)
    }
}
