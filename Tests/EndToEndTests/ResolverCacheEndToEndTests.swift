import DNSServer
import DNSWire
import Foundation
import Runtime
import TLS
import TestSupport
import Testing
import ZoneModel

/// Issue 18: the LAN resolver's cache hits are answered by the UDP threads from the shared wire cache. Through
/// a real Frontdoor forwarding to a real NSD: the first question goes upstream, the same question again is a
/// hit — byte for byte the miss's answer but for the client's ID and letters and the TTLs counting down.
@Suite(.serialized) struct ResolverCacheEndToEndTests {
    static let upstreamZone = """
        $ORIGIN example.org.
        $TTL 120
        @ SOA ns hostmaster 1 3600 900 1209600 60
        @ NS ns
        ns A 192.0.2.53
        www CNAME cdn.example.org.
        cdn A 198.51.100.80
        cdn AAAA 2001:db8::80
        """

    /// Frontdoor's own zone in these tests: every question here is for names outside it.
    static let home = [(name: "home.zone", text: "; apex: home.arpa.\n$TTL 60\n@ NS ns\nns A 192.0.2.1\n")]

    /// Sends `query` over UDP from 127.0.0.1 and returns the reply.
    static func exchange(_ query: [UInt8], port: UInt16) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = query.withUnsafeBytes { bytes in
            withLoopbackAddress(port: port) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 && errno == EINTR { continue }
            return got > 0 ? Array(buffer[0..<got]) : nil
        }
    }

    /// `message` with every TTL set to 0 (they are what may differ between a miss and a hit).
    static func withoutTTLs(_ bytes: [UInt8]) throws -> [UInt8] {
        let message = try DNSMessage.decode(bytes)
        var out = bytes
        let records = message.answers.count + message.authority.count + message.additional.count
        let questionEnd = 12 + (message.question?.name.wire.count ?? 0) + 4
        for offset in WireCache.ttlOffsets(bytes, bodyStart: questionEnd, records: records) ?? [] {
            for index in 0..<4 { out[questionEnd + offset + index] = 0 }
        }
        return out
    }

    @Test(.bug(id: "18")) func aHitIsTheMissesAnswerWithTheClientsIDAndLettersAndAgedTTLs() throws {
        guard let nsd = try NSDServer(zones: [("example.org.", Self.upstreamZone)]) else { return }
        defer { withExtendedLifetime(nsd) {} }
        let upstream = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: nsd.port)
        let server = try FrontdoorDNS(
            zones: Self.home, upstreams: [upstream],
            workers: 1)
        defer { withExtendedLifetime(server) {} }
        func ask(_ name: String, _ type: UInt16, id: UInt16, edns: Bool = true) throws -> [UInt8] {
            try exchange(name, type, id: id, edns: edns).reply
        }
        func exchange(_ name: String, _ type: UInt16, id: UInt16, edns: Bool) throws -> (query: [UInt8], reply: [UInt8])
        {
            var query = QueryBuilder.query(id: id, name: try DomainName(name), type: type, udpSize: edns ? 1232 : nil)
            // The client's own letters in the question.
            let letters = Array(name.utf8.filter { $0 != UInt8(ascii: ".") })
            var position = 12
            var next = 0
            while query[position] != 0 {
                let length = Int(query[position])
                for index in (position + 1)...(position + length) {
                    query[index] = letters[next]
                    next += 1
                }
                position += 1 + length
            }
            return (query, try #require(Self.exchange(query, port: server.port), "\(name) \(type)"))
        }
        let hitsBefore = server.service.statistics.batchCacheHits
        for (name, type, edns) in [
            ("www.example.org.", UInt16(1), true), ("cdn.example.org.", 28, false), ("gone.example.org.", 1, true),
            ("www.example.org.", 16, true),
        ] {
            let miss = try ask(name, type, id: 1, edns: edns)
            let (query, hit) = try exchange(name.uppercased(), type, id: 2, edns: edns)
            let missMessage = try DNSMessage.decode(miss)
            let hitMessage = try DNSMessage.decode(hit)
            let question = 12..<(12 + name.utf8.count + 1 + 4)
            #expect(hitMessage.id == 2 && hit[question] == query[question], "the client's ID and its own letters")
            // Same bytes but for the ID, the question's letters and the TTLs.
            var expected = try Self.withoutTTLs(miss)
            expected[0] = hit[0]
            expected[1] = hit[1]
            for index in 12..<(12 + name.utf8.count + 1) { expected[index] = hit[index] }
            #expect(try Self.withoutTTLs(hit) == expected, "\(name) \(type)")
            #expect(
                hitMessage.rcode == missMessage.rcode && !hitMessage.answers.isEmpty == !missMessage.answers.isEmpty)
        }
        #expect(
            server.service.statistics.batchCacheHits >= hitsBefore + 4, "answered by the UDP thread from the wire cache"
        )
        // TTLs count down between hits, never up.
        sleep(2)
        let later = try DNSMessage.decode(try ask("www.example.org.", 1, id: 3))
        #expect(later.answers.allSatisfy { $0.ttl <= 118 && $0.ttl >= 115 }, "\(later.answers.map(\.ttl))")
        let negative = try DNSMessage.decode(try ask("gone.example.org.", 1, id: 4))
        #expect(negative.rcode == 3 && negative.authority.first?.type == 6)
    }

    /// RFC 8767: with every upstream gone, an expired answer is served with TTL 30 (after the client has waited
    /// the serve-stale timer), kept for the next clients, counted; past the stale period it is SERVFAIL.
    @Test(.bug(id: "18")) func expiredAnswersAreServedWhileTheUpstreamIsDownForTheStalePeriodOnly() throws {
        let zone = Self.upstreamZone.replacingOccurrences(of: "$TTL 120", with: "$TTL 1")
        guard let nsd = try NSDServer(zones: [("example.org.", zone)]) else { return }
        let upstream = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: nsd.port)
        let server = try FrontdoorDNS(
            zones: Self.home, upstreams: [upstream],
            workers: 1
        ) { options in
            options.upstreamAttemptMilliseconds = 300
            options.upstreamDeadlineMilliseconds = 1200
            options.staleAfterMilliseconds = 500
            options.staleMilliseconds = 3000
        }
        defer { withExtendedLifetime(server) {} }
        func ask(_ name: String) throws -> DNSMessage {
            let query = QueryBuilder.query(id: 9, name: try DomainName(name), type: 1, udpSize: 1232)
            return try DNSMessage.decode(try #require(Self.exchange(query, port: server.port), "\(name)"))
        }
        #expect(try ask("cdn.example.org.").answers.first?.ttl == 1)
        #expect(try ask("www.example.org.").answers.count == 2)
        let cached = Date()
        usleep(1_500_000)
        Tool.stop(nsd.pid)
        // Expired, upstream gone: the stale answer, TTL 30.
        let stale = try ask("cdn.example.org.")
        #expect(stale.rcode == 0 && stale.answers.map(\.ttl) == [30], "\(stale.answers)")
        #expect(server.service.statistics.staleAnswers >= 1)
        // Kept for the next clients: from the UDP threads' cache.
        let hits = server.service.statistics.batchCacheHits
        #expect(try ask("cdn.example.org.").answers.first.map { $0.ttl <= 30 } == true)
        #expect(server.service.statistics.batchCacheHits == hits + 1)
        // Past the stale period (1 s TTL + 3 s) the other name, never served stale, is SERVFAIL.
        let wait = 4.6 - Date().timeIntervalSince(cached)
        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        #expect(try ask("www.example.org.").rcode == 2)
    }

    /// Prefetch: a hit in the last tenth of an entry's lifetime has it refreshed upstream once, so it never
    /// expires for the clients; more hits in that window ask nothing more.
    @Test(.bug(id: "18")) func aPopularEntryIsRefreshedOnceBeforeItExpires() throws {
        let zone = Self.upstreamZone.replacingOccurrences(of: "$TTL 120", with: "$TTL 10")
        guard let nsd = try NSDServer(zones: [("example.org.", zone)]) else { return }
        defer { withExtendedLifetime(nsd) {} }
        let upstream = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: nsd.port)
        let server = try FrontdoorDNS(
            zones: Self.home, upstreams: [upstream],
            workers: 1)
        defer { withExtendedLifetime(server) {} }
        func ask() throws -> DNSMessage {
            let query = QueryBuilder.query(id: 5, name: try DomainName("cdn.example.org."), type: 1, udpSize: 1232)
            return try DNSMessage.decode(try #require(Self.exchange(query, port: server.port)))
        }
        #expect(try ask().answers.first?.ttl == 10)
        let asked = server.service.statistics.upstreamQueries
        usleep(9_200_000)
        // In the last second: served from the cache, and refreshed upstream once however often it is asked.
        for _ in 0..<20 { #expect(try ask().rcode == 0) }
        // The refresh happens beside the answers: wait for its upstream query (up to 3 s), then for no more.
        for _ in 0..<60 where server.service.statistics.upstreamQueries == asked { usleep(50_000) }
        usleep(200_000)
        #expect(server.service.statistics.prefetches == 1)
        #expect(server.service.statistics.upstreamQueries == asked + 1)
        // After the original expiry it is still a hit, with the new lifetime counting down.
        usleep(1_000_000)
        let hits = server.service.statistics.batchCacheHits
        let later = try ask()
        #expect(later.answers.first.map { $0.ttl >= 8 && $0.ttl <= 10 } == true, "\(later.answers)")
        #expect(server.service.statistics.batchCacheHits == hits + 1)
    }

    /// DNS over TLS (RFC 7858): Unbound on loopback as the upstream with a certificate from a test CA. Answers
    /// come through it, twenty questions at once share one connection, and an upstream whose certificate does
    /// not carry the configured name is refused (SERVFAIL, counted against its health).
    @Test(.bug(id: "18")) func aDNSOverTLSUpstreamAnswersOnOneConnectionAndAWrongNameIsRefused() throws {
        guard let certificates = try TestCertificates() else { return }
        let (chain, key) = try certificates.issue("dot", names: ["dot.test"])
        let port = try freePort()
        var data = """
              tls-port: \(port)
              tls-service-key: "\(key)"
              tls-service-pem: "\(chain)"
              local-zone: "example.org." static
              local-data: "www.example.org. 60 IN A 198.51.100.80"

            """
        for index in 0..<20 { data += "  local-data: \"n\(index).example.org. 60 IN A 198.51.100.\(index + 1)\"\n" }
        guard let unbound = try UnboundServer(port: port, server: data) else { return }
        defer { withExtendedLifetime(unbound) {} }
        let upstream = SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: port)
        let client = try TLSClient(verify: true, caFile: certificates.authority)
        func frontdoor(name: String) throws -> FrontdoorDNS {
            try FrontdoorDNS(
                zones: Self.home,
                upstreams: [upstream], workers: 1
            ) { options in
                options.upstreamTLSNames = [name]
                options.tlsClient = client
                options.upstreamAttemptMilliseconds = 500
                options.upstreamDeadlineMilliseconds = 1500
            }
        }
        let server = try frontdoor(name: "dot.test")
        defer { withExtendedLifetime(server) {} }
        let query = QueryBuilder.query(id: 1, name: try DomainName("www.example.org."), type: 1, udpSize: 1232)
        let answer = try DNSMessage.decode(try #require(Self.exchange(query, port: server.port)))
        #expect(
            answer.rcode == 0 && answer.answers.map(\.data) == [[198, 51, 100, 80]],
            "\(Fixtures.textAt("\(unbound.directory)/unbound.log"))")
        // Twenty at once: all answered, over the one connection.
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for index in 0..<20 {
            let question = QueryBuilder.query(
                id: UInt16(index), name: try DomainName("n\(index).example.org."), type: 1, udpSize: 1232)
            _ = question.withUnsafeBytes { bytes in
                withLoopbackAddress(port: server.port) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
            }
        }
        var answered: Set<UInt16> = []
        var buffer = [UInt8](repeating: 0, count: 1500)
        while answered.count < 20 {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 && errno == EINTR { continue }
            guard got > 12, let reply = try? DNSMessage.decode(Array(buffer[0..<got])) else { break }
            if reply.rcode == 0 && reply.answers.first?.data.last == UInt8(reply.id + 1) { answered.insert(reply.id) }
        }
        #expect(answered.count == 20)
        if let ss = Tool.find("ss") {
            let connections = try Tool.run(ss, ["-Htn", "state", "established", "( dport = :\(port) )"])
            #expect(connections.stdout.split(separator: "\n").count == 1, "one connection: \(connections.stdout)")
        }
        // The same upstream under a name its certificate does not carry: refused, SERVFAIL.
        let wrong = try frontdoor(name: "wrong.test")
        defer { withExtendedLifetime(wrong) {} }
        let refused = try DNSMessage.decode(try #require(Self.exchange(query, port: wrong.port)))
        #expect(refused.rcode == 2)
        #expect(wrong.service.upstreamHealth.report.first.map { $0.failures > 0 } == true)

        // An upstream that accepts the connection and never speaks TLS: each question ends in SERVFAIL at the
        // deadline (the half-open connection is given up when an attempt on it times out), nothing hangs.
        let silentPort = try freePort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(listener) }
        #expect(withLoopbackAddress(port: silentPort) { bind(listener, $0, $1) } == 0 && listen(listener, 16) == 0)
        let mute = try FrontdoorDNS(
            zones: Self.home,
            upstreams: [SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: silentPort)], workers: 1
        ) { options in
            options.upstreamTLSNames = ["dot.test"]
            options.tlsClient = client
            options.upstreamAttemptMilliseconds = 300
            options.upstreamDeadlineMilliseconds = 1000
        }
        defer { withExtendedLifetime(mute) {} }
        for id in 0..<2 {
            let question = QueryBuilder.query(
                id: UInt16(id), name: try DomainName("q\(id).example.org."), type: 1, udpSize: 1232)
            #expect(try DNSMessage.decode(try #require(Self.exchange(question, port: mute.port))).rcode == 2)
        }
        #expect(mute.service.upstreamHealth.report.first.map { $0.failures >= 2 } == true)
    }
}
