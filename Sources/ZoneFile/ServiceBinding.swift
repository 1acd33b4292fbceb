import ZoneModel

/// SVCB and HTTPS records (RFC 9460): `PRIORITY TARGET key=value...`, parsed with every registered SvcParamKey's
/// presentation rules and the `mandatory` checks, kept as wire bytes, printed back as BIND and NSD write them.
enum ServiceBinding {
    static let svcb: UInt16 = 64
    static let https: UInt16 = 65

    /// The registered keys (RFC 9460 §14.3.2, RFC 9461 dohpath, RFC 9540 ohttp).
    static let keys: [String: UInt16] = [
        "mandatory": 0, "alpn": 1, "no-default-alpn": 2, "port": 3, "ipv4hint": 4, "ech": 5, "ipv6hint": 6,
        "dohpath": 7, "ohttp": 8,
    ]
    static let names: [UInt16: String] = Dictionary(uniqueKeysWithValues: keys.map { ($1, $0) })

    /// `key65535` is reserved ("invalid key", §14.3.3).
    static func key(_ text: String) -> UInt16? {
        if let known = ServiceBinding.keys[text] { return known }
        guard text.hasPrefix("key"), text.count > 3, text.count <= 8,
            text.dropFirst(3).allSatisfy(\.isASCII), let number = UInt16(text.dropFirst(3)),
            number != 65535, String(number) == text.dropFirst(3)
        else { return nil }
        return number
    }

    /// The key as printed: its name, except `ohttp`, which BIND 9.18 and NSD 4.6 only read as `key8`.
    static func keyName(_ key: UInt16) -> String { key == 8 ? "key8" : ServiceBinding.names[key] ?? "key\(key)" }

    /// A value-list (RFC 9460 §A.1), after character-string decoding: items split at commas, `\,` and `\\`
    /// standing for a comma and a backslash inside an item.
    static func valueList(_ bytes: [UInt8]) -> [[UInt8]]? {
        var items: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { return nil }
                current.append(bytes[index + 1])
                index += 2
                continue
            }
            if byte == UInt8(ascii: ",") {
                items.append(current)
                current = []
            } else {
                current.append(byte)
            }
            index += 1
        }
        items.append(current)
        return items.contains(where: \.isEmpty) ? nil : items
    }

    // MARK: Printing

    /// Presentation format of SVCB/HTTPS wire data; nil when it is not valid (then `\#` is printed).
    static func presentation(_ bytes: [UInt8]) -> String? {
        var cursor = ByteReader(bytes: bytes)
        guard let priority = cursor.uint16(), let target = cursor.name() else { return nil }
        var parts = ["\(priority)", target.description]
        var previous: Int = -1
        var present: [UInt16] = []
        var mandatory: [UInt16] = []
        while !cursor.isAtEnd {
            guard let key = cursor.uint16(), Int(key) > previous, let length = cursor.uint16(),
                let value = cursor.take(Int(length))
            else { return nil }
            previous = Int(key)
            present.append(key)
            guard let text = ServiceBinding.printValue(key, value, mandatory: &mandatory) else { return nil }
            parts.append(text.isEmpty ? ServiceBinding.keyName(key) : "\(ServiceBinding.keyName(key))=\(text)")
        }
        guard mandatory.allSatisfy(present.contains) else { return nil }
        return parts.joined(separator: " ")
    }

    static func printValue(_ key: UInt16, _ value: [UInt8], mandatory: inout [UInt16]) -> String? {
        var cursor = ByteReader(bytes: value)
        switch key {
        case 0:
            guard !value.isEmpty, value.count % 2 == 0 else { return nil }
            var keys: [String] = []
            var last = -1
            while let next = cursor.uint16() {
                guard Int(next) > last, next != 0 else { return nil }
                last = Int(next)
                mandatory.append(next)
                keys.append(ServiceBinding.keyName(next))
            }
            return keys.joined(separator: ",")
        case 1:
            var items: [String] = []
            while !cursor.isAtEnd {
                guard let length = cursor.uint8(), length > 0, let item = cursor.take(Int(length)) else { return nil }
                items.append(ServiceBinding.escapedItem(item))
            }
            return items.isEmpty ? nil : "\"" + items.joined(separator: ",") + "\""
        case 2, 8:
            return value.isEmpty ? "" : nil
        case 3:
            guard value.count == 2, let port = cursor.uint16() else { return nil }
            return "\(port)"
        case 4:
            guard !value.isEmpty, value.count % 4 == 0 else { return nil }
            return stride(from: 0, to: value.count, by: 4).compactMap {
                IPAddress(bytes: Array(value[$0..<($0 + 4)]))?.description
            }.joined(separator: ",")
        case 6:
            guard !value.isEmpty, value.count % 16 == 0 else { return nil }
            return stride(from: 0, to: value.count, by: 16).compactMap {
                IPAddress(bytes: Array(value[$0..<($0 + 16)]))?.description
            }.joined(separator: ",")
        case 5:
            return value.isEmpty ? nil : Base64Text.encode(value)
        default:
            return value.isEmpty ? "" : ZoneExporter.quoted(value)
        }
    }

    /// An alpn item inside quotes: a comma or backslash escaped twice (value-list, then character-string),
    /// anything unprintable as `\DDD`.
    static func escapedItem(_ item: [UInt8]) -> String {
        var text = ""
        for byte in item {
            switch byte {
            case UInt8(ascii: ","): text += "\\\\,"
            case UInt8(ascii: "\\"): text += "\\\\\\\\"
            case UInt8(ascii: "\""): text += "\\\""
            case 0x21...0x7E: text += String(UnicodeScalar(byte))
            default: text += "\\" + DomainName.threeDigits(byte)
            }
        }
        return text
    }
}

