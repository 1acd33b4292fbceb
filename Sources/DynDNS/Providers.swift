import DNSAuth
import Files
import ZoneModel

/// The result of pushing an address to a provider.
public enum PushOutcome: Error, Equatable, Sendable {
    /// The provider now has the address.
    case updated
    /// The provider already had it (nothing was sent, or it said `nochg`).
    case unchanged
    /// A temporary failure: try again later — not before `retryAfter` milliseconds when the provider asked.
    case failed(String, retryAfter: UInt64?)
    /// The provider refused for good (bad credentials, unknown host, abuse): stop and tell the user.
    case fatal(String)

    public var summary: String {
        switch self {
        case .updated: "updated"
        case .unchanged: "unchanged"
        case .failed(let reason, _): "failed: \(reason)"
        case .fatal(let reason): "stopped: \(reason)"
        }
    }
}

/// Pushes addresses to the three kinds of provider. Secrets are read from their files at each push, so a
/// rotated key needs no restart; they never appear in messages.
public struct ProviderClient: Sendable {
    /// Trust store for HTTPS (nil: the system's).
    public var caFile: String?
    /// Cloudflare's API root; tests point it at a local server.
    public var cloudflareAPI = "https://api.cloudflare.com/client/v4"
    public var timeout: UInt64 = 10_000
    public var ttl: UInt32 = 60

    public init(caFile: String? = nil) {
        self.caFile = caFile
    }

    public func push(_ provider: Provider, address: IPAddress) -> PushOutcome {
        switch provider.kind {
        case .rfc2136(let server, let zone, let record, let keyFile):
            return self.rfc2136(server: server, zone: zone, record: record, keyFile: keyFile, address: address)
        case .dyndns2(let url, let hostname, let username, let passwordFile):
            return self.dyndns2(
                url: url, hostname: hostname, username: username, passwordFile: passwordFile, address: address)
        case .cloudflare(let zoneID, let record, let tokenFile):
            return self.cloudflare(zoneID: zoneID, record: record, tokenFile: tokenFile, address: address)
        }
    }

    /// A secret's text (from systemd's credential directory when it holds it), or why it cannot be used.
    static func secret(_ path: String) -> Result<String, DynDNSError> {
        let file = SecretFiles.resolve(path)
        switch DiskFiles().read(file) {
        case .failure(let problem):
            return .failure(.badKey("cannot read secret file \(file): \(problem)"))
        case .success(let bytes):
            let text = String(decoding: bytes, as: UTF8.self).trimmingSpaces
            guard !text.isEmpty else { return .failure(.badKey("secret file \(file) is empty")) }
            return .success(text)
        }
    }

    /// A digest of the provider's secrets as they are now (never the secrets): part of its configuration, so
    /// a provider stopped by a wrong password is tried again once the password file changes.
    public static func secretDigest(_ provider: Provider) -> String {
        var digest: [UInt8] = []
        for path in provider.secretFiles {
            let bytes: [UInt8]
            switch DiskFiles().read(SecretFiles.resolve(path)) {
            case .success(let read): bytes = read
            case .failure(let problem): bytes = Array("unreadable: \(problem)".utf8)
            }
            digest += HMAC.authenticate(.sha256, key: Array("frontdoor secret digest".utf8), message: bytes)
        }
        return digest.prefix(12).map { String($0, radix: 16) }.joined()
    }

    /// Why a secret cannot be used, for the log and the status.
    static func secretProblem(_ path: String) -> String {
        if case .failure(.badKey(let text)) = ProviderClient.secret(path) { return text }
        return "secret file \(path)"
    }

