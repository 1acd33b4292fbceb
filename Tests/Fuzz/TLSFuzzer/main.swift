import FuzzDriver
import Glibc
import TLS

/// Any bytes as what a client sends to an HTTPS listener, through OpenSSL's record layer and handshake state
/// machine as the proxy drives them (Frontdoor's socket BIO, its SNI and ALPN callbacks, its ticket keys),
/// and through `ClientHello.peek`, which reads ClientHellos for SNI passthrough before OpenSSL does.
///
/// The first input byte picks how the rest arrives:
///   - even: as the connection's first bytes, the first (byte >> 1) of them handed over as the "already read"
///     prefix (as passthrough sniffing does) and the rest on the socket;
///   - odd: after a real TLS 1.3 handshake with Frontdoor's own TLS client has finished, as records on the
///     established connection (the record layer after the handshake: bad MACs, alerts, lengths, key updates).
/// The server must end with data, a close or a failure, never a crash, a hang or a leak (ASan checks).

/// The server: certificates for two names from an internal CA made once in a temporary directory.
nonisolated(unsafe) let server: TLSServer = {
    var template = Array("/tmp/frontdoor-tls-fuzz-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp") }
    let directory = String(cString: made)
    do {
        let (authority, _) = try InternalCA.open(directory: directory)
        return try TLSServer(
            sources: [try authority.issue(["www.example.com"]), try authority.issue(["*.lab.example.com"])],
            fallback: "www.example.com")
    } catch {
        fatalError("fuzz certificates: \(error)")
    }
}()
nonisolated(unsafe) let client: TLSClient = {
    do { return try TLSClient(verify: false, caFile: nil) } catch { fatalError("fuzz client: \(error)") }
}()
nonisolated(unsafe) let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

/// A connected non-blocking socket pair (client end, server end), with room for a whole input.
func pair() -> (Int32, Int32) {
    var ends: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &ends) == 0 else {
        fatalError("socketpair: \(errno)")
    }
    var size: Int32 = 1 << 20
    for end in ends {
        setsockopt(end, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(end, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    return (ends[0], ends[1])
}

/// Reads on the server until it has nothing more to say (a bounded number of steps).
func drain(_ stream: TLSStream) {
    for _ in 0..<64 {
        switch stream.read(into: buffer) {
        case .bytes: continue
        case .wouldBlock, .closed, .failed: return
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard let mode = input.first else { return 0 }
    let rest = UnsafeRawBufferPointer(rebasing: input[1...])
    _ = ClientHello.peek(rest)
    let (clientEnd, serverEnd) = pair()
    defer {
        close(clientEnd)
        close(serverEnd)
    }
    if mode & 1 == 0 {
        let cut = min(Int(mode >> 1), rest.count)
        guard let stream = server.stream(serverEnd, prefix: Array(rest[0..<cut])) else { return 0 }
        _ = send(clientEnd, rest.baseAddress.map { $0 + cut }, rest.count - cut, Int32(MSG_NOSIGNAL))
        shutdown(clientEnd, Int32(SHUT_WR))
        drain(stream)
        stream.shutdown()
        return 0
    }
    // A real handshake first, the two sides taking turns.
    guard let serverStream = server.stream(serverEnd),
        let clientStream = client.stream(clientEnd, serverName: "www.example.com", ip: "127.0.0.1")
    else { return 0 }
    var finished = false
    for _ in 0..<16 where !finished {
        _ = serverStream.read(into: buffer)
        switch clientStream.handshake() {
        case .done: finished = true
        case .wantsReadable, .wantsWritable: continue
        case .failed(let reason): fatalError("the fuzz handshake failed: \(reason)")
        }
    }
    guard finished else { fatalError("the fuzz handshake did not finish") }
    // The server's session tickets reach the client; then the fuzz bytes arrive as records.
    _ = clientStream.read(into: buffer)
    _ = send(clientEnd, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
    shutdown(clientEnd, Int32(SHUT_WR))
    drain(serverStream)
    serverStream.shutdown()
    return 0
}

exit(frontdoor_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in fuzzOne(data, size) })
