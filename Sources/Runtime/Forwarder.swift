import CSys
import DNSServer
import DNSWire
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The LAN resolver of one worker: cache, identical questions coalesced, and the sockets of each question's
/// `UpstreamExchange` (the pure type that decides which upstream to ask, when to retry and when to give up).
/// Every `if` here is about descriptors and timers; every DNS rule is in the exchange.
final class Forwarder {
    /// One question being resolved upstream and the clients waiting for it.
    struct Pending {
        var exchange: UpstreamExchange
        var waiters: [(Waiter, Endpoint)]
        var fd: Int32 = -1
        /// Over TCP: the framed query to send once connected, and what has arrived so far.
        var tcpQuery: [UInt8] = []
        var tcpInput: [UInt8] = []
        /// When the current attempt was sent (for upstream latency).
        var sentAt: UInt64 = 0
        /// The upstream the current attempt went to.
        var upstream = 0
        /// When the question first went upstream (for the serve-stale timer).
        var started: UInt64 = 0
        /// The DNS-over-TLS upstream the current attempt is queued on, if it is one.
        var tlsUpstream: Int?
    }

    unowned let worker: DNSWorker
    var cache: ResolverCache
    /// One receive buffer for every upstream reply (a UDP datagram is at most 64 KiB).
    var receiveBuffer = [UInt8](repeating: 0, count: 65535)
    var pending: [CacheKey: Pending] = [:]
    var byFD: [Int32: CacheKey] = [:]
    var lastStaleLog: UInt64 = 0
    /// Kernel randomness not yet used (see nextSeed).
    var entropy: [UInt64] = []
    /// DNS-over-TLS connections, by upstream index, and their descriptors.
    var tlsConnections: [Int: TLSUpstreamConnection] = [:]
    var tlsByFD: [Int32: Int] = [:]
    var lastTLSLog: [Int: UInt64] = [:]
    /// UDP sockets opened ahead, per upstream: each connected to it from a random port of its own and used for
    /// one question only (port randomisation as before), so a question leaves without waiting for socket()
    /// and connect() — a tenth of a miss's cost on this path. Filled after this loop's events are handled,
    /// never on a question's way; an upstream gets spares once it has been asked. A spare older than
    /// `spareLifetime` is closed unused: its source address was chosen when it connected, and the host's
    /// addresses may have changed since.
    var spares: [Int: [(fd: Int32, opened: UInt64)]] = [:]
    static let sparesPerUpstream = 2
    static let spareLifetime: UInt64 = 10_000
    /// Bounds on work in flight, so a flood of distinct names cannot exhaust the worker.
    static let maximumPending = 4096
    static let maximumWaiters = 256

    init(worker: DNSWorker) {
        self.worker = worker
        self.cache = ResolverCache(capacity: worker.options.cacheBytesPerWorker)
    }

    deinit {
        for ready in self.spares.values { for spare in ready { Sockets.close(spare.fd) } }
    }

    var upstreams: [SocketAddress] { self.worker.options.upstreams }

    /// Answers from the cache, joins a question already in flight, or asks upstream.
    func resolve(_ waiter: Waiter, endpoint: Endpoint, now: UInt64) {
        let key = CacheKey(name: waiter.upstreamName, type: waiter.type)
        if case .prefetch = endpoint { return self.prefetch(key, now: now) }
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
        guard self.pending.count < Forwarder.maximumPending else { return self.answer(waiter, endpoint, nil) }
        self.ask(key, for: [(waiter, endpoint)], now: now)
    }

    /// Starts a question's upstream exchange, the clients in `waiters` waiting for it.
    func ask(_ key: CacheKey, for waiters: [(Waiter, Endpoint)], now: UInt64) {
        let options = self.worker.options
        var exchange = UpstreamExchange(
            question: key, upstreamCount: self.upstreams.count, now: now,
            deadlineMilliseconds: options.upstreamDeadlineMilliseconds,
            attemptMilliseconds: options.upstreamAttemptMilliseconds,
            seed: self.nextSeed())
        let action = exchange.start(now: now)
        self.pending[key] = Pending(exchange: exchange, waiters: waiters, started: now)
        self.perform(action, for: key, now: now)
    }

    /// Asks upstream for `key` although the cache holds it (it is popular and about to expire), unless it is
    /// already out; nobody waits. At most half the pending table, so prefetching never crowds out clients.
    func prefetch(_ key: CacheKey, now: UInt64) {
        guard self.pending[key] == nil, self.pending.count < Forwarder.maximumPending / 2 else { return }
        self.worker.counters.add(DNSCounters.prefetches)
        self.ask(key, for: [], now: now)
    }

    /// A seed for an exchange's IDs and choices: kernel randomness (getrandom), fetched 4 KiB at a time rather
    /// than with two system calls per question.
    func nextSeed() -> UInt64 {
        if self.entropy.isEmpty {
            var fresh = [UInt64](repeating: 0, count: 512)
            let got = fresh.withUnsafeMutableBytes { csys_random_fill($0.baseAddress, $0.count) }
            guard got == 512 * 8 else { return UInt64(randomUInt32()) << 32 | UInt64(randomUInt32()) }
            self.entropy = fresh
        }
        return self.entropy.removeLast()
    }

