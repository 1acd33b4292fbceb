import COpenSSL

/// HMAC through the system OpenSSL (the project's one crypto boundary).
public enum HMAC {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256 = "hmac-sha256"
        case sha512 = "hmac-sha512"

        /// The TSIG algorithm name (RFC 8945 §6).
        public var tsigName: String { self.rawValue + "." }
        public var digestLength: Int { self == .sha256 ? 32 : 64 }

        var evp: OpaquePointer? { self == .sha256 ? EVP_sha256() : EVP_sha512() }
    }

    /// HMAC of `message` under `key` (RFC 2104).
    public static func authenticate(_ algorithm: Algorithm, key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                output.withUnsafeMutableBufferPointer { out in
                    COpenSSL.HMAC(
                        algorithm.evp, keyBytes.baseAddress, Int32(key.count),
                        messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, out.baseAddress,
                        &length)
                }
            }
        }
        guard ok != nil else { return [] }
        return Array(output.prefix(Int(length)))
    }

    /// Compares two MACs in time that does not depend on where they differ.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 }
        }
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
