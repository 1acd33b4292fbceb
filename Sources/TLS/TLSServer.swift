import COpenSSL
import Files

#if canImport(Glibc)
    import Glibc
#endif

/// Why certificates could not be served.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }

    /// The message with OpenSSL's reason for the last failure, and its error queue emptied.
    static func openSSL(_ what: String) -> TLSError {
        var buffer = [CChar](repeating: 0, count: 256)
        var reason = ""
        while frontdoor_tls_error_text(&buffer, buffer.count) != 0 {
            if reason.isEmpty { reason = TLSError.text(buffer) }
        }
        return TLSError(reason.isEmpty ? what : "\(what): \(TLSError.short(reason))")
    }

    /// A NUL-terminated C string in a buffer.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// OpenSSL's "error:0A00018F:SSL routines::ee key too small" as "ee key too small".
    static func short(_ reason: String) -> String {
        reason.split(separator: ":", omittingEmptySubsequences: false).last.map(String.init) ?? reason
    }
}

/// A certificate chain and its private key, as files.
public struct CertificateFiles: Hashable, Sendable {
    public var chain: String
    public var key: String

    public init(chain: String, key: String) {
        self.chain = chain
        self.key = key
    }

    /// The `NAME.crt` + `NAME.key` pairs of a directory, sorted by name; a `.crt` without its key is a problem.
    package static func pairs(in directory: String, files: some SourceFiles) -> Result<[CertificateFiles], TLSError> {
        guard let names = files.list(directory) else { return .failure(TLSError("\(directory): cannot be listed")) }
        var pairs: [CertificateFiles] = []
        for name in names where name.hasSuffix(".crt") {
            let stem = String(name.dropLast(4))
            guard names.contains(stem + ".key") else {
                return .failure(TLSError("\(joinPath(directory, name)) has no key beside it (\(stem).key)"))
            }
            pairs.append(CertificateFiles(chain: joinPath(directory, name), key: joinPath(directory, stem + ".key")))
        }
        return .success(pairs)
    }
}

/// Where a served certificate comes from.
public enum CertificateSource: Hashable, Sendable {
    /// PEM files the operator names.
    case files(CertificateFiles)
    /// A PEM chain and key held in memory (the internal CA's leaves); `origin` says where they came from.
    case memory(chain: [UInt8], key: [UInt8], origin: String)
}

/// One certificate loaded into its own OpenSSL context, which the handshake switches to once SNI chose it.
public final class ServedCertificate: @unchecked Sendable {
    let context: OpaquePointer
    /// The chain's file, or where an in-memory one came from ("internal CA").
    public let origin: String
    /// The DNS names of its subjectAltName.
    public let names: [String]
    /// Whole days until it expires (negative once it has).
    public let daysLeft: Int
    /// Seconds until it expires.
    public let secondsLeft: Int
    public let issuer: String

    init(_ source: CertificateSource) throws(TLSError) {
        let context = try TLSServer.makeContext()
        let origin: String
        switch source {
        case .files(let files):
            origin = files.chain
            guard SSL_CTX_use_certificate_chain_file(context, files.chain) == 1 else {
                SSL_CTX_free(context)
                throw TLSError.openSSL("\(files.chain): not a PEM certificate chain")
            }
            guard SSL_CTX_use_PrivateKey_file(context, files.key, SSL_FILETYPE_PEM) == 1 else {
                SSL_CTX_free(context)
                let error = TLSError.openSSL("\(files.key): not a PEM private key")
                // OpenSSL checks the key against the certificate as it loads it.
                if error.description.hasSuffix("key values mismatch") {
                    throw TLSError("\(files.key) does not belong to \(files.chain) (the key values do not match)")
                }
                throw error
            }
        case .memory(let chain, let key, let name):
            origin = name
            let loaded = chain.withUnsafeBytes { chainBytes in
                key.withUnsafeBytes { keyBytes in
                    frontdoor_tls_ctx_use_pem(
                        context, chainBytes.baseAddress, Int32(chainBytes.count), keyBytes.baseAddress,
                        Int32(keyBytes.count))
                }
            }
            guard loaded == 1 else {
                SSL_CTX_free(context)
                throw TLSError.openSSL("\(name): the certificate or its key cannot be used")
            }
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            SSL_CTX_free(context)
            throw TLSError.openSSL("\(origin): the key does not belong to the certificate")
        }
        guard let certificate = SSL_CTX_get0_certificate(context) else {
            SSL_CTX_free(context)
            throw TLSError("\(origin): no certificate")
        }
        var names: [String] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let length = frontdoor_tls_dns_name(certificate, Int32(names.count), &buffer, Int32(buffer.count))
            guard length >= 0 else { break }
            names.append(String(decoding: buffer[0..<Int(length)], as: UTF8.self))
        }
        guard !names.isEmpty else {
            SSL_CTX_free(context)
            throw TLSError("\(origin): names no DNS name in its subjectAltName (clients ignore the CN)")
        }
        var days: Int32 = 0
        var seconds: Int32 = 0
        ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(certificate))
        var issuerText = [CChar](repeating: 0, count: 256)
        X509_NAME_oneline(X509_get_issuer_name(certificate), &issuerText, Int32(issuerText.count))
        self.context = context
        self.origin = origin
        self.names = names
        self.daysLeft = Int(days)
        self.secondsLeft = Int(days) * 86_400 + Int(seconds)
        self.issuer = TLSError.text(issuerText)
    }

    deinit { SSL_CTX_free(self.context) }
}

