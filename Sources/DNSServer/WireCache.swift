import DNSWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The forwarding cache the UDP threads answer from, one for the process: upstream answers kept as ready wire
/// bytes (the records after the question, with the offsets of their TTLs), so a hit costs what an
/// authoritative answer costs — a header, the client's own question, a copy, and a TTL patch per record —
/// and goes out in the same `sendmmsg` batch.
///
/// Readers take no lock: each slot is a seqlock. A writer (a worker's resolver, after an upstream answer)
/// takes the slot by turning its sequence odd with a compare-and-swap, writes, and makes it even again; a
/// reader copies the slot and keeps the copy only if the sequence was even and unchanged around it. Slots are
/// fixed memory, never freed while the cache lives, so a reader never touches freed memory. A writer that
/// finds the slot taken by another writer skips the store (it is a cache).
///
/// Bounded: `slotCount` slots of `slotSize` bytes (16 MiB by default), allocated once. A name hashes to a
/// bucket of `bucketSize` slots; a store takes the slot already holding that question, else an empty or
/// expired one, else the one stored longest ago (oldest first within the bucket). Answers too large for a slot
/// (rare: a slot holds 640 bytes of records) stay in the resolver's own cache and are answered there.
public final class WireCache: @unchecked Sendable {
    public static let slotSize = 1024
    static let bucketSize = 4
    /// Slot layout: the fields, then the TTL offsets, the name, the records.
    static let headerSize = 48
    static let maximumTTLs = 32
    static let nameOffset = headerSize + 2 * maximumTTLs
    static let bodyOffset = nameOffset + 256
    public static let maximumBody = slotSize - bodyOffset

    let slotCount: Int
    let sequences: UnsafeMutablePointer<Atomic<UInt32>>
    /// Per slot, the sequence of the entry a prefetch was last started for: one prefetch per stored answer.
    let prefetched: UnsafeMutablePointer<Atomic<UInt32>>
    let slots: UnsafeMutableRawPointer

    /// A cache of about `bytes` (rounded down to a power of two of slots, at least 64).
    public init(bytes: Int) {
        var count = 64
        while count * 2 * WireCache.slotSize <= bytes { count *= 2 }
        self.slotCount = count
        self.sequences = .allocate(capacity: count)
        for index in 0..<count { (self.sequences + index).initialize(to: Atomic(0)) }
        self.prefetched = .allocate(capacity: count)
        for index in 0..<count { (self.prefetched + index).initialize(to: Atomic(0)) }
        // calloc: pages the kernel zeroes when first touched, so the memory is resident only as slots fill.
        guard let slots = calloc(count, WireCache.slotSize) else { fatalError("cannot allocate the DNS cache") }
        self.slots = slots
    }

    deinit {
        self.sequences.deinitialize(count: self.slotCount)
        self.sequences.deallocate()
        self.prefetched.deinitialize(count: self.slotCount)
        self.prefetched.deallocate()
        free(self.slots)
    }

    public var byteSize: Int { self.slotCount * WireCache.slotSize }

    // MARK: Reading (UDP threads, no lock)

    /// Writes the response to `packet` (a query whose lower-cased name is `key`, hashed to `hash`, of `query`'s
    /// type) into `out` when a fresh entry holds it and it fits the client's size; its length, or 0 (miss).
    /// `prefetch` is set when this hit found the entry in the last tenth of its lifetime (and it lives 10 s
    /// or more) and no one has asked to refresh it yet: the caller should have it refreshed upstream
    /// (Unbound's `prefetch`), once per stored answer.
    public func answer(
        _ query: DNSQuery, packet: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, hash: UInt64, now: UInt64,
        into out: UnsafeMutableRawBufferPointer, prefetch: inout Bool
    ) -> Int {
        let limit = min(query.edns?.udpSize ?? 512, Responder.advertisedUDPSize)
        let bucket = Int(truncatingIfNeeded: hash) & (self.slotCount / WireCache.bucketSize - 1)
        for way in 0..<WireCache.bucketSize {
            let index = bucket * WireCache.bucketSize + way
            let length = self.read(
                index, query, packet: packet, key: key, hash: hash, now: now, limit: limit, into: out,
                prefetch: &prefetch)
            if length > 0 { return length }
        }
        return 0
    }