    func rfc2136(server: SocketAddress, zone: DomainName, record: DomainName, keyFile: String, address: IPAddress)
        -> PushOutcome
    {
        let key: TSIGKey
        do {
            guard case .success(let text) = ProviderClient.secret(keyFile) else {
                return .fatal(ProviderClient.secretProblem(keyFile))
            }
            key = try TSIGKey.parse(bindKeyFile: text)
        } catch {
            return .fatal("bad key: \(error) (\(keyFile))")
        }
        // Ask the primary first: push only when its record differs.
        if let current = try? DNSUpdate.current(
            server: server, record: record, v4: address.isV4, timeout: self.timeout),
            current == [address]
        {
            return .unchanged
        }
        do {
            try DNSUpdate.push(
                server: server, zone: zone, record: record, address: address, ttl: self.ttl, key: key,
                timeout: self.timeout)
            return .updated
        } catch {
            switch error {
            case .refused(let reason), .badKey(let reason): return .fatal(reason)
            case .unreachable(let reason), .badReply(let reason): return .failed(reason, retryAfter: nil)
            }
        }
    }

    /// The dyndns2 protocol (`/nic/update`), as dyn.com documented it and ddclient and inadyn speak it.
    func dyndns2(url: String, hostname: String, username: String, passwordFile: String, address: IPAddress)
        -> PushOutcome
    {
        guard case .success(let password) = ProviderClient.secret(passwordFile) else {
            return .fatal(ProviderClient.secretProblem(passwordFile))
        }
        let separator = url.contains("?") ? "&" : "?"
        let full = "\(url)\(separator)hostname=\(ProviderClient.escape(hostname))&myip=\(address)"
        let credentials = Base64.encode(Array("\(username):\(password)".utf8))
        let response: HTTPClient.Response
        do {
            response = try HTTPClient.request(
                HTTPClient.Request(
                    method: "GET", url: full, headers: [("Authorization", "Basic \(credentials)")], body: []),
                timeout: self.timeout, caFile: self.caFile)
        } catch {
            return .failed("\(error)", retryAfter: nil)
        }
        return ProviderClient.dyndns2Outcome(status: response.status, body: response.text)
    }

    /// Reads a dyndns2 answer: the first word is the code.
    public static func dyndns2Outcome(status: Int, body: String) -> PushOutcome {
        let word = body.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
        switch word {
        case "good": return .updated
        case "nochg": return .unchanged
        case "badauth": return .fatal("badauth: the username or password is wrong")
        case "notfqdn": return .fatal("notfqdn: the hostname is not a fully qualified domain name")
        case "nohost": return .fatal("nohost: the hostname does not exist in this account")
        case "numhost": return .fatal("numhost: too many hosts in one request")
        case "abuse": return .fatal("abuse: the provider blocked this hostname for too many updates")
        case "badagent": return .fatal("badagent: the provider refused this client")
        case "!donator": return .fatal("!donator: the feature needs a paid account")
        case "dnserr": return .failed("dnserr: the provider's DNS failed", retryAfter: 30 * 60 * 1000)
        case "911": return .failed("911: the provider is in trouble", retryAfter: 30 * 60 * 1000)
        default:
            if status == 401 || status == 403 { return .fatal("HTTP \(status): the provider refused the credentials") }
            if status >= 500 { return .failed("HTTP \(status) from the provider", retryAfter: nil) }
            return .failed("unexpected answer (HTTP \(status)): \(body.prefix(60).debugDescription)", retryAfter: nil)
        }
    }

