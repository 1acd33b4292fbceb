import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// TLS from the proxy to `https://` backends: TLS 1.2 or 1.3, the certificate checked against the system's
/// CA store or a CA file and against the backend's name (or IP address), unless checking is off.
public final class TLSClient: @unchecked Sendable {
    let context: OpaquePointer
    public let verify: Bool

    /// `caFile`: a PEM file of trusted CAs; nil: the system's store. `verify` false: any certificate is
    /// accepted (an appliance's self-signed one).
    public init(verify: Bool, caFile: String?) throws(TLSError) {
        let context = try TLSServer.makeContext(method: TLS_client_method())
        if verify {
            if let caFile {
                guard SSL_CTX_load_verify_file(context, caFile) == 1 else {
                    SSL_CTX_free(context)
                    throw TLSError.openSSL("\(caFile): not a PEM file of CA certificates")
                }
            } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                SSL_CTX_free(context)
                throw TLSError.openSSL("the system's CA store cannot be loaded")
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        ERR_clear_error()
        self.context = context
        self.verify = verify
    }

    deinit { SSL_CTX_free(self.context) }

    /// A client stream on connected socket `fd` (the handshake runs in `handshake()`), or nil when OpenSSL
    /// cannot make one. `serverName`: sent as SNI and required in the certificate; else the certificate must
    /// name `ip` (the backend's address as text).
    public func stream(_ fd: Int32, serverName: String?, ip: String) -> TLSStream? {
        guard let ssl = SSL_new(self.context) else { return nil }
        let attached = frontdoor_tls_set_socket(ssl, fd, nil, 0)
        let named = frontdoor_tls_client_identity(ssl, serverName, self.verify && serverName == nil ? ip : nil)
        guard attached == 1, named == 1 else {
            SSL_free(ssl)
            ERR_clear_error()
            return nil
        }
        SSL_set_connect_state(ssl)
        return TLSStream(ssl: ssl, fd: fd, owner: self)
    }
}
