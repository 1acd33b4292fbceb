/// A TSIG algorithm (RFC 8945 §6): the HMACs Frontdoor signs and verifies with.
public enum TSIGAlgorithm: String, Sendable, CaseIterable {
    case sha256 = "hmac-sha256"
    case sha384 = "hmac-sha384"
    case sha512 = "hmac-sha512"

    /// The algorithm's name as it travels in a TSIG record.
    public var tsigName: String { self.rawValue + "." }
    public var digestLength: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }
}

/// Why a key file was refused; the message never holds the secret.
public struct TSIGKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

/// A TSIG key (RFC 8945): its name, algorithm and secret, as BIND's `key` statement writes it.
public struct TSIGKey: Sendable, Hashable {
    public var name: DomainName
    public var algorithm: TSIGAlgorithm
    public var secret: [UInt8]

    public init(name: DomainName, algorithm: TSIGAlgorithm, secret: [UInt8]) {
        self.name = name
        self.algorithm = algorithm
        self.secret = secret
    }

    /// Parses a BIND key file (`key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`), as written by
    /// `tsig-keygen` or `dnssec-keygen`. Errors say what is wrong, never echoing the secret.
    public static func parse(bindKeyFile text: String) throws(TSIGKeyError) -> TSIGKey {
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
        guard quoted == false else { throw TSIGKeyError("unterminated string in key file") }
        guard let keyIndex = tokens.firstIndex(of: "key"), keyIndex + 2 < tokens.count, tokens[keyIndex + 2] == "{"
        else { throw TSIGKeyError("no 'key \"NAME\" { ... };' statement in key file") }
        let nameText = tokens[keyIndex + 1]
        guard let name = try? DomainName(nameText.hasSuffix(".") ? nameText : nameText + ".") else {
            throw TSIGKeyError("key name '\(nameText)' is not a domain name")
        }
        var algorithm: TSIGAlgorithm?
        var secret: [UInt8]?
        var index = keyIndex + 3
        while index + 1 < tokens.count && tokens[index] != "}" {
            switch tokens[index].lowercased() {
            case "algorithm":
                let value = tokens[index + 1].lowercased()
                guard let found = TSIGAlgorithm(rawValue: value) else {
                    throw TSIGKeyError(
                        "key algorithm '\(value)' is not supported (hmac-sha256, hmac-sha384, hmac-sha512)")
                }
                algorithm = found
            case "secret":
                guard let decoded = Base64.decode(tokens[index + 1]), !decoded.isEmpty else {
                    throw TSIGKeyError("key secret is not valid base64")
                }
                secret = decoded
            default:
                break
            }
            while index < tokens.count && tokens[index] != ";" { index += 1 }
            index += 1
        }
        guard let algorithm else { throw TSIGKeyError("key file names no algorithm") }
        guard let secret else { throw TSIGKeyError("key file has no secret") }
        return TSIGKey(name: name, algorithm: algorithm, secret: secret)
    }
}

/// Base64 (RFC 4648) for TSIG secrets and HTTP basic auth; no Foundation.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let a = UInt32(bytes[index])
            let b = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let c = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = a << 16 | b << 8 | c
            out.append(Base64.alphabet[Int(triple >> 18 & 63)])
            out.append(Base64.alphabet[Int(triple >> 12 & 63)])
            out.append(index + 1 < bytes.count ? Base64.alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? Base64.alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for anything that is not canonical base64 (white space is skipped).
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - 97 + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - 48 + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="): padding += 1
            case 9, 10, 13, 32: continue
            default: return nil
            }
            if padding > 0 && byte != UInt8(ascii: "=") { return nil }
        }
        guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var triple: UInt32 = 0
            for (offset, value) in chunk.enumerated() { triple |= UInt32(value) << (18 - 6 * offset) }
            out.append(UInt8(triple >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(triple >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(triple & 0xFF)) }
            index += 4
        }
        return out
    }
}
