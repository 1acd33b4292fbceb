import HTTPWire

/// Turns the bytes a backend sends into response events for one request: interim (1xx) heads, the final head
/// rewritten for the client, the body passed through as it arrives, and the end. Pure, like `RequestStream`.
///
/// Bodies keep their framing: a chunked body is forwarded chunked (the decoder only watches for its end),
/// unless the client speaks HTTP/1.0, which cannot read chunks — then it is de-chunked and the client
/// connection closes after it.
public struct ResponseStream: Sendable {
    public enum Event: Equatable, Sendable {
        /// A 1xx response other than 101, already in client form (dropped for HTTP/1.0 clients).
        case interim([UInt8])
        /// The final head, rewritten for the client. `status` 101 means the connection is now a tunnel.
        case head(status: Int, bytes: [UInt8])
        /// Body octets to pass on.
        case body([UInt8])
        /// The response is complete. `reusable`: the backend connection may serve another request.
        case end(reusable: Bool)
        /// The backend broke the protocol; nothing more is read.
        case error(String)
    }

    enum State: Sendable {
        case head
        case fixed(remaining: UInt64)
        case chunked(ChunkedDecoder)
        case untilClose
        case done
        case failed
    }

    var state: State = .head
    var pending: [UInt8] = []
    let headRequest: Bool
    /// The client's request was HTTP/1.0 (no chunked, no 1xx).
    let legacyClient: Bool
    /// The client connection stays open after this response (decides the Connection field sent).
    public private(set) var clientKeepAlive: Bool
    /// The client asked to upgrade; only then is a 101 accepted.
    let upgradeRequested: Bool
    var dechunk = false
    var backendKeepAlive = false
    /// Whether the final head has been passed on.
    public private(set) var headSent = false
    /// Whether any byte at all came from the backend (a pooled connection that fails before this is retried).
    public private(set) var receivedAny = false
    public private(set) var status = 0
    /// Body octets passed on, for the access log.
    public private(set) var bodyBytes: UInt64 = 0

    /// A whole field line ("Name: value\r\n") added to the final head, replacing the backend's field of
    /// that name (the site's Strict-Transport-Security).
    let extraField: [UInt8]?

    public init(
        headRequest: Bool, legacyClient: Bool, clientKeepAlive: Bool, upgradeRequested: Bool,
        extraField: [UInt8]? = nil
    ) {
        self.extraField = extraField
        self.headRequest = headRequest
        self.legacyClient = legacyClient
        self.clientKeepAlive = clientKeepAlive
        self.upgradeRequested = upgradeRequested
    }

    public var isComplete: Bool {
        if case .done = self.state { return true }
        return false
    }

    public var isWaitingForHead: Bool {
        if case .head = self.state { return true }
        return false
    }

    /// Consumes backend bytes.
    public mutating func feed(_ input: UnsafeRawBufferPointer, into events: inout [Event]) {
        if !input.isEmpty { self.receivedAny = true }
        var input = input
        while !input.isEmpty {
            switch self.state {
            case .failed:
                return
            case .done:
                // Bytes after a complete response: the backend is out of step; never reuse it.
                self.backendKeepAlive = false
                return
            case .head:
                // Usually the whole head arrives in one read: parse it where it lies, copying only a partial one.
                let used: Int?
                var held: [UInt8] = []
                if self.pending.isEmpty {
                    used = self.takeHead(input, into: &events)
                    if used == nil { self.pending = Array(input) }
                } else {
                    self.pending += input
                    held = self.pending
                    used = held.withUnsafeBytes { self.takeHead($0, into: &events) }
                    if used != nil { self.pending = [] }
                }
                guard let used, used >= 0 else { return }
                if !held.isEmpty {
                    let rest = Array(held[used...])
                    if rest.isEmpty { return }
                    if self.status == 101 {
                        events.append(.body(rest))
                    } else {
                        rest.withUnsafeBytes { self.feed($0, into: &events) }
                    }
                    return
                }
                input = UnsafeRawBufferPointer(rebasing: input[used...])
                if self.status == 101 {
                    // Whatever followed the 101 already belongs to the tunnel.
                    if !input.isEmpty { events.append(.body(Array(input))) }
                    return
                }
            case .fixed(let remaining):
                let take = Int(min(UInt64(input.count), remaining))
                events.append(.body(Array(UnsafeRawBufferPointer(rebasing: input[0..<take]))))
                self.bodyBytes += UInt64(take)
                input = UnsafeRawBufferPointer(rebasing: input[take...])
                if UInt64(take) == remaining {
                    self.finish(into: &events)
                } else {
                    self.state = .fixed(remaining: remaining - UInt64(take))
                }
            case .chunked(var decoder):
                var data: [UInt8] = []
                let dechunk = self.dechunk
                let chunk = input
                let result = Result { () throws(HTTPRequestError) -> Int in
                    try decoder.feed(chunk) { range in
                        if dechunk { data += UnsafeRawBufferPointer(rebasing: chunk[range]) }
                    }
                }
                switch result {
                case .failure(let error):
                    self.fail("bad chunked body: \(error)", into: &events)
                    return
                case .success(let used):
                    if !dechunk { data = Array(UnsafeRawBufferPointer(rebasing: input[0..<used])) }
                    if !data.isEmpty {
                        self.bodyBytes += UInt64(data.count)
                        events.append(.body(data))
                    }
                    input = UnsafeRawBufferPointer(rebasing: input[used...])
                    if decoder.isComplete {
                        self.finish(into: &events)
                    } else {
                        self.state = .chunked(decoder)
                    }
                }
            case .untilClose:
                events.append(.body(Array(input)))
                self.bodyBytes += UInt64(input.count)
                return
            }
        }
    }

