import COpenSSL
import CSys
import EventLoop
import HTTPWire
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 client for provider APIs and echo URLs: one request per connection, every wait bounded,
/// HTTPS through the system OpenSSL with certificate and host name verification always on (a CA file can
/// replace the system's trust store).
public enum HTTPClient {
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(method: String, url: String, headers: [(String, String)], body: [UInt8]) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        /// The header fields in order, names as sent.
        public var headers: [(String, String)] = []
        public var text: String { String(decoding: self.body, as: UTF8.self) }

        public init(status: Int, body: [UInt8], headers: [(String, String)] = []) {
            self.status = status
            self.body = body
            self.headers = headers
        }

        /// The first field named `name` (any case), its value trimmed.
        public func header(_ name: String) -> String? {
            self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        /// Every field named `name` (any case).
        public func headers(_ name: String) -> [String] {
            self.headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }
    }

    /// The parts of an `http(s)://host[:port]/path?query` URL.
    /// The project and its version, as dyndns2 providers ask clients to identify themselves (and nothing
    /// made up: no URL the project does not have).
    public static let userAgent = "frontdoor/\(Version.text)"

    struct Target {
        var tls: Bool
        var host: String
        var port: UInt16
        var path: String

        /// The Host field: the host, bracketed when it is an IPv6 address, with the port unless it is the
        /// scheme's default (RFC 9110 §7.2).
        var hostField: String {
            let host = self.host.contains(":") ? "[\(self.host)]" : self.host
            return self.port == (self.tls ? 443 : 80) ? host : "\(host):\(self.port)"
        }

        init(_ url: String) throws(DynDNSError) {
            let rest: Substring
            if url.hasPrefix("https://") {
                self.tls = true
                rest = url.dropFirst(8)
            } else if url.hasPrefix("http://") {
                self.tls = false
                rest = url.dropFirst(7)
            } else {
                throw .badReply("URL must start with http:// or https://: \(url)")
            }
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let path = rest.dropFirst(authority.count)
            self.path = path.isEmpty ? "/" : (path.first == "?" ? "/" + path : String(path))
            var host = Substring(authority)
            var port: UInt16 = self.tls ? 443 : 80
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { throw .badReply("bad IPv6 literal in \(url)") }
                let after = host[host.index(after: close)...]
                host = host[host.index(after: host.startIndex)..<close]
                if after.hasPrefix(":") {
                    guard let value = UInt16(after.dropFirst()) else { throw .badReply("bad port in \(url)") }
                    port = value
                }
            } else if let colon = host.lastIndex(of: ":") {
                guard let value = UInt16(host[host.index(after: colon)...]) else {
                    throw .badReply("bad port in \(url)")
                }
                port = value
                host = host[..<colon]
            }
            guard !host.isEmpty else { throw .badReply("no host in \(url)") }
            self.host = String(host)
            self.port = port
        }

        /// The address to connect to: an IP literal as is, else the first getaddrinfo answer.
        func resolve() throws(DynDNSError) -> SocketAddress {
            if let address = IPAddress(self.host) { return SocketAddress(address: address, port: self.port) }
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(self.host, nil, &hints, &result) == 0, let first = result else {
                throw .unreachable("cannot resolve \(self.host)")
            }
            defer { freeaddrinfo(result) }
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let current = entry {
                if let address = current.pointee.ai_addr {
                    let parsed = address.withMemoryRebound(to: sockaddr_storage.self, capacity: 1) {
                        IPAddress(peer: $0)
                    }
                    if let parsed { return SocketAddress(address: parsed, port: self.port) }
                }
                entry = current.pointee.ai_next
            }
            throw .unreachable("cannot resolve \(self.host)")
        }
    }

    /// Sends `request` and reads the whole response (at most 1 MiB of body) within `timeout` milliseconds.
    public static func request(_ request: Request, timeout: UInt64 = 10_000, caFile: String? = nil)
        throws(DynDNSError) -> Response
    {
        let target = try Target(request.url)
        let socket = try BlockingSocket(tcp: try target.resolve(), timeout: timeout)
        let channel: Channel = target.tls ? try TLSChannel(socket: socket, host: target.host, caFile: caFile) : socket
        var head = "\(request.method) \(target.path) HTTP/1.1\r\nHost: \(target.hostField)\r\n"
        head += "User-Agent: \(HTTPClient.userAgent)\r\nConnection: close\r\n"
        for (name, value) in request.headers { head += "\(name): \(value)\r\n" }
        if !request.body.isEmpty || request.method == "POST" || request.method == "PUT" || request.method == "PATCH" {
            head += "Content-Length: \(request.body.count)\r\n"
        }
        head += "\r\n"
        try channel.write(Array(head.utf8) + request.body)
        var buffer: [UInt8] = []
        var parsed: HTTPResponseHead?
        while parsed == nil {
            let chunk = try channel.read()
            guard !chunk.isEmpty else { throw .badReply("the connection closed before a response head") }
            buffer += chunk
            do {
                parsed = try buffer.withUnsafeBytes { raw throws(HTTPRequestError) in
                    try HTTPResponseParser.parse(raw, headRequest: request.method == "HEAD")
                }
            } catch {
                throw .badReply("unreadable response head: \(error)")
            }
            if parsed == nil && buffer.count > 65536 { throw .badReply("response head too large") }
        }
        guard let head = parsed else { throw .badReply("no response") }
        var headers: [(String, String)] = []
        for field in head.fields {
            let line = buffer[field]
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[line.index(after: colon)...], as: UTF8.self)
            headers.append((name, value.trimmingBlanks))
        }
        var rest = Array(buffer[head.length...])
        let limit = 1 << 20
        var body: [UInt8] = []
        switch head.framing {
        case .none:
            break
        case .contentLength(let length):
            guard length <= UInt64(limit) else { throw .badReply("response body too large") }
            while rest.count < Int(length) {
                let chunk = try channel.read()
                guard !chunk.isEmpty else { throw .badReply("the response body was cut short") }
                rest += chunk
            }
            body = Array(rest.prefix(Int(length)))
        case .untilClose:
            while true {
                let chunk = try channel.read()
                if chunk.isEmpty { break }
                rest += chunk
                guard rest.count <= limit else { throw .badReply("response body too large") }
            }
            body = rest
        case .chunked:
            var decoder = ChunkedDecoder()
            var pending = rest
            while !decoder.isComplete {
                if pending.isEmpty {
                    pending = try channel.read()
                    guard !pending.isEmpty else { throw .badReply("the chunked body was cut short") }
                }
                let input = pending
                let used: Int
                do {
                    used = try input.withUnsafeBytes { raw throws(HTTPRequestError) in
                        try decoder.feed(raw) { body += input[$0] }
                    }
                } catch {
                    throw .badReply("bad chunked body: \(error)")
                }
                pending.removeFirst(used)
                guard body.count <= limit else { throw .badReply("response body too large") }
            }
        }
        return Response(status: head.status, body: body, headers: headers)
    }
}

