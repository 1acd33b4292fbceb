import HTTPWire
import Testing

/// Request heads fed whole and byte by byte: good requests parse the same either way; every smuggling
/// vector is refused with its status.
@Suite struct HTTPRequestParserTests {
    /// Parses `text` whole; then feeds it growing one byte at a time and checks the same outcome appears
    /// only once the head is complete.
    func parse(_ text: String, incremental: Bool = true) -> Result<HTTPRequestHead?, HTTPRequestError> {
        let bytes = Array(text.utf8)
        let whole = bytes.withUnsafeBytes { buffer in
            Result { () throws(HTTPRequestError) in try HTTPRequestParser.parse(buffer) }
        }
        for length in 0..<(incremental ? bytes.count : 0) {
            let partial = Array(bytes[0..<length])
            let outcome = partial.withUnsafeBytes { buffer in
                Result { () throws(HTTPRequestError) in try HTTPRequestParser.parse(buffer) }
            }
            switch (outcome, whole) {
            case (.success(nil), _): continue
            case (.failure(let early), .failure(let final)):
                #expect(early == final, "a prefix fails differently: \(early) vs \(final)")
                return whole
            case (.success(let head?), _):
                Issue.record("a prefix of \(length) bytes parsed as complete: \(head)")
                return whole
            case (.failure(let early), .success):
                Issue.record("a prefix of \(length) bytes failed (\(early)) although the whole parses")
                return whole
            }
        }
        return whole
    }

    func text(_ text: String, _ range: Range<Int>?) -> String? {
        guard let range else { return nil }
        return String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    @Test func aSimpleGETParses() throws {
        let request = "GET /index.html?x=1 HTTP/1.1\r\nHost: MyServer.example.com:8080\r\nAccept: */*\r\n\r\n"
        let head = try #require(try self.parse(request).get())
        #expect(self.text(request, head.method) == "GET" && self.text(request, head.target) == "/index.html?x=1")
        #expect(self.text(request, head.host) == "MyServer.example.com:8080")
        #expect(head.minorVersion == 1 && head.keepAlive && head.framing == .none)
        #expect(head.length == request.utf8.count && head.fields.count == 2)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", BodyFraming.contentLength(5)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", .contentLength(7)),
        ("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n", .chunked),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", BodyFraming.none),
    ])
    func framingFollowsRFC9112(request: String, framing: BodyFraming) throws {
        #expect(try self.parse(request).get()?.framing == framing)
    }