extension TokenReader {
    /// SVCB/HTTPS data as wire bytes.
    mutating func serviceBinding() throws(Diagnostic) -> [UInt8] {
        let priority = try self.uint16("a priority")
        let target = try self.name("a target name")
        var params: [UInt16: (value: [UInt8], token: Token)] = [:]
        while let token = self.tokens.popFirst() {
            guard !token.quoted else {
                throw self.parser.fail(
                    .badRData, "expected a SvcParam (key or key=value), found \(token.quotedForMessage)", at: token)
            }
            let text = token.text
            let equals = text.firstIndex(of: UInt8(ascii: "="))
            let keyText = String(decoding: text[..<(equals ?? text.endIndex)], as: UTF8.self)
            guard let key = ServiceBinding.key(keyText) else {
                throw self.parser.fail(
                    .badRData,
                    "unknown SvcParam key '\(keyText)' (mandatory, alpn, no-default-alpn, port, ipv4hint, ech, "
                        + "ipv6hint, dohpath, ohttp, or keyNNNNN)", at: token)
            }
            guard params[key] == nil else {
                throw self.parser.fail(.badRData, "SvcParam '\(keyText)' appears twice", at: token)
            }
            var value: [UInt8]?
            if let equals {
                let rest = Array(text[(equals + 1)...])
                if rest.isEmpty, let next = self.tokens.first, next.quoted, next.line == token.line,
                    next.column == token.column + text.count
                {
                    // key="value": the lexer splits at the quote.
                    self.tokens.removeFirst()
                    value = try Unescape.bytes(next, file: self.parser.file)
                } else {
                    value = try Unescape.bytes(
                        Token(text: rest, quoted: false, line: token.line, column: token.column + equals + 1),
                        file: self.parser.file)
                }
            }
            params[key] = (try self.encode(key, keyText, value, token: token), token)
        }
        // mandatory: the keys it lists are present, and it does not list itself (§8).
        if let mandatory = params[0] {
            var cursor = ByteReader(bytes: mandatory.value)
            while let listed = cursor.uint16() {
                guard params[listed] == nil else { continue }
                throw self.parser.fail(
                    .badRData,
                    "mandatory lists '\(ServiceBinding.keyName(listed))', which this record does not have",
                    at: mandatory.token)
            }
        }
        if let noDefault = params[2], params[1] == nil {
            throw self.parser.fail(
                .badRData, "no-default-alpn needs alpn in the same record (RFC 9460 §7.1.1)", at: noDefault.token)
        }
        if priority == 0, let first = params.values.min(by: { $0.token.column < $1.token.column }) {
            throw self.parser.fail(
                .badRData, "an AliasMode record (priority 0) takes no SvcParams (RFC 9460 §2.4.2)", at: first.token)
        }
        var bytes = [UInt8(priority >> 8), UInt8(priority & 0xFF)] + target.wire
        for key in params.keys.sorted() {
            let value = params[key]?.value ?? []
            bytes += [UInt8(key >> 8), UInt8(key & 0xFF), UInt8(value.count >> 8), UInt8(value.count & 0xFF)]
            bytes += value
        }
        guard bytes.count <= 65535 else {
            throw self.parser.fail(
                .rdataTooLong, "\(self.type) data is longer than 65535 octets", at: self.parser.owner)
        }
        return bytes
    }

