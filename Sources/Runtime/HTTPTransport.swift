import CSys
import TLS

#if canImport(Glibc)
    import Glibc
#endif

/// The proxy loop's transport seam: how bytes cross one connection's socket, client side or backend side.
/// The loop never calls recv(2) or send(2) itself; it reads, writes and asks whether a body may be spliced
/// through this, so a TLS-terminating transport is one more case here and not branches in the loop.
///
/// A transport that does its own handshake (TLS) runs it inside `receive` and `send`: both report
/// `wouldBlock` until application bytes move (and `readWantsWritable` when the handshake waits to write).
/// A passthrough site will be a plain transport whose session starts as a tunnel.
enum Transport {
    /// TCP as it is: the socket's bytes are the stream's bytes, and a body may go kernel to kernel.
    case plain
    /// TLS terminated here (OpenSSL through the TLS module): no splice, since the bytes are encrypted in the
    /// process.
    case tls(TLSStream)

    /// What a read did.
    enum Read {
        /// This many bytes are at the start of the buffer.
        case bytes(Int)
        /// Nothing to read now; epoll says when.
        case wouldBlock
        /// The peer finished sending (end of stream).
        case closed
        /// The connection is broken (reset, or a transport error).
        case failed
    }

    /// What a write did.
    enum Write {
        /// This many bytes from the start were taken.
        case sent(Int)
        /// The socket takes nothing now; epoll says when.
        case wouldBlock
        /// The peer is gone.
        case failed
    }

    /// Reads what is there, up to the buffer's size.
    @inline(__always)
    func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Read {
        switch self {
        case .plain:
            while true {
                let got = recv(fd, buffer.baseAddress, buffer.count, 0)
                if got > 0 { return .bytes(got) }
                if got == 0 { return .closed }
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .wouldBlock
                default: return .failed
                }
            }
        case .tls(let stream):
            switch stream.read(into: buffer) {
            case .bytes(let count): return .bytes(count)
            case .wouldBlock: return .wouldBlock
            case .closed: return .closed
            case .failed: return .failed
            }
        }
    }

    /// Writes what the socket takes now. `more` says that more bytes follow at once (MSG_MORE): the kernel
    /// holds a partial segment for them.
    @inline(__always)
    func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, more: Bool) -> Write {
        switch self {
        case .plain:
            let flags = Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0)
            while true {
                let written = Glibc.send(fd, bytes.baseAddress, bytes.count, flags)
                if written >= 0 { return .sent(written) }
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .wouldBlock
                default: return .failed
                }
            }
        case .tls(let stream):
            switch stream.write(bytes) {
            case .sent(let count): return .sent(count)
            case .wouldBlock: return .wouldBlock
            case .failed: return .failed
            }
        }
    }

    /// Whether the socket's bytes are the stream's bytes, so splice(2) may move a body between descriptors
    /// without it passing through the process (never for TLS without kernel TLS).
    var splices: Bool {
        switch self {
        case .plain: true
        case .tls: false
        }
    }

    /// A read is waiting for the socket to become writable (a TLS handshake message that did not fit): the
    /// loop asks epoll for writability and reads again then.
    var readWantsWritable: Bool {
        switch self {
        case .plain: false
        case .tls(let stream): stream.readWantsWritable
        }
    }

    /// Ends the stream before its socket is closed (TLS: close_notify, best effort).
    func finish() {
        switch self {
        case .plain: break
        case .tls(let stream): stream.shutdown()
        }
    }
}