    /// Cloudflare's DNS record API: find the record, change its content (or create it) — only when it differs.
    func cloudflare(zoneID: String, record: String, tokenFile: String, address: IPAddress) -> PushOutcome {
        guard case .success(let token) = ProviderClient.secret(tokenFile) else {
            return .fatal(ProviderClient.secretProblem(tokenFile))
        }
        let type = address.isV4 ? "A" : "AAAA"
        let base = "\(self.cloudflareAPI)/zones/\(ProviderClient.escape(zoneID))/dns_records"
        func call(_ method: String, _ url: String, _ body: JSON?) -> Result<JSON, PushOutcome> {
            self.cloudflareCall(method, url, body, token: token)
        }
        let listed = call("GET", "\(base)?type=\(type)&name=\(ProviderClient.escape(record))", nil)
        guard case .success(let list) = listed else {
            if case .failure(let outcome) = listed { return outcome }
            return .failed("no reply", retryAfter: nil)
        }
        let records = list["result"]?.array ?? []
        if let existing = records.first, let id = existing["id"]?.string {
            if existing["content"]?.string == address.description { return .unchanged }
            let changed = call(
                "PATCH", "\(base)/\(ProviderClient.escape(id))", .object([("content", .string(address.description))]))
            if case .failure(let outcome) = changed { return outcome }
            return .updated
        }
        let created = call(
            "POST", base,
            .object([
                ("type", .string(type)), ("name", .string(record)), ("content", .string(address.description)),
                ("ttl", .number(1)), ("proxied", .bool(false)),
            ]))
        if case .failure(let outcome) = created { return outcome }
        return .updated
    }

    /// One call to Cloudflare's API: the reply's JSON when it says `success`, else what went wrong.
    func cloudflareCall(_ method: String, _ url: String, _ body: JSON?, token: String) -> Result<JSON, PushOutcome> {
        let headers = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        let bytes = body.map { Array($0.text().utf8) } ?? []
        let response: HTTPClient.Response
        do {
            response = try HTTPClient.request(
                HTTPClient.Request(method: method, url: url, headers: headers, body: bytes), timeout: self.timeout,
                caFile: self.caFile)
        } catch {
            return .failure(.failed("\(error)", retryAfter: nil))
        }
        let json = JSON.parse(response.body)
        if response.status == 401 || response.status == 403 {
            return .failure(.fatal("HTTP \(response.status): the API token is not valid for this zone"))
        }
        if response.status == 429 { return .failure(.failed("rate limited (HTTP 429)", retryAfter: 5 * 60 * 1000)) }
        guard let json else {
            return .failure(.failed("unreadable reply (HTTP \(response.status))", retryAfter: nil))
        }
        guard json["success"]?.bool == true else {
            let errors = (json["errors"]?.array ?? []).compactMap { $0["message"]?.string }
            let text = errors.isEmpty ? "HTTP \(response.status)" : errors.joined(separator: "; ")
            return .failure(response.status >= 500 ? .failed(text, retryAfter: nil) : .fatal(text))
        }
        return .success(json)
    }

    /// Adds a TXT record (an ACME DNS-01 proof, TTL 60) through Cloudflare's API: its record ID.
    public func cloudflareAddTXT(zoneID: String, name: String, value: String, tokenFile: String)
        -> Result<String, PushOutcome>
    {
        guard case .success(let token) = ProviderClient.secret(tokenFile) else {
            return .failure(.fatal(ProviderClient.secretProblem(tokenFile)))
        }
        let base = "\(self.cloudflareAPI)/zones/\(ProviderClient.escape(zoneID))/dns_records"
        let body = JSON.object([
            ("type", .string("TXT")), ("name", .string(name)), ("content", .string(value)), ("ttl", .number(60)),
        ])
        switch self.cloudflareCall("POST", base, body, token: token) {
        case .failure(let outcome): return .failure(outcome)
        case .success(let json):
            guard let id = json["result"]?["id"]?.string, !id.isEmpty else {
                return .failure(.failed("the API returned no record ID", retryAfter: nil))
            }
            return .success(id)
        }
    }

    /// Deletes the record `id` through Cloudflare's API: nil, or what went wrong.
    public func cloudflareDelete(zoneID: String, id: String, tokenFile: String) -> PushOutcome? {
        guard case .success(let token) = ProviderClient.secret(tokenFile) else {
            return .fatal(ProviderClient.secretProblem(tokenFile))
        }
        let url =
            "\(self.cloudflareAPI)/zones/\(ProviderClient.escape(zoneID))/dns_records/\(ProviderClient.escape(id))"
        if case .failure(let outcome) = self.cloudflareCall("DELETE", url, nil, token: token) { return outcome }
        return nil
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