    /// Parses a head at the start of `buffer`: nil when incomplete, -1 after an error, else the octets used.
    /// Interim (1xx) heads are passed on and leave the stream waiting for the final one.
    mutating func takeHead(_ buffer: UnsafeRawBufferPointer, into events: inout [Event]) -> Int? {
        let result = Result { () throws(HTTPRequestError) in
            try HTTPResponseParser.parse(buffer, headRequest: self.headRequest)
        }
        switch result {
        case .failure(let error):
            self.fail("bad response head: \(error)", into: &events)
            return -1
        case .success(nil):
            return nil
        case .success(let head?):
            if head.status < 200 && head.status != 101 {
                // 100 Continue, 103 Early Hints: pass on (HTTP/1.1 clients only), keep waiting.
                if !self.legacyClient { events.append(.interim(self.clientHead(head, in: buffer))) }
                return head.length
            }
            if head.status == 101 && !self.upgradeRequested {
                self.fail("101 for a request that did not ask to upgrade", into: &events)
                return -1
            }
            self.start(head, in: buffer, into: &events)
            return head.length
        }
    }

    /// Body octets still to come of a Content-Length body (0 in any other state): the loop may move that
    /// many straight from the backend socket to the client socket (splice) instead of feeding them here.
    public var fixedRemaining: UInt64 {
        if case .fixed(let remaining) = self.state { return remaining }
        return 0
    }

    /// `count` body octets went from backend to client without passing through `feed`.
    public mutating func passedThrough(_ count: UInt64, into events: inout [Event]) {
        guard case .fixed(let remaining) = self.state, count > 0 else { return }
        self.receivedAny = true
        let taken = min(count, remaining)
        self.bodyBytes += taken
        if taken == remaining {
            self.finish(into: &events)
        } else {
            self.state = .fixed(remaining: remaining - taken)
        }
    }

    /// The backend closed its side.
    public mutating func closed(into events: inout [Event]) {
        switch self.state {
        case .untilClose:
            self.backendKeepAlive = false
            self.finish(into: &events)
        case .done, .failed:
            break
        default:
            self.fail("the backend closed the connection mid-response", into: &events)
        }
    }

    mutating func fail(_ reason: String, into events: inout [Event]) {
        self.state = .failed
        events.append(.error(reason))
    }

    mutating func finish(into events: inout [Event]) {
        self.state = .done
        events.append(.end(reusable: self.backendKeepAlive))
    }

    mutating func start(_ head: HTTPResponseHead, in buffer: UnsafeRawBufferPointer, into events: inout [Event]) {
        self.status = head.status
        self.backendKeepAlive = head.keepAlive && head.status != 101
        switch head.framing {
        case .none:
            break
        case .contentLength:
            break
        case .chunked:
            if self.legacyClient {
                self.dechunk = true
                self.clientKeepAlive = false
            }
        case .untilClose:
            // The end is the backend's close: the client cannot tell it from a cut unless its connection
            // closes too.
            self.clientKeepAlive = false
        }
        if head.status == 101 { self.clientKeepAlive = false }
        let rewritten = self.clientHead(head, in: buffer)
        self.headSent = true
        events.append(.head(status: head.status, bytes: rewritten))
        switch head.framing {
        case .none:
            if head.status == 101 {
                self.state = .done
            } else {
                self.finish(into: &events)
            }
        case .contentLength(let length):
            self.state = .fixed(remaining: length)
        case .chunked:
            self.state = .chunked(ChunkedDecoder())
        case .untilClose:
            self.state = .untilClose
        }
    }

