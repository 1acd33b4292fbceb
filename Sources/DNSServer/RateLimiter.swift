import ZoneModel

/// Response rate limiting for views without recursion (the ones the internet reaches): a token bucket per
/// client /24 (IPv4) or /56 (IPv6), so a spoofed victim cannot be flooded through us.
///
/// Every `slip`-th response over the limit goes out truncated (TC=1, no records) instead of being dropped,
/// so a real client caught in the limit retries over TCP. The table is fixed-size: a new prefix takes over
/// a colliding bucket, which bounds memory whatever the source addresses.
public struct RateLimiter: Sendable {
    /// What to do with one response.
    public enum Verdict: Equatable, Sendable {
        case send
        /// Over the limit: send it truncated.
        case slip
        /// Over the limit: send nothing.
        case drop
    }

    struct Bucket {
        var prefix: UInt64 = .max
        var tokens: Int32 = 0
        var second: UInt64 = 0
        var over: UInt32 = 0
    }

    public let perSecond: Int32
    public let slip: UInt32
    var buckets: [Bucket]
    let mask: Int

    /// `perSecond` responses per prefix and second (0 turns limiting off); `slip` 0 drops every excess one.
    public init(perSecond: Int, slip: Int = 2, buckets: Int = 4096) {
        self.perSecond = Int32(clamping: perSecond)
        self.slip = UInt32(clamping: slip)
        var size = 16
        while size < buckets { size <<= 1 }
        self.buckets = [Bucket](repeating: Bucket(), count: size)
        self.mask = size - 1
    }

    public var isEnabled: Bool { self.perSecond > 0 }

    /// Whether a response to a client of view `view` (-1: none) counts against the limit: only views without
    /// recursion are limited (the LAN's own resolver is never throttled).
    @inlinable
    public static func applies(view: Int, recursion: Bool) -> Bool { view < 0 || !recursion }

    /// Cuts a response in `out` of `length` bytes to its header and question with TC=1 (RFC 8906-friendly
    /// "slip": a real client retries over TCP, a spoofed victim gets nothing bigger than the query). Returns
    /// the new length; `questionEnd` is where the query's question section ended.
    public static func slip(_ out: UnsafeMutableRawBufferPointer, length: Int, questionEnd: Int) -> Int {
        guard length >= questionEnd, questionEnd >= 12 else { return length }
        out[2] |= 0x02
        for index in 6..<12 { out[index] = 0 }
        return questionEnd
    }

    /// The prefix a client is limited by: /24 for IPv4, /56 for IPv6.
    static func prefix(_ client: IPAddress) -> UInt64 {
        switch client.unmapped {
        case .v4(let v4): UInt64(v4.value >> 8) | 1 << 63
        case .v6(let v6): v6.high >> 8
        }
    }

    /// Counts one response to `client` at `nowMilliseconds`.
    public mutating func check(_ client: IPAddress, nowMilliseconds: UInt64) -> Verdict {
        guard self.perSecond > 0 else { return .send }
        let prefix = RateLimiter.prefix(client)
        var hash = prefix &* 0x9E37_79B9_7F4A_7C15
        hash ^= hash >> 29
        let index = Int(truncatingIfNeeded: hash) & self.mask
        let second = nowMilliseconds / 1000
        var bucket = self.buckets[index]
        if bucket.prefix != prefix {
            bucket = Bucket(prefix: prefix, tokens: self.perSecond, second: second, over: 0)
        } else if second > bucket.second {
            // Refill for the seconds that passed, up to one second's worth (no saved-up bursts).
            let refill = Int64(second - bucket.second) * Int64(self.perSecond)
            bucket.tokens = Int32(min(Int64(self.perSecond), Int64(bucket.tokens) + refill))
            bucket.second = second
        }
        let verdict: Verdict
        if bucket.tokens > 0 {
            bucket.tokens -= 1
            verdict = .send
        } else {
            bucket.over &+= 1
            verdict = self.slip > 0 && bucket.over % self.slip == 0 ? .slip : .drop
        }
        self.buckets[index] = bucket
        return verdict
    }
}
