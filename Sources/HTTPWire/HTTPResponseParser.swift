/// A parsed response head from a backend: ranges into the read buffer (RFC 9112 §4, §6.3).
public struct HTTPResponseHead: Equatable, Sendable {
    public var status: Int
    public var minorVersion: Int
    public var fields: [Range<Int>]
    /// How the body ends: none (HEAD, 1xx, 204, 304), a length, chunked, or the connection closing.
    public var framing: ResponseFraming
    /// Whether the backend keeps the connection open after this response.
    public var keepAlive: Bool
    public var length: Int

    public static func == (lhs: HTTPResponseHead, rhs: HTTPResponseHead) -> Bool {
        lhs.status == rhs.status && lhs.minorVersion == rhs.minorVersion && lhs.fields == rhs.fields
            && lhs.framing == rhs.framing && lhs.keepAlive == rhs.keepAlive && lhs.length == rhs.length
    }
}

/// How a response body is delimited.
public enum ResponseFraming: Equatable, Sendable {
    case none
    case contentLength(UInt64)
    case chunked
    /// Until the backend closes (RFC 9112 §6.3 rule 8): the client connection must close after it too.
    case untilClose
}

/// Parses backend response heads with the same strictness as requests: an ambiguous response is a 502.
public enum HTTPResponseParser {
    /// Parses the head at the start of `buffer` for a request with method HEAD when `headRequest`; nil
    /// while incomplete.
    public static func parse(_ buffer: UnsafeRawBufferPointer, headRequest: Bool) throws(HTTPRequestError)
        -> HTTPResponseHead?
    {
        guard let lineEnd = try HTTPRequestParser.lineEnd(buffer, from: 0, limit: HTTPRequestParser.maximumRequestLine)
        else {
            if buffer.count > HTTPRequestParser.maximumRequestLine { throw .badRequest("status line too long") }
            return nil
        }
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        guard lineEnd >= 12, HTTPRequestParser.matches(buffer, 0, "HTTP/1."), buffer[8] == 32 else {
            throw .badRequest("bad status line")
        }
        let minor = Int(buffer[7]) - 48
        guard (0...9).contains(minor) else { throw .badRequest("bad status line") }
        var status = 0
        for index in 9..<12 {
            let digit = Int(buffer[index]) - 48
            guard (0...9).contains(digit) else { throw .badRequest("bad status code") }
            status = status * 10 + digit
        }
        guard status >= 100, lineEnd == 12 || buffer[12] == 32 else { throw .badRequest("bad status code") }
        var head = HTTPResponseHead(
            status: status, minorVersion: min(minor, 1), fields: [], framing: .untilClose, keepAlive: minor >= 1,
            length: 0)
        head.fields.reserveCapacity(16)
        var position = lineEnd + 2
        var contentLength: UInt64? = nil
        var transferEncoding: [Range<Int>] = []
        var close = false
        var keepAlive = false
        while true {
            guard
                let end = try HTTPRequestParser.lineEnd(
                    buffer, from: position, limit: HTTPRequestParser.maximumHeaderBytes)
            else {
                if buffer.count - lineEnd > HTTPRequestParser.maximumHeaderBytes { throw .headersTooLarge }
                return nil
            }
            if end == position {
                position += 2
                break
            }
            let (name, value) = try HTTPRequestParser.field(buffer, at: position, end: end)
            guard head.fields.count < HTTPRequestParser.maximumFields else { throw .headersTooLarge }
            head.fields.append(position..<end)
            if HTTPRequestParser.named(buffer, name, "content-length") {
                try HTTPRequestParser.contentLength(buffer, value, into: &contentLength)
            } else if HTTPRequestParser.named(buffer, name, "transfer-encoding") {
                transferEncoding += HTTPRequestParser.list(buffer, value)
            } else if HTTPRequestParser.named(buffer, name, "connection") {
                for option in HTTPRequestParser.list(buffer, value) {
                    if HTTPRequestParser.equalsIgnoringCase(buffer, option, "close") { close = true }
                    if HTTPRequestParser.equalsIgnoringCase(buffer, option, "keep-alive") { keepAlive = true }
                }
            }
            position = end + 2
        }
        head.length = position
        head.keepAlive = minor >= 1 ? !close : keepAlive && !close
        // RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304, whatever the fields say.
        if headRequest || status < 200 || status == 204 || status == 304 {
            head.framing = .none
        } else if !transferEncoding.isEmpty {
            guard contentLength == nil else { throw .badRequest("Content-Length with Transfer-Encoding") }
            if try HTTPRequestParser.endsInChunked(buffer, transferEncoding) {
                head.framing = .chunked
            } else {
                head.framing = .untilClose
                head.keepAlive = false
            }
        } else if let contentLength {
            head.framing = contentLength == 0 ? .none : .contentLength(contentLength)
        } else {
            head.framing = .untilClose
            head.keepAlive = false
        }
        return head
    }
}
