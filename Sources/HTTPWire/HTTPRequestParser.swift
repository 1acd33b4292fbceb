import ZoneModel

/// How a message's body is delimited (RFC 9112 §6).
public enum BodyFraming: Equatable, Sendable {
    case none
    case contentLength(UInt64)
    case chunked
}

/// A parsed request head: ranges into the caller's buffer, so nothing is copied (RFC 9112 §2–§5).
public struct HTTPRequestHead: Equatable, Sendable {
    public var method: Range<Int>
    public var target: Range<Int>
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Field names and values (values without surrounding white space).
    public var fields: [(name: Range<Int>, value: Range<Int>)]
    public var framing: BodyFraming
    /// The Host field's value (or the authority of an absolute-form target).
    public var host: Range<Int>?
    public var keepAlive: Bool
    public var expectContinue: Bool
    public var upgrade: Bool
    /// Octets of the buffer the head took, up to and including the empty line.
    public var length: Int

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.minorVersion == rhs.minorVersion
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
            && lhs.framing == rhs.framing && lhs.host == rhs.host && lhs.keepAlive == rhs.keepAlive
            && lhs.expectContinue == rhs.expectContinue && lhs.upgrade == rhs.upgrade && lhs.length == rhs.length
    }
}

/// Why a request is refused before it reaches a backend; each carries the status to answer with, after
/// which the connection is closed.
public enum HTTPRequestError: Error, Equatable, Sendable {
    /// 400: malformed syntax or an ambiguous message (request smuggling vectors among them).
    case badRequest(String)
    /// 414: the request line is longer than 8 KiB.
    case uriTooLong
    /// 431: the header section is larger than 64 KiB or has more than 100 fields.
    case headersTooLarge
    /// 505: a major version other than 1.
    case versionNotSupported
    /// 501: a transfer coding or method the proxy does not implement (RFC 9112 §6.1, RFC 9110 §9.1).
    case notImplemented(String)
    /// 417: an expectation other than 100-continue (RFC 9110 §10.1.1).
    case expectationFailed

    public var status: Int {
        switch self {
        case .badRequest: 400
        case .uriTooLong: 414
        case .expectationFailed: 417
        case .headersTooLarge: 431
        case .notImplemented: 501
        case .versionNotSupported: 505
        }
    }
}

/// Parses request heads strictly (RFC 9112), refusing everything a front end and a back end could read
/// differently: CL with TE, differing CLs, TE not ending in chunked, white space before a colon, obs-fold,
/// bare CR, NUL, bytes that are not allowed in a field name.
public enum HTTPRequestParser {
    public static let maximumRequestLine = 8 * 1024
    public static let maximumHeaderBytes = 64 * 1024
    public static let maximumFields = 100

