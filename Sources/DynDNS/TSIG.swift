import ZoneModel

/// A TSIG key (RFC 8945): its name, algorithm and secret, as BIND's `key` statement writes it.
public struct TSIGKey: Sendable, Equatable {
    public var name: DomainName
    public var algorithm: HMAC.Algorithm
    public var secret: [UInt8]

    public init(name: DomainName, algorithm: HMAC.Algorithm, secret: [UInt8]) {
        self.name = name
        self.algorithm = algorithm
        self.secret = secret
    }

    /// Parses a BIND key file (`key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`), as written by
    /// `tsig-keygen` or `dnssec-keygen`. Errors say what is wrong, never echoing the secret.
    public static func parse(bindKeyFile text: String) throws(DynDNSError) -> TSIGKey {
        // Tokens: words, quoted strings, braces and semicolons; comments (#, //, /* */) dropped.
        var tokens: [String] = []
        var current = ""
        var quoted = false
        var characters = Array(text.unicodeScalars)[...]
        func flush() {
            if !current.isEmpty { tokens.append(current) }
            current = ""
        }
        while let scalar = characters.popFirst() {
            if quoted {
                if scalar == "\"" {
                    tokens.append(current)
                    current = ""
                    quoted = false
                } else {
                    current.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"":
                flush()
                quoted = true
            case "#":
                flush()
                while let next = characters.popFirst(), next != "\n" {}
            case "/" where characters.first == "/":
                flush()
                while let next = characters.popFirst(), next != "\n" {}
            case "/" where characters.first == "*":
                flush()
                characters = characters.dropFirst()
                while let next = characters.popFirst() {
                    if next == "*" && characters.first == "/" {
                        characters = characters.dropFirst()
                        break
                    }
                }
            case "{", "}", ";":
                flush()
                tokens.append(String(scalar))
            case " ", "\t", "\n", "\r":
                flush()
            default:
                current.unicodeScalars.append(scalar)
            }
        }
        flush()
        guard quoted == false else { throw .badKey("unterminated string in key file") }
        guard let keyIndex = tokens.firstIndex(of: "key"), keyIndex + 2 < tokens.count, tokens[keyIndex + 2] == "{"
        else { throw .badKey("no 'key \"NAME\" { ... };' statement in key file") }
        let nameText = tokens[keyIndex + 1]
        guard let name = try? DomainName(nameText.hasSuffix(".") ? nameText : nameText + ".") else {
            throw .badKey("key name '\(nameText)' is not a domain name")
        }
        var algorithm: HMAC.Algorithm?
        var secret: [UInt8]?
        var index = keyIndex + 3
        while index + 1 < tokens.count && tokens[index] != "}" {
            switch tokens[index].lowercased() {
            case "algorithm":
                let value = tokens[index + 1].lowercased()
                guard let found = HMAC.Algorithm(rawValue: value) else {
                    throw .badKey("key algorithm '\(value)' is not supported (hmac-sha256, hmac-sha512)")
                }
                algorithm = found
            case "secret":
                guard let decoded = Base64.decode(tokens[index + 1]), !decoded.isEmpty else {
                    throw .badKey("key secret is not valid base64")
                }
                secret = decoded
            default:
                break
            }
            while index < tokens.count && tokens[index] != ";" { index += 1 }
            index += 1
        }
        guard let algorithm else { throw .badKey("key file names no algorithm") }
        guard let secret else { throw .badKey("key file has no secret") }
        return TSIGKey(name: name, algorithm: algorithm, secret: secret)
    }
}

/// What went wrong talking to a provider or reading its configuration.
public enum DynDNSError: Error, Equatable, Sendable, CustomStringConvertible {
    case badKey(String)
    /// The provider could not be reached or did not answer in time.
    case unreachable(String)
    /// The provider answered something we cannot read.
    case badReply(String)
    /// The provider refused (bad key, no such host, ...): stop and report.
    case refused(String)

    public var description: String {
        switch self {
        case .badKey(let text): "bad key: \(text)"
        case .unreachable(let text): "unreachable: \(text)"
        case .badReply(let text): "bad reply: \(text)"
        case .refused(let text): "refused: \(text)"
        }
    }
}

/// TSIG signing and verification (RFC 8945 §4–§5).
public enum TSIG {
    public static let type: UInt16 = 250
    static let classANY: UInt16 = 255
    public static let defaultFudge: UInt16 = 300

    /// TSIG error codes (RFC 8945 §4.3.3 and RFC 2845).
    public static func errorName(_ code: UInt16) -> String {
        switch code {
        case 0: "NOERROR"
        case 16: "BADSIG"
        case 17: "BADKEY"
        case 18: "BADTIME"
        case 22: "BADTRUNC"
        default: "TSIG error \(code)"
        }
    }

    /// The TSIG variables that go into the MAC after the message.
    static func variables(key: TSIGKey, time: UInt64, fudge: UInt16, error: UInt16, other: [UInt8]) -> [UInt8] {
        var out = key.name.wire
        out += be16(TSIG.classANY) + be32(0)
        out += (try? DomainName(key.algorithm.tsigName))?.wire ?? []
        out += be48(time) + be16(fudge) + be16(error) + be16(UInt16(other.count)) + other
        return out
    }

