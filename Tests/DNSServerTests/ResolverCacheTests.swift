import DNSServer
import DNSWire
import Testing
import ZoneModel

/// The forwarding cache with an injected clock: lifetimes, ageing, negative caching, bounds.
@Suite struct ResolverCacheTests {
    func record(_ name: String, ttl: UInt32, type: RecordType = .a, data: [UInt8] = [192, 0, 2, 1]) throws -> WireRecord
    {
        WireRecord(owner: try DomainName(name), type: type.rawValue, rrClass: 1, ttl: ttl, data: data)
    }

    func soa(ttl: UInt32, minimum: UInt32) throws -> WireRecord {
        let names = try DomainName("ns.example.org.").wire + DomainName("hostmaster.example.org.").wire
        let numbers: [UInt32] = [1, 3600, 900, 1_209_600, minimum]
        let data =
            names
            + numbers.flatMap { [UInt8($0 >> 24), UInt8($0 >> 16 & 0xFF), UInt8($0 >> 8 & 0xFF), UInt8($0 & 0xFF)] }
        return WireRecord(
            owner: try DomainName("example.org."), type: RecordType.soa.rawValue, rrClass: 1, ttl: ttl, data: data)
    }

    func message(rcode: DNSRcode = .noError, answers: [WireRecord] = [], authority: [WireRecord] = []) -> DNSMessage {
        DNSMessage(
            id: 1, flags: 0x8180, question: nil, answers: answers, authority: authority, additional: [], edns: nil,
            rcode: rcode.rawValue)
    }

    @Test func positiveAnswersLiveAsLongAsTheirShortestTTLAndAge() throws {
        var cache = ResolverCache(capacity: 1 << 20)
        let key = CacheKey(name: try DomainName("www.example.org."), type: 1)
        cache.store(
            key,
            message: self.message(answers: [
                try record("www.example.org.", ttl: 120), try record("www.example.org.", ttl: 60),
            ]), now: 1000)
        #expect(cache.lookup(key, now: 1000)?.answer.map(\.ttl) == [120, 60])
        #expect(cache.lookup(key, now: 31_500)?.answer.map(\.ttl) == [90, 30], "TTLs count down by whole seconds")
        #expect(cache.lookup(key, now: 61_000) == nil, "gone when the shortest TTL runs out")
    }

    @Test func negativeAnswersFollowRFC2308() throws {
        var cache = ResolverCache(capacity: 1 << 20)
        let nx = CacheKey(name: try DomainName("missing.example.org."), type: 1)
        cache.store(nx, message: self.message(rcode: .nxDomain, authority: [try soa(ttl: 3600, minimum: 30)]), now: 0)
        #expect(cache.lookup(nx, now: 29_000)?.rcode == DNSRcode.nxDomain.rawValue)
        #expect(cache.lookup(nx, now: 30_000) == nil, "min(SOA TTL, MINIMUM) = 30 s")
        let bare = CacheKey(name: try DomainName("nosoa.example.org."), type: 1)
        cache.store(bare, message: self.message(rcode: .nxDomain), now: 0)
        #expect(cache.lookup(bare, now: 0) == nil, "no SOA, no negative caching")
    }

    @Test func failuresAndZeroTTLsAreNotCached() throws {
        var cache = ResolverCache(capacity: 1 << 20)
        let key = CacheKey(name: try DomainName("x.example.org."), type: 1)
        cache.store(key, message: self.message(rcode: .servFail), now: 0)
        cache.store(key, message: self.message(answers: [try record("x.example.org.", ttl: 0)]), now: 0)
        #expect(cache.lookup(key, now: 0) == nil)
    }

    @Test func theCacheStaysWithinItsByteBudget() throws {
        var cache = ResolverCache(capacity: 64 << 10)
        for index in 0..<2000 {
            let name = "host\(index).example.org."
            cache.store(
                CacheKey(name: try DomainName(name), type: 1),
                message: self.message(answers: [try record(name, ttl: 300)]), now: 0)
            #expect(cache.bytes <= 64 << 10)
        }
        #expect(cache.count > 100 && cache.count < 2000)
        // The newest survive, the oldest went first.
        #expect(cache.lookup(CacheKey(name: try DomainName("host1999.example.org."), type: 1), now: 0) != nil)
        #expect(cache.lookup(CacheKey(name: try DomainName("host0.example.org."), type: 1), now: 0) == nil)
    }
}

/// Response rate limiting per /24 and /56, with TC=1 slip.
@Suite struct RateLimiterTests {
    @Test func limitsPerPrefixAndSlips() throws {
        var limiter = RateLimiter(perSecond: 5, slip: 2)
        let client = try #require(IPAddress("203.0.113.7"))
        let neighbour = try #require(IPAddress("203.0.113.200"))
        let other = try #require(IPAddress("198.51.100.7"))
        let verdicts = (0..<9).map { _ in limiter.check(client, nowMilliseconds: 10_000) }
        #expect(verdicts == [.send, .send, .send, .send, .send, .drop, .slip, .drop, .slip])
        #expect(limiter.check(neighbour, nowMilliseconds: 10_500) != .send, "the same /24 shares the budget")
        #expect(limiter.check(other, nowMilliseconds: 10_500) == .send)
        #expect(limiter.check(client, nowMilliseconds: 11_000) == .send, "refilled a second later")
    }

    @Test func ipv6IsLimitedPer56() throws {
        var limiter = RateLimiter(perSecond: 1, slip: 0)
        let first = try #require(IPAddress("2001:db8:0:aa00::1"))
        let sameSlash56 = try #require(IPAddress("2001:db8:0:aaff::2"))
        let nextSlash56 = try #require(IPAddress("2001:db8:0:ab00::1"))
        #expect(limiter.check(first, nowMilliseconds: 0) == .send)
        #expect(limiter.check(sameSlash56, nowMilliseconds: 0) == .drop)
        #expect(limiter.check(nextSlash56, nowMilliseconds: 0) == .send)
    }

    @Test func zeroTurnsItOff() throws {
        var limiter = RateLimiter(perSecond: 0)
        let client = try #require(IPAddress("203.0.113.7"))
        #expect((0..<1000).allSatisfy { _ in limiter.check(client, nowMilliseconds: 0) == .send })
    }
}
