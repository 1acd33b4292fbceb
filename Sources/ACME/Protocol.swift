import DynDNS

/// What went wrong talking to a CA.
public enum ACMEError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The CA's problem document (RFC 8555 §6.7): its type (without the `urn:ietf:params:acme:error:`
    /// prefix), detail, HTTP status, and the identifiers' own problems.
    case problem(ACMEProblem)
    /// The CA could not be reached, or the connection failed.
    case unreachable(String)
    /// The CA answered something this client cannot use.
    case badReply(String)
    /// A validation or an order did not finish in time.
    case timedOut(String)
    /// Something on this side: a key, a file, the DNS publication.
    case local(String)

    public var description: String {
        switch self {
        case .problem(let problem): problem.description
        case .unreachable(let text): "CA unreachable: \(text)"
        case .badReply(let text): "unusable reply from the CA: \(text)"
        case .timedOut(let text): "timed out: \(text)"
        case .local(let text): text
        }
    }

    /// The type of the CA's problem, if it sent one ("rateLimited", "badNonce", ...).
    public var problemType: String? {
        if case .problem(let problem) = self { return problem.type }
        return nil
    }
}

/// An RFC 7807 problem document from the CA.
public struct ACMEProblem: Sendable, Equatable, CustomStringConvertible {
    public var type: String
    public var detail: String
    public var status: Int
    /// Per identifier: "dns:NAME: type: detail".
    public var subproblems: [String]
    /// Seconds the CA asks to wait before trying again (Retry-After), when it said.
    public var retryAfter: Int?

    public init(type: String, detail: String, status: Int, subproblems: [String] = [], retryAfter: Int? = nil) {
        self.type = type
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
        self.retryAfter = retryAfter
    }

    static let prefix = "urn:ietf:params:acme:error:"

    /// The problem in `json` (the body of an error response, or a challenge's `error` member).
    public init(json: JSON, status: Int, retryAfter: Int? = nil) {
        let type = json["type"]?.string ?? "about:blank"
        self.type = type.hasPrefix(ACMEProblem.prefix) ? String(type.dropFirst(ACMEProblem.prefix.count)) : type
        self.detail = json["detail"]?.string ?? ""
        self.status = status
        self.subproblems = (json["subproblems"]?.array ?? []).map { sub in
            let identifier = sub["identifier"].map { "\($0["type"]?.string ?? "?"):\($0["value"]?.string ?? "?")" }
            let type = sub["type"]?.string ?? ""
            let shortType = type.hasPrefix(ACMEProblem.prefix) ? String(type.dropFirst(ACMEProblem.prefix.count)) : type
            return "\(identifier ?? "?"): \(shortType): \(sub["detail"]?.string ?? "")"
        }
        self.retryAfter = retryAfter
    }

    public var description: String {
        var text = "\(self.type) (HTTP \(self.status))"
        if !self.detail.isEmpty { text += ": \(self.detail)" }
        if !self.subproblems.isEmpty { text += " [" + self.subproblems.joined(separator: "; ") + "]" }
        return text
    }
}

/// The CA's directory (RFC 8555 §7.1.1).
public struct ACMEDirectory: Sendable, Equatable {
    public var newNonce: String
    public var newAccount: String
    public var newOrder: String
    /// RFC 9773's renewal information, when the CA offers it.
    public var renewalInfo: String?
    public var termsOfService: String?
    public var externalAccountRequired: Bool

    public init(json: JSON) throws(ACMEError) {
        guard let newNonce = json["newNonce"]?.string, let newAccount = json["newAccount"]?.string,
            let newOrder = json["newOrder"]?.string
        else { throw .badReply("the directory lacks newNonce, newAccount or newOrder") }
        self.newNonce = newNonce
        self.newAccount = newAccount
        self.newOrder = newOrder
        self.renewalInfo = json["renewalInfo"]?.string
        self.termsOfService = json["meta"]?["termsOfService"]?.string
        self.externalAccountRequired = json["meta"]?["externalAccountRequired"]?.bool ?? false
    }
}

/// An order (RFC 8555 §7.1.3).
public struct ACMEOrder: Sendable, Equatable {
    public enum Status: String, Sendable { case pending, ready, processing, valid, invalid }
    public var status: Status
    public var identifiers: [String]
    public var authorizations: [String]
    public var finalize: String
    public var certificate: String?
    public var error: ACMEProblem?

    public init(json: JSON) throws(ACMEError) {
        guard let statusText = json["status"]?.string, let status = Status(rawValue: statusText) else {
            throw .badReply("an order without a known status")
        }
        guard let finalize = json["finalize"]?.string else { throw .badReply("an order without a finalize URL") }
        self.status = status
        self.identifiers = (json["identifiers"]?.array ?? []).compactMap { $0["value"]?.string }
        self.authorizations = (json["authorizations"]?.array ?? []).compactMap(\.string)
        self.finalize = finalize
        self.certificate = json["certificate"]?.string
        self.error = json["error"].map { ACMEProblem(json: $0, status: 0) }
    }
}

