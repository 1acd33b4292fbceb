import Synchronization
import ZoneModel

/// Whether each upstream resolver answers, shared by the DNS workers: a few questions in a row that time out
/// or fail mark it down (logged once, with what LAN clients then see), an answer marks it up again (logged
/// too). Read by /metrics and the status page. Touched only when a question goes upstream (a cache miss),
/// with atomics: no lock.
public final class UpstreamHealth: Sendable {
    final class Entry: Sendable {
        let address: SocketAddress
        let consecutiveFailures = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let down = Atomic<Bool>(false)

        init(_ address: SocketAddress) { self.address = address }
    }

    let entries: [Entry]
    /// Failures in a row (timeouts, refusals, broken connections) that mark an upstream down.
    public static let downAfter = 3

    public init(upstreams: [SocketAddress]) {
        self.entries = upstreams.map(Entry.init)
    }

    /// An attempt to upstream `index` timed out or failed.
    func failed(_ index: Int) {
        guard index < self.entries.count else { return }
        let entry = self.entries[index]
        entry.failures.add(1, ordering: .relaxed)
        let run = entry.consecutiveFailures.add(1, ordering: .relaxed).newValue
        if run >= UpstreamHealth.downAfter,
            entry.down.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        {
            Log.warning(
                "dns: upstream \(entry.address) is not answering (\(run) questions in a row timed out or failed); "
                    + "LAN clients get SERVFAIL for names not in the cache"
                    + (self.entries.count > 1 ? " unless another upstream answers" : ""))
        }
    }

    /// Upstream `index` answered.
    func answered(_ index: Int) {
        guard index < self.entries.count else { return }
        let entry = self.entries[index]
        entry.consecutiveFailures.store(0, ordering: .relaxed)
        if entry.down.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
            Log.info("dns: upstream \(entry.address) answers again")
        }
    }

    /// Each upstream: its address, whether it is up, and its failed attempts so far.
    public var report: [(address: SocketAddress, up: Bool, failures: Int)] {
        self.entries.map { ($0.address, !$0.down.load(ordering: .relaxed), $0.failures.load(ordering: .relaxed)) }
    }
}