    /// The head as the client gets it: hop-by-hop fields (and those Connection names) removed, the client
    /// connection's own Connection field added. Status line kept, version always HTTP/1.1.
    func clientHead(_ head: HTTPResponseHead, in buffer: UnsafeRawBufferPointer) -> [UInt8] {
        // The status line keeps its length, fields are only dropped, and one Connection line may be added.
        HeadWriter.build(capacity: head.length + 64 + (self.extraField?.count ?? 0)) { out in
            func append(_ text: StaticString) { out.write(text) }
            func appendLine(_ line: Range<Int>) {
                out.write(UnsafeRawBufferPointer(rebasing: buffer[line]))
                out.crlf()
            }
            func name(of line: Range<Int>) -> Range<Int> {
                var colon = line.lowerBound
                while colon < line.upperBound && buffer[colon] != 58 { colon += 1 }
                return line.lowerBound..<colon
            }
            append("HTTP/1.1")
            // The status line ends before the first field, or before the empty line that ends a field-less head.
            let statusLineEnd = (head.fields.first?.lowerBound ?? head.length - 2) - 2
            out.write(UnsafeRawBufferPointer(rebasing: buffer[8..<statusLineEnd]))
            out.crlf()
            // Fields a Connection field names are hop-by-hop too ("close" and "keep-alive" name none that could
            // get through anyway, so the usual response allocates nothing here).
            var named: [Range<Int>] = []
            for line in head.fields {
                let field = name(of: line)
                guard HTTPRequestParser.equalsIgnoringCase(buffer, field, "connection") else { continue }
                for option in HTTPRequestParser.list(
                    buffer, HTTPRequestParser.value(buffer, after: field.upperBound, until: line.upperBound))
                where !HTTPRequestParser.equalsIgnoringCase(buffer, option, "close")
                    && !HTTPRequestParser.equalsIgnoringCase(buffer, option, "keep-alive")
                {
                    named.append(option)
                }
            }
            // RFC 9110 §8.6, RFC 9112 §6.1: no framing field in a 1xx or 204 response, and none needed in a 304
            // (its Content-Length may only repeat a 200's); one a backend sends anyway is dropped, not passed on.
            let bodiless = head.status < 200 || head.status == 204 || head.status == 304
            for line in head.fields {
                let field = name(of: line)
                if bodiless
                    && (HTTPRequestParser.equalsIgnoringCase(buffer, field, "content-length")
                        || HTTPRequestParser.equalsIgnoringCase(buffer, field, "transfer-encoding"))
                {
                    continue
                }
                if HTTPRequestParser.isHopByHop(buffer, field) {
                    if head.status == 101 && HTTPRequestParser.equalsIgnoringCase(buffer, field, "upgrade") {
                        appendLine(line)
                    }
                    continue
                }
                if !named.isEmpty && named.contains(where: { RequestRewriter.equal(buffer, $0, field) }) { continue }
                if self.dechunk && HTTPRequestParser.equalsIgnoringCase(buffer, field, "transfer-encoding") { continue }
                if let extra = self.extraField, ResponseStream.names(extra, buffer, field) { continue }
                appendLine(line)
            }
            if head.status >= 200, let extra = self.extraField { extra.withUnsafeBytes { out.write($0) } }
            if head.status == 101 {
                append("Connection: upgrade\r\n")
            } else if head.status >= 200 {
                if !self.clientKeepAlive {
                    append("Connection: close\r\n")
                } else if self.legacyClient {
                    append("Connection: keep-alive\r\n")
                }
            }
            out.crlf()
        }
    }

    /// Whether the field line `line` ("Name: value") has the name at `field` in `buffer` (ASCII, any case).
    static func names(_ line: [UInt8], _ buffer: UnsafeRawBufferPointer, _ field: Range<Int>) -> Bool {
        guard field.count < line.count, line[field.count] == UInt8(ascii: ":") else { return false }
        for offset in 0..<field.count where buffer[field.lowerBound + offset] | 0x20 != line[offset] | 0x20 {
            return false
        }
        return true
    }
}
