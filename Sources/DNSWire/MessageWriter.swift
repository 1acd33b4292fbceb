import ZoneModel

/// Builds wire-format records with name compression (RFC 1035 §4.1.4); used off the hot path, to compile
/// answers once and to re-encode forwarded answers.
public struct MessageWriter {
    public private(set) var bytes: [UInt8] = []
    /// Where the first byte of `bytes` will sit in the final message, so pointers come out right.
    public let base: Int
    /// Lower-cased name suffixes already written, with their message offsets.
    var suffixes: [Suffix: Int] = [:]

    /// A name suffix as a slice of the name's wire bytes: no copy to look one up, and hashed in one call
    /// rather than byte by byte (a zone transfer writes one name per record).
    struct Suffix: Hashable {
        let bytes: ArraySlice<UInt8>

        func hash(into hasher: inout Hasher) {
            self.bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }

        static func == (lhs: Suffix, rhs: Suffix) -> Bool {
            lhs.bytes.count == rhs.bytes.count
                && lhs.bytes.withUnsafeBytes { a in rhs.bytes.withUnsafeBytes { b in a.elementsEqual(b) } }
        }
    }
    /// Positions (in `bytes`) of pointers that point at or after `base`: they move with the message.
    public private(set) var relocations: [Int] = []

    /// A writer for the part of a message that starts at `base`.
    public init(base: Int) {
        self.base = base
    }

    /// Makes `name`, written at message offset `offset`, available as a pointer target (with its suffixes).
    public mutating func remember(_ name: DomainName, at offset: Int) {
        var position = 0
        let wire = name.wire
        while position < wire.count, wire[position] != 0, offset + position < 0x4000 {
            let suffix = Suffix(bytes: wire[position...])
            if self.suffixes[suffix] == nil { self.suffixes[suffix] = offset + position }
            position += 1 + Int(wire[position])
        }
    }

    public mutating func writeUInt16(_ value: UInt16) {
        self.bytes.append(UInt8(value >> 8))
        self.bytes.append(UInt8(value & 0xFF))
    }

    public mutating func writeUInt32(_ value: UInt32) {
        self.writeUInt16(UInt16(value >> 16))
        self.writeUInt16(UInt16(value & 0xFFFF))
    }

    /// Writes `name`, ending in a pointer to the longest suffix written before when `compress` is set.
    public mutating func writeName(_ name: DomainName, compress: Bool = true) {
        let wire = name.wire
        var position = 0
        while position < wire.count, wire[position] != 0 {
            if compress, let target = self.suffixes[Suffix(bytes: wire[position...])] {
                if target >= self.base { self.relocations.append(self.bytes.count) }
                self.writeUInt16(0xC000 | UInt16(target))
                return
            }
            let here = self.base + self.bytes.count
            // Leave room below 0x4000 for pointers that later move by a question name's length.
            if here < 0x3F00 { self.suffixes[Suffix(bytes: wire[position...])] = here }
            let length = Int(wire[position])
            self.bytes += wire[position...(position + length)]
            position += 1 + length
        }
        self.bytes.append(0)
    }

    /// Writes one record; names inside NS, CNAME, PTR, MX and SOA data are compressed (RFC 3597 §4),
    /// SRV targets never (RFC 2782).
    public mutating func writeRecord(_ record: Record, ownerPointer: UInt16? = nil) {
        if let ownerPointer {
            self.writeUInt16(0xC000 | ownerPointer)
        } else {
            self.writeName(record.owner)
        }
        self.writeUInt16(record.type.rawValue)
        self.writeUInt16(1)
        self.writeUInt32(record.ttl)
        let lengthAt = self.bytes.count
        self.writeUInt16(0)
        switch record.data {
        case .name(let name):
            self.writeName(name)
        case .mx(let preference, let exchange):
            self.writeUInt16(preference)
            self.writeName(exchange)
        case .soa(let soa):
            self.writeName(soa.mname)
            self.writeName(soa.rname)
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { self.writeUInt32(value) }
        default:
            self.bytes += record.data.wire
        }
        let length = self.bytes.count - lengthAt - 2
        self.bytes[lengthAt] = UInt8(length >> 8)
        self.bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }

    /// Appends bytes as they are (a whole record already in wire form, uncompressed).
    public mutating func writeRaw(_ bytes: [UInt8]) {
        self.bytes += bytes
    }

    /// Writes a record whose data is already wire bytes (no compression inside).
    public mutating func writeRecord(owner: DomainName, type: UInt16, rrClass: UInt16, ttl: UInt32, data: [UInt8]) {
        self.writeName(owner)
        self.writeUInt16(type)
        self.writeUInt16(rrClass)
        self.writeUInt32(ttl)
        self.writeUInt16(UInt16(data.count))
        self.bytes += data
    }
}
