import ZoneModel

/// Publishes and withdraws the proofs the CA checks.
public protocol ChallengeResponder: AnyObject {
    /// Publishes DNS-01 TXT records (owner, value; one owner may get several values: apex and wildcard) and
    /// returns once Frontdoor's own servers answer them; throws when they cannot be published.
    func publishDNS(_ records: [ChallengeRecord]) throws(ACMEError)
    /// Removes them again.
    func withdrawDNS(_ records: [ChallengeRecord])
    /// Serves `keyAuthorization` at `/.well-known/acme-challenge/TOKEN` for `host`.
    func publishHTTP(token: String, keyAuthorization: String, host: String) throws(ACMEError)
    func withdrawHTTP(token: String)
}

/// One DNS-01 proof: the TXT value at `owner`, published as `route` says.
public struct ChallengeRecord: Sendable, Equatable {
    public var owner: DomainName
    public var value: String
    public var route: ChallengeRoute
    /// The name it proves (without `*.`).
    public var identifier: String

    public init(owner: DomainName, value: String, route: ChallengeRoute, identifier: String) {
        self.owner = owner
        self.value = value
        self.route = route
        self.identifier = identifier
    }
}

/// One order from start to certificate (RFC 8555 §7.4), resumable: the order's URL is handed to `saved`
/// before any proof is published, so a restart continues the same order instead of placing another.
public struct Issuance {
    public let client: ACMEClient
    public let certificate: PlannedCertificate
    public let responder: any ChallengeResponder
    /// Seconds allowed for the CA's validation of each authorisation, and for its issuance.
    public var validationSeconds = 120
    public var issuanceSeconds = 300

    public init(client: ACMEClient, certificate: PlannedCertificate, responder: any ChallengeResponder) {
        self.client = client
        self.certificate = certificate
        self.responder = responder
    }

    /// The PEM chain for `key`'s CSR. `resume`: the URL of an order a previous run left unfinished;
    /// `replaces`: the ARI identifier of the certificate this renews; `saved` gets the order URL.
    public func run(key: ECKey, resume: String?, replaces: String?, saved: (String) -> Void) throws(ACMEError)
        -> [UInt8]
    {
        var url: String
        var order: ACMEOrder
        if let resume, let existing = try? self.client.order(resume), existing.status != .invalid,
            Set(existing.identifiers) == Set(self.certificate.names)
        {
            url = resume
            order = existing
        } else {
            (url, order) = try self.newOrder(replaces: replaces)
            saved(url)
        }
        if order.status == .pending {
            try self.authorize(order)
            order = try self.client.order(url)
            var waited = 0
            while order.status == .pending && waited < 10 {
                guard self.client.pause(500) else { throw .local("stopping") }
                waited += 1
                order = try self.client.order(url)
            }
        }
        if order.status == .invalid {
            throw order.error.map { .problem($0) } ?? .badReply("the order became invalid")
        }
        let csr: [UInt8]
        do {
            csr = try key.certificateRequest(names: self.certificate.names)
        } catch {
            throw .local(error.description)
        }
        let final = try self.client.finalize(url, order: order, csr: csr, seconds: self.issuanceSeconds)
        guard final.status == .valid, let certificateURL = final.certificate else {
            throw final.error.map { .problem($0) } ?? .badReply("the order ended \(final.status.rawValue)")
        }
        return try self.client.certificate(certificateURL)
    }

    func newOrder(replaces: String?) throws(ACMEError) -> (String, ACMEOrder) {
        do {
            return try self.client.newOrder(self.certificate.names, replaces: replaces)
        } catch let error where replaces != nil && error.problemType != "rateLimited" {
            // A CA that does not accept this `replaces` (already replaced, unknown) still gets the order.
            return try self.client.newOrder(self.certificate.names, replaces: nil)
        }
    }

    /// Proves every pending authorisation of `order`: all DNS records first (apex and wildcard side by side),
    /// then each challenge answered and awaited; the proofs are withdrawn whatever happens.
    func authorize(_ order: ACMEOrder) throws(ACMEError) {
        let thumbprint = self.client.key.thumbprint
        var records: [ChallengeRecord] = []
        var tokens: [String] = []
        // Each challenge to await, and whether it still needs its answer (a restart may have given it already).
        var pending: [(authorization: String, challenge: String, identifier: String, answer: Bool)] = []
        defer {
            if !records.isEmpty { self.responder.withdrawDNS(records) }
            for token in tokens { self.responder.withdrawHTTP(token: token) }
        }
        for url in order.authorizations {
            let authorization = try self.client.authorization(url)
            switch authorization.status {
            case .valid: continue
            case .pending: break
            default:
                throw authorization.failure.map { .problem($0) }
                    ?? .badReply("authorization for \(authorization.identifier) is \(authorization.status.rawValue)")
            }
            let identifier = (authorization.wildcard ? "*." : "") + authorization.identifier
            guard let route = self.certificate.route(for: identifier) else {
                throw .badReply("the CA asks about \(identifier), which was not ordered")
            }
            let type = route == .http ? "http-01" : "dns-01"
            guard let challenge = authorization.challenges.first(where: { $0.type == type }) else {
                throw .local("the CA offers no \(type) challenge for \(identifier)")
            }
            guard KeyAuthorization.validToken(challenge.token) else {
                throw .badReply("challenge token for \(identifier) is not base64url")
            }
            if route == .http {
                try self.responder.publishHTTP(
                    token: challenge.token,
                    keyAuthorization: KeyAuthorization.text(token: challenge.token, thumbprint: thumbprint),
                    host: authorization.identifier)
                tokens.append(challenge.token)
            } else {
                guard let owner = route.owner(for: authorization.identifier) else {
                    throw .local("\(identifier) has no _acme-challenge name")
                }
                records.append(
                    ChallengeRecord(
                        owner: owner, value: KeyAuthorization.dnsValue(token: challenge.token, thumbprint: thumbprint),
                        route: route, identifier: authorization.identifier))
            }
            pending.append((url, challenge.url, identifier, challenge.status == "pending"))
        }
        if !records.isEmpty { try self.responder.publishDNS(records) }
        for item in pending where item.answer { try self.client.respond(item.challenge) }
        for item in pending {
            let result = try self.client.awaitAuthorization(item.authorization, seconds: self.validationSeconds)
            guard result.status == .valid else {
                throw result.failure.map { .problem($0) }
                    ?? .badReply("authorization for \(item.identifier) is \(result.status.rawValue)")
            }
        }
    }
}
