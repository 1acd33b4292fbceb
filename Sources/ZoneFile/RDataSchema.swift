import ZoneModel

/// Record types whose data is a fixed sequence of fields (DS, DNSKEY, TLSA, SSHFP, NAPTR, ...): parsed from
/// their presentation format as BIND and NSD write it, kept as wire bytes (`RData.generic`), and printed back
/// the same way. A type here needs no structure of its own in the model: nothing in Frontdoor looks inside it.
enum RDataSchema {
    enum Field {
        case u8, u16
        /// A domain name, uncompressed on the wire (RFC 3597 §4).
        case name
        /// A length-prefixed character-string.
        case characterString
        /// Everything left, as hex digits (spaces allowed between them).
        case hexRest
        /// Everything left, as base64 (spaces allowed).
        case base64Rest
        /// URI's target: one quoted string, its bytes without a length prefix (RFC 7553 §4.5).
        case quotedRest
        /// CERT's certificate type: a number or its mnemonic (RFC 4398 §2.1), printed as the number.
        case certificateType
    }

    /// RFC 4398 §2.1's certificate type mnemonics.
    static let certificateTypes: [String: UInt16] = [
        "PKIX": 1, "SPKI": 2, "PGP": 3, "IPKIX": 4, "ISPKI": 5, "IPGP": 6, "ACPKIX": 7, "IACPKIX": 8, "URI": 253,
        "OID": 254,
    ]

    static let fields: [UInt16: [Field]] = [
        13: [.characterString, .characterString],  // HINFO (RFC 1035 §3.3.2)
        17: [.name, .name],  // RP (RFC 1183 §2.2)
        35: [.u16, .u16, .characterString, .characterString, .characterString, .name],  // NAPTR (RFC 3403)
        37: [.certificateType, .u16, .u8, .base64Rest],  // CERT (RFC 4398)
        43: [.u16, .u8, .u8, .hexRest],  // DS (RFC 4034 §5.3)
        44: [.u8, .u8, .hexRest],  // SSHFP (RFC 4255)
        48: [.u16, .u8, .u8, .base64Rest],  // DNSKEY (RFC 4034 §2.2)
        52: [.u8, .u8, .u8, .hexRest],  // TLSA (RFC 6698 §2.2)
        53: [.u8, .u8, .u8, .hexRest],  // SMIMEA (RFC 8162)
        59: [.u16, .u8, .u8, .hexRest],  // CDS (RFC 7344)
        60: [.u16, .u8, .u8, .base64Rest],  // CDNSKEY (RFC 7344)
        61: [.base64Rest],  // OPENPGPKEY (RFC 7929)
        256: [.u16, .u16, .quotedRest],  // URI (RFC 7553)
    ]

    /// Presentation format of `bytes` as `type`'s fields; nil when they do not decode (then `\#` is printed).
    static func presentation(_ type: RecordType, _ bytes: [UInt8]) -> String? {
        switch type.rawValue {
        case ServiceBinding.svcb, ServiceBinding.https: return ServiceBinding.presentation(bytes)
        case Location.type: return Location.presentation(bytes)
        default: break
        }
        guard let fields = RDataSchema.fields[type.rawValue] else { return nil }
        var cursor = ByteReader(bytes: bytes)
        var parts: [String] = []
        for field in fields {
            switch field {
            case .u8:
                guard let value = cursor.uint8() else { return nil }
                parts.append("\(value)")
            case .u16, .certificateType:
                guard let value = cursor.uint16() else { return nil }
                parts.append("\(value)")
            case .name:
                guard let name = cursor.name() else { return nil }
                parts.append(name.description)
            case .characterString:
                guard let length = cursor.uint8(), let text = cursor.take(Int(length)) else { return nil }
                parts.append(ZoneExporter.quoted(text))
            case .hexRest:
                let rest = cursor.take(cursor.bytes.count - cursor.offset) ?? []
                guard !rest.isEmpty else { return nil }
                parts.append(rest.map(ZoneExporter.hex).joined().uppercased())
            case .base64Rest:
                let rest = cursor.take(cursor.bytes.count - cursor.offset) ?? []
                guard !rest.isEmpty else { return nil }
                parts.append(Base64Text.encode(rest))
            case .quotedRest:
                parts.append(ZoneExporter.quoted(cursor.take(cursor.bytes.count - cursor.offset) ?? []))
            }
        }
        guard cursor.isAtEnd else { return nil }
        return parts.joined(separator: " ")
    }
}

