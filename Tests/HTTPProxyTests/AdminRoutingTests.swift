import HTTPProxy
import HTTPWire
import Testing
import ZoneModel

/// The admin listener's rules: who may look, and what each request gets.
@Suite struct AdminRoutingTests {
    @Test(
        arguments: [
            ("127.0.0.1", nil, true),
            ("127.8.9.10", nil, true),
            ("::1", nil, true),
            ("::ffff:127.0.0.1", nil, true),
            ("192.0.2.7", true, true),
            ("192.0.2.7", false, false),
            ("192.0.2.7", nil, false),
            ("2001:db8::7", false, false),
            ("::2", nil, false),
        ] as [(String, Bool?, Bool)])
    func whoMayLook(client: String, recursionView: Bool?, allowed: Bool) throws {
        let address = try #require(IPAddress(client))
        #expect(AdminRouting.allows(address, recursionView: recursionView) == allowed)
    }

    @Test(arguments: [
        ("GET /metrics HTTP/1.1", AdminRouting.Answer.page(.metrics, headOnly: false)),
        ("HEAD /metrics HTTP/1.1", .page(.metrics, headOnly: true)),
        ("GET /status?pretty=1 HTTP/1.1", .page(.status, headOnly: false)),
        ("GET / HTTP/1.0", .page(.overview, headOnly: false)),
        ("GET /?x HTTP/1.1", .page(.overview, headOnly: false)),
        ("GET /metrics/ HTTP/1.1", .refusal(status: 404, text: "not found: try /, /status or /metrics\n")),
        ("GET /etc/passwd HTTP/1.1", .refusal(status: 404, text: "not found: try /, /status or /metrics\n")),
        ("POST /metrics HTTP/1.1", .refusal(status: 405, text: "GET only\n")),
        ("get /metrics HTTP/1.1", .refusal(status: 405, text: "GET only\n")),
        ("DELETE / HTTP/1.1", .refusal(status: 405, text: "GET only\n")),
    ])
    func whatARequestGets(line: String, answer: AdminRouting.Answer) throws {
        let bytes = Array((line + "\r\nHost: 127.0.0.1\r\n\r\n").utf8)
        let head = try #require(try bytes.withUnsafeBytes { try HTTPRequestParser.parse($0) })
        #expect(AdminRouting.answer(head, in: bytes) == answer)
    }
}
