import CSys
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

// The session's actions carried out, and the epoll interest that follows from them.
extension HTTPWorker {
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
            if backend.connected && !backend.flush() {
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
                    _ = backend.flush()
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
            && !connection.flush(more: corkClient)
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
        if !connection.clientQueueEmpty || connection.transport.readWantsWritable { client |= Poller.writable }
        if client != connection.interest {
            connection.interest = client
            self.poller.modify(connection.fd, events: client, token: HTTPWorker.token(.client, connection.slot))
        }
        if let backend {
            var wanted: UInt32 = 0
            if !backend.connected {
                wanted = backend.connectInterest
            } else {
                if connection.out.count < limit && connection.pipeBytes == 0 && !backend.closedByPeer {
                    wanted |= Poller.readable
                }
                if !backend.out.isEmpty || backend.transport.readWantsWritable { wanted |= Poller.writable }
            }
            if wanted != backend.interest {
                backend.interest = wanted
                self.poller.modify(backend.fd, events: wanted, token: HTTPWorker.token(.backend, connection.slot))
            }
        }
    }
}
