import DNSAuth
import DynDNS
import ZoneModel

/// An ACME v2 client (RFC 8555) for one account at one CA: every request signed with the account key (ES256),
/// nonces kept from each reply, `badNonce` retried with the nonce the error carried, `Retry-After` honoured
/// while polling, and every error reported with the CA's problem type and detail. Blocking: the certificate
/// manager's thread runs it, never a serving thread.
public final class ACMEClient: @unchecked Sendable {
    public typealias Transport = @Sendable (HTTPClient.Request) throws(ACMEError) -> HTTPClient.Response

    public let directoryURL: String
    let key: ECKey
    let transport: Transport
    /// Waits this many milliseconds; false when the wait was cut short (shutting down).
    let pause: @Sendable (Int) -> Bool
    public private(set) var directory: ACMEDirectory?
    /// The account's URL (the `kid` of every request after registration).
    public var accountURL: String?
    var nonces: [String] = []
    /// Requests sent, for the logs and the tests' counts.
    public private(set) var requests = 0
    /// Requests sent again after a `badNonce` refusal.
    public private(set) var nonceRetries = 0
    /// Tries of one request refused with `badNonce` before giving up (each with the nonce the refusal carried).
    static let nonceRetries = 20

    public init(
        directoryURL: String, key: ECKey, transport: @escaping Transport, pause: @escaping @Sendable (Int) -> Bool
    ) {
        self.directoryURL = directoryURL
        self.key = key
        self.transport = transport
        self.pause = pause
    }

    /// The transport for a real CA: HTTPS (or HTTP for a local test CA), `caFile` trusted instead of the
    /// system's CAs when given, 30 s per request.
    public static func httpTransport(caFile: String?) -> Transport {
        { (request: HTTPClient.Request) throws(ACMEError) -> HTTPClient.Response in
            do {
                return try HTTPClient.request(request, timeout: 30_000, caFile: caFile)
            } catch {
                throw .unreachable("\(request.method) \(request.url): \(error)")
            }
        }
    }

    func send(_ request: HTTPClient.Request) throws(ACMEError) -> HTTPClient.Response {
        self.requests += 1
        let response = try self.transport(request)
        if let nonce = response.header("Replay-Nonce"), !nonce.isEmpty, nonce.utf8.count < 256 {
            self.nonces.append(nonce)
            if self.nonces.count > 8 { self.nonces.removeFirst() }
        }
        return response
    }

    /// The directory, read once.
    public func loadDirectory() throws(ACMEError) -> ACMEDirectory {
        if let directory = self.directory { return directory }
        let response = try self.send(HTTPClient.Request(method: "GET", url: self.directoryURL, headers: [], body: []))
        guard response.status == 200, let json = JSON.parse(response.body) else {
            throw .badReply("GET \(self.directoryURL): HTTP \(response.status), not a directory")
        }
        let directory = try ACMEDirectory(json: json)
        self.directory = directory
        return directory
    }

    func nonce() throws(ACMEError) -> String {
        if let nonce = self.nonces.popLast() { return nonce }
        let directory = try self.loadDirectory()
        _ = try self.send(HTTPClient.Request(method: "HEAD", url: directory.newNonce, headers: [], body: []))
        guard let nonce = self.nonces.popLast() else { throw .badReply("newNonce gave no Replay-Nonce") }
        return nonce
    }

    /// The flattened JWS of `payload` (nil: the empty payload of POST-as-GET) for `url`.
    func signed(_ payload: JSON?, url: String, nonce: String, useKeyID: Bool) throws(ACMEError) -> [UInt8] {
        var header: [(String, JSON)] = [("alg", .string("ES256"))]
        if useKeyID, let account = self.accountURL {
            header.append(("kid", .string(account)))
        } else {
            header.append(("jwk", .object(self.key.jwk.map { ($0.0, JSON.string($0.1)) })))
        }
        header += [("nonce", .string(nonce)), ("url", .string(url))]
        let protected = Base64URL.encode(JSON.object(header).text())
        let body = payload.map { Base64URL.encode($0.text()) } ?? ""
        let signature: [UInt8]
        do {
            signature = try self.key.sign(Array("\(protected).\(body)".utf8))
        } catch {
            throw .local(error.description)
        }
        let jws = JSON.object([
            ("protected", .string(protected)), ("payload", .string(body)),
            ("signature", .string(Base64URL.encode(signature))),
        ])
        return Array(jws.text().utf8)
    }

