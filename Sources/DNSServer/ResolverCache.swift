import DNSWire
import ZoneModel

/// A question as the cache and the in-flight table know it: lower-cased name and type.
public struct CacheKey: Hashable, Sendable {
    public var name: DomainName
    public var type: UInt16

    public init(name: DomainName, type: UInt16) {
        self.name = name
        self.type = type
    }
}

/// An upstream answer kept for reuse; TTLs count down from `stored`.
public struct CachedAnswer: Sendable, Equatable {
    public var rcode: UInt16
    public var answer: [WireRecord]
    public var authority: [WireRecord]
    public var additional: [WireRecord]
    /// When it was stored and until when it may be served (milliseconds, monotonic).
    public var stored: UInt64
    public var expires: UInt64
    /// Set on a stale answer kept again (RFC 8767): the end of the stale period, counted from the original
    /// expiry, so serving stale does not extend it.
    public var staleUntil: UInt64?
    var size: Int

    public init(
        rcode: UInt16, answer: [WireRecord], authority: [WireRecord], additional: [WireRecord], stored: UInt64,
        expires: UInt64
    ) {
        self.rcode = rcode
        self.answer = answer
        self.authority = authority
        self.additional = additional
        self.stored = stored
        self.expires = expires
        self.size = (answer + authority + additional).reduce(64) { $0 + $1.owner.wire.count + $1.data.count + 48 }
    }

    /// The answer as it stands at `now`: every TTL reduced by the whole seconds it has been cached.
    public func aged(at now: UInt64) -> CachedAnswer {
        let elapsed = UInt32(min(UInt64(UInt32.max), (now - min(now, self.stored)) / 1000))
        func age(_ records: [WireRecord]) -> [WireRecord] {
            records.map { record in
                var copy = record
                copy.ttl = record.ttl > elapsed ? record.ttl - elapsed : 0
                return copy
            }
        }
        var copy = self
        copy.answer = age(self.answer)
        copy.authority = age(self.authority)
        copy.additional = age(self.additional)
        return copy
    }
}

/// The forwarding cache of one worker: bounded in bytes, oldest entries evicted first.
///
/// Positive answers live as long as their shortest TTL; NXDOMAIN and NODATA as long as RFC 2308 §5 says
/// (the SOA's TTL, at most its MINIMUM); answers without a usable lifetime are not kept.
public struct ResolverCache: Sendable {
    public let capacity: Int
    /// The longest any answer is kept, whatever its TTLs say.
    public static let maximumLifetime: UInt64 = 86_400_000
    var entries: [CacheKey: CachedAnswer] = [:]
    var order: [CacheKey] = []
    var orderHead = 0
    public private(set) var bytes = 0

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public var count: Int { self.entries.count }

    /// The entry for `key` while it is fresh, with TTLs aged to `now`.
    public func lookup(_ key: CacheKey, now: UInt64) -> CachedAnswer? {
        guard let entry = self.entries[key], entry.expires > now else { return nil }
        return entry.aged(at: now)
    }

    /// RFC 8767 §4: the TTL of an answer served past its expiry.
    public static let staleTTL: UInt32 = 30

    /// The entry for `key` once it has expired but is still within `window` of its expiry (or of the stale
    /// period it was already given), with every TTL `staleTTL`: what to answer when every upstream fails.
    public func stale(_ key: CacheKey, now: UInt64, window: UInt64) -> CachedAnswer? {
        guard window > 0, let entry = self.entries[key], entry.rcode != DNSRcode.servFail.rawValue,
            now < entry.staleUntil ?? (entry.expires &+ window)
        else { return nil }
        func refresh(_ records: [WireRecord]) -> [WireRecord] {
            records.map { record in
                var copy = record
                copy.ttl = ResolverCache.staleTTL
                return copy
            }
        }
        var copy = entry
        copy.answer = refresh(entry.answer)
        copy.authority = refresh(entry.authority)
        copy.additional = refresh(entry.additional)
        copy.stored = now
        copy.expires = now + UInt64(ResolverCache.staleTTL) * 1000
        copy.staleUntil = entry.staleUntil ?? (entry.expires &+ window)
        return copy
    }

    /// How long a response may be cached, in milliseconds; nil when it must not be.
    public static func lifetime(of message: DNSMessage) -> UInt64? {
        switch DNSRcode(rawValue: message.rcode) {
        case .noError where !message.answers.isEmpty:
            let ttl = message.answers.map(\.ttl).min() ?? 0
            return ttl == 0 ? nil : min(UInt64(ttl) * 1000, ResolverCache.maximumLifetime)
        case .noError, .nxDomain:
            // RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM).
            guard let soa = message.authority.first(where: { $0.type == RecordType.soa.rawValue }),
                soa.data.count >= 20
            else { return nil }
            let minimum = soa.data.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let ttl = min(soa.ttl, minimum)
            return ttl == 0 ? nil : min(UInt64(ttl) * 1000, ResolverCache.maximumLifetime)
        default:
            return nil
        }
    }

    /// Keeps `message` for `key` if it may be cached; evicts the oldest entries to stay within capacity.
    public mutating func store(_ key: CacheKey, message: DNSMessage, now: UInt64) {
        guard let lifetime = ResolverCache.lifetime(of: message) else { return }
        self.store(
            key,
            CachedAnswer(
                rcode: message.rcode, answer: message.answers, authority: message.authority,
                additional: message.additional, stored: now, expires: now + lifetime))
    }

    /// RFC 9520 §3.2: a resolution failure is remembered for at least a second, so a client retrying at once
    /// does not make the upstreams work again.
    public static let failureLifetime: UInt64 = 2000

    /// Remembers that `key` could not be resolved: SERVFAIL for `failureLifetime`.
    public mutating func storeFailure(_ key: CacheKey, now: UInt64) {
        self.store(
            key,
            CachedAnswer(
                rcode: DNSRcode.servFail.rawValue, answer: [], authority: [], additional: [], stored: now,
                expires: now + ResolverCache.failureLifetime))
    }

    /// Keeps a ready answer (a failure remembered briefly, say) until `answer.expires`.
    public mutating func store(_ key: CacheKey, _ answer: CachedAnswer) {
        guard answer.size <= self.capacity / 4 else { return }
        if let old = self.entries.updateValue(answer, forKey: key) {
            self.bytes -= old.size
        } else {
            self.order.append(key)
        }
        self.bytes += answer.size
        while self.bytes > self.capacity, self.orderHead < self.order.count {
            let victim = self.order[self.orderHead]
            self.orderHead += 1
            if let removed = self.entries.removeValue(forKey: victim) { self.bytes -= removed.size }
        }
        // Compact the FIFO once its dead head outgrows the live part.
        if self.orderHead > 1024 && self.orderHead * 2 > self.order.count {
            self.order.removeFirst(self.orderHead)
            self.orderHead = 0
            let live = Set(self.entries.keys)
            var seen: Set<CacheKey> = []
            self.order = self.order.filter { live.contains($0) && seen.insert($0).inserted }
        }
    }
}
