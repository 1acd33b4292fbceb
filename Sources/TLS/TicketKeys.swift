import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// The keys that seal TLS session tickets: made from OpenSSL's random generator in memory, never written
/// anywhere, and rotated (`rotated()`): a new current key seals new tickets, the one before still opens
/// the tickets it sealed (their clients resume and get a fresh ticket), the one before that is forgotten. A
/// ticket so lives at most two rotation periods. Immutable once made, so handshakes on every worker read it
/// without a lock; a connection keeps the keys of the server it started on.
public final class TicketKeys: @unchecked Sendable {
    let ring: UnsafeMutablePointer<frontdoor_ticket_ring>
    /// When the current key was made (wall-clock seconds).
    public let made: Int

    /// Fresh keys, with no previous one.
    public convenience init(now: Int) throws(TLSError) {
        try self.init(previous: nil, now: now)
    }

    init(previous: TicketKeys?, now: Int) throws(TLSError) {
        self.ring = .allocate(capacity: 1)
        self.ring.initialize(to: frontdoor_ticket_ring())
        self.made = now
        guard frontdoor_ticket_key_fill(&self.ring.pointee.current) == 1 else {
            self.ring.deallocate()
            throw TLSError.openSSL("no random bytes for session-ticket keys")
        }
        if let previous {
            self.ring.pointee.previous = previous.ring.pointee.current
            self.ring.pointee.hasPrevious = 1
        }
    }

    deinit {
        OPENSSL_cleanse(self.ring, MemoryLayout<frontdoor_ticket_ring>.size)
        self.ring.deallocate()
    }

    /// A new current key, this one's current kept as the previous.
    public func rotated(now: Int) throws(TLSError) -> TicketKeys { try TicketKeys(previous: self, now: now) }

    /// Rotation is due: the current key is `period` seconds old.
    public func due(now: Int, period: Int = TicketKeys.period) -> Bool { now - self.made >= period }

    /// Twelve hours, as nginx's and Caddy's rotation: tickets live at most a day.
    public static let period = 12 * 3600
}