    /// POSTs `payload` (nil: POST-as-GET) to `url`, retrying a `badNonce` with a fresh nonce; an error status
    /// becomes the CA's problem.
    public func post(_ url: String, _ payload: JSON?, accept: String? = nil, useKeyID: Bool = true)
        throws(ACMEError) -> HTTPClient.Response
    {
        var attempt = 0
        while true {
            attempt += 1
            let body = try self.signed(payload, url: url, nonce: try self.nonce(), useKeyID: useKeyID)
            var headers = [("Content-Type", "application/jose+json")]
            if let accept { headers.append(("Accept", accept)) }
            let response = try self.send(HTTPClient.Request(method: "POST", url: url, headers: headers, body: body))
            if response.status < 400 { return response }
            let problem = ACMEProblem(
                json: JSON.parse(response.body) ?? .object([]), status: response.status,
                retryAfter: ACMEClient.retryAfter(response))
            if problem.type == "badNonce" && attempt < ACMEClient.nonceRetries {
                self.nonceRetries += 1
                continue
            }
            throw .problem(problem)
        }
    }

    /// Seconds from a Retry-After field (delay seconds only; a date is treated as absent), capped at a day.
    static func retryAfter(_ response: HTTPClient.Response) -> Int? {
        guard let text = response.header("Retry-After"), let seconds = Int(text), seconds >= 0 else { return nil }
        return min(seconds, 86_400)
    }

    /// Registers the account key (or finds its existing account): its URL.
    public func register(contact: [String], agreeTerms: Bool, binding: ExternalAccountBinding?) throws(ACMEError)
        -> String
    {
        let directory = try self.loadDirectory()
        if directory.externalAccountRequired && binding == nil {
            throw .local("this CA requires external account binding: add eab=KEY-ID:FILE to the 'acme' setting")
        }
        var payload: [(String, JSON)] = [
            ("termsOfServiceAgreed", .bool(agreeTerms)), ("contact", .array(contact.map { .string("mailto:\($0)") })),
        ]
        if let binding {
            payload.append(("externalAccountBinding", try binding.jws(accountKey: self.key, url: directory.newAccount)))
        }
        let response = try self.post(directory.newAccount, .object(payload), useKeyID: false)
        guard let location = response.header("Location"), !location.isEmpty else {
            throw .badReply("newAccount gave no Location")
        }
        self.accountURL = location
        return location
    }

    /// A new order for `names`; `replaces` names the certificate it renews (RFC 9773 §5).
    public func newOrder(_ names: [String], replaces: String?) throws(ACMEError) -> (url: String, order: ACMEOrder) {
        let directory = try self.loadDirectory()
        var payload: [(String, JSON)] = [
            ("identifiers", .array(names.map { .object([("type", .string("dns")), ("value", .string($0))]) }))
        ]
        // Only to a CA that offers renewal information (RFC 9773 §5); others may refuse the member.
        if let replaces, directory.renewalInfo != nil { payload.append(("replaces", .string(replaces))) }
        let response = try self.post(directory.newOrder, .object(payload))
        guard let location = response.header("Location"), !location.isEmpty else {
            throw .badReply("newOrder gave no Location")
        }
        return (location, try ACMEOrder(json: try ACMEClient.json(response, "the new order")))
    }

    public func order(_ url: String) throws(ACMEError) -> ACMEOrder {
        try ACMEOrder(json: try ACMEClient.json(try self.post(url, nil), "the order"))
    }

    public func authorization(_ url: String) throws(ACMEError) -> ACMEAuthorization {
        try ACMEAuthorization(json: try ACMEClient.json(try self.post(url, nil), "the authorization"))
    }

    /// Tells the CA the challenge at `url` is ready to be validated.
    public func respond(_ url: String) throws(ACMEError) { _ = try self.post(url, .object([])) }

    /// Polls the authorisation at `url` until it is no longer pending, within `seconds`.
    public func awaitAuthorization(_ url: String, seconds: Int) throws(ACMEError) -> ACMEAuthorization {
        var waited = 0
        var step = 250
        while true {
            let response = try self.post(url, nil)
            let authorization = try ACMEAuthorization(json: try ACMEClient.json(response, "the authorization"))
            if authorization.status != .pending { return authorization }
            let delay = ACMEClient.retryAfter(response).map { min($0 * 1000, 10_000) } ?? step
            step = min(step * 2, 5_000)
            waited += delay
            guard waited <= seconds * 1000 else {
                throw .timedOut("the CA did not validate \(authorization.identifier) within \(seconds) s")
            }
            guard self.pause(delay) else { throw .local("stopping") }
        }
    }