    /// Feeds one event to a question's exchange and performs what it decides.
    func step(_ key: CacheKey, now: UInt64, _ event: (inout UpstreamExchange) -> UpstreamExchange.Action) {
        guard var entry = self.pending[key] else { return }
        let action = event(&entry.exchange)
        self.pending[key] = entry
        self.perform(action, for: key, now: now)
    }

    func perform(_ action: UpstreamExchange.Action, for key: CacheKey, now: UInt64) {
        switch action {
        case .wait:
            return
        case .send(let upstream, let transport, _):
            self.open(key, upstream: upstream, transport: transport, now: now)
        case .answer(let message):
            self.worker.counters.add(DNSCounters.upstreamReplies)
            if let entry = self.pending[key] {
                self.worker.counters.add(DNSCounters.upstreamMilliseconds, now &- entry.sentAt)
            }
            // Stored before the waiting clients are answered: a client that asks again as soon as it has its
            // answer must find it in the UDP threads' cache.
            self.cache.store(key, message: message, now: now)
            self.worker.options.wireCache.store(message, for: key, now: now)
            let answer = CachedAnswer(
                rcode: message.rcode, answer: message.answers, authority: message.authority,
                additional: message.additional, stored: now, expires: now)
            self.finish(key, with: answer, now: now)
        case .fail:
            self.finish(key, with: nil, now: now)
        }
    }

    /// Replaces the question's socket with a new one to `upstream` and sends (UDP) or connects (TCP).
    func open(_ key: CacheKey, upstream index: Int, transport: UpstreamExchange.Transport, now: UInt64) {
        guard var entry = self.pending[key] else { return }
        let upstream = self.upstreams[index]
        let query = entry.exchange.query
        self.closeSocket(&entry)
        self.worker.counters.add(DNSCounters.upstreamQueries)
        entry.sentAt = now
        entry.upstream = index
        entry.tcpInput = []
        if index < self.worker.options.upstreamTLSNames.count, self.worker.options.upstreamTLSNames[index] != nil {
            // DNS over TLS: queued on the upstream's one connection, whatever transport the exchange chose.
            entry.tlsUpstream = index
            self.pending[key] = entry
            return self.sendOverTLS(key, query: query, upstream: index, now: now)
        }
        entry.tlsUpstream = nil
        var failed = false
        do {
            switch transport {
            case .udp:
                let fd = try self.takeSpare(index, now: now) ?? Sockets.udpClient(upstream)
                entry.fd = fd
                try self.worker.poller.add(fd, events: Poller.readable, token: DNSWorker.token(.upstream, fd))
                let sent = query.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                failed = sent < 0
            case .tcp:
                let fd = try Sockets.tcpClient(upstream)
                entry.fd = fd
                try self.worker.poller.add(fd, events: Poller.writable, token: DNSWorker.token(.upstream, fd))
                entry.tcpQuery = query
            }
        } catch {
            failed = true
        }
        if entry.fd >= 0 { self.byFD[entry.fd] = key }
        self.pending[key] = entry
        if failed { self.attemptFailed(key, now: now) }
    }

    /// A spare socket to upstream `index`, if one is ready and young enough; from now on that upstream is
    /// kept supplied.
    func takeSpare(_ index: Int, now: UInt64) -> Int32? {
        var ready = self.spares[index] ?? []
        defer { self.spares[index] = ready }
        while let spare = ready.popLast() {
            if now &- spare.opened < Forwarder.spareLifetime { return spare.fd }
            Sockets.close(spare.fd)
        }
        return nil
    }

    /// Opens the spares the upstreams asked so far are missing and closes those too old to use.
    func refillSpares(now: UInt64) {
        for (index, ready) in self.spares {
            var kept: [(fd: Int32, opened: UInt64)] = []
            for spare in ready {
                if now &- spare.opened < Forwarder.spareLifetime { kept.append(spare) } else { Sockets.close(spare.fd) }
            }
            while kept.count < Forwarder.sparesPerUpstream,
                let fd = try? Sockets.udpClient(self.upstreams[index])
            {
                kept.append((fd, now))
            }
            self.spares[index] = kept
        }
    }

    /// The current attempt timed out or broke: the upstream's health hears of it, then the exchange.
    func attemptFailed(_ key: CacheKey, now: UInt64, timedOut: Bool = false) {
        if let entry = self.pending[key] { self.worker.options.upstreamHealth.failed(entry.upstream) }
        // A DNS-over-TLS connection still without a finished handshake when an attempt on it times out is
        // given up (its other questions fail over too), so the next attempt opens a fresh one instead of
        // queueing behind a server that accepted the connection and went silent.
        if timedOut, let index = self.pending[key]?.tlsUpstream, let connection = self.tlsConnections[index],
            !connection.established
        {
            connection.forget(key)
            self.failTLS(index, reason: "its TLS handshake did not finish in time", now: now)
        }
        if timedOut {
            self.step(key, now: now) { $0.timerFired(now: now) }
        } else {
            self.step(key, now: now) { $0.transportFailed(now: now) }
        }
    }

