import HTTPProxy
import Testing

/// Client bytes in, request events out: whole, byte by byte and in odd pieces, pipelined.
@Suite struct RequestStreamTests {
    /// Feeds `text` in pieces of `step` bytes and flattens the events: "HEAD <target>", body text, "END", "ERROR <status>".
    func events(_ text: String, step: Int) -> [String] {
        var stream = RequestStream()
        let bytes = Array(text.utf8)
        var out: [String] = []
        var body = ""
        var index = 0
        while index < bytes.count {
            let piece = Array(bytes[index..<min(bytes.count, index + step)])
            index += step
            for event in stream.feed(piece) {
                switch event {
                case .head(let head, let headBytes):
                    out.append("HEAD " + String(decoding: headBytes[head.target], as: UTF8.self))
                case .body(let data): body += String(decoding: data, as: UTF8.self)
                case .end:
                    if !body.isEmpty { out.append(body) }
                    body = ""
                    out.append("END")
                case .error(let error): out.append("ERROR \(error.status)")
                }
            }
        }
        return out
    }

    static let pipelined =
        "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
        + "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        + "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
        + "GET /four HTTP/1.1\r\nHost: a\r\n\r\n"

    @Test(arguments: [1, 2, 7, 64, 100_000])
    func pipelinedRequestsComeOutInOrderWhateverThePieces(step: Int) {
        #expect(
            self.events(Self.pipelined, step: step) == [
                "HEAD /one", "END", "HEAD /two", "hello", "END", "HEAD /three", "abcde", "END", "HEAD /four", "END",
            ])
    }

    @Test(arguments: [1, 100_000])
    func aSmugglingAttemptStopsTheStream(step: Int) {
        let text =
            "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(self.events(text, step: step) == ["HEAD /ok", "END", "ERROR 400"])
    }

    @Test func badChunkingInTheBodyStopsTheStream() {
        let text = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        #expect(self.events(text, step: 3) == ["HEAD /x", "ERROR 400"])
    }
}