/// An authorisation and its challenges (RFC 8555 §7.1.4).
public struct ACMEAuthorization: Sendable, Equatable {
    public enum Status: String, Sendable { case pending, valid, invalid, deactivated, expired, revoked }
    public struct Challenge: Sendable, Equatable {
        public var type: String
        public var url: String
        public var token: String
        public var status: String
        public var error: ACMEProblem?
    }

    public var status: Status
    /// The name to prove, without `*.`.
    public var identifier: String
    public var wildcard: Bool
    public var challenges: [Challenge]

    public init(json: JSON) throws(ACMEError) {
        guard let statusText = json["status"]?.string, let status = Status(rawValue: statusText) else {
            throw .badReply("an authorization without a known status")
        }
        guard let identifier = json["identifier"]?["value"]?.string else {
            throw .badReply("an authorization without an identifier")
        }
        self.status = status
        self.identifier = identifier
        self.wildcard = json["wildcard"]?.bool ?? false
        self.challenges = (json["challenges"]?.array ?? []).compactMap { challenge in
            guard let type = challenge["type"]?.string, let url = challenge["url"]?.string else { return nil }
            return Challenge(
                type: type, url: url, token: challenge["token"]?.string ?? "",
                status: challenge["status"]?.string ?? "pending",
                error: challenge["error"].map { ACMEProblem(json: $0, status: 0) })
        }
    }

    /// Why it failed: the first challenge's error.
    public var failure: ACMEProblem? { self.challenges.compactMap(\.error).first }
}

/// RFC 9773's suggested window: renew between `start` and `end` (seconds since the epoch).
public struct RenewalWindow: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public var explanationURL: String?

    public init(start: Int, end: Int, explanationURL: String? = nil) {
        self.start = start
        self.end = end
        self.explanationURL = explanationURL
    }

    public init(json: JSON) throws(ACMEError) {
        guard let window = json["suggestedWindow"], let startText = window["start"]?.string,
            let endText = window["end"]?.string, let start = RFC3339.seconds(startText),
            let end = RFC3339.seconds(endText), end > start
        else { throw .badReply("renewalInfo without a readable suggestedWindow") }
        self.start = start
        self.end = end
        self.explanationURL = json["explanationURL"]?.string
    }
}

/// The key authorisation and what each challenge type publishes (RFC 8555 §8.1, §8.3, §8.4).
public enum KeyAuthorization {
    /// `token.thumbprint`: the body HTTP-01 serves.
    public static func text(token: String, thumbprint: String) -> String { token + "." + thumbprint }

    /// The TXT value DNS-01 publishes: base64url(SHA-256(key authorisation)).
    public static func dnsValue(token: String, thumbprint: String) -> String {
        Base64URL.encode(sha256(Array(KeyAuthorization.text(token: token, thumbprint: thumbprint).utf8)))
    }

    /// Whether a token is one a CA may send (base64url, at least 128 bits): anything else is refused before
    /// it reaches a URL path or a DNS record.
    public static func validToken(_ token: String) -> Bool {
        token.utf8.count >= 22 && token.utf8.count <= 256
            && token.utf8.allSatisfy { byte in
                (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }
}

/// RFC 3339 timestamps, as ACME writes them ("2026-12-05T10:00:00Z", fractions and offsets allowed).
public enum RFC3339 {
    public static func seconds(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[from..<from + count] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard bytes.count >= 20, let year = number(0, 4), bytes[4] == 0x2D, let month = number(5, 2),
            bytes[7] == 0x2D, let day = number(8, 2), bytes[10] == 0x54 || bytes[10] == 0x74,
            let hour = number(11, 2), bytes[13] == 0x3A, let minute = number(14, 2), bytes[16] == 0x3A,
            let second = number(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var index = 19
        if index < bytes.count && bytes[index] == 0x2E {
            index += 1
            while index < bytes.count && bytes[index] >= 0x30 && bytes[index] <= 0x39 { index += 1 }
        }
        var offset = 0
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case 0x5A, 0x7A:
            guard index + 1 == bytes.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == bytes.count, let hours = number(index + 1, 2), bytes[index + 3] == 0x3A,
                let minutes = number(index + 4, 2)
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (bytes[index] == 0x2B ? 1 : -1)
        default:
            return nil
        }
        return RFC3339.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    }

    /// Days from 1970-01-01 to the date (proleptic Gregorian).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// `seconds` since the epoch as RFC 3339 UTC.
    public static func text(_ seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }
}
