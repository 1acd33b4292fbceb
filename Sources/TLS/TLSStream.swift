import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// One TLS connection over a non-blocking socket: the handshake runs inside the first reads and writes.
/// Reads and writes say what they need next as `send(2)`/`recv(2)` would (the proxy loop's transport seam
/// maps them), plus whether a read waits for the socket to be writable (a handshake message that did not
/// fit), which epoll must then be asked for.
public final class TLSStream: @unchecked Sendable {
    let ssl: OpaquePointer
    let fd: Int32
    /// The server or client context whose callbacks the handshake calls: kept alive while this connection lives.
    let owner: AnyObject
    /// The last read stopped because the socket would not take a handshake message.
    public private(set) var readWantsWritable = false
    /// A plain HTTP request arrived instead of a ClientHello (and was answered with a plain 400).
    public private(set) var plainHTTP = false
    /// The peer closed or the connection broke: no close_notify is owed (or deliverable).
    var peerGone = false

    init(ssl: OpaquePointer, fd: Int32, owner: AnyObject) {
        self.ssl = ssl
        self.fd = fd
        self.owner = owner
    }

    deinit { SSL_free(self.ssl) }

    public enum Read {
        case bytes(Int)
        case wouldBlock
        case closed
        case failed
    }

    public enum Write {
        case sent(Int)
        case wouldBlock
        case failed
    }

    /// Reads decrypted bytes, up to the buffer's size.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Read {
        var count = 0
        if SSL_read_ex(self.ssl, buffer.baseAddress, buffer.count, &count) == 1 {
            self.readWantsWritable = false
            return .bytes(count)
        }
        switch SSL_get_error(self.ssl, 0) {
        case SSL_ERROR_WANT_READ:
            self.readWantsWritable = false
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            self.readWantsWritable = true
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            self.peerGone = true
            return .closed
        default:
            self.failed()
            return .failed
        }
    }

    /// What a handshake step did.
    public enum Handshake: Equatable {
        case done
        /// Call again when the socket is readable.
        case wantsReadable
        /// Call again when the socket is writable.
        case wantsWritable
        /// The handshake failed: why (the certificate check's reason when that was it).
        case failed(String)
    }

    /// Runs the handshake as far as the socket allows (a client's, before its first request is written).
    public func handshake() -> Handshake {
        if SSL_do_handshake(self.ssl) == 1 { return .done }
        switch SSL_get_error(self.ssl, 0) {
        case SSL_ERROR_WANT_READ: return .wantsReadable
        case SSL_ERROR_WANT_WRITE: return .wantsWritable
        default:
            self.peerGone = true
            if let failure = frontdoor_tls_verify_failure(self.ssl) {
                ERR_clear_error()
                return .failed("its certificate was refused: \(String(cString: failure))")
            }
            let error = TLSError.openSSL("the TLS handshake failed")
            return .failed(error.description)
        }
    }

    /// Encrypts and writes what the socket takes now.
    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) -> Write {
        guard bytes.count > 0 else { return .sent(0) }
        var count = 0
        if SSL_write_ex(self.ssl, bytes.baseAddress, bytes.count, &count) == 1 { return .sent(count) }
        switch SSL_get_error(self.ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        default:
            self.failed()
            return .failed
        }
    }

    /// Sends close_notify when Frontdoor ends a working connection (a timeout, a drain, `Connection: close`):
    /// best effort, the socket is closed next either way. Not after the peer closed or the connection broke.
    public func shutdown() {
        if !self.peerGone && SSL_is_init_finished(self.ssl) == 1 { _ = SSL_shutdown(self.ssl) }
        ERR_clear_error()
    }

    /// The handshake is done.
    public var established: Bool { SSL_is_init_finished(self.ssl) == 1 }
    /// The session was resumed (a ticket or the session cache) rather than a full handshake.
    public var resumed: Bool { SSL_session_reused(self.ssl) == 1 }
    /// TLS 1.3 was negotiated (else 1.2: nothing older is accepted).
    public var isTLS13: Bool { SSL_version(self.ssl) == TLS1_3_VERSION }
    /// "TLSv1.3", "TLSv1.2".
    public var version: String { String(cString: SSL_get_version(self.ssl)) }

    /// A fatal error: a plain HTTP request gets nginx's answer, written on the raw socket; the error queue is
    /// emptied either way (OpenSSL's per-thread queue must be empty before the next call of any connection).
    func failed() {
        self.peerGone = true
        let code = ERR_peek_error()
        if code != 0 && frontdoor_tls_error_is_http_request(code) == 1 {
            self.plainHTTP = true
            let page = Array(TLSStream.plainHTTPAnswer.utf8)
            _ = page.withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        ERR_clear_error()
    }

    static let plainHTTPAnswer =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 52\r\nConnection: close\r\n\r\n"
        + "The plain HTTP request was sent to the HTTPS port.\r\n"
}
