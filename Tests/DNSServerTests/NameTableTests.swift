import Testing

@testable import DNSServer

/// The name table answering reads: every name inserted is found with its own entry, and nothing else is.
@Suite struct NameTableTests {
    /// A wire name from labels.
    static func wire(_ labels: [String]) -> [UInt8] {
        labels.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    static func entry(_ number: Int) -> NameTable.Entry {
        NameTable.Entry(
            typesStart: Int32(number), typesCount: Int32(number % 7), otherType: -Int32(number), anyType: 3,
            nxDomain: Int32(number &* 31))
    }

    @Test func everyNameIsFoundWithItsEntryAndNearMissesAreNot() {
        // Names of every length from 1 to 255 octets (the hash reads eight at a time and then a tail), and
        // many that share all but one byte.
        var names: [[UInt8]] = []
        for length in 1...63 { names.append(Self.wire([String(repeating: "a", count: length)])) }
        for count in 1...3 {
            names.append(Self.wire(Array(repeating: String(repeating: "b", count: 63), count: count)))
        }
        names.append(
            Self.wire(
                Array(repeating: String(repeating: "c", count: 63), count: 3) + [String(repeating: "d", count: 61)]))
        #expect(names.last?.count == 255)
        for number in 0..<20_000 { names.append(Self.wire(["site\(number)", "example", "com"])) }
        var builder = NameTable.Builder(capacity: names.count)
        for (number, name) in names.enumerated() { builder.insert(name, entry: Self.entry(number)) }
        let table = builder.build()
        defer { table.deallocate() }
        #expect(table.count == names.count)
        for (number, name) in names.enumerated() {
            let found = name.withUnsafeBytes { table.find($0) }
            #expect(found.map { $0.typesStart == Int32(number) && $0.nxDomain == Int32(number &* 31) } == true)
        }
        // One byte changed, one byte more, one less: not there.
        for name in names.prefix(80) + names.suffix(200) {
            var changed = name
            changed[changed.count / 2] ^= 0x01
            var longer = name
            longer.insert(0x61, at: 1)
            let shorter = Array(name.dropLast())
            for candidate in [changed, longer, shorter] where !names.contains(candidate) {
                #expect(candidate.withUnsafeBytes { table.find($0) == nil })
            }
        }
        #expect(Self.wire(["nothing", "example", "com"]).withUnsafeBytes { table.find($0) == nil })
    }

    /// The UDP loop prefetches the record `prefetchRecord` names before it answers; it must be the key's own
    /// record also for the names that collided and sit further along than their first slot.
    @Test func recordPrefetchPointsAtTheKeysOwnRecord() {
        let names = (0..<30_000).map { Self.wire(["site\($0)", "example", "com"]) }
        var builder = NameTable.Builder(capacity: names.count)
        for (number, name) in names.enumerated() { builder.insert(name, entry: Self.entry(number)) }
        let table = builder.build()
        defer { table.deallocate() }
        let entrySize = MemoryLayout<NameTable.Entry>.size
        var displaced = 0
        for name in names {
            let hash = name.withUnsafeBytes { NameTable.hash($0) }
            if table.slots[Int(truncatingIfNeeded: hash) & table.mask] & NameTable.tagMask != hash & NameTable.tagMask {
                displaced += 1
            }
            var addresses: [UnsafeRawPointer] = []
            table.prefetchRecord(hash: hash) { addresses.append($0) }
            guard let record = addresses.first else {
                Issue.record("no record prefetched for \(name)")
                continue
            }
            let length = Int(record.load(fromByteOffset: entrySize, as: UInt8.self))
            let key = Array(UnsafeRawBufferPointer(start: record + entrySize + 1, count: length))
            #expect(key == name)
        }
        // About a fifth of the names are not in their first slot at this load; the test covers them.
        #expect(displaced > names.count / 10, "\(displaced) displaced names")
        // A name that is not there: nothing, or some other name's record, is prefetched; never a crash.
        let absent = Self.wire(["nothing", "example", "com"])
        table.prefetchRecord(hash: absent.withUnsafeBytes { NameTable.hash($0) }) { _ in }
    }

    @Test func hashesSpreadOverSlotsAndTags() {
        // Sequential site names must not pile into a few slots: count the distinct low and high 16 bits.
        var low = Set<UInt64>()
        var high = Set<UInt64>()
        for number in 0..<4096 {
            let hash = Self.wire(["site\(number)", "example", "com"]).withUnsafeBytes { NameTable.hash($0) }
            low.insert(hash & 0xFFFF)
            high.insert(hash >> 48)
        }
        // 4096 random draws from 65536 values give about 3970 distinct ones.
        #expect(low.count > 3900 && high.count > 3900)
    }
}