    /// Parses the head at the start of `buffer`: nil while it is incomplete, the head once the empty line
    /// arrived. Feeding the same growing buffer again is cheap enough: heads are small.
    public static func parse(_ buffer: UnsafeRawBufferPointer) throws(HTTPRequestError) -> HTTPRequestHead? {
        var position = 0
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        while position + 1 < buffer.count && buffer[position] == 13 && buffer[position + 1] == 10 { position += 2 }
        guard
            let lineEnd = try HTTPRequestParser.lineEnd(
                buffer, from: position, limit: HTTPRequestParser.maximumRequestLine)
        else {
            if buffer.count - position > HTTPRequestParser.maximumRequestLine { throw .uriTooLong }
            return nil
        }
        // request-line = method SP request-target SP HTTP-version
        let method = try HTTPRequestParser.token(buffer, from: position, until: lineEnd, what: "method")
        guard method.upperBound < lineEnd, buffer[method.upperBound] == 32 else {
            throw .badRequest("bad request line")
        }
        let targetStart = method.upperBound + 1
        var targetEnd = targetStart
        while targetEnd < lineEnd && buffer[targetEnd] > 32 && buffer[targetEnd] < 127 { targetEnd += 1 }
        guard targetEnd > targetStart, targetEnd < lineEnd, buffer[targetEnd] == 32 else {
            throw .badRequest("bad request target")
        }
        let version = (targetEnd + 1)..<lineEnd
        guard version.count == 8, HTTPRequestParser.matches(buffer, version.lowerBound, "HTTP/"),
            buffer[version.lowerBound + 6] == 46
        else { throw .badRequest("bad HTTP version") }
        let major = Int(buffer[version.lowerBound + 5]) - 48
        let minor = Int(buffer[version.lowerBound + 7]) - 48
        guard (0...9).contains(major), (0...9).contains(minor) else { throw .badRequest("bad HTTP version") }
        guard major == 1 else { throw .versionNotSupported }
        try HTTPRequestParser.checkTarget(buffer, method: method, target: targetStart..<targetEnd)

        var head = HTTPRequestHead(
            method: method, target: targetStart..<targetEnd, minorVersion: min(minor, 1), fields: [], framing: .none,
            host: nil, keepAlive: minor >= 1, expectContinue: false, upgrade: false, length: 0)
        head.fields.reserveCapacity(16)
        position = lineEnd + 2
        let headerStart = position
        var contentLength: UInt64? = nil
        var transferEncoding: [Range<Int>] = []
        var connectionClose = false
        var connectionKeepAlive = false
        while true {
            guard
                let end = try HTTPRequestParser.lineEnd(
                    buffer, from: position, limit: HTTPRequestParser.maximumHeaderBytes)
            else {
                if buffer.count - headerStart > HTTPRequestParser.maximumHeaderBytes { throw .headersTooLarge }
                return nil
            }
            if end - headerStart > HTTPRequestParser.maximumHeaderBytes { throw .headersTooLarge }
            if end == position {
                position += 2
                break
            }
            let (name, value) = try HTTPRequestParser.field(buffer, at: position, end: end)
            guard head.fields.count < HTTPRequestParser.maximumFields else { throw .headersTooLarge }
            head.fields.append((name, value))
            if HTTPRequestParser.named(buffer, name, "content-length") {
                try HTTPRequestParser.contentLength(buffer, value, into: &contentLength)
            } else if HTTPRequestParser.named(buffer, name, "transfer-encoding") {
                transferEncoding += HTTPRequestParser.list(buffer, value)
            } else if HTTPRequestParser.named(buffer, name, "host") {
                guard head.host == nil else { throw .badRequest("more than one Host") }
                guard HTTPRequestParser.isAuthority(buffer, value) else { throw .badRequest("bad Host") }
                head.host = value
            } else if HTTPRequestParser.named(buffer, name, "connection") {
                for option in HTTPRequestParser.list(buffer, value) {
                    if HTTPRequestParser.equalsIgnoringCase(buffer, option, "close") { connectionClose = true }
                    if HTTPRequestParser.equalsIgnoringCase(buffer, option, "keep-alive") { connectionKeepAlive = true }
                    if HTTPRequestParser.equalsIgnoringCase(buffer, option, "upgrade") { head.upgrade = true }
                }
            } else if HTTPRequestParser.named(buffer, name, "expect") {
                guard HTTPRequestParser.equalsIgnoringCase(buffer, value, "100-continue") else {
                    throw .expectationFailed
                }
                head.expectContinue = minor >= 1
            }
            position = end + 2
        }
        head.length = position
        if !transferEncoding.isEmpty {
            // RFC 9112 §6.1: with Transfer-Encoding, Content-Length must not be trusted: refuse both together.
            guard contentLength == nil else { throw .badRequest("Content-Length with Transfer-Encoding") }
            guard minor >= 1 else { throw .badRequest("Transfer-Encoding in HTTP/1.0") }
            // RFC 9112 §6.3: a request body whose codings do not end in chunked has no length to find.
            guard try HTTPRequestParser.endsInChunked(buffer, transferEncoding) else {
                throw .badRequest("Transfer-Encoding must end in chunked, once")
            }
            // Only chunked is decoded here; forwarding a coding we did not parse (gzip, ...) would hand the
            // backend framing the proxy never checked.
            guard transferEncoding.count == 1 else { throw .notImplemented("transfer coding") }
            head.framing = .chunked
        } else if let contentLength {
            head.framing = contentLength == 0 ? .none : .contentLength(contentLength)
        }
        // RFC 9112 §3.2: a request in HTTP/1.1 must carry exactly one Host.
        if minor >= 1 && head.host == nil { throw .badRequest("missing Host") }
        head.keepAlive = minor >= 1 ? !connectionClose : connectionKeepAlive && !connectionClose
        return head
    }