    /// A reply arrived from the current attempt's upstream.
    func replied(_ key: CacheKey, _ reply: [UInt8], now: UInt64) {
        if let entry = self.pending[key] { self.worker.options.upstreamHealth.answered(entry.upstream) }
        self.step(key, now: now) { $0.received(reply, now: now) }
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
        guard let earliest = self.pending.values.map(\.exchange.attemptDeadline).min() else { return 1000 }
        return earliest > now ? earliest - now : 0
    }

    /// Tells every question whose attempt timed out; clients waiting longer than the serve-stale timer get a
    /// stale answer when there is one (the question stays out, to refresh the cache when an upstream answers).
    func expire(now: UInt64) {
        for (key, entry) in self.pending where entry.exchange.attemptDeadline <= now {
            self.attemptFailed(key, now: now, timedOut: true)
        }
        self.closeIdleTLS(now: now)
        let options = self.worker.options
        for (key, entry) in self.pending
        where !entry.waiters.isEmpty && now >= entry.started + options.staleAfterMilliseconds {
            guard let stale = self.serveStale(key, now: now) else { continue }
            for (waiter, endpoint) in entry.waiters { self.answer(waiter, endpoint, stale) }
            self.pending[key]?.waiters = []
        }
    }

    /// The stale answer for `key` (RFC 8767), kept again for its 30 s so the next clients get it at once and
    /// the upstreams are asked again only then; counted, and logged at most once a minute.
    func serveStale(_ key: CacheKey, now: UInt64) -> CachedAnswer? {
        let options = self.worker.options
        guard let stale = self.cache.stale(key, now: now, window: options.staleMilliseconds) else { return nil }
        self.cache.store(key, stale)
        options.wireCache.store(
            DNSMessage(
                id: 0, flags: 0, question: nil, answers: stale.answer, authority: stale.authority,
                additional: stale.additional, edns: nil, rcode: stale.rcode), for: key, now: now)
        self.worker.counters.add(DNSCounters.staleAnswers)
        if now >= self.lastStaleLog + 60_000 {
            self.lastStaleLog = now
            Log.warning(
                "dns: no upstream answers for \(key.name) (type \(key.type)); serving its expired answer with TTL "
                    + "\(ResolverCache.staleTTL) (RFC 8767; at most one such line a minute)")
        }
        return stale
    }

    /// An upstream socket is readable (or, for TCP, connected).
    func upstreamReady(_ fd: Int32, events: UInt32, now: UInt64) {
        guard let key = self.byFD[fd], let entry = self.pending[key] else {
            self.worker.poller.remove(fd)
            Sockets.close(fd)
            return
        }
        if entry.exchange.transport == .tcp { return self.tcpReady(key, entry, now: now) }
        let count = self.receiveBuffer.withUnsafeMutableBytes {
            recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
        }
        if count > 0 {
            let reply = Array(self.receiveBuffer[0..<count])
            self.replied(key, reply, now: now)
        } else if count < 0 && errno != EAGAIN && errno != EINTR {
            // ICMP unreachable and the like, reported on the connected socket.
            self.attemptFailed(key, now: now)
        }
    }

    func tcpReady(_ key: CacheKey, _ entry: Pending, now: UInt64) {
        var entry = entry
        let fd = entry.fd
        if !entry.tcpQuery.isEmpty {
            guard csys_socket_error(fd) == 0 else { return self.attemptFailed(key, now: now) }
            let written = entry.tcpQuery.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard written == entry.tcpQuery.count else { return self.attemptFailed(key, now: now) }
            entry.tcpQuery = []
            self.pending[key] = entry
            self.worker.poller.modify(fd, events: Poller.readable, token: DNSWorker.token(.upstream, fd))
            return
        }
        var closed = false
        while true {
            let count = self.receiveBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                entry.tcpInput += self.receiveBuffer[0..<count]
                continue
            }
            closed = count == 0 || (errno != EAGAIN && errno != EINTR)
            break
        }
        self.pending[key] = entry
        if let frame = TCPFraming.message(in: entry.tcpInput) {
            let reply = Array(entry.tcpInput[frame])
            self.replied(key, reply, now: now)
        } else if closed {
            self.attemptFailed(key, now: now)
        }
    }

    /// Answers every waiter (SERVFAIL when `answer` is nil) and forgets the question.
    func finish(_ key: CacheKey, with answer: CachedAnswer?, now: UInt64) {
        guard var entry = self.pending.removeValue(forKey: key) else { return }
        self.closeSocket(&entry)
        if let index = entry.tlsUpstream { self.tlsConnections[index]?.forget(key) }
        var answer = answer
        if answer == nil {
            // Every upstream failed: an expired answer still within the stale period, else SERVFAIL.
            answer = self.serveStale(key, now: now)
            if answer == nil { self.cache.storeFailure(key, now: now) }
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
