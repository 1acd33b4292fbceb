import HTTPWire
import Testing

/// Backend response heads: framing per RFC 9112 §6.3, fed whole and byte by byte.
@Suite struct HTTPResponseParserTests {
    func parse(_ text: String, head: Bool = false) throws -> HTTPResponseHead? {
        let bytes = Array(text.utf8)
        for length in 0..<bytes.count {
            let prefix = Array(bytes[0..<length])
            let partial = prefix.withUnsafeBytes { buffer in
                Result { () throws(HTTPRequestError) in try HTTPResponseParser.parse(buffer, headRequest: head) }
            }
            if case .success(let parsed?) = partial { Issue.record("complete after \(length) bytes: \(parsed)") }
        }
        return try bytes.withUnsafeBytes { buffer in
            try Result { () throws(HTTPRequestError) in try HTTPResponseParser.parse(buffer, headRequest: head) }.get()
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false, ResponseFraming.contentLength(12), true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, .chunked, true),
        ("HTTP/1.1 200 OK\r\n\r\n", false, .untilClose, false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false, .contentLength(3), false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", false, .contentLength(3), true),
        ("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true, ResponseFraming.none, true),
        ("HTTP/1.1 204 No Content\r\n\r\n", false, ResponseFraming.none, true),
        ("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, ResponseFraming.none, true),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false,
            ResponseFraming.none, true
        ),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, .contentLength(1), false),
        ("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", false, .contentLength(1), true),
    ])
    func framingFollowsRFC9112(text: String, head: Bool, framing: ResponseFraming, keepAlive: Bool) throws {
        let parsed = try #require(try self.parse(text, head: head))
        #expect(parsed.framing == framing && parsed.keepAlive == keepAlive)
        #expect(parsed.length == text.utf8.count)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 Odd\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 200 OK\nContent-Length: 1\n\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    ])
    func ambiguousOrBrokenResponsesAreRefused(text: String) {
        #expect(throws: HTTPRequestError.self) { try self.parse(text) }
    }
}

/// The responses Frontdoor writes itself parse back with the same parser that reads backends.
@Suite struct ResponseWriterTests {
    @Test(arguments: [200, 404, 417, 501, 502])
    func writtenResponsesAreWellFramed(status: Int) throws {
        let body = Array("body of \(status)\n".utf8)
        let bytes = ResponseWriter.complete(
            status: status, contentType: "text/plain", body: body, fields: ["Cache-Control: no-store"], close: true)
        let head = try #require(
            try bytes.withUnsafeBytes { raw in
                try Result { () throws(HTTPRequestError) in try HTTPResponseParser.parse(raw, headRequest: false) }
                    .get()
            })
        #expect(head.status == status && head.framing == .contentLength(UInt64(body.count)) && !head.keepAlive)
        #expect(Array(bytes[head.length...]) == body)
        #expect(ResponseWriter.reason(status) != "Error")
        let headOnly = ResponseWriter.complete(
            status: status, contentType: "text/plain", body: body, close: false, headRequest: true)
        #expect(String(decoding: headOnly, as: UTF8.self).hasSuffix("\r\n\r\n"), "HEAD: the fields, no content")
    }
}
