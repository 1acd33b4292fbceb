import HTTPProxy
import Testing

/// What the client gets of a backend's response: framing fields that must not reach it are dropped, and
/// framing the proxy cannot follow is a backend error.
@Suite struct ResponseStreamTests {
    /// What the client receives for `response` (to a GET from an HTTP/1.1 client), as text.
    func clientView(_ response: String, extraField: String? = nil) -> (head: String, events: [ResponseStream.Event]) {
        var stream = ResponseStream(
            headRequest: false, legacyClient: false, clientKeepAlive: true, upgradeRequested: false,
            extraField: extraField.map { Array($0.utf8) })
        var events: [ResponseStream.Event] = []
        Array(response.utf8).withUnsafeBytes { stream.feed($0, into: &events) }
        for event in events {
            if case .head(_, let bytes) = event { return (String(decoding: bytes, as: UTF8.self), events) }
        }
        return ("", events)
    }

    @Test(
        .bug(id: "13"),
        arguments: [
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX: 1\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nX: 1\r\nContent-Length: 99\r\n\r\n",
        ])
    func bodilessResponsesReachTheClientWithoutFraming(response: String) {
        let (head, events) = self.clientView(response)
        #expect(head.hasPrefix("HTTP/1.1 ") && head.contains("\r\nX: 1\r\n"), "\(head)")
        #expect(!head.lowercased().contains("content-length") && !head.lowercased().contains("transfer-encoding"))
        #expect(events.last == .end(reusable: true), "and nothing more is waited for: \(events)")
    }

    @Test(.bug(id: "13")) func aDoublyChunkedResponseIsABackendError() {
        let (head, events) = self.clientView("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n")
        #expect(head.isEmpty, "no head reaches the client: the proxy answers 502")
        guard case .error = events.last else { return #expect(Bool(false), "\(events)") }
    }

    @Test(.bug(id: "15")) func theSitesHSTSFieldReplacesTheBackendsOnFinalHeadsOnly() {
        let field = "Strict-Transport-Security: max-age=31536000\r\n"
        let (head, _) = self.clientView(
            "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\nContent-Length: 0\r\n\r\n", extraField: field)
        #expect(head.contains("\r\n" + field), "\(head)")
        #expect(!head.contains("max-age=1\r\n"), "the backend's own is replaced: \(head)")
        let (plain, _) = self.clientView("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", extraField: field)
        #expect(plain.contains(field), "error responses carry it too")
        var stream = ResponseStream(
            headRequest: false, legacyClient: false, clientKeepAlive: true, upgradeRequested: false,
            extraField: Array(field.utf8))
        var events: [ResponseStream.Event] = []
        Array("HTTP/1.1 100 Continue\r\n\r\n".utf8).withUnsafeBytes { stream.feed($0, into: &events) }
        guard case .interim(let bytes) = events.first else { return #expect(Bool(false), "\(events)") }
        #expect(!String(decoding: bytes, as: UTF8.self).contains("Strict"), "not on a 1xx")
    }
}
