import DNSServer
import DNSWire
import Foundation
import TestSupport
import Testing
import ZoneModel

/// The UDP threads' forwarding cache: a hit is byte for byte the slow path's answer to the same client (its ID,
/// its letters, its EDNS) but for TTLs counting down; what it must not serve it does not; readers racing a
/// writer never see a torn entry.
@Suite struct WireCacheTests {
    static func record(_ owner: String, _ type: UInt16, _ ttl: UInt32, _ data: [UInt8]) -> WireRecord {
        WireRecord(owner: try! DomainName(owner), type: type, rrClass: 1, ttl: ttl, data: data)
    }

    /// An upstream reply to `name A`: a CNAME leaving for another name and its address.
    static func reply(ttl: UInt32 = 300, address: UInt8 = 80) -> DNSMessage {
        let target = try! DomainName("cdn.example.net.")
        return DNSMessage(
            id: 1, flags: 0x8180, question: (try! DomainName("www.example.org."), 1, 1),
            answers: [
                Self.record("www.example.org.", 5, ttl, target.wire),
                Self.record("cdn.example.net.", 1, ttl / 2, [198, 51, 100, address]),
            ], authority: [], additional: [], edns: nil, rcode: 0)
    }

    /// The client's query as bytes, and what the fast path reads of it.
    static func ask(_ name: String, type: UInt16 = 1, id: UInt16 = 0x4242, udpSize: UInt16? = 1232)
        -> (packet: [UInt8], query: DNSQuery, key: [UInt8], hash: UInt64)
    {
        let packet = QueryBuilder.query(id: id, name: try! DomainName(name), type: type, udpSize: udpSize)
        // The question's own letters: QueryBuilder lower-cases, so put the client's case back.
        var bytes = packet
        var position = 12
        var letters = Array(name.utf8.filter { $0 != UInt8(ascii: ".") })[...]
        while bytes[position] != 0 {
            let length = Int(bytes[position])
            for index in (position + 1)...(position + length) { bytes[index] = letters.popFirst() ?? bytes[index] }
            position += 1 + length
        }
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { key.deallocate() }
        let parsed = bytes.withUnsafeBytes { QueryParser.parse($0, lowercasedName: key) }
        guard case .success(let query) = parsed else { fatalError("query does not parse") }
        let name = Array(key[0..<query.nameLength])
        return (bytes, query, name, name.withUnsafeBytes { NameTable.hash($0) })
    }

