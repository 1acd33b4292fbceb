/// An open-addressing hash table from lower-cased wire names to their nodes, probed without allocating.
///
/// Built once per snapshot. With tens of thousands of names the table is far larger than the caches, so a
/// lookup is laid out to cost as few dependent memory reads as possible: a slot holds 32 bits of the key's
/// hash beside the offset of its record, and a record holds the node's entry, the key's length and the key
/// side by side. A hit reads one slot and one record; a miss mostly reads one slot (a different hash is
/// rejected without touching the record). Measured with 50,000 sites, the lookup and the template choice
/// went from 6.5% to 3% of the server's time (most of the rest is the kernel's).
public struct NameTable: BitwiseCopyable, @unchecked Sendable {
    public typealias Entry = ViewAnswers.NodeEntry
    /// Per name: its entry, the key's length (one byte), the key.
    @usableFromInline let records: UnsafeMutableRawPointer
    /// 0 for an empty slot, else the high 32 bits of the hash above (record offset + 1).
    @usableFromInline let slots: UnsafeMutablePointer<UInt64>
    @usableFromInline let mask: Int
    public let count: Int

    /// Collects the names, then lays the table out in memory of its own (`build`). The table is raw memory,
    /// not arrays: answering a query then reads it without retaining or releasing anything. Its owner
    /// (`ViewAnswers`) frees it.
    public struct Builder {
        var records: [UInt8] = []
        var slots: [UInt64]
        let mask: Int
        var count = 0

        public init(capacity: Int) {
            var size = 16
            while size < capacity * 2 { size <<= 1 }
            self.slots = [UInt64](repeating: 0, count: size)
            self.mask = size - 1
            self.records.reserveCapacity(capacity * 28)
        }

        /// Adds `key` → `entry`; the caller adds each key once.
        public mutating func insert(_ key: [UInt8], entry: Entry) {
            precondition(key.count <= 255, "a wire name is at most 255 octets")
            let offset = self.records.count
            precondition(offset < Int(UInt32.max), "name table larger than 4 GiB")
            withUnsafeBytes(of: entry) { self.records += $0 }
            self.records.append(UInt8(key.count))
            self.records += key
            self.count += 1
            let hash = key.withUnsafeBytes { NameTable.hash($0) }
            var slot = Int(truncatingIfNeeded: hash) & self.mask
            while self.slots[slot] != 0 { slot = (slot + 1) & self.mask }
            self.slots[slot] = (hash & NameTable.tagMask) | UInt64(offset + 1)
        }

        /// The table, in newly allocated memory the caller frees with `deallocate()`.
        public func build() -> NameTable {
            let records = UnsafeMutableRawPointer.allocate(byteCount: max(1, self.records.count), alignment: 64)
            self.records.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { records.copyMemory(from: base, byteCount: bytes.count) }
            }
            let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: self.slots.count)
            slots.initialize(from: self.slots, count: self.slots.count)
            return NameTable(records: records, slots: slots, mask: self.mask, count: self.count)
        }
    }

    func deallocate() {
        self.records.deallocate()
        self.slots.deallocate()
    }

    /// The part of a key's hash its slot keeps (the slot number comes from the low bits).
    @inlinable @inline(__always)
    static var tagMask: UInt64 { 0xFFFF_FFFF_0000_0000 }

    /// From `slot` on, the first slot holding `tag`, or the empty slot that ends the probe (`value` 0).
    @inlinable @inline(__always)
    func probe(from slot: Int, tag: UInt64) -> (slot: Int, value: UInt64) {
        var slot = slot
        while true {
            let value = self.slots[slot]
            if value == 0 || value & NameTable.tagMask == tag { return (slot, value) }
            slot = (slot + 1) & self.mask
        }
    }

    /// The record a (non-empty) slot value points at.
    @inlinable @inline(__always)
    func record(_ slotValue: UInt64) -> UnsafeRawPointer {
        UnsafeRawPointer(self.records + Int(slotValue & 0xFFFF_FFFF) - 1)
    }

    /// The key's hash, eight bytes at a time (names are short: a byte-wise hash spent more time in its chain
    /// of multiplies than the table in its cache misses). The slot comes from the low bits, the tag from the
    /// high ones; the final mix (MurmurHash3's) spreads every input bit over both.
    @inlinable @inline(__always)
    public static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = key.baseAddress else { return 0 }
        let count = key.count
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var hash = UInt64(truncatingIfNeeded: count) &* multiplier
        var index = 0
        while index + 8 <= count {
            hash = (hash ^ base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) &* multiplier
            hash ^= hash >> 32
            index += 8
        }
        if index < count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while index < count {
                tail |= UInt64(base.load(fromByteOffset: index, as: UInt8.self)) << shift
                shift += 8
                index += 1
            }
            hash = (hash ^ tail) &* multiplier
        }
        hash = (hash ^ (hash >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        hash = (hash ^ (hash >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return hash ^ (hash >> 33)
    }

    /// Hands `prefetch` the address of the slot a key with hash `hash` starts at (a cache hint: see
    /// `Responder.prepare`).
    @inlinable @inline(__always)
    public func prefetchSlot(hash: UInt64, _ prefetch: (UnsafeRawPointer) -> Void) {
        prefetch(self.slots + (Int(truncatingIfNeeded: hash) & self.mask))
    }

    /// Hands `prefetch` the addresses of the record a key with hash `hash` would be found in: the first slot
    /// from its start with the key's tag (at this table's load about a fifth of the names are not in their first
    /// slot), none when an empty slot comes first.
    @inlinable @inline(__always)
    public func prefetchRecord(hash: UInt64, _ prefetch: (UnsafeRawPointer) -> Void) {
        let found = self.probe(from: Int(truncatingIfNeeded: hash) & self.mask, tag: hash & NameTable.tagMask)
        guard found.value != 0 else { return }
        // A record (entry, length, key: some 45 bytes) often straddles two cache lines: ask for both.
        let record = self.record(found.value)
        prefetch(record)
        prefetch(record + 48)
    }

    /// The entry stored for `key` (a lower-cased wire name), or nil.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer) -> Entry? { self.find(key, hash: NameTable.hash(key)) }

    /// The entry stored for `key`, whose `NameTable.hash` is `hash`, or nil.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Entry? {
        guard let keyBase = key.baseAddress else { return nil }
        let tag = hash & NameTable.tagMask
        let entrySize = MemoryLayout<Entry>.size
        var slot = Int(truncatingIfNeeded: hash) & self.mask
        while true {
            let found = self.probe(from: slot, tag: tag)
            if found.value == 0 { return nil }
            let record = self.record(found.value)
            if Int(record.load(fromByteOffset: entrySize, as: UInt8.self)) == key.count
                && memcmpBytes(record + entrySize + 1, keyBase, key.count)
            {
                return record.loadUnaligned(as: Entry.self)
            }
            slot = (found.slot + 1) & self.mask
        }
    }
}

/// Byte-wise equality of two regions (the optimiser turns this into a tight loop).
@inlinable @inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var index = 0
    while index + 8 <= count {
        if a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            != b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        {
            return false
        }
        index += 8
    }
    while index < count {
        if a.load(fromByteOffset: index, as: UInt8.self) != b.load(fromByteOffset: index, as: UInt8.self) {
            return false
        }
        index += 1
    }
    return true
}
