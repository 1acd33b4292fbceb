import CSys
import DNSServer
import DNSWire
import EventLoop
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// One UDP socket of one worker, served by a thread of its own: it sleeps in `recvmmsg` until queries
/// arrive, answers the batch and sends it with one `sendmmsg` — two system calls per batch, nothing else.
///
/// Questions for the resolver are sent upstream from here when the worker's epoll loop is idle (it owns the
/// forwarder and receives the answers), else handed to that loop.
final class UDPLoop: @unchecked Sendable {
    let fd: Int32
    unowned let worker: DNSWorker
    let batch: UDPBatch
    let scratch: UnsafeMutableRawBufferPointer
    let answered = Atomic<Int>(0)
    let counters = DNSCounters()
    var tables: DNSTables
    var generation: Int
    var limiter: RateLimiter
    /// Per datagram of a batch: the query read ahead (see `Responder.prepare`), and its lower-cased name.
    let prepared: UnsafeMutableBufferPointer<PreparedQuery>
    let keys: UnsafeMutableRawBufferPointer
    static let batchSize = 64
    static let keySize = 256
    /// How long a receive sleeps before looking at the stop flag.
    static let wakeEveryMilliseconds: Int32 = 200

    init?(fd: Int32, worker: DNSWorker) {
        guard let batch = UDPBatch(count: UDPLoop.batchSize, bufferSize: 4096) else { return nil }
        self.fd = fd
        self.worker = worker
        self.batch = batch
        self.scratch = .allocate(byteCount: 1024, alignment: 16)
        self.prepared = .allocate(capacity: UDPLoop.batchSize)
        self.prepared.initialize(repeating: PreparedQuery(parsed: .failure(.drop), view: -1, hash: 0))
        self.keys = .allocate(byteCount: UDPLoop.batchSize * UDPLoop.keySize, alignment: 64)
        self.generation = worker.store.generation
        self.tables = worker.store.tables()
        self.limiter = RateLimiter(perSecond: worker.options.rateLimit)
        UDPBatch.setReceiveTimeout(fd, milliseconds: UDPLoop.wakeEveryMilliseconds)
    }

    deinit {
        self.scratch.deallocate()
        self.prepared.deallocate()
        self.keys.deallocate()
    }

    func run() {
        while !self.worker.stopFlag.load(ordering: .acquiring) {
            let count = self.batch.receiveWaiting(self.fd)
            if count > 0 { self.serve(count) }
        }
    }

    /// Answers the `count` datagrams just received and sends the replies in one call.
    func serve(_ count: Int) {
        let current = self.worker.store.generation
        if current != self.generation {
            self.generation = current
            self.tables = self.worker.store.tables()
        }
        let tables = self.tables
        var now: UInt64 = 0
        let count = min(count, UDPLoop.batchSize)
        // Read every query of the batch and ask for its table slot, then for every record, then answer: the
        // cache misses of the lookups overlap instead of queueing (see Responder.prepare).
        for message in 0..<count {
            let packet = self.batch.input(message)
            guard packet.count > 0, let client = IPAddress(peer: self.batch.peer(message)) else {
                self.prepared[message] = PreparedQuery(parsed: .failure(.drop), view: -1, hash: 0)
                continue
            }
            let prepared = Responder.prepare(packet, from: client, tables: tables, key: self.key(message))
            self.prepared[message] = prepared
            if prepared.looksUp {
                tables.index(prepared.view).names.prefetchSlot(hash: prepared.hash) { csys_prefetch($0) }
            }
        }
        for message in 0..<count {
            let prepared = self.prepared[message]
            if prepared.looksUp {
                tables.index(prepared.view).names.prefetchRecord(hash: prepared.hash) { csys_prefetch($0) }
            }
        }
        for message in 0..<count {
            let packet = self.batch.input(message)
            let out = self.batch.output(message)
            let (action, query) = Responder.respond(
                self.prepared[message], packet: packet, key: UnsafeRawBufferPointer(self.key(message)), tcp: false,
                tables: tables, scratch: self.scratch, into: out)
            switch action {
            case .reply(var length, let view):
                if self.limiter.isEnabled
                    && RateLimiter.applies(view: view, recursion: view >= 0 && tables.index(view).recursion)
                {
                    if now == 0 { now = monotonicMilliseconds() }
                    guard let client = IPAddress(peer: self.batch.peer(message)) else { continue }
                    switch self.limiter.check(client, nowMilliseconds: now) {
                    case .send: break
                    case .drop: continue
                    case .slip:
                        if let query { length = RateLimiter.slip(out, length: length, questionEnd: query.questionEnd) }
                    }
                }
                self.counters.response(view: view, rcode: out[3])
                self.batch.reply(message, length: length)
            case .drop:
                continue
            case .transfer:
                // A secondary's signed SOA check (or a transfer asked over UDP): answered from its view, signed.
                guard let client = IPAddress(peer: self.batch.peer(message)) else { continue }
                let (reply, note) = ZoneTransfer.respond(
                    to: Array(packet), from: client, tcp: false, tables: tables, now: UInt64(time(nil)))
                self.worker.options.secondaries.record(note)
                guard case .message(let bytes) = reply, bytes.count <= Responder.advertisedUDPSize,
                    bytes.count <= out.count, let target = out.baseAddress
                else { continue }
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { target.copyMemory(from: base, byteCount: raw.count) }
                }
                self.batch.reply(message, length: bytes.count)
            case .forward(let view, let prefix):
                guard let query else { continue }
                if prefix < 0 {
                    // A name outside our zones: answered here from the shared cache when it holds it.
                    if now == 0 { now = monotonicMilliseconds() }
                    var prefetch = false
                    let length = self.worker.options.wireCache.answer(
                        query, packet: packet, key: UnsafeRawBufferPointer(self.key(message)),
                        hash: self.prepared[message].hash, now: now, into: out, prefetch: &prefetch)
                    if length > 0 {
                        self.counters.add(DNSCounters.cacheHits)
                        self.counters.add(DNSCounters.batchHits)
                        self.counters.response(view: view, rcode: out[3] & 0x0F)
                        self.batch.reply(message, length: length)
                        if prefetch {
                            // Refreshed by the resolver before it expires; nobody waits for it.
                            let waiter = Waiter(
                                query: query, packet: packet, prefix: -1, view: view, tables: tables, tcp: false)
                            _ = self.worker.handOff(waiter, .prefetch)
                        }
                        continue
                    }
                }
                let waiter = Waiter(
                    query: query, packet: packet, prefix: prefix, view: view, tables: tables, tcp: false)
                let endpoint = Endpoint.udp(
                    fd: self.fd, peer: self.batch.peer(message).pointee, local: self.batch.local(message))
                if self.worker.resolveNow(waiter, endpoint) { continue }
                if !self.worker.handOff(waiter, endpoint) {
                    // The resolver is swamped: SERVFAIL now rather than queue without bound.
                    let failure = ForwardedAnswer.response(for: waiter, answer: nil)
                    guard failure.count <= out.count, let target = out.baseAddress else { continue }
                    failure.withUnsafeBytes { bytes in
                        if let base = bytes.baseAddress { target.copyMemory(from: base, byteCount: bytes.count) }
                    }
                    self.batch.reply(message, length: failure.count)
                }
            }
        }
        self.answered.add(count, ordering: .relaxed)
        self.batch.flush(self.fd)
    }

    /// The name buffer of datagram `message` of the batch.
    @inline(__always)
    func key(_ message: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(
            rebasing: self.keys[(message * UDPLoop.keySize)..<((message + 1) * UDPLoop.keySize)])
    }
}
