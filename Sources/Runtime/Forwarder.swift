import CSys
import DNSServer
import DNSWire
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The LAN resolver of one worker: cache, identical questions coalesced, upstream queries over UDP (TCP
/// when truncated) from a fresh random port with a random ID, replies checked against the question,
/// retries across upstreams, SERVFAIL at the deadline.
final class Forwarder {
    /// One question being resolved upstream and the clients waiting for it.
    struct Pending {
        var key: CacheKey
        var waiters: [(Waiter, Endpoint)]
        var attempt = 0
        var fd: Int32 = -1
        var id: UInt16 = 0
        var attemptDeadline: UInt64 = 0
        let deadline: UInt64
        /// Over TCP: the framed query to send, and what has arrived so far.
        var tcp = false
        var tcpConnected = false
        var tcpInput: [UInt8] = []
        /// When the current attempt was sent (for upstream latency).
        var sentAt: UInt64 = 0
    }

    unowned let worker: DNSWorker
    var cache: ResolverCache
    /// One receive buffer for every upstream reply (a UDP datagram is at most 64 KiB).
    var receiveBuffer = [UInt8](repeating: 0, count: 65535)
    var pending: [CacheKey: Pending] = [:]
    var byFD: [Int32: CacheKey] = [:]
    /// Bounds on work in flight, so a flood of distinct names cannot exhaust the worker.
    static let maximumPending = 4096
    static let maximumWaiters = 256
    /// RFC 9520 §3.2: resolution failures are remembered for at least a second.
    static let failureLifetime: UInt64 = 2000

    init(worker: DNSWorker) {
        self.worker = worker
        self.cache = ResolverCache(capacity: worker.options.cacheBytesPerWorker)
    }

    var upstreams: [SocketAddress] { self.worker.options.upstreams }

    /// Answers from the cache, joins a question already in flight, or asks upstream.
    func resolve(_ waiter: Waiter, endpoint: Endpoint, now: UInt64) {
        let key = CacheKey(name: waiter.upstreamName, type: waiter.type)
        if let cached = self.cache.lookup(key, now: now) {
            self.worker.counters.add(DNSCounters.cacheHits)
            self.answer(waiter, endpoint, cached)
            return
        }
        self.worker.counters.add(DNSCounters.cacheMisses)
        if var existing = self.pending[key] {
            guard existing.waiters.count < Forwarder.maximumWaiters else {
                return self.answer(waiter, endpoint, nil)
            }
            existing.waiters.append((waiter, endpoint))
            self.pending[key] = existing
            return
        }
        guard self.pending.count < Forwarder.maximumPending, !self.upstreams.isEmpty else {
            return self.answer(waiter, endpoint, nil)
        }
        var entry = Pending(
            key: key, waiters: [(waiter, endpoint)], deadline: now + self.worker.options.upstreamDeadlineMilliseconds)
        entry.attempt = Int(randomUInt32() % UInt32(self.upstreams.count))
        self.pending[key] = entry
        self.send(key, now: now, first: true)
    }

    /// Sends (or re-sends) the question for `key` over UDP to the next upstream.
    func send(_ key: CacheKey, now: UInt64, first: Bool = false) {
        guard var entry = self.pending[key] else { return }
        self.closeSocket(&entry)
        if !first { entry.attempt += 1 }
        let upstream = self.upstreams[entry.attempt % self.upstreams.count]
        entry.id = UInt16(truncatingIfNeeded: randomUInt32())
        entry.tcp = false
        entry.attemptDeadline = min(entry.deadline, now + self.worker.options.upstreamAttemptMilliseconds)
        entry.sentAt = now
        do {
            let fd = try Sockets.udpClient(upstream)
            try self.worker.poller.add(fd, events: Poller.readable, token: DNSWorker.token(.upstream, fd))
            entry.fd = fd
            self.byFD[fd] = key
            let query = QueryBuilder.query(
                id: entry.id, name: key.name, type: key.type, recursionDesired: true, udpSize: 1232)
            _ = query.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        } catch {
            // The next expiry check moves on to another upstream.
            entry.attemptDeadline = now
        }
        self.pending[key] = entry
    }

    /// Re-asks over TCP after a truncated UDP reply (RFC 7766 §5).
    func sendTCP(_ key: CacheKey, now: UInt64) {
        guard var entry = self.pending[key] else { return }
        self.closeSocket(&entry)
        let upstream = self.upstreams[entry.attempt % self.upstreams.count]
        entry.tcp = true
        entry.tcpConnected = false
        entry.tcpInput = []
        entry.attemptDeadline = min(entry.deadline, now + self.worker.options.upstreamAttemptMilliseconds * 2)
        entry.sentAt = now
        do {
            let fd = try Sockets.tcpClient(upstream)
            try self.worker.poller.add(fd, events: Poller.writable, token: DNSWorker.token(.upstream, fd))
            entry.fd = fd
            self.byFD[fd] = key
        } catch {
            entry.attemptDeadline = now
        }
        self.pending[key] = entry
    }

    func closeSocket(_ entry: inout Pending) {
        guard entry.fd >= 0 else { return }
        self.worker.poller.remove(entry.fd)
        self.byFD[entry.fd] = nil
        Sockets.close(entry.fd)
        entry.fd = -1
    }

    /// Milliseconds until the earliest attempt deadline (for the poll timeout).
    func nextTimeout(now: UInt64) -> UInt64 {
        guard let earliest = self.pending.values.map(\.attemptDeadline).min() else { return 1000 }
        return earliest > now ? earliest - now : 0
    }

    /// Retries questions whose attempt timed out; fails those past their deadline.
    func expire(now: UInt64) {
        for (key, entry) in self.pending where entry.attemptDeadline <= now {
            if now >= entry.deadline || entry.attempt + 1 >= 2 * self.upstreams.count + 1 {
                self.finish(key, with: nil, now: now)
            } else {
                self.send(key, now: now)
            }
        }
    }

    /// An upstream socket is readable (or, for TCP, connected).
    func upstreamReady(_ fd: Int32, events: UInt32, now: UInt64) {
        guard let key = self.byFD[fd], var entry = self.pending[key] else {
            self.worker.poller.remove(fd)
            Sockets.close(fd)
            return
        }
        if entry.tcp {
            self.tcpReady(key, &entry, events: events, now: now)
            return
        }
        let count = self.receiveBuffer.withUnsafeMutableBytes {
            recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
        }
        guard count > 0 else {
            // ICMP unreachable and the like: try the next upstream now.
            if count < 0 && errno != EAGAIN { self.send(key, now: now) }
            return
        }
        self.received(key, Array(self.receiveBuffer[0..<count]), now: now)
    }

    func tcpReady(_ key: CacheKey, _ entry: inout Pending, events: UInt32, now: UInt64) {
        let fd = entry.fd
        if !entry.tcpConnected {
            guard csys_socket_error(fd) == 0 else { return self.send(key, now: now) }
            entry.tcpConnected = true
            let query = QueryBuilder.query(
                id: entry.id, name: key.name, type: key.type, recursionDesired: true, udpSize: nil)
            let framed = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
            let written = framed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == framed.count else { return self.send(key, now: now) }
            self.worker.poller.modify(fd, events: Poller.readable, token: DNSWorker.token(.upstream, fd))
            self.pending[key] = entry
            return
        }
        while true {
            let count = self.receiveBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                entry.tcpInput += self.receiveBuffer[0..<count]
                continue
            }
            if count == 0 || errno != EAGAIN {
                self.pending[key] = entry
                if entry.tcpInput.count < 2 { return self.send(key, now: now) }
            }
            break
        }
        self.pending[key] = entry
        guard entry.tcpInput.count >= 2 else { return }
        let length = Int(entry.tcpInput[0]) << 8 | Int(entry.tcpInput[1])
        guard entry.tcpInput.count >= 2 + length else { return }
        self.received(key, Array(entry.tcpInput[2..<(2 + length)]), now: now)
    }

    /// Checks a reply against the question; caches and answers, or moves on.
    func received(_ key: CacheKey, _ bytes: [UInt8], now: UInt64) {
        guard let entry = self.pending[key] else { return }
        guard let message = try? DNSMessage.decode(bytes), message.id == entry.id, message.flags & DNSHeader.qr != 0,
            let question = message.question, question.name == key.name, question.type == key.type, question.qclass == 1
        else {
            // Not our answer (or garbage): keep waiting for the real one until the attempt times out.
            return
        }
        if message.flags & DNSHeader.tc != 0 && !entry.tcp { return self.sendTCP(key, now: now) }
        self.worker.counters.add(DNSCounters.upstreamReplies)
        self.worker.counters.add(DNSCounters.upstreamMilliseconds, now &- entry.sentAt)
        switch DNSRcode(rawValue: message.rcode) {
        case .noError, .nxDomain:
            self.cache.store(key, message: message, now: now)
            let answer = CachedAnswer(
                rcode: message.rcode, answer: message.answers, authority: message.authority,
                additional: message.additional, stored: now, expires: now)
            self.finish(key, with: answer, now: now)
        default:
            // SERVFAIL, REFUSED and the like: another upstream may do better.
            self.send(key, now: now)
        }
    }

    /// Answers every waiter (SERVFAIL when `answer` is nil) and forgets the question.
    func finish(_ key: CacheKey, with answer: CachedAnswer?, now: UInt64) {
        guard var entry = self.pending.removeValue(forKey: key) else { return }
        self.closeSocket(&entry)
        if answer == nil {
            self.cache.store(
                key,
                CachedAnswer(
                    rcode: DNSRcode.servFail.rawValue, answer: [], authority: [], additional: [], stored: now,
                    expires: now + Forwarder.failureLifetime))
        }
        for (waiter, endpoint) in entry.waiters { self.answer(waiter, endpoint, answer) }
    }

    /// Sends a forwarded answer (SERVFAIL when nil) and counts it for the waiter's view.
    func answer(_ waiter: Waiter, _ endpoint: Endpoint, _ answer: CachedAnswer?) {
        let bytes = ForwardedAnswer.response(for: waiter, answer: answer)
        if bytes.count > 3 { self.worker.counters.response(view: waiter.view, rcode: bytes[3]) }
        self.worker.deliver(endpoint, bytes)
    }
}
