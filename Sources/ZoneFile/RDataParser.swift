import ZoneModel

/// Reads the data part of a record in presentation format (RFC 1035 §5, RFC 3597 §5 for `\#`).
struct RDataParser {
    let file: String
    let origin: DomainName?
    let owner: Token

    func fail(_ code: DiagnosticCode, _ message: String, at token: Token) -> Diagnostic {
        Diagnostic(code, message, at: token.location(in: self.file))
    }

    /// Parses `tokens` as data of `type`, or reports the first problem.
    func parse(_ type: RecordType, _ tokens: ArraySlice<Token>) throws(Diagnostic) -> RData {
        if let first = tokens.first, !first.quoted, first.text == [UInt8(ascii: "\\"), UInt8(ascii: "#")] {
            return try self.parseGeneric(type, tokens.dropFirst(), marker: first)
        }
        var reader = TokenReader(tokens: tokens, parser: self, type: type)
        let data: RData
        switch type {
        case .a:
            let token = try reader.next("an IPv4 address")
            guard let address = IPv4Address(token.string) else {
                throw self.fail(.badAddress, "bad IPv4 address \(token.quotedForMessage)", at: token)
            }
            data = .a(address)
        case .aaaa:
            let token = try reader.next("an IPv6 address")
            guard let address = IPv6Address(token.string) else {
                throw self.fail(.badAddress, "bad IPv6 address \(token.quotedForMessage)", at: token)
            }
            data = .aaaa(address)
        case .ns, .cname, .ptr:
            data = .name(try reader.name("a domain name"))
        case .mx:
            let preference = try reader.uint16("a preference")
            data = .mx(preference: preference, exchange: try reader.name("a mail exchange"))
        case .srv:
            let priority = try reader.uint16("a priority")
            let weight = try reader.uint16("a weight")
            let port = try reader.uint16("a port")
            data = .srv(priority: priority, weight: weight, port: port, target: try reader.name("a target"))
        case .soa:
            let mname = try reader.name("a primary server name")
            let rname = try reader.name("a mailbox name")
            let serialToken = try reader.next("a serial")
            guard let serial = UInt32(serialToken.string), !serialToken.quoted else {
                throw self.fail(.badRData, "bad serial \(serialToken.quotedForMessage)", at: serialToken)
            }
            data = .soa(
                SOAData(
                    mname: mname, rname: rname, serial: serial, refresh: try reader.ttl("a refresh interval"),
                    retry: try reader.ttl("a retry interval"), expire: try reader.ttl("an expire interval"),
                    minimum: try reader.ttl("a minimum (negative TTL)")))
        case .txt:
            var strings: [[UInt8]] = [try reader.characterString("a string")]
            while !reader.isAtEnd { strings.append(try reader.characterString("a string")) }
            data = .txt(strings)
        case .caa:
            let flagsToken = try reader.next("flags")
            guard let flags = UInt8(flagsToken.string), !flagsToken.quoted else {
                throw self.fail(.badRData, "bad CAA flags \(flagsToken.quotedForMessage) (0-255)", at: flagsToken)
            }
            let tagToken = try reader.next("a tag")
            // RFC 8659 §4.1: the tag is 1-15 letters and digits.
            guard !tagToken.quoted, (1...15).contains(tagToken.text.count),
                tagToken.text.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) })
            else {
                throw self.fail(.badRData, "bad CAA tag \(tagToken.quotedForMessage)", at: tagToken)
            }
            let valueToken = try reader.next("a value")
            data = .caa(flags: flags, tag: tagToken.text, value: try Unescape.bytes(valueToken, file: self.file))
        case _ where type.rawValue == ServiceBinding.svcb || type.rawValue == ServiceBinding.https:
            data = .generic(try reader.serviceBinding())
        case _ where type.rawValue == Location.type:
            data = .generic(try reader.location())
        case _ where RDataSchema.fields[type.rawValue] != nil:
            data = .generic(try reader.schema(RDataSchema.fields[type.rawValue] ?? []))
        default:
            guard let token = tokens.first else {
                throw Diagnostic(
                    .badRData, "\(type) needs data in RFC 3597 form: \\# LENGTH HEX",
                    at: self.owner.location(in: self.file))
            }
            throw self.fail(
                .badRData,
                "\(type) data must be written in RFC 3597 form (\\# LENGTH HEX), not \(token.quotedForMessage)",
                at: token)
        }
        try reader.finish()
        return data
    }

    /// `\# LENGTH HEX...` for any type; known types are decoded so the model sees their structure.
    func parseGeneric(_ type: RecordType, _ tokens: ArraySlice<Token>, marker: Token) throws(Diagnostic) -> RData {
        guard let lengthToken = tokens.first else {
            throw self.fail(.badRData, "'\\#' needs a length and hex data", at: marker)
        }
        guard let length = Int(lengthToken.string), length >= 0, length <= 65535, !lengthToken.quoted else {
            throw self.fail(.badRData, "bad RFC 3597 length \(lengthToken.quotedForMessage)", at: lengthToken)
        }
        var hex: [UInt8] = []
        for token in tokens.dropFirst() {
            guard !token.quoted else { throw self.fail(.badRData, "hex data may not be quoted", at: token) }
            hex += token.text
        }
        guard hex.count % 2 == 0 else {
            throw self.fail(.badRData, "odd number of hex digits", at: tokens.dropFirst().first ?? lengthToken)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = 0
        while index < hex.count {
            guard let high = hexDigitValue(hex[index]), let low = hexDigitValue(hex[index + 1]) else {
                throw self.fail(.badRData, "bad hex digit in generic data", at: tokens.dropFirst().first ?? lengthToken)
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        guard bytes.count == length else {
            throw self.fail(
                .badRData, "RFC 3597 length says \(length) octets but \(bytes.count) follow", at: lengthToken)
        }
        guard let data = WireRData.decode(type, bytes) else {
            throw self.fail(.badRData, "generic data is not valid \(type) data", at: lengthToken)
        }
        return data
    }
}

/// Takes the data tokens one by one, naming what was expected when they run out.
struct TokenReader {
    var tokens: ArraySlice<Token>
    let parser: RDataParser
    let type: RecordType

    var isAtEnd: Bool { self.tokens.isEmpty }

    mutating func next(_ what: String) throws(Diagnostic) -> Token {
        guard let token = self.tokens.popFirst() else {
            throw Diagnostic(
                .missingField, "\(self.type) record is missing \(what)",
                at: self.parser.owner.location(in: self.parser.file))
        }
        return token
    }

    mutating func name(_ what: String) throws(Diagnostic) -> DomainName {
        let token = try self.next(what)
        do {
            guard !token.quoted else { throw NameError.emptyLabel }
            return try DomainName(parsing: token.text, origin: self.parser.origin)
        } catch {
            throw self.parser.fail(.badName, "bad name \(token.quotedForMessage): \(error)", at: token)
        }
    }

    mutating func uint16(_ what: String) throws(Diagnostic) -> UInt16 {
        let token = try self.next(what)
        guard !token.quoted, let value = UInt16(token.string) else {
            throw self.parser.fail(
                .badRData, "bad \(self.type) field \(token.quotedForMessage): expected \(what) (0-65535)", at: token)
        }
        return value
    }

    mutating func ttl(_ what: String) throws(Diagnostic) -> UInt32 {
        let token = try self.next(what)
        guard let value = TTLText.parse(token) else {
            throw self.parser.fail(
                .badRData, "bad \(self.type) field \(token.quotedForMessage): expected \(what)", at: token)
        }
        return value
    }

    mutating func characterString(_ what: String) throws(Diagnostic) -> [UInt8] {
        let token = try self.next(what)
        let bytes = try Unescape.bytes(token, file: self.parser.file)
        guard bytes.count <= 255 else {
            throw self.parser.fail(
                .badRData,
                "character-string is \(bytes.count) octets long (the limit is 255); split it into several strings",
                at: token)
        }
        return bytes
    }

    func finish() throws(Diagnostic) {
        if let extra = self.tokens.first {
            throw self.parser.fail(
                .unexpectedToken, "unexpected \(extra.quotedForMessage) after \(self.type) data", at: extra)
        }
    }
}

/// Turns `\X` and `\DDD` escapes in a token into bytes.
enum Unescape {
    static func bytes(_ token: Token, file: String) throws(Diagnostic) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(token.text.count)
        var index = 0
        while index < token.text.count {
            if token.text[index] == UInt8(ascii: "\\") {
                do {
                    let (value, next) = try DomainName.readEscape(token.text, at: index)
                    result.append(value)
                    index = next
                } catch {
                    throw Diagnostic(
                        .badEscape, "bad escape in \(token.quotedForMessage) (use \\X or \\DDD with DDD up to 255)",
                        at: SourceLocation(file: file, line: token.line, column: token.column + index))
                }
                continue
            }
            result.append(token.text[index])
            index += 1
        }
        return result
    }
}

/// TTLs: plain seconds, or BIND-style units (`1h30m`, `2d`); at most 2^31 - 1 (RFC 2181 §8).
package enum TTLText {
    package static let maximum: UInt64 = 2_147_483_647

    static func parse(_ token: Token) -> UInt32? {
        guard !token.quoted else { return nil }
        return self.parse(token.text)
    }

    /// The value in seconds, or nil when the text is not a TTL at all or exceeds the maximum.
    package static func parse(_ text: [UInt8]) -> UInt32? {
        guard let value = self.parseUnbounded(text), value <= self.maximum else { return nil }
        return UInt32(value)
    }

    /// Whether the text has the shape of a TTL, whatever its size.
    static func looksLikeTTL(_ text: [UInt8]) -> Bool { self.parseUnbounded(text) != nil }

    static func parseUnbounded(_ text: [UInt8]) -> UInt64? {
        guard let first = text.first, first >= 48, first <= 57 else { return nil }
        var total: UInt64 = 0
        var number: UInt64 = 0
        var digits = 0
        var sawUnit = false
        for byte in text {
            if byte >= 48 && byte <= 57 {
                number = number &* 10 &+ UInt64(byte - 48)
                digits += 1
                guard digits <= 12 else { return nil }
                continue
            }
            let multiplier: UInt64
            switch byte | 0x20 {
            case UInt8(ascii: "s"): multiplier = 1
            case UInt8(ascii: "m"): multiplier = 60
            case UInt8(ascii: "h"): multiplier = 3600
            case UInt8(ascii: "d"): multiplier = 86400
            case UInt8(ascii: "w"): multiplier = 604800
            default: return nil
            }
            guard digits > 0 else { return nil }
            // Saturate: anything past the maximum is reported as too large, never wrapped.
            total = min(total + number * multiplier, TTLText.maximum + 1)
            number = 0
            digits = 0
            sawUnit = true
        }
        total = min(total + number, TTLText.maximum + 1)
        return sawUnit || digits > 0 ? total : nil
    }
}

/// Decodes uncompressed RDATA of the types the model understands (for RFC 3597 input).
enum WireRData {
    static func decode(_ type: RecordType, _ bytes: [UInt8]) -> RData? {
        var reader = ByteReader(bytes: bytes)
        let data: RData?
        switch type {
        case .a:
            guard bytes.count == 4 else { return nil }
            return .a(IPv4Address(bytes.reduce(0) { $0 << 8 | UInt32($1) }))
        case .aaaa:
            guard bytes.count == 16 else { return nil }
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return .aaaa(IPv6Address(high: high, low: low))
        case .ns, .cname, .ptr:
            data = reader.name().map { RData.name($0) }
        case .mx:
            guard let preference = reader.uint16(), let exchange = reader.name() else { return nil }
            data = .mx(preference: preference, exchange: exchange)
        case .srv:
            guard let priority = reader.uint16(), let weight = reader.uint16(), let port = reader.uint16(),
                let target = reader.name()
            else { return nil }
            data = .srv(priority: priority, weight: weight, port: port, target: target)
        case .soa:
            guard let mname = reader.name(), let rname = reader.name(), let serial = reader.uint32(),
                let refresh = reader.uint32(), let retry = reader.uint32(), let expire = reader.uint32(),
                let minimum = reader.uint32()
            else { return nil }
            data = .soa(
                SOAData(
                    mname: mname, rname: rname, serial: serial, refresh: refresh, retry: retry, expire: expire,
                    minimum: minimum))
        case .txt:
            guard !bytes.isEmpty else { return nil }
            var strings: [[UInt8]] = []
            while !reader.isAtEnd {
                guard let length = reader.uint8(), let string = reader.take(Int(length)) else { return nil }
                strings.append(string)
            }
            data = .txt(strings)
        case .caa:
            guard let flags = reader.uint8(), let tagLength = reader.uint8(), tagLength > 0,
                let tag = reader.take(Int(tagLength))
            else { return nil }
            let value = reader.take(bytes.count - reader.offset) ?? []
            data = .caa(flags: flags, tag: tag, value: value)
        case .any, .axfr, .ixfr, .opt:
            return nil
        default:
            return .generic(bytes)
        }
        guard reader.isAtEnd else { return nil }
        return data
    }
}

/// A bounds-checked cursor over bytes.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { self.offset == self.bytes.count }

    mutating func uint8() -> UInt8? {
        guard self.offset < self.bytes.count else { return nil }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    mutating func uint16() -> UInt16? {
        guard let high = self.uint8(), let low = self.uint8() else { return nil }
        return UInt16(high) << 8 | UInt16(low)
    }

    mutating func uint32() -> UInt32? {
        guard let high = self.uint16(), let low = self.uint16() else { return nil }
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, self.offset + count <= self.bytes.count else { return nil }
        defer { self.offset += count }
        return Array(self.bytes[self.offset..<(self.offset + count)])
    }

    /// An uncompressed name (compression pointers are not allowed in RFC 3597 data).
    mutating func name() -> DomainName? {
        var labels: [[UInt8]] = []
        while true {
            guard let length = self.uint8() else { return nil }
            if length == 0 { break }
            guard length <= 63, let label = self.take(Int(length)) else { return nil }
            labels.append(label)
        }
        return try? DomainName(labels: labels)
    }
}
