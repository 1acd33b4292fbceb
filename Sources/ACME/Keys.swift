import COpenSSL
import ZoneModel

/// URL-safe base64 without padding (RFC 7515 §2), as JWS and ACME use it.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = Array(Base64.encode(bytes).utf8)
        while text.last == UInt8(ascii: "=") { text.removeLast() }
        for index in text.indices {
            if text[index] == UInt8(ascii: "+") { text[index] = UInt8(ascii: "-") }
            if text[index] == UInt8(ascii: "/") { text[index] = UInt8(ascii: "_") }
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static func encode(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

    /// nil for anything that is not unpadded base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        var bytes = Array(text.utf8)
        guard !bytes.contains(UInt8(ascii: "+")), !bytes.contains(UInt8(ascii: "/")), !bytes.contains(UInt8(ascii: "="))
        else { return nil }
        for index in bytes.indices {
            if bytes[index] == UInt8(ascii: "-") { bytes[index] = UInt8(ascii: "+") }
            if bytes[index] == UInt8(ascii: "_") { bytes[index] = UInt8(ascii: "/") }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Base64.decode(String(decoding: bytes, as: UTF8.self))
    }
}

/// Why a key, a signature or a certificate could not be made or read.
public struct ACMECryptoError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// SHA-256 through the system OpenSSL.
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    let ok = bytes.withUnsafeBytes { raw in
        out.withUnsafeMutableBytes { frontdoor_sha256(raw.baseAddress, raw.count, $0.baseAddress) }
    }
    precondition(ok == 1, "SHA-256 failed")
    return out
}

/// An ECDSA P-256 key: the ACME account's (it signs every request, ES256) or a certificate's.
public final class ECKey: @unchecked Sendable {
    let key: OpaquePointer

    init(key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(self.key) }

    /// A new key.
    public static func generate() throws(ACMECryptoError) -> ECKey {
        guard let key = frontdoor_tls_new_p256_key() else { throw ACMECryptoError("cannot make a P-256 key") }
        return ECKey(key: key)
    }

    /// The key in PEM text; it must be a P-256 key.
    public init(pem: [UInt8]) throws(ACMECryptoError) {
        guard let key = pem.withUnsafeBytes({ frontdoor_tls_read_key($0.baseAddress, Int32($0.count)) }) else {
            throw ACMECryptoError("not a PEM private key")
        }
        var point = [UInt8](repeating: 0, count: 65)
        guard frontdoor_ec_public_point(key, &point) == 1 else {
            EVP_PKEY_free(key)
            throw ACMECryptoError("not an ECDSA P-256 key")
        }
        self.key = key
    }

    /// PKCS#8 PEM text of the private key.
    public var pem: [UInt8] {
        var out = [UInt8](repeating: 0, count: 1024)
        let length = frontdoor_tls_pem(nil, self.key, &out, out.count)
        precondition(length > 0, "a P-256 key fits in 1 KiB of PEM")
        return Array(out.prefix(length))
    }

    /// The public key as a JWK (RFC 7517), members in the order RFC 7638 hashes them.
    public var jwk: [(String, String)] {
        var point = [UInt8](repeating: 0, count: 65)
        precondition(frontdoor_ec_public_point(self.key, &point) == 1, "checked when the key was made")
        return [
            ("crv", "P-256"), ("kty", "EC"), ("x", Base64URL.encode(Array(point[1..<33]))),
            ("y", Base64URL.encode(Array(point[33..<65]))),
        ]
    }

    /// The JWK's text: compact, members sorted (RFC 7638 §3), which is also what the thumbprint hashes.
    public var jwkText: String {
        "{" + self.jwk.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",") + "}"
    }

    /// The JWK thumbprint (RFC 7638), base64url: the second half of every key authorisation.
    public var thumbprint: String { Base64URL.encode(sha256(Array(self.jwkText.utf8))) }

    /// The ES256 signature of `bytes` (r ‖ s).
    public func sign(_ bytes: [UInt8]) throws(ACMECryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { frontdoor_es256_sign(self.key, $0.baseAddress, $0.count, &out) }
        guard ok == 1 else { throw ACMECryptoError("cannot sign with the account key") }
        return out
    }

    /// A DER certificate signing request for `names` with this key.
    public func certificateRequest(names: [String]) throws(ACMECryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 8192 + names.reduce(0) { $0 + $1.utf8.count * 2 })
        let length = frontdoor_csr_der(self.key, names.joined(separator: "\n"), &out, out.count)
        guard length > 0 else { throw ACMECryptoError("cannot make a certificate request for \(names)") }
        return Array(out.prefix(length))
    }
}

/// What renewal needs to know of an issued certificate (the first of a PEM chain).
public struct IssuedCertificate: Sendable, Equatable {
    /// Seconds since the epoch.
    public var notBefore: Int
    public var notAfter: Int
    /// The DNS names of its subjectAltName.
    public var names: [String]
    /// Its ACME Renewal Information identifier (RFC 9773 §4.1): base64url of the authority key identifier,
    /// a dot, base64url of the serial number's DER octets; nil without an authority key identifier.
    public var renewalID: String?

    public init(notBefore: Int, notAfter: Int, names: [String], renewalID: String?) {
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.names = names
        self.renewalID = renewalID
    }

    /// The first certificate of `pem`.
    public init(pem: [UInt8]) throws(ACMECryptoError) {
        guard let certificate = pem.withUnsafeBytes({ frontdoor_tls_read_certificate($0.baseAddress, Int32($0.count)) })
        else { throw ACMECryptoError("not a PEM certificate") }
        defer { X509_free(certificate) }
        let notBefore = frontdoor_certificate_time(certificate, 0)
        let notAfter = frontdoor_certificate_time(certificate, 1)
        guard notBefore >= 0, notAfter > notBefore else { throw ACMECryptoError("unreadable validity dates") }
        self.notBefore = Int(notBefore)
        self.notAfter = Int(notAfter)
        var names: [String] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let length = frontdoor_tls_dns_name(certificate, Int32(names.count), &buffer, Int32(buffer.count))
            guard length >= 0 else { break }
            names.append(String(decoding: buffer.prefix(Int(length)), as: UTF8.self))
        }
        self.names = names
        var identifier = [UInt8](repeating: 0, count: 64)
        var serial = [UInt8](repeating: 0, count: 64)
        let identifierLength = frontdoor_certificate_authority_key_id(certificate, &identifier, Int32(identifier.count))
        let serialLength = frontdoor_certificate_serial(certificate, &serial, Int32(serial.count))
        if identifierLength > 0 && serialLength > 0 {
            self.renewalID =
                Base64URL.encode(Array(identifier.prefix(Int(identifierLength)))) + "."
                + Base64URL.encode(Array(serial.prefix(Int(serialLength))))
        } else {
            self.renewalID = nil
        }
    }
}
