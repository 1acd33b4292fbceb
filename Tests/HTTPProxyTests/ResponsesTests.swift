import Foundation
import HTTPProxy
import Testing

@Suite struct ResponsesTests {
    @Test func errorPagesAreCompleteResponses() throws {
        let page = String(decoding: ProxyResponses.errorPage(421, close: false), as: UTF8.self)
        #expect(page.hasPrefix("HTTP/1.1 421 Misdirected Request\r\n"))
        let parts = page.components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2)
        #expect(page.contains("Content-Length: \(parts[1].utf8.count)\r\n"))
        let closing = String(decoding: ProxyResponses.errorPage(400, close: true, headRequest: true), as: UTF8.self)
        #expect(closing.hasSuffix("Connection: close\r\n\r\n"), "HEAD gets the head only")
    }

    @Test func accessLogLinesEscapeWhatWouldBreakThem() {
        let line = ProxyResponses.accessLogLine(
            client: "192.0.2.9", time: "26/Nov/2026:15:23:29 +0000", requestLine: "GET /a\"b HTTP/1.1", status: 200,
            bytes: 512, referer: nil, userAgent: "curl/8\u{1}", site: "myapp.example.com", backend: "192.0.2.70:80",
            milliseconds: 3)
        #expect(
            line
                == #"192.0.2.9 - - [26/Nov/2026:15:23:29 +0000] "GET /a\"b HTTP/1.1" 200 512 "-" "curl/8\x01" myapp.example.com 192.0.2.70:80 3ms"#
        )
    }
}
