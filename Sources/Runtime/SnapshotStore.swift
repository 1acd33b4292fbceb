import DNSServer
import Synchronization
import ZoneModel

/// The published snapshot: swapped whole on reload, read by every worker without a lock on the hot path.
///
/// Workers compare `generation` (one atomic load) before each batch and fetch the new tables under the
/// mutex only when it changed; in-flight work finishes on the tables it started with.
public final class SnapshotStore: Sendable {
    let current: Mutex<DNSTables>
    let counter = Atomic<Int>(0)

    public init(_ tables: DNSTables) {
        self.current = Mutex(tables)
    }

    public var generation: Int { self.counter.load(ordering: .acquiring) }

    public func tables() -> DNSTables { self.current.withLock { $0 } }

    /// Makes `tables` the answer for every query that starts from now on.
    public func publish(_ tables: DNSTables) {
        self.current.withLock { $0 = tables }
        self.counter.add(1, ordering: .releasing)
    }
}
