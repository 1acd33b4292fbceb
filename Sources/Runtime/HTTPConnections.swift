import CSys
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

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

    /// Writes as much as the socket takes through `transport`: false on a write error (the peer is gone).
    /// `more` says that more bytes follow at once (see `Transport.send`).
    mutating func flush(_ fd: Int32, _ transport: Transport, more: Bool = false) -> Bool {
        while !self.isEmpty {
            let offset = self.offset
            let outcome = self.buffer.withUnsafeBytes { raw in
                transport.send(fd, UnsafeRawBufferPointer(rebasing: raw[offset...]), more: more)
            }
            switch outcome {
            case .sent(let count): self.offset += count
            case .wouldBlock: return true
            case .failed: return false
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
/// Which idle backend connections may serve a request: the same address, spoken to the same way (a TLS
/// connection made for one name and CA is never handed to a site that asked for another).
struct PoolKey: Hashable {
    var address: SocketAddress
    var tls: BackendTLS?
}

final class BackendLink {
    let fd: Int32
    let transport: Transport
    let address: SocketAddress
    let poolKey: PoolKey
    let site: DomainName
    let index: Int
    var connected: Bool
    /// A TLS backend's TCP connection is up and its handshake is under way (`connected` follows it).
    var handshaking = false
    /// What epoll waits for while not yet connected: writable (the TCP connect), or whatever the handshake
    /// asked for.
    var connectInterest = Poller.writable
    var out = OutQueue()
    var interest: UInt32 = 0
    var closedByPeer = false
    /// The balancer of the site it serves, which counts its requests and failures.
    var balancer: Balancer

    init(
        fd: Int32, transport: Transport, poolKey: PoolKey, site: DomainName, index: Int, connected: Bool,
        balancer: Balancer
    ) {
        self.balancer = balancer
        self.fd = fd
        self.transport = transport
        self.address = poolKey.address
        self.poolKey = poolKey
        self.site = site
        self.index = index
        self.connected = connected
    }

    /// Writes what is queued: false when the backend is gone.
    func flush() -> Bool { self.out.flush(self.fd, self.transport) }
}

/// One client connection.
final class ClientConnection {
    let fd: Int32
    /// Plain, or TLS once a TLS listener's connection is known not to be SNI passthrough.
    var transport: Transport
    /// While an HTTPS connection's ClientHello is read to see whether its SNI names a passthrough site: the
    /// bytes so far (handed to TLS, or to the passthrough backend, after).
    var sniffed: [UInt8]?
    /// The connection is relayed as it is to a passthrough site's backend.
    var passthrough = false
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
    /// A TLS connection's handshake has been counted (done, or failed when it closed before finishing).
    var handshakeCounted = false
    /// A pipe for splicing response bodies backend → client, made on first use; bytes in it still owed to
    /// the client come before anything in `out`.
    var pipe: (read: Int32, write: Int32)?
    var pipeBytes = 0

    /// Nothing is waiting to be written to the client.
    var clientQueueEmpty: Bool { self.pipeBytes == 0 && self.out.isEmpty }

    init(fd: Int32, transport: Transport, slot: Int, session: ProxySession) {
        self.fd = fd
        self.transport = transport
        self.slot = slot
        self.session = session
    }

    /// Writes what is queued: false when the client is gone.
    func flush(more: Bool = false) -> Bool { self.out.flush(self.fd, self.transport, more: more) }
}

/// TLS handshakes by outcome, per worker; the admin listener sums them.
final class TLSCounters: Sendable {
    let full = Atomic<Int>(0)
    let resumed = Atomic<Int>(0)
    /// Connections that closed or failed before their handshake finished (garbage, timeouts, alerts).
    let failed = Atomic<Int>(0)
    /// Plain HTTP sent to the HTTPS port (answered with a plain 400).
    let plainHTTP = Atomic<Int>(0)
    /// Connections relayed unterminated to a passthrough site's backend.
    let passthrough = Atomic<Int>(0)
    let tls12 = Atomic<Int>(0)
    let tls13 = Atomic<Int>(0)
    /// TLS handshakes to `https://` backends that failed (a refused certificate, most often).
    let backendFailed = Atomic<Int>(0)
}
