import ACME
import DynDNS
import Synchronization
import Testing

/// The client against a CA that answers badly, through its transport seam: every bad reply is a clear error,
/// every loop is bounded. (The real exchanges are tested against pebble in ACMEEndToEndTests.)
@Suite struct ACMEClientTests {
    /// Answers requests from a script: the reply for a method and URL, counting what was asked.
    final class ScriptedCA: Sendable {
        let replies: [String: HTTPClient.Response]
        let asked = Mutex<[String]>([])

        init(_ replies: [String: HTTPClient.Response]) { self.replies = replies }

        func client() throws -> ACMEClient {
            ACMEClient(
                directoryURL: "https://ca.test/dir", key: try ECKey.generate(),
                transport: { request throws(ACMEError) in
                    let key = "\(request.method) \(request.url)"
                    self.asked.withLock { $0.append(key) }
                    guard let reply = self.replies[key] else { throw .unreachable("no route to \(key)") }
                    return reply
                }, pause: { _ in true })
        }

        var count: Int { self.asked.withLock { $0.count } }
    }

    static let directory = HTTPClient.Response(
        status: 200,
        body: Array(
            #"{"newNonce":"https://ca.test/nonce","newAccount":"https://ca.test/acct","newOrder":"https://ca.test/order"}"#
                .utf8))
    static let nonce = HTTPClient.Response(status: 200, body: [], headers: [("Replay-Nonce", "n1")])

    static func json(_ status: Int, _ text: String, _ headers: [(String, String)] = []) -> HTTPClient.Response {
        HTTPClient.Response(status: status, body: Array(text.utf8), headers: [("Replay-Nonce", "n2")] + headers)
    }

    @Test(.bug(id: "16")) func aDirectoryThatIsNotOne() throws {
        let html = ScriptedCA(["GET https://ca.test/dir": .init(status: 200, body: Array("<html>".utf8))])
        #expect(throws: ACMEError.badReply("GET https://ca.test/dir: HTTP 200, not a directory")) {
            try html.client().loadDirectory()
        }
        let partial = ScriptedCA(["GET https://ca.test/dir": Self.json(200, #"{"newNonce":"x"}"#)])
        #expect(throws: ACMEError.badReply("the directory lacks newNonce, newAccount or newOrder")) {
            try partial.client().loadDirectory()
        }
        let missing = ScriptedCA([:])
        #expect(throws: ACMEError.unreachable("no route to GET https://ca.test/dir")) {
            try missing.client().loadDirectory()
        }
    }

    @Test(.bug(id: "16")) func noNonceNoLocationAndProblems() throws {
        let noNonce = ScriptedCA([
            "GET https://ca.test/dir": Self.directory,
            "HEAD https://ca.test/nonce": .init(status: 200, body: []),
        ])
        #expect(throws: ACMEError.badReply("newNonce gave no Replay-Nonce")) {
            try noNonce.client().register(contact: [], agreeTerms: true, binding: nil)
        }
        let noLocation = ScriptedCA([
            "GET https://ca.test/dir": Self.directory, "HEAD https://ca.test/nonce": Self.nonce,
            "POST https://ca.test/acct": Self.json(201, "{}"),
        ])
        #expect(throws: ACMEError.badReply("newAccount gave no Location")) {
            try noLocation.client().register(contact: [], agreeTerms: true, binding: nil)
        }
        let refused = ScriptedCA([
            "GET https://ca.test/dir": Self.directory, "HEAD https://ca.test/nonce": Self.nonce,
            "POST https://ca.test/acct": Self.json(
                429, #"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many"}"#, [("Retry-After", "120")]
            ),
        ])
        #expect(
            throws: ACMEError.problem(
                ACMEProblem(type: "rateLimited", detail: "too many", status: 429, retryAfter: 120))
        ) {
            try refused.client().register(contact: ["a@example.com"], agreeTerms: true, binding: nil)
        }
    }

    /// A CA that refuses every nonce: twenty tries, then its problem — not a loop.
    @Test(.bug(id: "16")) func badNonceForeverEnds() throws {
        let ca = ScriptedCA([
            "GET https://ca.test/dir": Self.directory, "HEAD https://ca.test/nonce": Self.nonce,
            "POST https://ca.test/acct": Self.json(400, #"{"type":"urn:ietf:params:acme:error:badNonce"}"#),
        ])
        let client = try ca.client()
        #expect(throws: ACMEError.self) { try client.register(contact: [], agreeTerms: true, binding: nil) }
        #expect(client.nonceRetries == 19)
        #expect(ca.count == 22, "the directory, one nonce, twenty POSTs (each refusal carried the next nonce)")
    }

    /// An authorisation that stays pending, with a Retry-After of a day: the wait is bounded by the seconds
    /// allowed, each pause by ten seconds.
    @Test(.bug(id: "16")) func aValidationThatNeverEndsTimesOut() throws {
        let pending = #"{"status":"pending","identifier":{"type":"dns","value":"example.com"},"challenges":[]}"#
        let ca = ScriptedCA([
            "GET https://ca.test/dir": Self.directory, "HEAD https://ca.test/nonce": Self.nonce,
            "POST https://ca.test/authz/1": Self.json(200, pending, [("Retry-After", "86400")]),
        ])
        let client = try ca.client()
        client.accountURL = "https://ca.test/acct/1"
        #expect(throws: ACMEError.timedOut("the CA did not validate example.com within 25 s")) {
            try client.awaitAuthorization("https://ca.test/authz/1", seconds: 25)
        }
        #expect(ca.count == 5, "directory, nonce, three polls 10 s apart")
    }

    @Test(.bug(id: "16")) func ordersAndCertificatesThatAreNot() throws {
        let ca = ScriptedCA([
            "GET https://ca.test/dir": Self.directory, "HEAD https://ca.test/nonce": Self.nonce,
            "POST https://ca.test/order": Self.json(201, #"{"status":"sideways","finalize":"x"}"#, [("Location", "o")]),
            "POST https://ca.test/cert": Self.json(200, "not a certificate"),
            "POST https://ca.test/o": Self.json(200, "[1,2"),
        ])
        let client = try ca.client()
        client.accountURL = "https://ca.test/acct/1"
        #expect(throws: ACMEError.badReply("an order without a known status")) {
            try client.newOrder(["example.com"], replaces: nil)
        }
        #expect(throws: ACMEError.badReply("the certificate download was not a PEM chain (HTTP 200)")) {
            try client.certificate("https://ca.test/cert")
        }
        #expect(throws: ACMEError.badReply("the order is not JSON")) { try client.order("https://ca.test/o") }
    }
}
