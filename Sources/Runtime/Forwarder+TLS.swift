import CSys
import DNSServer
import DNSWire
import EventLoop
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// One DNS-over-TLS connection to an upstream (RFC 7858): opened when a question needs it, then reused for
/// every question of this worker, several in flight at once (RFC 7766 pipelining), replies matched by ID.
final class TLSUpstreamConnection {
    let fd: Int32
    let stream: TLSStream
    var established = false
    /// Framed queries not yet written.
    var output: [UInt8] = []
    var input: [UInt8] = []
    /// The questions waiting for a reply on this connection, by the ID of their query.
    var inFlight: [UInt16: CacheKey] = [:]
    var lastUsed: UInt64

    init(fd: Int32, stream: TLSStream, now: UInt64) {
        self.fd = fd
        self.stream = stream
        self.lastUsed = now
    }

    func forget(_ key: CacheKey) {
        for (id, waiting) in self.inFlight where waiting == key { self.inFlight[id] = nil }
    }
}

extension Forwarder {
    /// Idle connections are closed after this long without a question in flight.
    static let tlsIdleMilliseconds: UInt64 = 30_000

    /// Queues `query` on the upstream's TLS connection (opening it first when there is none) and pushes it.
    func sendOverTLS(_ key: CacheKey, query: [UInt8], upstream index: Int, now: UInt64) {
        if self.tlsConnections[index] == nil {
            guard let connection = self.openTLS(index, now: now) else { return self.attemptFailed(key, now: now) }
            self.tlsConnections[index] = connection
            self.tlsByFD[connection.fd] = index
        }
        guard let connection = self.tlsConnections[index], query.count >= 2 else { return }
        let id = UInt16(query[0]) << 8 | UInt16(query[1])
        connection.forget(key)
        guard connection.inFlight[id] == nil else { return self.attemptFailed(key, now: now) }
        connection.inFlight[id] = key
        connection.output += TCPFraming.framed(query)
        connection.lastUsed = now
        self.pumpTLS(index, now: now)
    }

    func openTLS(_ index: Int, now: UInt64) -> TLSUpstreamConnection? {
        let options = self.worker.options
        guard let client = options.tlsClient, let fd = try? Sockets.tcpClient(self.upstreams[index]) else {
            return nil
        }
        let address = self.upstreams[index].address.description
        guard let stream = client.stream(fd, serverName: options.upstreamTLSNames[index], ip: address),
            (try? self.worker.poller.add(
                fd, events: Poller.readable | Poller.writable, token: DNSWorker.token(.tlsUpstream, fd))) != nil
        else {
            Sockets.close(fd)
            return nil
        }
        return TLSUpstreamConnection(fd: fd, stream: stream, now: now)
    }

    func tlsReady(_ fd: Int32, now: UInt64) {
        guard let index = self.tlsByFD[fd] else {
            self.worker.poller.remove(fd)
            Sockets.close(fd)
            return
        }
        self.pumpTLS(index, now: now)
    }

    /// Handshake, write what is queued, read what arrived, hand each reply to its question.
    func pumpTLS(_ index: Int, now: UInt64) {
        guard let connection = self.tlsConnections[index] else { return }
        if !connection.established {
            switch connection.stream.handshake() {
            case .done:
                connection.established = true
            case .wantsReadable:
                return self.watchTLS(connection, writable: false)
            case .wantsWritable:
                return self.watchTLS(connection, writable: true)
            case .failed(let reason):
                return self.failTLS(index, reason: "its TLS handshake failed: \(reason)", now: now)
            }
        }
        while !connection.output.isEmpty {
            let result = connection.output.withUnsafeBytes { connection.stream.write($0) }
            switch result {
            case .sent(let count): connection.output.removeFirst(count)
            case .wouldBlock: break
            case .failed: return self.failTLS(index, reason: "the connection broke", now: now)
            }
            if case .wouldBlock = result { break }
        }
        var closed = false
        while true {
            let result = self.receiveBuffer.withUnsafeMutableBytes { connection.stream.read(into: $0) }
            switch result {
            case .bytes(let count):
                connection.input += self.receiveBuffer[0..<count]
                continue
            case .wouldBlock: break
            case .closed, .failed: closed = true
            }
            break
        }
        while let frame = TCPFraming.message(in: connection.input) {
            let reply = Array(connection.input[frame])
            connection.input.removeFirst(frame.upperBound)
            guard reply.count >= 2 else { continue }
            let id = UInt16(reply[0]) << 8 | UInt16(reply[1])
            if let key = connection.inFlight.removeValue(forKey: id) {
                connection.lastUsed = now
                self.replied(key, reply, now: now)
            }
        }
        if closed { return self.failTLS(index, reason: "it closed the connection", now: now) }
        self.watchTLS(connection, writable: !connection.output.isEmpty || connection.stream.readWantsWritable)
    }

    func watchTLS(_ connection: TLSUpstreamConnection, writable: Bool) {
        self.worker.poller.modify(
            connection.fd, events: Poller.readable | (writable ? Poller.writable : 0),
            token: DNSWorker.token(.tlsUpstream, connection.fd))
    }

    /// Closes the connection; every question on it hears that its attempt failed (and may go elsewhere).
    func failTLS(_ index: Int, reason: String, now: UInt64) {
        guard let connection = self.tlsConnections.removeValue(forKey: index) else { return }
        self.tlsByFD[connection.fd] = nil
        self.worker.poller.remove(connection.fd)
        Sockets.close(connection.fd)
        if self.lastTLSLog[index].map({ now >= $0 + 60_000 }) ?? true {
            self.lastTLSLog[index] = now
            let name = self.worker.options.upstreamTLSNames[index] ?? "?"
            Log.warning(
                "dns: DNS-over-TLS upstream \(self.upstreams[index]) (\(name)): \(reason); at most one such line a minute"
            )
        }
        for key in connection.inFlight.values { self.attemptFailed(key, now: now) }
    }

    func closeIdleTLS(now: UInt64) {
        for (index, connection) in self.tlsConnections
        where connection.inFlight.isEmpty && now > connection.lastUsed + Forwarder.tlsIdleMilliseconds {
            connection.stream.shutdown()
            self.tlsConnections[index] = nil
            self.tlsByFD[connection.fd] = nil
            self.worker.poller.remove(connection.fd)
            Sockets.close(connection.fd)
        }
    }
}