/// Bytes in and out of a connection, plain or TLS.
protocol Channel {
    func write(_ bytes: [UInt8]) throws(DynDNSError)
    /// Some bytes; empty at end of stream.
    func read() throws(DynDNSError) -> [UInt8]
}

extension BlockingSocket: Channel {
    func write(_ bytes: [UInt8]) throws(DynDNSError) { try self.send(bytes) }
    func read() throws(DynDNSError) -> [UInt8] { try self.receive(maximum: 16384) }
}

/// TLS over a connected socket: the peer's certificate must chain to a trusted CA and name `host`.
final class TLSChannel: Channel {
    let socket: BlockingSocket
    let context: OpaquePointer
    let ssl: OpaquePointer

    init(socket: BlockingSocket, host: String, caFile: String?) throws(DynDNSError) {
        self.socket = socket
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw .unreachable("TLS: cannot create a context") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                SSL_CTX_free(context)
                throw .unreachable("TLS: cannot load CA file \(caFile)")
            }
        } else {
            SSL_CTX_set_default_verify_paths(context)
        }
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            throw .unreachable("TLS: cannot create a session")
        }
        self.context = context
        self.ssl = ssl
        _ = frontdoor_tls_set_socket(ssl, socket.fd, nil, 0)
        if IPAddress(host) == nil { _ = frontdoor_tls_set_sni(ssl, host) }
        // Host name (or IP address) verification against the certificate.
        if IPAddress(host) != nil {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            SSL_set1_host(ssl, host)
        }
        while true {
            let result = SSL_connect(ssl)
            if result == 1 { break }
            try self.wait(result, doing: "handshake with \(host)")
        }
    }

    deinit {
        SSL_shutdown(self.ssl)
        SSL_free(self.ssl)
        SSL_CTX_free(self.context)
    }

    /// After a failed call: wait for the socket when OpenSSL asks to, else throw what went wrong.
    func wait(_ result: Int32, doing what: String) throws(DynDNSError) {
        let error = SSL_get_error(self.ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ:
            guard self.socket.wait(Int16(POLLIN)) else { throw .unreachable("TLS \(what): timed out") }
        case SSL_ERROR_WANT_WRITE:
            guard self.socket.wait(Int16(POLLOUT)) else { throw .unreachable("TLS \(what): timed out") }
        default:
            let verify = SSL_get_verify_result(self.ssl)
            if verify != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                throw .unreachable("TLS \(what): certificate not trusted (\(reason))")
            }
            var text = [CChar](repeating: 0, count: 256)
            let code = frontdoor_tls_error_text(&text, text.count)
            let reason =
                code == 0
                ? "connection failed"
                : String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .unreachable("TLS \(what): \(reason)")
        }
    }

    func write(_ bytes: [UInt8]) throws(DynDNSError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                SSL_write(self.ssl, raw.baseAddress.map { $0 + offset }, Int32(raw.count - offset))
            }
            if result > 0 {
                offset += Int(result)
            } else {
                try self.wait(result, doing: "write")
            }
        }
    }

    func read() throws(DynDNSError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let result = buffer.withUnsafeMutableBytes { SSL_read(self.ssl, $0.baseAddress, Int32($0.count)) }
            if result > 0 { return Array(buffer.prefix(Int(result))) }
            let error = SSL_get_error(self.ssl, result)
            if error == SSL_ERROR_ZERO_RETURN { return [] }
            // A peer that closes without close_notify: treat as end of stream (framing catches truncation).
            if error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 { return [] }
            try self.wait(result, doing: "read")
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingBlanks: String {
        let bytes = Array(self.utf8)
        guard let first = bytes.firstIndex(where: { $0 != 32 && $0 != 9 }),
            let last = bytes.lastIndex(where: { $0 != 32 && $0 != 9 })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
