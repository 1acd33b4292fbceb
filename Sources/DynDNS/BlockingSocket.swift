import CSys
import DNSWire
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP or UDP socket for the updater's control-plane exchanges: every wait bounded by a deadline, so a
/// provider that stalls costs a timeout, never a hang.
final class BlockingSocket {
    let fd: Int32
    let deadline: UInt64

    /// Connects to `address` within `timeout` milliseconds.
    init(tcp address: SocketAddress, timeout: UInt64) throws(DynDNSError) {
        self.deadline = monotonicMilliseconds() + timeout
        guard let fd = try? Sockets.tcpClient(address) else { throw .unreachable("cannot connect to \(address)") }
        self.fd = fd
        guard self.wait(Int16(POLLOUT)), csys_socket_error(fd) == 0 else {
            Sockets.close(fd)
            throw .unreachable("cannot connect to \(address)")
        }
    }

    /// A connected UDP socket from a random port.
    init(udp address: SocketAddress, timeout: UInt64) throws(DynDNSError) {
        self.deadline = monotonicMilliseconds() + timeout
        guard let fd = try? Sockets.udpClient(address) else { throw .unreachable("cannot reach \(address)") }
        self.fd = fd
    }

    deinit { Sockets.close(self.fd) }

    func wait(_ events: Int16, until: UInt64? = nil) -> Bool {
        let limit = until ?? self.deadline
        while true {
            let left = Int64(limit) - Int64(monotonicMilliseconds())
            guard left > 0 else { return false }
            var entry = pollfd(fd: self.fd, events: events, revents: 0)
            let result = poll(&entry, 1, Int32(clamping: left))
            if result < 0 && errno == EINTR { continue }
            return result == 1 && entry.revents & (events | Int16(POLLERR) | Int16(POLLHUP)) != 0
        }
    }

    func send(_ bytes: [UInt8]) throws(DynDNSError) {
        var offset = 0
        while offset < bytes.count {
            guard self.wait(Int16(POLLOUT)) else { throw .unreachable("timed out sending") }
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(self.fd, raw.baseAddress.map { $0 + offset }, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard sent > 0 else { throw .unreachable("connection lost while sending") }
            offset += sent
        }
    }

    /// Up to `maximum` bytes; empty at end of stream.
    func receive(maximum: Int = 65536, until: UInt64? = nil) throws(DynDNSError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            guard self.wait(Int16(POLLIN), until: until) else { throw .unreachable("timed out waiting for a reply") }
            let got = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if got < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard got >= 0 else { throw .unreachable("connection lost while reading") }
            return Array(buffer.prefix(got))
        }
    }

    /// Exactly `count` bytes (TCP).
    func receive(exactly count: Int) throws(DynDNSError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let chunk = try self.receive(maximum: count - out.count)
            guard !chunk.isEmpty else { throw .badReply("connection closed mid-message") }
            out += chunk
        }
        return out
    }

    /// One DNS message over TCP (RFC 1035 §4.2.2 length prefix).
    static func dnsExchange(_ message: [UInt8], server: SocketAddress, timeout: UInt64) throws(DynDNSError) -> [UInt8] {
        let socket = try BlockingSocket(tcp: server, timeout: timeout)
        try socket.send(TCPFraming.framed(message))
        let prefix = try socket.receive(exactly: 2)
        return try socket.receive(exactly: TCPFraming.length(prefix))
    }
}
