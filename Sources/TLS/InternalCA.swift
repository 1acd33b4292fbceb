import COpenSSL
import Files

#if canImport(Glibc)
    import Glibc
#endif

/// Frontdoor's own certificate authority, for names no public CA will sign (`.home.arpa`, `.lan`, private
/// zones), as Caddy's internal issuer: a root made once in the state directory (its key 0600, never leaving
/// the machine), and short-lived leaf certificates issued from it in memory and renewed before they expire.
/// Devices trust the root once (`frontdoor ca export`).
public final class InternalCA: @unchecked Sendable {
    let key: OpaquePointer
    let certificate: OpaquePointer
    /// The root certificate, PEM.
    public let rootPEM: [UInt8]
    public let directory: String

    /// Ten years: devices install the root once.
    static let rootValidity = 10 * 365 * 86_400
    /// A week; renewed when a third of it is left.
    public static let leafValidity = 7 * 86_400

    init(key: OpaquePointer, certificate: OpaquePointer, rootPEM: [UInt8], directory: String) {
        self.key = key
        self.certificate = certificate
        self.rootPEM = rootPEM
        self.directory = directory
    }

    deinit {
        X509_free(self.certificate)
        EVP_PKEY_free(self.key)
    }

    public var rootPath: String { joinPath(self.directory, "root.crt") }
    var keyPath: String { joinPath(self.directory, "root.key") }

    /// The CA kept in `directory` (`root.crt`, `root.key`), made there first if it holds none; `created`
    /// says it was just made.
    public static func open(directory: String) throws(TLSError) -> (ca: InternalCA, created: Bool) {
        let files = DiskFiles()
        let certificatePath = joinPath(directory, "root.crt")
        let keyPath = joinPath(directory, "root.key")
        if files.mode(certificatePath) == nil && files.mode(keyPath) == nil {
            return (try InternalCA.create(directory: directory), true)
        }
        guard let mode = files.mode(keyPath) else {
            throw TLSError("\(keyPath) is missing beside \(certificatePath) (remove both to make a new CA)")
        }
        guard mode & 0o077 == 0 else {
            throw TLSError("\(keyPath) is readable by others (mode \(String(mode, radix: 8))): chmod 600 it")
        }
        let keyPEM: [UInt8]
        let rootPEM: [UInt8]
        switch (files.read(keyPath), files.read(certificatePath)) {
        case (.success(let keyBytes), .success(let certificateBytes)):
            keyPEM = keyBytes
            rootPEM = certificateBytes
        case (.failure(let problem), _):
            throw TLSError("\(keyPath): \(problem)")
        case (_, .failure(let problem)):
            throw TLSError("\(certificatePath): \(problem)")
        }
        guard let key = keyPEM.withUnsafeBytes({ frontdoor_tls_read_key($0.baseAddress, Int32($0.count)) }) else {
            throw TLSError.openSSL("\(keyPath): not a PEM private key")
        }
        guard
            let certificate = rootPEM.withUnsafeBytes({
                frontdoor_tls_read_certificate($0.baseAddress, Int32($0.count))
            })
        else {
            EVP_PKEY_free(key)
            throw TLSError.openSSL("\(certificatePath): not a PEM certificate")
        }
        guard X509_check_private_key(certificate, key) == 1 else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw TLSError.openSSL("\(keyPath) does not belong to \(certificatePath)")
        }
        return (InternalCA(key: key, certificate: certificate, rootPEM: rootPEM, directory: directory), false)
    }

    static func create(directory: String) throws(TLSError) -> InternalCA {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw TLSError("cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        guard let key = frontdoor_tls_new_p256_key() else { throw TLSError.openSSL("cannot make a key") }
        var random = [UInt8](repeating: 0, count: 4)
        _ = RAND_bytes(&random, Int32(random.count))
        let tag = random.map { String($0, radix: 16).leftPadded(2) }.joined()
        let extensions = [
            "basicConstraints=critical,CA:TRUE,pathlen:0", "keyUsage=critical,keyCertSign,cRLSign",
            "subjectKeyIdentifier=hash",
        ]
        guard
            let certificate = frontdoor_tls_sign(
                key, "Frontdoor Local CA \(tag)", InternalCA.rootValidity, extensions.joined(separator: "\n"), nil, nil)
        else {
            EVP_PKEY_free(key)
            throw TLSError.openSSL("cannot sign the root certificate")
        }
        let rootPEM = InternalCA.pem(certificate: certificate)
        let keyPEM = InternalCA.pem(key: key)
        let files = DiskFiles()
        // The key first: a root certificate without its key would be useless.
        if let problem = files.writeAtomically(keyPEM, to: joinPath(directory, "root.key"), mode: 0o600)
            ?? files.writeAtomically(rootPEM, to: joinPath(directory, "root.crt"), mode: 0o644)
        {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw TLSError(problem.description)
        }
        return InternalCA(key: key, certificate: certificate, rootPEM: rootPEM, directory: directory)
    }

    /// A leaf certificate for `names` (the first is its subject), valid for `leafValidity`, with a new key.
    public func issue(_ names: [String], validity: Int = InternalCA.leafValidity) throws(TLSError) -> CertificateSource
    {
        guard let first = names.first else { throw TLSError("a certificate needs a name") }
        // Names come from the compiled model (host names, '*.' wildcards); nothing else reaches the config text.
        guard names.allSatisfy({ $0.utf8.allSatisfy { InternalCA.isNameByte($0) } }) else {
            throw TLSError("'\(names.joined(separator: ", "))' cannot be put in a certificate")
        }
        guard let key = frontdoor_tls_new_p256_key() else { throw TLSError.openSSL("cannot make a key") }
        defer { EVP_PKEY_free(key) }
        let extensions = [
            "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always",
            "subjectAltName=" + names.map { "DNS:" + $0 }.joined(separator: ","),
        ]
        guard
            let leaf = frontdoor_tls_sign(
                key, first, validity, extensions.joined(separator: "\n"), self.certificate, self.key)
        else {
            throw TLSError.openSSL("cannot issue a certificate for \(first)")
        }
        defer { X509_free(leaf) }
        return .memory(
            chain: InternalCA.pem(certificate: leaf), key: InternalCA.pem(key: key), origin: "internal CA")
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x2A
    }

    static func pem(certificate: OpaquePointer? = nil, key: OpaquePointer? = nil) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let length = frontdoor_tls_pem(certificate, key, &buffer, buffer.count)
        return length > 0 ? Array(buffer[0..<length]) : []
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
    }
}