    /// Sends the CSR and polls the order until it is valid or invalid, within `seconds`.
    public func finalize(_ url: String, order: ACMEOrder, csr: [UInt8], seconds: Int) throws(ACMEError) -> ACMEOrder {
        var current = order
        if current.status == .ready {
            let response = try self.post(current.finalize, .object([("csr", .string(Base64URL.encode(csr)))]))
            current = try ACMEOrder(json: try ACMEClient.json(response, "the finalized order"))
        }
        var waited = 0
        var step = 250
        while current.status == .processing || current.status == .ready {
            let response = try self.post(url, nil)
            current = try ACMEOrder(json: try ACMEClient.json(response, "the order"))
            if current.status != .processing { break }
            let delay = ACMEClient.retryAfter(response).map { min($0 * 1000, 10_000) } ?? step
            step = min(step * 2, 5_000)
            waited += delay
            guard waited <= seconds * 1000 else { throw .timedOut("the CA did not issue within \(seconds) s") }
            guard self.pause(delay) else { throw .local("stopping") }
        }
        return current
    }

    /// The PEM chain at `url`.
    public func certificate(_ url: String) throws(ACMEError) -> [UInt8] {
        let response = try self.post(url, nil, accept: "application/pem-certificate-chain")
        guard response.status == 200, response.text.contains("-----BEGIN CERTIFICATE-----") else {
            throw .badReply("the certificate download was not a PEM chain (HTTP \(response.status))")
        }
        return response.body
    }

    /// RFC 9773: the CA's suggested renewal window for the certificate `id`, nil when the CA offers none.
    public func renewalInfo(_ id: String) throws(ACMEError) -> (window: RenewalWindow, retryAfter: Int?)? {
        guard let base = try self.loadDirectory().renewalInfo else { return nil }
        let url = base.hasSuffix("/") ? base + id : base + "/" + id
        let response = try self.send(HTTPClient.Request(method: "GET", url: url, headers: [], body: []))
        guard response.status == 200 else { throw .badReply("renewalInfo: HTTP \(response.status)") }
        guard let json = JSON.parse(response.body) else { throw .badReply("renewalInfo: not JSON") }
        return (try RenewalWindow(json: json), ACMEClient.retryAfter(response))
    }

    static func json(_ response: HTTPClient.Response, _ what: String) throws(ACMEError) -> JSON {
        guard let json = JSON.parse(response.body) else { throw .badReply("\(what) is not JSON") }
        return json
    }
}

/// External account binding (RFC 8555 §7.3.4): the CA's key identifier and MAC key (ZeroSSL, Google, ...).
public struct ExternalAccountBinding: Sendable, Equatable {
    public var keyID: String
    public var macKey: [UInt8]

    public init(keyID: String, macKey: [UInt8]) {
        self.keyID = keyID
        self.macKey = macKey
    }

    /// The MAC key as CAs hand it out: base64url (padded or standard base64 accepted too).
    public init?(keyID: String, encodedKey: String) {
        let trimmed = encodedKey.filter { !$0.isWhitespace }
        guard let key = Base64URL.decode(trimmed.replacingEquals) ?? Base64.decode(trimmed), !key.isEmpty,
            !keyID.isEmpty
        else { return nil }
        self.init(keyID: keyID, macKey: key)
    }

    /// The inner JWS binding `accountKey` to the CA's key identifier, HS256.
    func jws(accountKey: ECKey, url: String) throws(ACMEError) -> JSON {
        let header = JSON.object([("alg", .string("HS256")), ("kid", .string(self.keyID)), ("url", .string(url))])
        let protected = Base64URL.encode(header.text())
        let payload = Base64URL.encode(accountKey.jwkText)
        let mac = HMAC.authenticate(.sha256, key: self.macKey, message: Array("\(protected).\(payload)".utf8))
        return .object([
            ("protected", .string(protected)), ("payload", .string(payload)),
            ("signature", .string(Base64URL.encode(mac))),
        ])
    }
}

extension String {
    fileprivate var replacingEquals: String { String(self.filter { $0 != "=" }) }
}
