/// The first flight of a TLS client, read without terminating TLS: what SNI passthrough needs to route a
/// connection (RFC 8446 §4.1.2, RFC 6066 §3). Pure and bounded: the loop peeks at the bytes, asks, and
/// hands the untouched stream to the backend.
public enum ClientHello {
    /// What the bytes so far say.
    public enum Peek: Equatable, Sendable {
        /// The ClientHello is not complete yet.
        case needMore
        /// A ClientHello, and the host name it asks for (nil: it sent none).
        case serverName(String?)
        /// Not TLS at all (the first byte is not a handshake record): say a plain HTTP request.
        case notTLS
        /// A TLS record that is not a well-formed ClientHello, or one larger than `limit`.
        case malformed
    }

    /// The largest ClientHello read (post-quantum key shares make them 1–2 KB; 16 KB is generous).
    public static let limit = 16 * 1024

    /// Reads the ClientHello at the start of `bytes` (possibly spread over several records).
    public static func peek(_ bytes: UnsafeRawBufferPointer) -> Peek {
        guard let first = bytes.first else { return .needMore }
        guard first == 0x16 else { return .notTLS }
        // Reassemble the handshake message from as many handshake records as it spans.
        var message: [UInt8] = []
        var position = 0
        while true {
            guard bytes.count >= position + 5 else { return .needMore }
            guard bytes[position] == 0x16, bytes[position + 1] == 0x03 else { return .malformed }
            let length = Int(bytes[position + 3]) << 8 | Int(bytes[position + 4])
            guard length > 0, length <= 16_384 else { return .malformed }
            guard bytes.count >= position + 5 + length else {
                // Enough of the message may be here already to judge its length.
                if message.isEmpty && bytes.count >= position + 9 && bytes[position + 5] != 0x01 { return .malformed }
                return .needMore
            }
            message += bytes[(position + 5)..<(position + 5 + length)]
            position += 5 + length
            guard message.count >= 4 else { continue }
            guard message[0] == 0x01 else { return .malformed }
            let total = Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3])
            guard total <= ClientHello.limit else { return .malformed }
            if message.count >= 4 + total { return ClientHello.serverName(in: message[4..<(4 + total)]) }
        }
    }

    /// The host_name of the server_name extension of a ClientHello body.
    static func serverName(in body: ArraySlice<UInt8>) -> Peek {
        var reader = Reader(bytes: body)
        guard reader.skip(2 + 32),  // legacy_version, random
            let sessionLength = reader.byte(), reader.skip(Int(sessionLength)),
            let suites = reader.short(), suites >= 2, suites % 2 == 0, reader.skip(suites),
            let compression = reader.byte(), compression >= 1, reader.skip(Int(compression))
        else { return .malformed }
        // No extensions at all (an old client): no name.
        guard !reader.atEnd else { return .serverName(nil) }
        guard let extensionsLength = reader.short(), var extensions = reader.sub(extensionsLength), reader.atEnd
        else { return .malformed }
        var name: String?
        var seen = false
        while !extensions.atEnd {
            guard let type = extensions.short(), let length = extensions.short(), var data = extensions.sub(length)
            else { return .malformed }
            guard type == 0 else { continue }
            // One server_name extension at most (RFC 8446 §4.2).
            guard !seen else { return .malformed }
            seen = true
            guard let listLength = data.short(), var list = data.sub(listLength), data.atEnd else { return .malformed }
            while !list.atEnd {
                guard let nameType = list.byte(), let nameLength = list.short(), let bytes = list.take(nameLength)
                else { return .malformed }
                guard nameType == 0, name == nil else { continue }
                // A host name: letters, digits, '-', '_', '.'; anything else (NUL, spaces) is refused.
                guard !bytes.isEmpty, bytes.count <= 253, bytes.allSatisfy(ClientHello.isHostByte) else {
                    return .malformed
                }
                name = String(decoding: bytes, as: UTF8.self)
            }
        }
        return .serverName(name)
    }

    static func isHostByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F
    }

    /// Bounds-checked reads over a slice.
    struct Reader {
        var bytes: ArraySlice<UInt8>
        var atEnd: Bool { self.bytes.isEmpty }

        mutating func byte() -> UInt8? { self.bytes.popFirst() }

        mutating func short() -> Int? {
            guard self.bytes.count >= 2 else { return nil }
            let value = Int(self.bytes[self.bytes.startIndex]) << 8 | Int(self.bytes[self.bytes.startIndex + 1])
            self.bytes = self.bytes.dropFirst(2)
            return value
        }

        mutating func skip(_ count: Int) -> Bool { self.take(count) != nil }

        mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, self.bytes.count >= count else { return nil }
            defer { self.bytes = self.bytes.dropFirst(count) }
            return self.bytes.prefix(count)
        }

        mutating func sub(_ count: Int) -> Reader? { self.take(count).map { Reader(bytes: $0) } }
    }
}