    /// One field line (RFC 9112 §5) from `position` to `end`, the CR that ends it: the name and the value
    /// without the white space around it. Shared by requests and responses; refuses obs-fold (§5.2), white
    /// space or any byte but a token's before the colon (§5.1), and control characters in the value.
    package static func field(_ buffer: UnsafeRawBufferPointer, at position: Int, end: Int)
        throws(HTTPRequestError) -> (name: Range<Int>, value: Range<Int>)
    {
        guard buffer[position] != 32 && buffer[position] != 9 else { throw .badRequest("obsolete line folding") }
        let name = try HTTPRequestParser.token(buffer, from: position, until: end, what: "field name")
        guard name.upperBound < end, buffer[name.upperBound] == 58 else {
            throw .badRequest("white space or a bad byte before the colon")
        }
        let value = HTTPRequestParser.value(buffer, after: name.upperBound, until: end)
        if HTTPRequestParser.mayHoldControl(buffer, value) {
            for index in value where buffer[index] < 32 && buffer[index] != 9 || buffer[index] == 127 {
                throw .badRequest("control character in a field value")
            }
        }
        return (name, value)
    }

    /// Whether `range` may hold a byte below 0x20 or 0x7F (a tab counts: the caller looks closer), eight
    /// bytes at a time: every field of every head goes through here, most without any such byte.
    @inline(__always)
    static func mayHoldControl(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard let base = buffer.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = range.lowerBound
        while index + 8 <= range.upperBound {
            let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // A byte below 0x20 (exact for any threshold up to 0x80), or one equal to 0x7F.
            let below = (word &- ones &* 0x20) & ~word & highs
            let delete = ((word ^ (ones &* 0x7F)) &- ones) & ~(word ^ (ones &* 0x7F)) & highs
            if below | delete != 0 { return true }
            index += 8
        }
        while index < range.upperBound {
            let byte = buffer[index]
            if byte < 32 || byte == 127 { return true }
            index += 1
        }
        return false
    }

    /// Whether a Transfer-Encoding list (every field's, in order) ends in chunked. Chunked anywhere else, or
    /// twice, is refused in both directions (RFC 9112 §6.1): a body chunked twice would be read to the end of
    /// its outer layer here and its inner layer passed on as if it were the body.
    package static func endsInChunked(_ buffer: UnsafeRawBufferPointer, _ codings: [Range<Int>])
        throws(HTTPRequestError) -> Bool
    {
        let chunked = codings.indices.filter { HTTPRequestParser.equalsIgnoringCase(buffer, codings[$0], "chunked") }
        guard chunked.allSatisfy({ $0 == codings.count - 1 }) else {
            throw .badRequest("Transfer-Encoding must end in chunked, once")
        }
        return !chunked.isEmpty
    }

    /// Accepts the four request-target forms of RFC 9112 §3.2 only where they belong: origin-form
    /// (`/path?query`), absolute-form (`http://authority/...` or https), `*` for OPTIONS alone; CONNECT's
    /// authority-form is not served (a reverse proxy tunnels nothing unless a site asks for it). A fragment
    /// never belongs in a target.
    package static func checkTarget(_ buffer: UnsafeRawBufferPointer, method: Range<Int>, target: Range<Int>)
        throws(HTTPRequestError)
    {
        if HTTPRequestParser.isExactly(buffer, method, "CONNECT") {
            throw .notImplemented("CONNECT")
        }
        for index in target where buffer[index] == UInt8(ascii: "#") {
            throw .badRequest("fragment in the request target")
        }
        let first = buffer[target.lowerBound]
        if first == UInt8(ascii: "/") { return }
        if target.count == 1 && first == UInt8(ascii: "*") {
            guard HTTPRequestParser.isExactly(buffer, method, "OPTIONS") else {
                throw .badRequest("'*' is a target for OPTIONS only")
            }
            return
        }
        // absolute-form: scheme "://" authority [path-abempty] [ "?" query ], for http and https only.
        var schemeEnd = target.lowerBound
        while schemeEnd < target.upperBound && buffer[schemeEnd] != UInt8(ascii: ":") { schemeEnd += 1 }
        let scheme = target.lowerBound..<schemeEnd
        guard
            HTTPRequestParser.equalsIgnoringCase(buffer, scheme, "http")
                || HTTPRequestParser.equalsIgnoringCase(buffer, scheme, "https"),
            HTTPRequestParser.matches(buffer, schemeEnd, "://")
        else { throw .badRequest("bad request target") }
        var authorityEnd = schemeEnd + 3
        while authorityEnd < target.upperBound && buffer[authorityEnd] != UInt8(ascii: "/")
            && buffer[authorityEnd] != UInt8(ascii: "?")
        {
            authorityEnd += 1
        }
        var authorityStart = schemeEnd + 3
        // userinfo "@" is deprecated in http URIs (RFC 9110 §4.2.4) but harmless: the host follows it.
        for index in authorityStart..<authorityEnd where buffer[index] == UInt8(ascii: "@") {
            authorityStart = index + 1
        }
        guard authorityStart < authorityEnd,
            HTTPRequestParser.isAuthority(buffer, authorityStart..<authorityEnd)
        else { throw .badRequest("bad authority in the request target") }
    }