extension TokenReader {
    /// The fields of a schema type, as wire bytes.
    mutating func schema(_ fields: [RDataSchema.Field]) throws(Diagnostic) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in fields {
            switch field {
            case .u8, .u16:
                let token = try self.next("a number")
                let maximum = field == .u8 ? 255 : 65535
                guard !token.quoted, let value = Int(token.string), (0...maximum).contains(value) else {
                    throw self.parser.fail(
                        .badRData, "bad \(self.type) field \(token.quotedForMessage) (0-\(maximum))", at: token)
                }
                if field == .u16 { bytes.append(UInt8(value >> 8)) }
                bytes.append(UInt8(value & 0xFF))
            case .certificateType:
                let token = try self.next("a certificate type")
                let value =
                    RDataSchema.certificateTypes[token.string.uppercased()]
                    ?? (token.quoted ? nil : UInt16(token.string))
                guard let value else {
                    throw self.parser.fail(
                        .badRData,
                        "bad CERT type \(token.quotedForMessage) (a number, or PKIX, SPKI, PGP, IPKIX, ISPKI, IPGP, "
                            + "ACPKIX, IACPKIX, URI, OID)", at: token)
                }
                bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
            case .name:
                bytes += try self.name("a domain name").wire
            case .characterString:
                let text = try self.characterString("a string")
                bytes.append(UInt8(text.count))
                bytes += text
            case .hexRest, .base64Rest:
                let first = try self.next(field == .hexRest ? "hex data" : "base64 data")
                var text = first.text
                while let more = self.tokens.popFirst() { text += more.text }
                let decoded = field == .hexRest ? Base64Text.hex(text) : Base64Text.decode(text)
                guard let decoded, !decoded.isEmpty, !first.quoted else {
                    throw self.parser.fail(
                        .badRData,
                        "bad \(field == .hexRest ? "hex" : "base64") data in \(self.type) \(first.quotedForMessage)",
                        at: first)
                }
                bytes += decoded
            case .quotedRest:
                let token = try self.next("a quoted target")
                guard token.quoted, !token.text.isEmpty else {
                    throw self.parser.fail(.badRData, "the URI target must be a quoted, non-empty string", at: token)
                }
                bytes += try Unescape.bytes(token, file: self.parser.file)
            }
        }
        return bytes
    }
}

/// Base64 (RFC 4648 §4) and hex text for record data.
enum Base64Text {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value =
                (UInt32(chunk[0]) << 16) | (chunk.count > 1 ? UInt32(chunk[1]) << 8 : 0)
                | (chunk.count > 2 ? UInt32(chunk[2]) : 0)
            for position in 0..<4 {
                if position <= chunk.count {
                    out.append(Base64Text.alphabet[Int((value >> (18 - 6 * UInt32(position))) & 63)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: [UInt8]) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let value = Base64Text.alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt8(value))
        }
        guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index + 1 < values.count {
            let group = values[index..<min(index + 4, values.count)]
            var value: UInt32 = 0
            for (offset, digit) in group.enumerated() { value |= UInt32(digit) << (18 - 6 * UInt32(offset)) }
            out.append(UInt8(value >> 16 & 0xFF))
            if group.count > 2 { out.append(UInt8(value >> 8 & 0xFF)) }
            if group.count > 3 { out.append(UInt8(value & 0xFF)) }
            index += 4
        }
        return out
    }

    static func hex(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < text.count {
            guard let high = hexDigitValue(text[index]), let low = hexDigitValue(text[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