    /// One SvcParam's value in wire form, by its key's rules (RFC 9460 §7, §8).
    func encode(_ key: UInt16, _ name: String, _ value: [UInt8]?, token: Token) throws(Diagnostic) -> [UInt8] {
        func fail(_ message: String) -> Diagnostic {
            self.parser.fail(.badRData, "\(name): \(message)", at: token)
        }
        switch key {
        case 2, 8:
            guard value == nil || value == [] else { throw fail("takes no value") }
            return []
        default:
            break
        }
        guard let value, !value.isEmpty || key > 8 else { throw fail("needs a value (\(name)=...)") }
        let text = String(decoding: value, as: UTF8.self)
        switch key {
        case 0:
            var keys: [UInt16] = []
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let listed = ServiceBinding.key(String(item)) else {
                    throw fail("'\(item)' is not a SvcParam key")
                }
                guard listed != 0 else { throw fail("mandatory may not list itself") }
                guard !keys.contains(listed) else { throw fail("'\(item)' is listed twice") }
                keys.append(listed)
            }
            return keys.sorted().flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        case 1:
            guard let items = ServiceBinding.valueList(value) else { throw fail("an empty protocol ID") }
            var bytes: [UInt8] = []
            for item in items {
                guard item.count <= 255 else { throw fail("a protocol ID longer than 255 octets") }
                bytes += [UInt8(item.count)] + item
            }
            return bytes
        case 3:
            guard let port = UInt16(text), String(port) == text else { throw fail("'\(text)' is not a port (0-65535)") }
            return [UInt8(port >> 8), UInt8(port & 0xFF)]
        case 4:
            var bytes: [UInt8] = []
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let address = IPv4Address(String(item)) else { throw fail("'\(item)' is not an IPv4 address") }
                bytes += address.bytes
            }
            return bytes
        case 6:
            var bytes: [UInt8] = []
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let address = IPv6Address(String(item)) else { throw fail("'\(item)' is not an IPv6 address") }
                bytes += address.bytes
            }
            return bytes
        case 5:
            guard let decoded = Base64Text.decode(value), !decoded.isEmpty else { throw fail("not base64") }
            return decoded
        default:
            return value
        }
    }
}

/// LOC records (RFC 1876): `D [M [S]] N|S D [M [S]] E|W ALT[m] [SIZE[m] [HP[m] [VP[m]]]]`.
enum Location {
    static let type: UInt16 = 29
    static let equator: UInt32 = 1 << 31
    /// Altitude is kept in centimetres above 100 km below the WGS 84 spheroid.
    static let altitudeBase: Int64 = 10_000_000

    /// Centimetres as RFC 1876's one-byte precision: a digit and a power of ten (rounded down, as BIND does).
    static func precision(_ centimetres: Int64) -> UInt8 {
        var exponent: Int64 = 0
        var power: Int64 = 1
        while exponent < 9 && centimetres >= power * 10 {
            power *= 10
            exponent += 1
        }
        let mantissa = min(9, centimetres / power)
        return UInt8(mantissa << 4 | exponent)
    }

    /// Metres with up to two decimals, as centimetres.
    static func centimetres(_ text: String, allowNegative: Bool) -> Int64? {
        var body = text
        if body.hasSuffix("m") || body.hasSuffix("M") { body.removeLast() }
        var negative = false
        if body.hasPrefix("-") {
            guard allowNegative else { return nil }
            negative = true
            body.removeFirst()
        }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].allSatisfy(\.isASCII),
            let whole = Int64(parts[0]), whole <= 100_000_000
        else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            guard (1...2).contains(parts[1].count), let digits = Int64(parts[1]) else { return nil }
            fraction = parts[1].count == 1 ? digits * 10 : digits
        }
        let value = whole * 100 + fraction
        return negative ? -value : value
    }

    static func metres(_ centimetres: Int64) -> String {
        let sign = centimetres < 0 ? "-" : ""
        let magnitude = abs(centimetres)
        return "\(sign)\(magnitude / 100).\(magnitude % 100 < 10 ? "0" : "")\(magnitude % 100)m"
    }

    static func presentation(_ bytes: [UInt8]) -> String? {
        var cursor = ByteReader(bytes: bytes)
        guard bytes.count == 16, cursor.uint8() == 0, let size = cursor.uint8(), let horizontal = cursor.uint8(),
            let vertical = cursor.uint8(), let latitude = cursor.uint32(), let longitude = cursor.uint32(),
            let altitude = cursor.uint32()
        else { return nil }
        func angle(_ raw: UInt32, positive: String, negative: String, limit: Int64) -> String? {
            let offset = Int64(raw) - Int64(Location.equator)
            let magnitude = abs(offset)
            guard magnitude <= limit * 3_600_000 else { return nil }
            let degrees = magnitude / 3_600_000
            let minutes = magnitude / 60_000 % 60
            let seconds = magnitude / 1000 % 60
            let thousandths = magnitude % 1000
            let padded = String(thousandths + 1000).dropFirst()
            return "\(degrees) \(minutes) \(seconds).\(padded) \(offset < 0 ? negative : positive)"
        }
        func precision(_ byte: UInt8) -> String? {
            let mantissa = Int64(byte >> 4)
            let exponent = Int64(byte & 0x0F)
            guard mantissa <= 9, exponent <= 9 else { return nil }
            var value = mantissa
            for _ in 0..<exponent { value *= 10 }
            return Location.metres(value)
        }
        guard let latitudeText = angle(latitude, positive: "N", negative: "S", limit: 90),
            let longitudeText = angle(longitude, positive: "E", negative: "W", limit: 180),
            let sizeText = precision(size), let horizontalText = precision(horizontal),
            let verticalText = precision(vertical)
        else { return nil }
        let altitudeText = Location.metres(Int64(altitude) - Location.altitudeBase)
        return "\(latitudeText) \(longitudeText) \(altitudeText) \(sizeText) \(horizontalText) \(verticalText)"
    }
}