    /// `host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2): a reg-name, IPv4 or bracketed IPv6 host of the
    /// characters RFC 3986 allows, and a port of at most five digits when a colon is there. An empty
    /// value passes (RFC 9112 §3.2 allows it; routing then finds no site).
    package static func isAuthority(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        if index < range.upperBound && buffer[index] == UInt8(ascii: "[") {
            while index < range.upperBound && buffer[index] != UInt8(ascii: "]") {
                let byte = buffer[index]
                let allowed =
                    byte == UInt8(ascii: "[") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
                    || hexDigitValue(byte) != nil
                guard allowed else { return false }
                index += 1
            }
            guard index < range.upperBound else { return false }
            index += 1
        } else {
            while index < range.upperBound && buffer[index] != UInt8(ascii: ":") {
                let byte = buffer[index]
                // Letters, digits, '-' and '.' first: a host name is nearly always made of nothing else.
                let letter = byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")
                let usual =
                    letter || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == 45 || byte == 46
                guard usual || HTTPRequestParser.isRegNameByte(byte) else { return false }
                index += 1
            }
        }
        guard index < range.upperBound else { return true }
        guard buffer[index] == UInt8(ascii: ":"), range.upperBound - index - 1 <= 5 else { return false }
        for digit in (index + 1)..<range.upperBound where buffer[digit] < 48 || buffer[digit] > 57 { return false }
        return true
    }

    /// unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2).
    package static func isRegNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
            UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    /// The offset of the CR of the next CRLF at or after `from`; nil when there is none yet. Refuses a bare
    /// CR or LF (RFC 9112 §2.2) and NUL.
    package static func lineEnd(_ buffer: UnsafeRawBufferPointer, from: Int, limit: Int) throws(HTTPRequestError)
        -> Int?
    {
        var index = from
        // Eight bytes at a time past the ordinary ones; the first word that may hold CR, LF or NUL is looked
        // at byte by byte below.
        if let base = buffer.baseAddress {
            while index + 8 <= buffer.count {
                let mask = HTTPRequestParser.lineControlMask(base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                if mask != 0 {
                    // The lowest flagged byte is exactly the first CR, LF or NUL of the word.
                    index += mask.trailingZeroBitCount >> 3
                    if index - from > limit { return nil }
                    break
                }
                index += 8
                if index - from > limit { return nil }
            }
        }
        while index < buffer.count {
            let byte = buffer[index]
            if byte == 13 {
                guard index + 1 < buffer.count else { return nil }
                guard buffer[index + 1] == 10 else { throw .badRequest("bare CR") }
                return index
            }
            if byte == 10 { throw .badRequest("bare LF") }
            if byte == 0 { throw .badRequest("NUL byte") }
            index += 1
            if index - from > limit { return nil }
        }
        return nil
    }

    /// Whether `name` is a field that describes one connection only and is never forwarded (RFC 9110
    /// §7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade. Looked up by length first.
    @inlinable @inline(__always)
    package static func isHopByHop(_ buffer: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        switch name.count {
        case 2: return HTTPRequestParser.equalsIgnoringCase(buffer, name, "te")
        case 7:
            return HTTPRequestParser.equalsIgnoringCase(buffer, name, "trailer")
                || HTTPRequestParser.equalsIgnoringCase(buffer, name, "upgrade")
        case 10:
            return HTTPRequestParser.equalsIgnoringCase(buffer, name, "connection")
                || HTTPRequestParser.equalsIgnoringCase(buffer, name, "keep-alive")
        case 16: return HTTPRequestParser.equalsIgnoringCase(buffer, name, "proxy-connection")
        default: return false
        }
    }

    /// The high bit of every byte of `word` that may be CR, LF or NUL; the lowest one set marks the first such
    /// byte exactly (the borrow of the zero-byte test only disturbs bytes above it), and none set means none.
    @inline(__always)
    package static func lineControlMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func zeroBytes(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highs }
        return zeroBytes(word) | zeroBytes(word ^ (ones &* 10)) | zeroBytes(word ^ (ones &* 13))
    }

