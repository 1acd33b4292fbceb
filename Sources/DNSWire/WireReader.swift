import ZoneModel

/// A bounds-checked cursor over a received message; never traps on any input.
public struct WireReader: ~Copyable {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { self.bytes.count - self.offset }
    public var isAtEnd: Bool { self.offset >= self.bytes.count }

    /// Reads one octet and advances past it.
    @inlinable
    public mutating func readUInt8() throws(WireError) -> UInt8 {
        guard self.offset < self.bytes.count else { throw .truncated(offset: self.offset) }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    /// Reads a big-endian `UInt16` and advances past it.
    @inlinable
    public mutating func readUInt16() throws(WireError) -> UInt16 {
        guard self.offset + 2 <= self.bytes.count else { throw .truncated(offset: self.offset) }
        defer { self.offset += 2 }
        return UInt16(self.bytes[self.offset]) << 8 | UInt16(self.bytes[self.offset + 1])
    }

    /// Reads a big-endian `UInt32` and advances past it.
    @inlinable
    public mutating func readUInt32() throws(WireError) -> UInt32 {
        guard self.offset + 4 <= self.bytes.count else { throw .truncated(offset: self.offset) }
        defer { self.offset += 4 }
        return UInt32(self.bytes[self.offset]) << 24 | UInt32(self.bytes[self.offset + 1]) << 16
            | UInt32(self.bytes[self.offset + 2]) << 8 | UInt32(self.bytes[self.offset + 3])
    }

    /// Moves past `count` octets.
    public mutating func skip(_ count: Int) throws(WireError) {
        guard count >= 0, self.offset + count <= self.bytes.count else { throw .truncated(offset: self.offset) }
        self.offset += count
    }

    /// Reads `count` octets into an array.
    public mutating func readBytes(_ count: Int) throws(WireError) -> [UInt8] {
        guard count >= 0, self.offset + count <= self.bytes.count else { throw .truncated(offset: self.offset) }
        defer { self.offset += count }
        return Array(self.bytes[self.offset..<(self.offset + count)])
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4) and returns it lower-cased and expanded.
    ///
    /// Every pointer must point strictly before itself, so following pointers always moves backwards and
    /// cannot loop; the expanded name may not exceed 255 octets.
    public mutating func readName() throws(WireError) -> DomainName {
        var wire: [UInt8] = []
        wire.reserveCapacity(32)
        try self.readName(appendingTo: &wire)
        return DomainName(uncheckedWire: wire)
    }

    /// `readName()` into a caller's buffer (lower-cased, ending with the root label).
    public mutating func readName(appendingTo wire: inout [UInt8]) throws(WireError) {
        let bytes = self.bytes
        try self.walkName { position, length in
            wire.append(UInt8(length))
            guard length > 0 else { return }
            for index in (position + 1)...(position + length) {
                let byte = bytes[index]
                wire.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
            }
        }
    }

    /// Skips a name without expanding it, checking it the same way `readName` does.
    public mutating func skipName() throws(WireError) {
        try self.walkName { _, _ in }
    }

    /// Follows a name from the cursor, calling `label(offset, length)` for each label (the root last) and
    /// leaving the cursor after the name as written (after its first pointer, if any).
    ///
    /// Every pointer must point strictly before itself, so following pointers always moves backwards and
    /// cannot loop; the expanded name may not exceed 255 octets.
    mutating func walkName(_ label: (Int, Int) -> Void) throws(WireError) {
        var expanded = 0
        var position = self.offset
        var jumped = false
        while true {
            guard position < self.bytes.count else { throw .truncated(offset: position) }
            let length = Int(self.bytes[position])
            switch length & 0xC0 {
            case 0x00:
                expanded += length + 1
                guard expanded <= 255 else { throw .nameTooLong(offset: position) }
                guard position + 1 + length <= self.bytes.count else { throw .truncated(offset: position) }
                label(position, length)
                if length == 0 {
                    if !jumped { self.offset = position + 1 }
                    return
                }
                position += 1 + length
            case 0xC0:
                guard position + 2 <= self.bytes.count else { throw .truncated(offset: position) }
                let target = (length & 0x3F) << 8 | Int(self.bytes[position + 1])
                guard target < position else { throw .badPointer(offset: position) }
                if !jumped { self.offset = position + 2 }
                jumped = true
                position = target
            default:
                throw .badLabelType(offset: position)
            }
        }
    }
}