/// The TLS side of the HTTPS listeners: TLS 1.2 and 1.3 only, Mozilla's "intermediate" suites, no
/// renegotiation, no 0-RTT, ALPN http/1.1, session resumption by tickets (keys made in memory, never
/// written, rotated: see `TicketKeys`) and by a session cache; SNI picks the certificate from a `CertificateTable`. A reload
/// builds a new one; connections keep the one they started with.
public final class TLSServer: @unchecked Sendable {
    /// The context every connection starts in: the settings, the session cache and the ticket keys.
    let initial: OpaquePointer
    public let table: CertificateTable<ServedCertificate>
    /// Every certificate served, in the order given.
    public let certificates: [ServedCertificate]
    /// The session-ticket keys every connection of this server seals and opens tickets with.
    public let ticketKeys: TicketKeys

    /// Loads `certificates`; `fallback` names the certificate (by one of its names) that clients sending an
    /// unknown name or none get — nil: they get an unrecognized_name alert. A name two certificates cover is
    /// served with the first. `ticketKeys`: the session-ticket keys (nil: fresh ones); a rebuild passes the
    /// previous server's keys on, so a reload costs no client its resumption.
    public init(sources: [CertificateSource], fallback: String? = nil, ticketKeys: TicketKeys? = nil)
        throws(TLSError)
    {
        var certificates: [ServedCertificate] = []
        var table = CertificateTable<ServedCertificate>()
        for source in sources {
            let certificate = try ServedCertificate(source)
            certificates.append(certificate)
            for name in certificate.names { table.insert(name, certificate) }
        }
        if let fallback {
            guard let certificate = table.lookup(fallback) else {
                throw TLSError("default certificate '\(fallback)': no certificate names it")
            }
            table.setFallback(certificate)
        }
        if let ticketKeys {
            self.ticketKeys = ticketKeys
        } else {
            self.ticketKeys = try TicketKeys(now: time(nil))
        }
        self.initial = try TLSServer.makeContext()
        self.table = table
        self.certificates = certificates
        frontdoor_tls_ctx_use_ticket_ring(self.initial)
        _ = frontdoor_tls_ctx_set_session_cache(self.initial, Int(SSL_SESS_CACHE_SERVER), 20_480)
        let sessionContext = Array("frontdoor".utf8)
        _ = SSL_CTX_set_session_id_context(self.initial, sessionContext, UInt32(sessionContext.count))
        frontdoor_tls_ctx_set_servername(
            self.initial, tlsServerNameCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { SSL_CTX_free(self.initial) }

    /// Loads certificate files.
    public convenience init(certificates: [CertificateFiles], fallback: String? = nil) throws(TLSError) {
        try self.init(sources: certificates.map(CertificateSource.files), fallback: fallback)
    }

    /// Loads the `NAME.crt` + `NAME.key` pairs of `directory` (the `tls` setting).
    public convenience init(directory: String, fallback: String?, ticketKeys: TicketKeys? = nil) throws(TLSError) {
        try self.init(directory: directory, fallback: fallback, files: DiskFiles(), ticketKeys: ticketKeys)
    }

    package convenience init(
        directory: String, fallback: String?, files: some SourceFiles, ticketKeys: TicketKeys? = nil
    ) throws(TLSError) {
        let pairs: [CertificateFiles]
        switch CertificateFiles.pairs(in: directory, files: files) {
        case .success(let found): pairs = found
        case .failure(let error): throw error
        }
        guard !pairs.isEmpty else { throw TLSError("\(directory): no NAME.crt and NAME.key pair") }
        try self.init(sources: pairs.map(CertificateSource.files), fallback: fallback, ticketKeys: ticketKeys)
    }

    /// A TLS stream for an accepted socket (the handshake runs on its first read), or nil when OpenSSL
    /// cannot make one (out of memory). `prefix`: bytes already read from the socket (a ClientHello read to
    /// route SNI passthrough), which OpenSSL gets first.
    public func stream(_ fd: Int32, prefix: [UInt8] = []) -> TLSStream? {
        guard let ssl = SSL_new(self.initial) else { return nil }
        // Not SSL_set_fd: its writes would raise SIGPIPE when a client has gone.
        let attached = prefix.withUnsafeBytes { frontdoor_tls_set_socket(ssl, fd, $0.baseAddress, $0.count) }
        guard attached == 1, frontdoor_tls_attach_ticket_ring(ssl, self.ticketKeys.ring) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSStream(ssl: ssl, fd: fd, owner: self)
    }

    /// Mozilla's "intermediate" TLS 1.2 suites (ECDHE only: no DH parameters to configure).
    static let intermediateCiphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    /// A context with the settings every certificate's context shares.
    static func makeContext() throws(TLSError) -> OpaquePointer {
        let context = try TLSServer.makeContext(method: TLS_server_method())
        _ = SSL_CTX_set_max_early_data(context, 0)
        // One TLS 1.3 ticket per handshake, not OpenSSL's two: a client resumes a connection with one (browsers
        // and curl use one each time), and each ticket costs a session copy, its sealing and its bytes.
        _ = SSL_CTX_set_num_tickets(context, 1)
        SSL_CTX_set_alpn_select_cb(context, tlsALPNCallback, nil)
        return context
    }

    /// A context for either side (the server's, or `TLSClient`'s to backends) with what both share: TLS 1.2
    /// and 1.3 only, the intermediate suites, the options and the modes.
    static func makeContext(method: OpaquePointer?) throws(TLSError) -> OpaquePointer {
        guard let context = SSL_CTX_new(method) else { throw TLSError.openSSL("cannot make a context") }
        guard frontdoor_tls_ctx_set_versions(context, TLS1_2_VERSION, TLS1_3_VERSION) == 1,
            SSL_CTX_set_cipher_list(context, TLSServer.intermediateCiphers) == 1,
            SSL_CTX_set_ciphersuites(context, TLSServer.tls13Suites) == 1
        else {
            SSL_CTX_free(context)
            throw TLSError.openSSL("cannot configure TLS versions and suites")
        }
        // A peer that closes without close_notify (most browsers) has simply closed: no error.
        _ = SSL_CTX_set_options(context, frontdoor_tls_server_options())
        // Partial writes, as send(2) does; the queue's buffer may move between retries; idle connections
        // give their read and write buffers back (about 34 KB each).
        _ = frontdoor_tls_ctx_set_mode(
            context,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)
                | Int(SSL_MODE_RELEASE_BUFFERS))
        return context
    }
}

/// SNI: switch the connection to the chosen certificate's context, or end the handshake with an alert.
private let tlsServerNameCallback:
    @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = {
        ssl, alert, argument in
        guard let ssl, let argument else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let server = Unmanaged<TLSServer>.fromOpaque(argument).takeUnretainedValue()
        let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        guard let certificate = server.table.lookup(name), SSL_set_SSL_CTX(ssl, certificate.context) != nil else {
            alert?.pointee = 112  // unrecognized_name (RFC 6066 §3)
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }
        return SSL_TLSEXT_ERR_OK
    }

/// ALPN: http/1.1 when the client offers it; otherwise no protocol is chosen (the client speaks HTTP/1.1
/// or gives up), rather than a failed handshake.
private let tlsALPNCallback:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, out, outLength, offered, offeredLength, _ in
        guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
        let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
        guard let chosen = ALPN.select(ALPN.http11, from: list) else { return SSL_TLSEXT_ERR_NOACK }
        out.pointee = offered + chosen.lowerBound
        outLength.pointee = UInt8(chosen.count)
        return SSL_TLSEXT_ERR_OK
    }
