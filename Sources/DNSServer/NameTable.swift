/// An open-addressing hash table from lower-cased wire names to node indices, probed without allocating.
///
/// Keys live back to back in one byte arena; slots hold entry indices. Built once per snapshot.
public struct NameTable: Sendable {
    @usableFromInline var arena: [UInt8] = []
    @usableFromInline var keyOffsets: [Int32] = []
    @usableFromInline var keyLengths: [UInt8] = []
    @usableFromInline var values: [Int32] = []
    @usableFromInline var slots: [Int32] = []
    @usableFromInline var mask = 0

    public init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        self.slots = [Int32](repeating: -1, count: size)
        self.mask = size - 1
        self.arena.reserveCapacity(capacity * 24)
    }

    public var count: Int { self.values.count }

    /// FNV-1a over the key bytes, folded; names are short, so simple is fast.
    @inlinable @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: hash ^ (hash >> 29))
    }

    /// Adds `key` → `value`; the caller adds each key once.
    public mutating func insert(_ key: [UInt8], value: Int32) {
        let entry = Int32(self.values.count)
        self.keyOffsets.append(Int32(self.arena.count))
        self.keyLengths.append(UInt8(key.count))
        self.arena += key
        self.values.append(value)
        var slot = key.withUnsafeBytes { NameTable.hash($0) } & self.mask
        while self.slots[slot] >= 0 { slot = (slot + 1) & self.mask }
        self.slots[slot] = entry
    }

    /// The value stored for `key` (a lower-cased wire name), or -1.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer) -> Int32 {
        var slot = NameTable.hash(key) & self.mask
        return self.arena.withUnsafeBytes { arena in
            guard let base = arena.baseAddress, let keyBase = key.baseAddress else { return -1 }
            while true {
                let entry = Int(self.slots[slot])
                if entry < 0 { return -1 }
                let length = Int(self.keyLengths[entry])
                if length == key.count && memcmpBytes(base + Int(self.keyOffsets[entry]), keyBase, length) {
                    return self.values[entry]
                }
                slot = (slot + 1) & self.mask
            }
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
