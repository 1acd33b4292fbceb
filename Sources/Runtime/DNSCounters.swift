import CSys

/// Counters one DNS thread keeps for the admin listener: responses by view and rcode, resolver cache hits and
/// misses, upstream replies and their total latency. Written only by their own thread with plain stores
/// (no locked instruction on the hot path), read by the admin thread with relaxed loads.
final class DNSCounters: @unchecked Sendable {
    /// Views counted separately; later views share the last slot.
    static let views = 16
    static let responseSlots = DNSCounters.views * 16
    static let cacheHits = DNSCounters.responseSlots
    static let cacheMisses = DNSCounters.responseSlots + 1
    static let upstreamReplies = DNSCounters.responseSlots + 2
    static let upstreamMilliseconds = DNSCounters.responseSlots + 3
    static let upstreamQueries = DNSCounters.responseSlots + 4
    /// Cache hits the UDP threads answered in their batch (a subset of `cacheHits`).
    static let batchHits = DNSCounters.responseSlots + 5
    /// Expired answers served because every upstream failed (RFC 8767).
    static let staleAnswers = DNSCounters.responseSlots + 6
    /// Popular entries refreshed upstream before they expired.
    static let prefetches = DNSCounters.responseSlots + 7
    static let count = DNSCounters.responseSlots + 8

    let values: UnsafeMutablePointer<UInt64>

    init() {
        self.values = .allocate(capacity: DNSCounters.count)
        self.values.initialize(repeating: 0, count: DNSCounters.count)
    }

    deinit { self.values.deallocate() }

    /// One response to a client of view `view` (-1: no view) with `rcode`.
    @inline(__always)
    func response(view: Int, rcode: UInt8) {
        let slot = min(max(view, 0), DNSCounters.views - 1) * 16 + Int(rcode & 0x0F)
        csys_counter_add(self.values + slot, 1)
    }

    @inline(__always)
    func add(_ slot: Int, _ amount: UInt64 = 1) { csys_counter_add(self.values + slot, amount) }

    func read(_ slot: Int) -> UInt64 { csys_counter_read(self.values + slot) }
}

/// The DNS counters summed over every thread.
public struct DNSStatistics: Sendable {
    /// [view index][rcode] → responses.
    public var responses: [Int: [Int: UInt64]] = [:]
    public var cacheHits: UInt64 = 0
    public var cacheMisses: UInt64 = 0
    public var upstreamReplies: UInt64 = 0
    public var upstreamMilliseconds: UInt64 = 0
    /// Queries sent upstream (UDP datagrams and TCP queries), retries included.
    public var upstreamQueries: UInt64 = 0
    /// Cache hits answered by the UDP threads from the shared wire cache, in their batch.
    public var batchCacheHits: UInt64 = 0
    public var staleAnswers: UInt64 = 0
    public var prefetches: UInt64 = 0

    mutating func add(_ counters: DNSCounters) {
        for slot in 0..<DNSCounters.responseSlots {
            let value = counters.read(slot)
            if value > 0 { self.responses[slot / 16, default: [:]][slot % 16, default: 0] += value }
        }
        self.cacheHits += counters.read(DNSCounters.cacheHits)
        self.cacheMisses += counters.read(DNSCounters.cacheMisses)
        self.upstreamReplies += counters.read(DNSCounters.upstreamReplies)
        self.upstreamMilliseconds += counters.read(DNSCounters.upstreamMilliseconds)
        self.upstreamQueries += counters.read(DNSCounters.upstreamQueries)
        self.batchCacheHits += counters.read(DNSCounters.batchHits)
        self.staleAnswers += counters.read(DNSCounters.staleAnswers)
        self.prefetches += counters.read(DNSCounters.prefetches)
    }
}