    func read(
        _ index: Int, _ query: DNSQuery, packet: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, hash: UInt64,
        now: UInt64, limit: Int, into out: UnsafeMutableRawBufferPointer, prefetch: inout Bool
    ) -> Int {
        let sequence = self.sequences[index].load(ordering: .acquiring)
        guard sequence & 1 == 0, sequence != 0 else { return 0 }
        let slot = self.slots + index * WireCache.slotSize
        guard slot.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == hash,
            slot.loadUnaligned(fromByteOffset: 32, as: UInt16.self) == query.type,
            slot.loadUnaligned(fromByteOffset: 24, as: UInt64.self) > now
        else { return 0 }
        let nameLength = Int(slot.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard nameLength == query.nameLength, nameLength <= key.count, let keyBytes = key.baseAddress,
            memcmp(slot + WireCache.nameOffset, keyBytes, nameLength) == 0
        else { return 0 }
        let bodyLength = Int(slot.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let questionLength = query.questionEnd - DNSHeader.size
        let total = DNSHeader.size + questionLength + bodyLength + (query.edns == nil ? 0 : Responder.optLength)
        guard bodyLength <= WireCache.maximumBody, total <= limit, total <= out.count, let base = out.baseAddress else {
            return 0
        }
        let stored = slot.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        let rcode = slot.loadUnaligned(fromByteOffset: 34, as: UInt16.self)
        let answers = slot.loadUnaligned(fromByteOffset: 36, as: UInt16.self)
        let authority = slot.loadUnaligned(fromByteOffset: 38, as: UInt16.self)
        let additional = slot.loadUnaligned(fromByteOffset: 40, as: UInt16.self)
        let ttlCount = min(Int(slot.loadUnaligned(fromByteOffset: 42, as: UInt16.self)), WireCache.maximumTTLs)
        // The records, then the TTL patches on the copy (never on the slot).
        let bodyStart = DNSHeader.size + questionLength
        (base + bodyStart).copyMemory(from: slot + WireCache.bodyOffset, byteCount: bodyLength)
        let elapsed = UInt32(truncatingIfNeeded: min(UInt64(UInt32.max), (now &- min(now, stored)) / 1000))
        for position in 0..<ttlCount {
            let offset = Int(slot.loadUnaligned(fromByteOffset: WireCache.headerSize + 2 * position, as: UInt16.self))
            guard offset + 4 <= bodyLength else { return 0 }
            let ttl = UInt32(bigEndian: (base + bodyStart).loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let aged = ttl > elapsed ? ttl - elapsed : 0
            (base + bodyStart).storeBytes(of: aged.bigEndian, toByteOffset: offset, as: UInt32.self)
        }
        // Valid only if no writer touched the slot while it was read.
        atomicMemoryFence(ordering: .acquiring)
        guard self.sequences[index].load(ordering: .relaxed) == sequence else { return 0 }
        let expires = slot.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        let lifetime = expires &- stored
        if lifetime >= 10_000 && now >= expires &- lifetime / 10 {
            let marked = self.prefetched[index].load(ordering: .relaxed)
            if marked != sequence {
                prefetch =
                    self.prefetched[index].compareExchange(
                        expected: marked, desired: sequence, ordering: .relaxed
                    ).exchanged
            }
        }
        // Header: the client's ID, QR RA and its RD CD, the rcode; the client's own question.
        let flags = DNSHeader.qr | DNSHeader.ra | (query.flags & (DNSHeader.rd | DNSHeader.cd)) | (rcode & 0xF)
        base.storeBytes(of: query.id.bigEndian, toByteOffset: 0, as: UInt16.self)
        base.storeBytes(of: flags.bigEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: UInt16(1).bigEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: answers.bigEndian, toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: authority.bigEndian, toByteOffset: 8, as: UInt16.self)
        let additionalCount = additional &+ (query.edns == nil ? 0 : 1)
        base.storeBytes(of: additionalCount.bigEndian, toByteOffset: 10, as: UInt16.self)
        if let source = packet.baseAddress {
            (base + DNSHeader.size).copyMemory(from: source + DNSHeader.size, byteCount: questionLength)
        }
        if let edns = query.edns {
            // Our OPT, as the slow path writes it.
            let opt = base + bodyStart + bodyLength
            let bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
                0, 0, 41, UInt8(Responder.advertisedUDPSize >> 8), UInt8(Responder.advertisedUDPSize & 0xFF),
                UInt8(truncatingIfNeeded: rcode >> 4), 0, edns.dnssecOK ? 0x80 : 0, 0, 0, 0
            )
            withUnsafeBytes(of: bytes) { raw in
                if let source = raw.baseAddress { opt.copyMemory(from: source, byteCount: Responder.optLength) }
            }
        }
        return total
    }

    // MARK: Writing (the resolvers)

    /// Keeps an upstream answer to `key`, encoded exactly as the slow path answers a client that asked `key`
    /// itself (so a hit and a miss differ only in ID, letter case and TTLs); answers that may not be cached
    /// (RFC 2308 rules, as `ResolverCache`) or do not fit a slot are left out.
    public func store(_ message: DNSMessage, for key: CacheKey, now: UInt64) {
        guard let lifetime = ResolverCache.lifetime(of: message) else { return }
        let name = key.name.wire
        let question = name + [UInt8(key.type >> 8), UInt8(key.type & 0xFF), 0, 1]
        let waiter = Waiter(
            id: 0, flags: 0, question: question, nameLength: name.count, edns: nil, prefix: nil, view: 0, tcp: false)
        let answer = CachedAnswer(
            rcode: message.rcode, answer: message.answers, authority: message.authority,
            additional: message.additional, stored: now, expires: now + lifetime)
        let bytes = ForwardedAnswer.encode(
            waiter, prefix: nil, answer: answer, rcode: message.rcode, withAdditional: true, truncated: false)
        let bodyStart = DNSHeader.size + question.count
        let counts = (
            UInt16(bytes[6]) << 8 | UInt16(bytes[7]), UInt16(bytes[8]) << 8 | UInt16(bytes[9]),
            UInt16(bytes[10]) << 8 | UInt16(bytes[11])
        )
        let records = Int(counts.0) + Int(counts.1) + Int(counts.2)
        guard bytes.count - bodyStart <= WireCache.maximumBody,
            let offsets = WireCache.ttlOffsets(bytes, bodyStart: bodyStart, records: records)
        else { return }
        self.store(
            name: name, type: key.type, rcode: message.rcode, counts: counts, body: Array(bytes[bodyStart...]),
            ttlOffsets: offsets, stored: now, expires: now + lifetime)
    }

    /// Keeps the records of a response for the lower-cased question name `name` (wire form) and `type`: `body`
    /// is everything after the question as a response to a question of that name writes it (its compression
    /// pointers assume the question at offset 12), with `rcode` and the section counts.
    public func store(
        name: [UInt8], type: UInt16, rcode: UInt16, counts: (UInt16, UInt16, UInt16), body: [UInt8],
        ttlOffsets: [Int], stored: UInt64, expires: UInt64
    ) {
        guard body.count <= WireCache.maximumBody, ttlOffsets.count <= WireCache.maximumTTLs, name.count <= 255,
            !name.isEmpty
        else { return }
        let hash = name.withUnsafeBytes { NameTable.hash($0) }
        let bucket = Int(truncatingIfNeeded: hash) & (self.slotCount / WireCache.bucketSize - 1)
        // The slot holding this question, else an empty or expired one, else the oldest.
        var chosen = -1
        var oldest = UInt64.max
        for way in 0..<WireCache.bucketSize {
            let index = bucket * WireCache.bucketSize + way
            let slot = self.slots + index * WireCache.slotSize
            let sequence = self.sequences[index].load(ordering: .acquiring)
            if sequence == 0 {
                if chosen < 0 || oldest > 0 { (chosen, oldest) = (index, 0) }
                continue
            }
            let same =
                slot.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == hash
                && slot.loadUnaligned(fromByteOffset: 32, as: UInt16.self) == type
            if same {
                chosen = index
                break
            }
            let expiry = slot.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            let age = expiry <= stored ? 0 : slot.loadUnaligned(fromByteOffset: 16, as: UInt64.self) &+ 1
            if age < oldest { (chosen, oldest) = (index, age) }
        }
        guard chosen >= 0 else { return }
        let current = self.sequences[chosen].load(ordering: .relaxed)
        guard current & 1 == 0,
            self.sequences[chosen].compareExchange(expected: current, desired: current &+ 1, ordering: .acquiring)
                .exchanged
        else { return }
        let slot = self.slots + chosen * WireCache.slotSize
        slot.storeBytes(of: UInt16(body.count), toByteOffset: 4, as: UInt16.self)
        slot.storeBytes(of: UInt16(name.count), toByteOffset: 6, as: UInt16.self)
        slot.storeBytes(of: hash, toByteOffset: 8, as: UInt64.self)
        slot.storeBytes(of: stored, toByteOffset: 16, as: UInt64.self)
        slot.storeBytes(of: expires, toByteOffset: 24, as: UInt64.self)
        slot.storeBytes(of: type, toByteOffset: 32, as: UInt16.self)
        slot.storeBytes(of: rcode, toByteOffset: 34, as: UInt16.self)
        slot.storeBytes(of: counts.0, toByteOffset: 36, as: UInt16.self)
        slot.storeBytes(of: counts.1, toByteOffset: 38, as: UInt16.self)
        slot.storeBytes(of: counts.2, toByteOffset: 40, as: UInt16.self)
        slot.storeBytes(of: UInt16(ttlOffsets.count), toByteOffset: 42, as: UInt16.self)
        for (position, offset) in ttlOffsets.enumerated() {
            slot.storeBytes(of: UInt16(offset), toByteOffset: WireCache.headerSize + 2 * position, as: UInt16.self)
        }
        name.withUnsafeBytes { raw in
            if let source = raw.baseAddress {
                (slot + WireCache.nameOffset).copyMemory(from: source, byteCount: raw.count)
            }
        }
        body.withUnsafeBytes { raw in
            if let source = raw.baseAddress {
                (slot + WireCache.bodyOffset).copyMemory(from: source, byteCount: raw.count)
            }
        }
        // Even again (and never 0, which means empty): readers may use it.
        self.sequences[chosen].store(current &+ 2 == 0 ? 2 : current &+ 2, ordering: .releasing)
    }

    /// The TTL offsets, counted from `bodyStart`, of the `records` records of `message` that start there (a
    /// response's bytes after its question); nil when they do not walk cleanly or a slot keeps fewer.
    public static func ttlOffsets(_ message: [UInt8], bodyStart: Int, records: Int) -> [Int]? {
        guard records <= WireCache.maximumTTLs else { return nil }
        return message.withUnsafeBytes { raw -> [Int]? in
            var reader = WireReader(raw, offset: bodyStart)
            var offsets: [Int] = []
            do throws(WireError) {
                for _ in 0..<records {
                    try reader.skipName()
                    offsets.append(reader.offset + 4 - bodyStart)
                    try reader.skip(8)
                    try reader.skip(Int(try reader.readUInt16()))
                }
            } catch {
                return nil
            }
            return offsets
        }
    }
}