extension TokenReader {
    /// LOC data as wire bytes.
    mutating func location() throws(Diagnostic) -> [UInt8] {
        func coordinate(_ what: String, _ limit: Int64, _ hemispheres: (String, String)) throws(Diagnostic) -> UInt32 {
            let degreesToken = try self.next("the \(what) degrees")
            guard !degreesToken.quoted, let degrees = Int64(degreesToken.string), (0...limit).contains(degrees) else {
                throw self.parser.fail(
                    .badRData, "bad LOC \(what) degrees \(degreesToken.quotedForMessage) (0-\(limit))", at: degreesToken
                )
            }
            var minutes: Int64 = 0
            var thousandths: Int64 = 0
            var token = try self.next("\(hemispheres.0) or \(hemispheres.1)")
            if let value = Int64(token.string), !token.quoted {
                guard (0...59).contains(value) else {
                    throw self.parser.fail(.badRData, "bad LOC minutes \(token.quotedForMessage) (0-59)", at: token)
                }
                minutes = value
                token = try self.next("\(hemispheres.0) or \(hemispheres.1)")
                if let first = token.string.first, first.isNumber {
                    let parts = token.string.split(separator: ".", omittingEmptySubsequences: false)
                    guard (1...2).contains(parts.count), let whole = Int64(parts[0]), (0...59).contains(whole),
                        parts.count == 1 || ((1...3).contains(parts[1].count) && Int64(parts[1]) != nil)
                    else {
                        throw self.parser.fail(
                            .badRData, "bad LOC seconds \(token.quotedForMessage) (0-59.999)", at: token)
                    }
                    var fraction: Int64 = 0
                    if parts.count == 2, var digits = Int64(parts[1]) {
                        for _ in parts[1].count..<3 { digits *= 10 }
                        fraction = digits
                    }
                    thousandths = whole * 1000 + fraction
                    token = try self.next("\(hemispheres.0) or \(hemispheres.1)")
                }
            }
            let hemisphere = token.string.uppercased()
            guard !token.quoted, hemisphere == hemispheres.0 || hemisphere == hemispheres.1 else {
                throw self.parser.fail(
                    .badRData,
                    "bad LOC \(what): expected \(hemispheres.0) or \(hemispheres.1), found \(token.quotedForMessage)",
                    at: token)
            }
            let total = (degrees * 3600 + minutes * 60) * 1000 + thousandths
            guard total <= limit * 3_600_000 else {
                throw self.parser.fail(.badRData, "LOC \(what) beyond \(limit) degrees", at: token)
            }
            return UInt32(Int64(Location.equator) + (hemisphere == hemispheres.0 ? total : -total))
        }
        let latitude = try coordinate("latitude", 90, ("N", "S"))
        let longitude = try coordinate("longitude", 180, ("E", "W"))
        let altitudeToken = try self.next("an altitude")
        guard let altitude = Location.centimetres(altitudeToken.string, allowNegative: true),
            !altitudeToken.quoted, (-10_000_000...4_284_967_295).contains(altitude)
        else {
            throw self.parser.fail(
                .badRData, "bad LOC altitude \(altitudeToken.quotedForMessage) (metres, -100000.00 to 42849672.95)",
                at: altitudeToken)
        }
        // Size 1 m, horizontal precision 10 km, vertical 10 m unless given (RFC 1876 §3).
        var precisions: [Int64] = [100, 1_000_000, 1000]
        for (index, what) in ["size", "horizontal precision", "vertical precision"].enumerated() {
            guard let token = self.tokens.popFirst() else { break }
            guard !token.quoted, let value = Location.centimetres(token.string, allowNegative: false),
                value <= 9_000_000_000
            else {
                throw self.parser.fail(
                    .badRData, "bad LOC \(what) \(token.quotedForMessage) (metres, 0 to 90000000.00)", at: token)
            }
            precisions[index] = value
        }
        let altitudeWire = UInt32(altitude + Location.altitudeBase)
        var bytes: [UInt8] = [0] + precisions.map(Location.precision)
        for value in [latitude, longitude, altitudeWire] {
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return bytes
    }
}
