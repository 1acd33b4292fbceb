import CSys
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// A failed socket call, naming what it was for so the user can fix it.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public var errno: Int32
    public var context: String

    public init(errno: Int32, context: String) {
        self.errno = errno
        self.context = context
    }

    public var description: String {
        let reason = String(cString: strerror(self.errno))
        switch self.errno {
        case EADDRINUSE:
            return "\(self.context): \(reason) (another program listens there; stop it or pick another port)"
        case EACCES:
            return "\(self.context): \(reason) (ports below 1024 need root or CAP_NET_BIND_SERVICE: start as root "
                + "with 'user NAME' in frontdoor.conf to drop to that user after binding, grant the capability "
                + "(deploy/frontdoor.service does), or pick a port above 1023)"
        case EADDRNOTAVAIL:
            return "\(self.context): \(reason) (no interface has that address)"
        default:
            return "\(self.context): \(reason)"
        }
    }
}

extension SocketAddress {
    /// Fills a `sockaddr_storage`; returns its length.
    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var storage = sockaddr_storage()
        let bytes = self.address.bytes
        let length = bytes.withUnsafeBufferPointer { buffer in
            csys_make_address(&storage, buffer.baseAddress, bytes.count == 4 ? 4 : 6, self.port)
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Reads a `sockaddr_storage` the kernel filled in.
    public init?(storage: UnsafePointer<sockaddr_storage>) {
        var bytes = (UInt64(0), UInt64(0))
        var port: UInt16 = 0
        let family = withUnsafeMutableBytes(of: &bytes) { raw in
            csys_address_parts(storage, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &port)
        }
        guard let address = IPAddress(family: family, bytes: bytes) else { return nil }
        self.init(address: address, port: port)
    }
}

extension IPAddress {
    /// From `csys_address_parts` output: family 4 or 6 and the bytes in network order.
    @usableFromInline
    init?(family: Int32, bytes: (UInt64, UInt64)) {
        switch family {
        case 4:
            self = .v4(IPv4Address(UInt32(bigEndian: UInt32(truncatingIfNeeded: bytes.0))))
        case 6:
            self = .v6(IPv6Address(high: UInt64(bigEndian: bytes.0), low: UInt64(bigEndian: bytes.1)))
        default:
            return nil
        }
    }

    /// The client address of a received datagram or accepted connection, without allocating.
    @inlinable
    public init?(peer: UnsafePointer<sockaddr_storage>) {
        var bytes = (UInt64(0), UInt64(0))
        var port: UInt16 = 0
        let family = withUnsafeMutableBytes(of: &bytes) { raw in
            csys_address_parts(peer, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &port)
        }
        self.init(family: family, bytes: bytes)
    }
}

/// Opening and closing sockets.
public enum Sockets {
    /// A non-blocking UDP socket bound to `address` (SO_REUSEPORT when `shared`).
    public static func udpListener(_ address: SocketAddress, shared: Bool) throws(SocketError) -> Int32 {
        let fd = address.withSockaddr { csys_listen_udp($0, $1, shared ? 1 : 0) }
        guard fd >= 0 else { throw SocketError(errno: -fd, context: "cannot listen on udp \(address)") }
        return fd
    }

    /// A non-blocking TCP listener on `address` (SO_REUSEPORT when `shared`).
    public static func tcpListener(_ address: SocketAddress, shared: Bool, backlog: Int32 = 511) throws(SocketError)
        -> Int32
    {
        let fd = address.withSockaddr { csys_listen_tcp($0, $1, shared ? 1 : 0, backlog) }
        guard fd >= 0 else { throw SocketError(errno: -fd, context: "cannot listen on tcp \(address)") }
        return fd
    }

    /// A port on `address`'s host that no UDP or TCP socket holds, for listeners asked for port 0. Binding
    /// port 0 with SO_REUSEPORT would not do: the kernel may pick a UDP port that another SO_REUSEPORT socket of
    /// the same user holds, and the two would then share its traffic.
    public static func unsharedPort(_ address: SocketAddress) throws(SocketError) -> UInt16 {
        let port = address.withSockaddr { csys_unshared_port($0, $1) }
        guard port > 0 else { throw SocketError(errno: -port, context: "no free port on \(address)") }
        return UInt16(port)
    }

    /// A UDP socket connected to `address` from a random local port.
    public static func udpClient(_ address: SocketAddress) throws(SocketError) -> Int32 {
        let fd = address.withSockaddr { csys_connect_udp($0, $1) }
        guard fd >= 0 else { throw SocketError(errno: -fd, context: "cannot reach udp \(address)") }
        return fd
    }

    /// A TCP connection to `address`, still being established.
    public static func tcpClient(_ address: SocketAddress) throws(SocketError) -> Int32 {
        let fd = address.withSockaddr { csys_connect_tcp($0, $1) }
        guard fd >= 0 else { throw SocketError(errno: -fd, context: "cannot reach tcp \(address)") }
        return fd
    }

    /// The port a socket is bound to (listeners on port 0).
    public static func localPort(_ fd: Int32) -> UInt16? {
        let port = csys_local_port(fd)
        return port >= 0 ? UInt16(port) : nil
    }

    /// The address and port a connected socket's peer has (getpeername), or its own (getsockname).
    public static func address(of fd: Int32, peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        var bytes = (UInt64(0), UInt64(0))
        var port: UInt16 = 0
        let family = withUnsafeMutableBytes(of: &bytes) { raw in
            csys_address_parts(&storage, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &port)
        }
        return IPAddress(family: family, bytes: bytes).map { SocketAddress(address: $0, port: port) }
    }

    /// One datagram from an unconnected socket into `buffer` (non-blocking when the socket is): its length
    /// (0 when none was waiting) and the sender's address. Control plane only: it allocates nothing, but is
    /// one system call per datagram.
    public static func receive(_ fd: Int32, into buffer: inout [UInt8]) -> (count: Int, sender: IPAddress?) {
        var peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
                }
            }
        }
        guard count > 0 else { return (0, nil) }
        return (count, IPAddress(peer: &peer))
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