    /// A token (RFC 9110 §5.6.2) starting at `from`: at least one tchar.
    package static func token(_ buffer: UnsafeRawBufferPointer, from: Int, until end: Int, what: String)
        throws(HTTPRequestError) -> Range<Int>
    {
        var index = from
        while index < end && HTTPRequestParser.isTokenByte(buffer[index]) { index += 1 }
        guard index > from else { throw .badRequest("bad \(what)") }
        return from..<index
    }

    package static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"),
            UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    package static func matches(_ buffer: UnsafeRawBufferPointer, _ at: Int, _ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard at + count <= buffer.count else { return false }
        return (0..<count).allSatisfy { buffer[at + $0] == text.utf8Start[$0] }
    }

    /// Whether `range` holds exactly `text` (methods are case-sensitive, RFC 9110 §9.1).
    package static func isExactly(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount && HTTPRequestParser.matches(buffer, range.lowerBound, text)
    }

    @inline(__always)
    package static func named(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: StaticString) -> Bool {
        HTTPRequestParser.equalsIgnoringCase(buffer, range, name)
    }

    @inlinable @inline(__always)
    package static func equalsIgnoringCase(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString)
        -> Bool
    {
        guard range.count == text.utf8CodeUnitCount else { return false }
        for offset in 0..<range.count {
            let byte = buffer[range.lowerBound + offset]
            let lower = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if lower != text.utf8Start[offset] { return false }
        }
        return true
    }

    /// A field value after the colon at `colon`, without the white space around it (RFC 9112 §5).
    @inlinable
    package static func value(_ buffer: UnsafeRawBufferPointer, after colon: Int, until end: Int) -> Range<Int> {
        var start = colon + 1
        var stop = end
        while start < stop && (buffer[start] == 32 || buffer[start] == 9) { start += 1 }
        while stop > start && (buffer[stop - 1] == 32 || buffer[stop - 1] == 9) { stop -= 1 }
        return start..<stop
    }

    /// Reads a Content-Length value into `length`: exactly one field holding one decimal number (RFC 9110
    /// §8.6). A list of equal values or a repeated field could be merged, but the original text would still
    /// travel on to the other side, which may read it otherwise; they are refused, as nginx does.
    package static func contentLength(_ buffer: UnsafeRawBufferPointer, _ value: Range<Int>, into length: inout UInt64?)
        throws(HTTPRequestError)
    {
        guard length == nil else { throw .badRequest("more than one Content-Length") }
        guard let parsed = HTTPRequestParser.decimal(buffer, value) else { throw .badRequest("bad Content-Length") }
        length = parsed
    }

    /// Comma-separated list elements, trimmed, empty ones dropped (RFC 9110 §5.6.1).
    @inlinable
    package static func list(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = range.lowerBound
        for index in range.lowerBound...range.upperBound where index == range.upperBound || buffer[index] == 44 {
            var lower = start
            var upper = index
            while lower < upper && (buffer[lower] == 32 || buffer[lower] == 9) { lower += 1 }
            while upper > lower && (buffer[upper - 1] == 32 || buffer[upper - 1] == 9) { upper -= 1 }
            if upper > lower { result.append(lower..<upper) }
            start = index + 1
        }
        return result
    }

    /// 1*DIGIT as a number, refusing signs, spaces and values past 2^63.
    package static func decimal(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value: UInt64 = 0
        for index in range {
            let byte = buffer[index]
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value * 10 + UInt64(byte - 48)
        }
        return value
    }
}