    @Test func keepAliveRulesPerVersion() throws {
        #expect(try self.parse("GET / HTTP/1.0\r\n\r\n").get()?.keepAlive == false)
        #expect(try self.parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").get()?.keepAlive == true)
        #expect(try self.parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").get()?.keepAlive == false)
        let upgrade = try #require(
            try self.parse(
                "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
            ).get())
        #expect(upgrade.upgrade)
        #expect(
            try self.parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").get()?
                .expectContinue == true)
    }

    @Test func absoluteFormTargetsAndLeadingEmptyLinesParse() throws {
        let head = try #require(try self.parse("\r\nGET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n").get())
        #expect(head.length == "\r\nGET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n".utf8.count)
    }

    @Test(arguments: [
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "Content-Length with Transfer-Encoding"
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "more than one Content-Length"
        ),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0,\r\n\r\n", "bad Content-Length"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", "bad Content-Length"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2,2\r\n\r\n", "bad Content-Length"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", "bad Content-Length"),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            "more than one Content-Length"
        ),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "bad Content-Length"),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", "bad Content-Length"),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "Transfer-Encoding must end in chunked, once"
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "Transfer-Encoding must end in chunked, once"
        ),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in HTTP/1.0"),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "white space or a bad byte before the colon"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n", "obsolete line folding"),
        ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR"),
        ("GET / HTTP/1.1\nHost: a\n\n", "bare LF"),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", "NUL byte"),
        ("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", "white space or a bad byte before the colon"),
        ("GET / HTTP/1.1\r\n\r\n", "missing Host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "bad request target"),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "bad HTTP version"),
        ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", "bad request line"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7}b\r\n\r\n", "control character in a field value"),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "'*' is a target for OPTIONS only"),
        ("OPTIONS */x HTTP/1.1\r\nHost: a\r\n\r\n", "bad request target"),
        ("GET host:80 HTTP/1.1\r\nHost: a\r\n\r\n", "bad request target"),
        ("GET admin/a HTTP/1.1\r\nHost: a\r\n\r\n", "bad request target"),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "fragment in the request target"),
        ("GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", "bad request target"),
        ("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", "bad authority in the request target"),
        ("GET http://a{b/ HTTP/1.1\r\nHost: a\r\n\r\n", "bad authority in the request target"),
        ("GET / HTTP/1.1\r\nHost: h:abc\r\n\r\n", "bad Host"),
        ("GET / HTTP/1.1\r\nHost: h:123456\r\n\r\n", "bad Host"),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "bad Host"),
        ("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", "bad Host"),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "bad Host"),
    ])
    func smugglingVectorsAreRefusedWith400(request: String, reason: String) {
        #expect(throws: HTTPRequestError.badRequest(reason)) { try self.parse(request).get() }
    }

    @Test(
        .bug(id: "13"),
        arguments: [
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
            ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501),
            ("CONNECT http://h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 501),
            ("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
        ])
    func unsupportedCodingsMethodsAndExpectationsGetTheirOwnStatus(request: String, status: Int) {
        switch self.parse(request) {
        case .failure(let error): #expect(error.status == status, "\(error)")
        case .success(let head): Issue.record("parsed: \(String(describing: head))")
        }
    }

    @Test(arguments: [
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a.example:8080/x?y HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
        "GET HTTPS://user@a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET /?q=a/b:c@d HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: xn--bcher-kva.example.\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
    ])
    func validTargetsAndHostsParse(request: String) throws {
        #expect(try self.parse(request).get() != nil)
    }

    @Test func limitsGive414And431And505() {
        let longLine = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        // Whole only: feeding tens of kilobytes byte by byte would be quadratic and prove nothing more.
        #expect(throws: HTTPRequestError.uriTooLong) { try self.parse(longLine, incremental: false).get() }
        let manyFields = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "X-\($0): y\r\n" }.joined() + "\r\n"
        #expect(throws: HTTPRequestError.headersTooLarge) { try self.parse(manyFields).get() }
        let bigField = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 70_000) + "\r\n\r\n"
        #expect(throws: HTTPRequestError.headersTooLarge) { try self.parse(bigField, incremental: false).get() }
        #expect(throws: HTTPRequestError.versionNotSupported) {
            try self.parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n").get()
        }
        #expect(HTTPRequestError.headersTooLarge.status == 431 && HTTPRequestError.uriTooLong.status == 414)
    }
}

/// Chunked bodies fed whole and byte by byte.
@Suite struct ChunkedDecoderTests {
    func decode(_ text: String, step: Int) throws(HTTPRequestError) -> (body: String, consumed: Int, complete: Bool) {
        let bytes = Array(text.utf8)
        var decoder = ChunkedDecoder()
        var body: [UInt8] = []
        var offset = 0
        while offset < bytes.count && !decoder.isComplete {
            let slice = Array(bytes[offset..<min(bytes.count, offset + step)])
            let result = slice.withUnsafeBytes { buffer in
                Result { () throws(HTTPRequestError) -> Int in
                    try decoder.feed(buffer) { range in body += slice[range] }
                }
            }
            let used = try result.get()
            offset += used
            if used < slice.count { break }
        }
        return (String(decoding: body, as: UTF8.self), offset, decoder.isComplete)
    }

    @Test(arguments: [1, 3, 1000])
    func bodiesWithExtensionsAndTrailersDecode(step: Int) throws {
        let text =
            "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nExpires: never\r\n\r\nGET / HTTP/1.1"
        let result = try self.decode(text, step: step)
        #expect(result.body == "helloabcdefghijklmnopqrstuvwxyz" && result.complete)
        #expect(result.consumed == text.utf8.count - "GET / HTTP/1.1".utf8.count, "stops where the next request starts")
    }

    @Test(arguments: [
        "5 \r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n", "11111111111111111\r\n", "5;a\u{1}b\r\nhello\r\n0\r\n\r\n",
        "0\r\nX: y\n\r\n",
    ])
    func badChunkingIsRefused(text: String) {
        for step in [1, 1000] {
            #expect(throws: HTTPRequestError.self) { try self.decode(text, step: step) }
        }
    }
}