    static func hit(
        _ cache: WireCache, _ asked: (packet: [UInt8], query: DNSQuery, key: [UInt8], hash: UInt64), now: UInt64
    )
        -> [UInt8]?
    {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 65535, alignment: 8)
        defer { out.deallocate() }
        let length = asked.packet.withUnsafeBytes { packet in
            asked.key.withUnsafeBytes { key in
                var prefetch = false
                return cache.answer(
                    asked.query, packet: packet, key: key, hash: asked.hash, now: now, into: out, prefetch: &prefetch)
            }
        }
        return length > 0 ? Array(out[0..<length]) : nil
    }

    /// What the slow path sends the same client for the same upstream reply, aged to `now`.
    static func slowPath(
        _ asked: (packet: [UInt8], query: DNSQuery, key: [UInt8], hash: UInt64), _ reply: DNSMessage, stored: UInt64,
        now: UInt64
    )
        -> [UInt8]
    {
        let waiter = asked.packet.withUnsafeBytes {
            Waiter(query: asked.query, packet: $0, prefix: -1, view: 0, tables: WireCacheTests.emptyTables, tcp: false)
        }
        let answer = CachedAnswer(
            rcode: reply.rcode, answer: reply.answers, authority: reply.authority, additional: reply.additional,
            stored: stored, expires: stored + 1)
        return ForwardedAnswer.response(for: waiter, answer: answer.aged(at: now))
    }

    nonisolated(unsafe) static let emptyTables = DNSTables(
        snapshot: Fixtures.compile(zones: [("e.zone", "; apex: home.arpa.\n$TTL 60\n@ NS ns\nns A 192.0.2.1\n")])
            .snapshot!)

    @Test func aHitIsTheSlowPathsAnswerWithTheClientsIDLettersAndAgedTTLs() throws {
        let cache = WireCache(bytes: 1 << 20)
        let key = CacheKey(name: try DomainName("www.example.org."), type: 1)
        cache.store(Self.reply(), for: key, now: 10_000)
        for (name, id, size) in [("www.example.org.", UInt16(7), UInt16?(1232)), ("WwW.ExAmple.ORG.", 0xBEEF, nil)] {
            let asked = Self.ask(name, id: id, udpSize: size)
            for now in [UInt64(10_000), 10_999, 72_500] {
                let fast = try #require(Self.hit(cache, asked, now: now), "\(name) at \(now)")
                #expect(fast == Self.slowPath(asked, Self.reply(), stored: 10_000, now: now), "\(name) at \(now)")
            }
            let late = try DNSMessage.decode(try #require(Self.hit(cache, asked, now: 72_500)))
            #expect(late.id == id && late.answers.map(\.ttl) == [238, 88], "62 whole seconds later")
        }
        // Expired (the shortest TTL, 150 s), another type, another name: misses.
        #expect(Self.hit(cache, Self.ask("www.example.org."), now: 160_000) == nil)
        #expect(Self.hit(cache, Self.ask("www.example.org.", type: 28), now: 10_000) == nil)
        #expect(Self.hit(cache, Self.ask("ww.example.org."), now: 10_000) == nil)
        // A newer answer replaces it.
        cache.store(Self.reply(address: 81), for: key, now: 20_000)
        let fresh = try DNSMessage.decode(try #require(Self.hit(cache, Self.ask("www.example.org."), now: 20_000)))
        #expect(fresh.answers.last?.data == [198, 51, 100, 81])
    }

    @Test func negativeAnswersAreKeptForTheirSOATimeAndFailuresNever() throws {
        let cache = WireCache(bytes: 1 << 20)
        let soa = Self.record(
            "example.org.", 6, 3600,
            try DomainName("ns.example.org.").wire + (try DomainName("h.example.org.")).wire
                + [0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 7, 8, 0, 0, 0x2A, 0x30, 0, 0, 0, 60])
        let nxdomain = DNSMessage(
            id: 1, flags: 0x8183, question: nil, answers: [], authority: [soa], additional: [], edns: nil, rcode: 3)
        cache.store(nxdomain, for: CacheKey(name: try DomainName("gone.example.org."), type: 1), now: 0)
        let asked = Self.ask("gone.example.org.")
        let hit = try DNSMessage.decode(try #require(Self.hit(cache, asked, now: 59_000)))
        // Kept min(SOA TTL, MINIMUM) = 60 s (RFC 2308 §5); the SOA itself aged like any record, as the slow path.
        #expect(hit.rcode == 3 && hit.authority.first?.ttl == 3541)
        #expect(
            try #require(Self.hit(cache, asked, now: 59_000)) == Self.slowPath(asked, nxdomain, stored: 0, now: 59_000))
        #expect(Self.hit(cache, asked, now: 60_000) == nil)
        let servfail = DNSMessage(
            id: 1, flags: 0x8182, question: nil, answers: [], authority: [], additional: [], edns: nil, rcode: 2)
        cache.store(servfail, for: CacheKey(name: try DomainName("bad.example.org."), type: 1), now: 0)
        #expect(Self.hit(cache, Self.ask("bad.example.org."), now: 1) == nil)
    }

    @Test func whatDoesNotFitIsLeftToTheSlowPath() throws {
        let cache = WireCache(bytes: 1 << 20)
        // 12 TXT records of 100 bytes: more than a slot holds.
        let big = DNSMessage(
            id: 1, flags: 0x8180, question: nil,
            answers: (0..<12).map { _ in
                Self.record("big.example.org.", 16, 300, [99] + [UInt8](repeating: 65, count: 99))
            },
            authority: [], additional: [], edns: nil, rcode: 0)
        cache.store(big, for: CacheKey(name: try DomainName("big.example.org."), type: 16), now: 0)
        #expect(Self.hit(cache, Self.ask("big.example.org.", type: 16), now: 1) == nil)
        // 5 records of 100 bytes fit a slot but not a client without EDNS (512 bytes): the slow path truncates.
        let medium = DNSMessage(
            id: 1, flags: 0x8180, question: nil,
            answers: (0..<5).map { _ in
                Self.record("mid.example.org.", 16, 300, [99] + [UInt8](repeating: 66, count: 99))
            },
            authority: [], additional: [], edns: nil, rcode: 0)
        cache.store(medium, for: CacheKey(name: try DomainName("mid.example.org."), type: 16), now: 0)
        #expect(Self.hit(cache, Self.ask("mid.example.org.", type: 16, udpSize: nil), now: 1) == nil)
        #expect(Self.hit(cache, Self.ask("mid.example.org.", type: 16), now: 1) != nil)
    }

    @Test func aFullBucketLosesItsOldestEntry() throws {
        // 64 slots, 16 buckets of 4: store names until one bucket has had five; its first is the one gone.
        let cache = WireCache(bytes: 64 * WireCache.slotSize)
        var byBucket: [Int: [String]] = [:]
        var index = 0
        while byBucket.values.allSatisfy({ $0.count < 5 }) {
            let name = "n\(index).example.org."
            let bucket = Int(truncatingIfNeeded: Self.ask(name).hash) & 15
            byBucket[bucket, default: []].append(name)
            cache.store(Self.reply(), for: CacheKey(name: try DomainName(name), type: 1), now: UInt64(1000 + index))
            index += 1
        }
        let names = try #require(byBucket.values.first { $0.count == 5 })
        #expect(Self.hit(cache, Self.ask(names[0]), now: 5000) == nil, "the oldest of the bucket")
        for name in names.dropFirst() { #expect(Self.hit(cache, Self.ask(name), now: 5000) != nil, "\(name)") }
    }

    @Test func readersRacingWritersNeverSeeATornEntry() throws {
        let cache = WireCache(bytes: 64 * WireCache.slotSize)
        let key = CacheKey(name: try DomainName("www.example.org."), type: 1)
        let asked = Self.ask("www.example.org.")
        // Four versions that differ in length, counts, TTLs and data: a mix of two would match none.
        @Sendable func version(_ number: Int) -> DNSMessage {
            DNSMessage(
                id: 1, flags: 0x8180, question: nil,
                answers: (0...number).map {
                    Self.record("www.example.org.", 1, UInt32(100 * (number + 1)), [198, 51, UInt8(number), UInt8($0)])
                }, authority: [], additional: [], edns: nil, rcode: 0)
        }
        let valid = Set((0..<4).map { Self.slowPath(asked, version($0), stored: 0, now: 0) })
        cache.store(version(0), for: key, now: 0)
        let stop = Flag()
        let writers = (0..<2).map { writer in
            Thread {
                var round = 0
                while !stop.isSet {
                    cache.store(version((round + writer) % 4), for: key, now: 0)
                    round += 1
                }
            }
        }
        for thread in writers { thread.start() }
        var hits = 0
        var torn = 0
        for _ in 0..<200_000 {
            guard let answer = Self.hit(cache, asked, now: 0) else { continue }
            hits += 1
            if !valid.contains(answer) { torn += 1 }
        }
        stop.set()
        Thread.sleep(forTimeInterval: 0.05)
        #expect(torn == 0)
        #expect(hits > 1000, "readers mostly get through while writers write")
    }
}

/// A flag threads poll.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { self.lock.withLock { self.value } }
    func set() { self.lock.withLock { self.value = true } }
}