    /// Appends a TSIG record to `message` (whose ARCOUNT it increments); returns the signed message and the
    /// MAC, which the response's MAC covers.
    public static func sign(_ message: [UInt8], key: TSIGKey, time: UInt64, fudge: UInt16 = TSIG.defaultFudge)
        -> (message: [UInt8], mac: [UInt8])
    {
        let mac = HMAC.authenticate(
            key.algorithm, key: key.secret,
            message: message + TSIG.variables(key: key, time: time, fudge: fudge, error: 0, other: []))
        var out = message
        let id = UInt16(message[0]) << 8 | UInt16(message[1])
        let arcount = UInt16(message[10]) << 8 | UInt16(message[11])
        out[10] = UInt8((arcount + 1) >> 8)
        out[11] = UInt8((arcount + 1) & 0xFF)
        var rdata = (try? DomainName(key.algorithm.tsigName))?.wire ?? []
        rdata += be48(time) + be16(fudge) + be16(UInt16(mac.count)) + mac
        rdata += be16(id) + be16(0) + be16(0)
        out += key.name.wire + be16(TSIG.type) + be16(TSIG.classANY) + be32(0) + be16(UInt16(rdata.count)) + rdata
        return (out, mac)
    }

    /// The outcome of checking a response's TSIG.
    public enum Verdict: Equatable, Sendable {
        case valid
        /// No TSIG on the response (a server that refuses the key before checking it may send none).
        case unsigned
        /// The TSIG error field was set by the server (BADSIG, BADKEY, BADTIME).
        case serverError(UInt16)
        case badMAC
        case malformed
    }

    /// Checks the TSIG of `response` to a request whose MAC was `requestMAC` (RFC 8945 §5.3).
    public static func verify(_ response: [UInt8], requestMAC: [UInt8], key: TSIGKey, now: UInt64) -> Verdict {
        guard response.count >= 12 else { return .malformed }
        let counts = (0..<4).map { Int(response[4 + 2 * $0]) << 8 | Int(response[5 + 2 * $0]) }
        guard counts[3] >= 1 else { return .unsigned }
        // Walk to the last record of the additional section: the TSIG must be last.
        var position = 12
        func skipName() -> Bool {
            while position < response.count {
                let length = Int(response[position])
                if length == 0 {
                    position += 1
                    return true
                }
                if length & 0xC0 == 0xC0 {
                    position += 2
                    return position <= response.count
                }
                guard length < 64 else { return false }
                position += 1 + length
            }
            return false
        }
        for _ in 0..<counts[0] {
            guard skipName() else { return .malformed }
            position += 4
        }
        let records = counts[1] + counts[2] + counts[3]
        var tsigStart = 0
        for index in 0..<records {
            if index == records - 1 { tsigStart = position }
            guard skipName(), position + 10 <= response.count else { return .malformed }
            let length = Int(response[position + 8]) << 8 | Int(response[position + 9])
            position += 10 + length
            guard position <= response.count else { return .malformed }
        }
        guard position == response.count else { return .malformed }
        // The TSIG record: owner, type, class, TTL, RDATA.
        position = tsigStart
        guard skipName(), position + 10 <= response.count else { return .malformed }
        let type = UInt16(response[position]) << 8 | UInt16(response[position + 1])
        guard type == TSIG.type else { return .unsigned }
        var rdata = position + 10
        position = rdata
        guard skipName() else { return .malformed }
        rdata = position
        guard rdata + 10 <= response.count else { return .malformed }
        let time =
            UInt64(response[rdata]) << 40 | UInt64(response[rdata + 1]) << 32 | UInt64(response[rdata + 2]) << 24
            | UInt64(response[rdata + 3]) << 16 | UInt64(response[rdata + 4]) << 8 | UInt64(response[rdata + 5])
        let fudge = UInt16(response[rdata + 6]) << 8 | UInt16(response[rdata + 7])
        let macLength = Int(response[rdata + 8]) << 8 | Int(response[rdata + 9])
        let macStart = rdata + 10
        guard macStart + macLength + 6 <= response.count else { return .malformed }
        let mac = Array(response[macStart..<(macStart + macLength)])
        let tail = macStart + macLength
        let originalID = Array(response[tail..<(tail + 2)])
        let error = UInt16(response[tail + 2]) << 8 | UInt16(response[tail + 3])
        let otherLength = Int(response[tail + 4]) << 8 | Int(response[tail + 5])
        guard tail + 6 + otherLength <= response.count else { return .malformed }
        let other = Array(response[(tail + 6)..<(tail + 6 + otherLength)])
        if error != 0 { return .serverError(error) }
        // The message as it was before the TSIG was added: original ID, ARCOUNT one less.
        var unsigned = Array(response[0..<tsigStart])
        unsigned[0] = originalID[0]
        unsigned[1] = originalID[1]
        let arcount = counts[3] - 1
        unsigned[10] = UInt8(arcount >> 8)
        unsigned[11] = UInt8(arcount & 0xFF)
        let expected = HMAC.authenticate(
            key.algorithm, key: key.secret,
            message: be16(UInt16(requestMAC.count)) + requestMAC + unsigned
                + TSIG.variables(key: key, time: time, fudge: fudge, error: error, other: other))
        guard HMAC.equal(expected, mac) else { return .badMAC }
        let skew = now > time ? now - time : time - now
        return skew <= UInt64(fudge) ? .valid : .serverError(18)
    }
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
func be48(_ value: UInt64) -> [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: value >> (40 - 8 * UInt64($0))) } }
