/// What becomes of a backend connection once a response on it is complete: the keep-alive policy of one
/// proxy worker, pure so that each rule has a table test.
///
/// A reusable connection is first *parked* on the client connection that used it: a browser's next request
/// (the page's images, an API call) usually follows within milliseconds and goes to the same backend, so it
/// gets a connection that is known to work. The affinity is short: after `parkGrace` the connection moves to
/// the worker's idle pool for the backend, where any client can take it, so idle keep-alive clients do not
/// each hold a backend connection (3,000 idle clients held 3,000 before; nginx holds its keepalive cache).
/// The pool is bounded per backend and per worker; what does not fit is closed, and an idle pooled
/// connection is closed after `idleLifetime`, before backends commonly time it out (60–75 s).
public struct BackendReuse: Sendable, Equatable {
    /// Where a connection goes when its response is done.
    public enum Placement: Sendable, Equatable {
        /// Kept on the client connection for its next request, until `parkGrace` has passed.
        case park
        /// Into the worker's idle pool for the backend.
        case pool
        /// Closed.
        case close
    }

    /// The most idle connections to one backend one worker keeps (at most 256).
    public let maximumIdle: Int
    public let parkGrace: UInt64
    public let idleLifetime: UInt64

    public init(maximumIdle: Int = 64, parkGrace: UInt64 = 250, idleLifetime: UInt64 = 30_000) {
        self.maximumIdle = min(max(0, maximumIdle), 256)
        self.parkGrace = parkGrace
        self.idleLifetime = idleLifetime
    }

    /// The placement of a connection whose response just ended. `reusable`: the backend kept it open and
    /// the exchange ended cleanly; `clientClosing`: the client connection is ending; `clientHasParked`: it
    /// already holds one; `draining`: the worker is shutting down.
    @inlinable
    public func placement(reusable: Bool, clientClosing: Bool, clientHasParked: Bool, draining: Bool) -> Placement {
        guard reusable && !draining else { return .close }
        return clientClosing || clientHasParked ? .pool : .park
    }

    /// Whether a connection parked at `since` must move to the pool at `now`.
    @inlinable
    public func parkExpired(since: UInt64, now: UInt64) -> Bool { now &- since >= self.parkGrace }

    /// Whether the pool for a backend that holds `idle` connections takes one more.
    @inlinable
    public func poolAccepts(idle: Int, draining: Bool) -> Bool { !draining && idle < self.maximumIdle }

    /// Whether a connection idle in the pool since `since` is closed at `now`.
    @inlinable
    public func idleExpired(since: UInt64, now: UInt64) -> Bool { now &- since >= self.idleLifetime }
}
