import ACME
import CSys
import DNSServer
import DNSWire
import DynDNS
import EventLoop
import Files
import HTTPProxy
import Synchronization
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// What `status`, the status page and `/metrics` show of one ACME certificate.
public struct ACMECertificateStatus: Sendable, Equatable {
    public var name: String
    public var names: [String]
    public var notAfter: Int?
    public var issuer: String?
    public var renewAt: Int?
    public var lastAttempt: Int?
    public var lastError: String?
    public var nextAttempt: Int?
    public var ordersValid: Int
    public var ordersFailed: Int
}

/// One certificate's progress, kept in `state-dir/acme/state/NAME.json` so a restart neither loses it nor
/// orders twice.
struct ACMEProgress: Equatable {
    var names: [String] = []
    /// The order in flight (its key waits in `certs/NAME.key.pending`).
    var order: String?
    var failures = 0
    var nextAttempt = 0
    var lastAttempt: Int?
    var lastError: String?
    var renewAt: Int?
    var windowStart: Int?
    var windowEnd: Int?
    var ordersValid = 0
    var ordersFailed = 0

    init() {}

    init(json: JSON) {
        self.names = (json["names"]?.array ?? []).compactMap(\.string)
        self.order = json["order"]?.string
        self.failures = Int(json["failures"]?.number ?? 0)
        self.nextAttempt = Int(json["nextAttempt"]?.number ?? 0)
        self.lastAttempt = json["lastAttempt"]?.number.map { Int($0) }
        self.lastError = json["lastError"]?.string
        self.renewAt = json["renewAt"]?.number.map { Int($0) }
        self.windowStart = json["windowStart"]?.number.map { Int($0) }
        self.windowEnd = json["windowEnd"]?.number.map { Int($0) }
        self.ordersValid = Int(json["ordersValid"]?.number ?? 0)
        self.ordersFailed = Int(json["ordersFailed"]?.number ?? 0)
    }

    var json: JSON {
        var members: [(String, JSON)] = [("names", .array(self.names.map { .string($0) }))]
        if let order { members.append(("order", .string(order))) }
        members += [("failures", .number(Double(self.failures))), ("nextAttempt", .number(Double(self.nextAttempt)))]
        if let lastAttempt { members.append(("lastAttempt", .number(Double(lastAttempt)))) }
        if let lastError { members.append(("lastError", .string(lastError))) }
        if let renewAt { members.append(("renewAt", .number(Double(renewAt)))) }
        if let windowStart { members.append(("windowStart", .number(Double(windowStart)))) }
        if let windowEnd { members.append(("windowEnd", .number(Double(windowEnd)))) }
        members += [
            ("ordersValid", .number(Double(self.ordersValid))), ("ordersFailed", .number(Double(self.ordersFailed))),
        ]
        return .object(members)
    }
}

/// Keeps the sites' certificates from an ACME CA (`acme` in frontdoor.conf): plans them from the model
/// (`CertificatePlan`), orders what is missing or due (`RenewalPolicy`), proves names by DNS-01 in
/// Frontdoor's own zones (published through the appliance, checked against its own answers), writes keys and
/// chains atomically under `state-dir/acme/certs`, and asks for the HTTPS certificates to be rebuilt. One
/// order at a time; failures back off. Control plane: its own thread, blocking I/O.
public final class ACMEManager: @unchecked Sendable, ChallengeResponder {
    let appliance: Appliance
    let stopped = Atomic<Bool>(false)
    let wake: Poller?
    /// Called after a certificate was written (its name): the HTTPS certificates are rebuilt.
    let issued: @Sendable (String) -> Void
    /// The HTTP-01 proofs the proxy serves.
    public let httpChallenges: ChallengeTokens
    var client: ACMEClient?
    var clientSettings: ACMESettings?
    /// What the DNS holds now (owner → values), published through the appliance.
    var published: [DomainName: [String]] = [:]
    /// Cloudflare's record IDs of the proofs added through its API, for their removal.
    var cloudflareIDs: [String: String] = [:]

    public init(appliance: Appliance, httpChallenges: ChallengeTokens, issued: @escaping @Sendable (String) -> Void) {
        self.appliance = appliance
        self.httpChallenges = httpChallenges
        self.issued = issued
        self.wake = try? Poller(capacity: 4)
    }

    /// `state-dir/acme`.
    public static func directory(_ settings: Settings) -> String? {
        settings.stateDirectory.map { joinPath($0, "acme") }
    }

    /// Where the issued certificates are, for the HTTPS listeners.
    public static func certificateDirectory(_ settings: Settings) -> String? {
        ACMEManager.directory(settings).map { joinPath($0, "certs") }
    }

    public func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.wake?.wake()
    }

    /// The model was reloaded: plan again now.
    public func reloaded() { self.wake?.wake() }

    /// Waits `milliseconds` unless stopped; false when stopping.
    func pause(_ milliseconds: Int) -> Bool {
        guard !self.stopped.load(ordering: .acquiring) else { return false }
        self.wake?.wait(timeout: Int32(clamping: milliseconds)) { _, _ in }
        return !self.stopped.load(ordering: .acquiring)
    }

    public func run() {
        while !self.stopped.load(ordering: .acquiring) {
            let wait = self.round(now: Int(time(nil)))
            _ = self.pause(wait * 1000)
        }
        // Nothing proved stays published.
        if !self.published.isEmpty {
            self.published = [:]
            _ = self.appliance.setChallenges([:], dateSerial: todaySerial())
        }
    }

    /// The certificates the current model needs.
    public static func plan(_ snapshot: Snapshot, acme: ACMESettings) -> [PlannedCertificate] {
        // Zones whose public DNS is elsewhere: proved through their primary (RFC 2136), or over HTTP-01.
        var zones: [DomainName: ChallengeRoute] = [:]
        for apex in Set(snapshot.views.flatMap { $0.zones.keys }) where !acme.httpZones.contains(apex) {
            zones[apex] = .ownZone(apex: apex)
        }
        for delegation in acme.delegations {
            zones[delegation.zone] = .delegated(zone: delegation.zone, target: delegation.target)
        }
        let served = Array(Set(snapshot.views.flatMap { $0.zones.keys }))
        for provider in snapshot.settings.providers where acme.updateProviders.contains(provider.name) {
            switch provider.kind {
            case .rfc2136(_, let zone, _, _):
                zones[zone] = .dnsUpdate(provider: provider.name, zone: zone)
            case .cloudflare(_, let record, _):
                // The zone the provider's record lies in, as Frontdoor serves it to the LAN.
                guard let name = try? DomainName(record),
                    let zone = served.filter({ name.isSubdomain(of: $0) }).max(by: { $0.labelCount < $1.labelCount })
                else { continue }
                zones[zone] = .dnsUpdate(provider: provider.name, zone: zone)
            default:
                continue
            }
        }
        var operatorNames: [String] = []
        if let directory = snapshot.settings.tlsDirectory,
            case .success(let pairs) = CertificateFiles.pairs(in: directory, files: DiskFiles())
        {
            for pair in pairs {
                if case .success(let pem) = DiskFiles().read(pair.chain), let issued = try? IssuedCertificate(pem: pem)
                {
                    operatorNames += issued.names
                }
            }
        }
        let sites = snapshot.routes.sites.filter { !$0.passthrough }.map(\.name)
        return CertificatePlan.plan(sites: sites, zones: zones, perSite: acme.perSite, perSiteZones: acme.perSiteZones)
        {
            name in
            operatorNames.contains { covers($0, name) }
        }
    }

    /// One pass over the plan: issue or renew what is due. Seconds until the next pass.
    func round(now: Int) -> Int {
        guard let snapshot = self.appliance.compiledSnapshot, let acme = snapshot.settings.acme,
            let directory = ACMEManager.directory(snapshot.settings)
        else { return 3600 }
        let planned = ACMEManager.plan(snapshot, acme: acme)
        var next = 3600
        for certificate in planned {
            guard !self.stopped.load(ordering: .acquiring) else { break }
            var progress = self.progress(certificate.name, directory: directory)
            let current = self.current(certificate.name, directory: directory)
            var due = progress.names != certificate.names || current == nil
            if let current, !due {
                let renewAt = self.renewalTime(current, progress: &progress, now: now)
                due = now >= renewAt
                if !due { next = min(next, max(renewAt - now, 1)) }
            }
            if due && now < progress.nextAttempt {
                next = min(next, progress.nextAttempt - now)
            } else if due {
                self.attempt(
                    certificate, progress: &progress, current: current, acme: acme, directory: directory, now: now)
                if progress.failures > 0 { next = min(next, max(progress.nextAttempt - Int(time(nil)), 1)) }
            }
            self.save(progress, certificate.name, directory: directory)
        }
        return max(next, 1)
    }

    /// When `current` is due: the CA's ARI window when it offers one (asked again once a day), else two thirds
    /// of its lifetime.
    func renewalTime(_ current: IssuedCertificate, progress: inout ACMEProgress, now: Int) -> Int {
        if let renewAt = progress.renewAt, renewAt > current.notBefore,
            progress.windowStart == nil || now < renewAt - 86_400
        {
            return renewAt
        }
        var window: RenewalWindow?
        if let id = current.renewalID, let client = try? self.account(), let info = try? client.renewalInfo(id) {
            window = info.window
        }
        let renewAt = RenewalPolicy.renewalTime(current, window: window, random: Double.random(in: 0..<1))
        progress.renewAt = renewAt
        progress.windowStart = window?.start
        progress.windowEnd = window?.end
        return renewAt
    }

    /// The ACME client with the account registered (once per settings).
    func account() throws(ACMEError) -> ACMEClient {
        guard let snapshot = self.appliance.compiledSnapshot, let acme = snapshot.settings.acme,
            let directory = ACMEManager.directory(snapshot.settings)
        else { throw .local("acme is not configured") }
        if let client = self.client, self.clientSettings == acme, client.accountURL != nil { return client }
        let key = try self.accountKey(directory: directory)
        let client = ACMEClient(
            directoryURL: acme.directory, key: key,
            transport: ACMEClient.httpTransport(caFile: acme.caFile ?? snapshot.settings.caFile),
            pause: { [weak self] in self?.pause($0) ?? false })
        var binding: ExternalAccountBinding?
        if let keyID = acme.bindingKeyID, let file = acme.bindingKeyFile {
            guard case .success(let bytes) = DiskFiles().read(SecretFiles.resolve(file)),
                let found = ExternalAccountBinding(keyID: keyID, encodedKey: String(decoding: bytes, as: UTF8.self))
            else { throw .local("\(file): not a base64url MAC key for external account binding") }
            binding = found
        }
        let accountPath = joinPath(directory, "account.json")
        let saved = DiskFiles().read(accountPath).map { JSON.parse($0) }
        if case .success(let json?) = saved, json["directory"]?.string == acme.directory,
            let url = json["account"]?.string
        {
            client.accountURL = url
        } else {
            let url = try client.register(
                contact: acme.email.map { [$0] } ?? [], agreeTerms: acme.agreeTerms, binding: binding)
            let json = JSON.object([("directory", .string(acme.directory)), ("account", .string(url))])
            if let problem = DiskFiles().writeAtomically(Array(json.text(pretty: true).utf8), to: accountPath) {
                throw .local(problem.description)
            }
            Log.info("acme: registered account \(url) at \(acme.directory)")
        }
        self.client = client
        self.clientSettings = acme
        return client
    }

    /// The account key, made once (0600) and kept.
    func accountKey(directory: String) throws(ACMEError) -> ECKey {
        let path = joinPath(directory, "account.key")
        if case .success(let pem) = DiskFiles().read(path) {
            do throws(ACMECryptoError) {
                return try ECKey(pem: pem)
            } catch {
                throw .local("\(path): \(error.description) (move it away to register a new account)")
            }
        }
        let key: ECKey
        do throws(ACMECryptoError) {
            key = try ECKey.generate()
        } catch {
            throw .local(error.description)
        }
        try ACMEManager.makeDirectory(directory)
        if let problem = DiskFiles().writeAtomically(key.pem, to: path, mode: 0o600) {
            throw .local(problem.description)
        }
        return key
    }

    static func makeDirectory(_ path: String) throws(ACMEError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw .local("cannot make \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// One order for `certificate`; success writes it and resets the failures, failure backs off.
    func attempt(
        _ certificate: PlannedCertificate, progress: inout ACMEProgress, current: IssuedCertificate?,
        acme: ACMESettings, directory: String, now: Int
    ) {
        progress.lastAttempt = now
        let reason = current == nil ? (progress.names.isEmpty ? "new" : "names changed") : "renewal"
        do throws(ACMEError) {
            let client = try self.account()
            let certs = joinPath(directory, "certs")
            try ACMEManager.makeDirectory(certs)
            let pendingPath = joinPath(certs, certificate.name + ".key.pending")
            var key: ECKey?
            if progress.order != nil, case .success(let pem) = DiskFiles().read(pendingPath) {
                key = try? ECKey(pem: pem)
            }
            if key == nil {
                let fresh: ECKey
                do throws(ACMECryptoError) {
                    fresh = try ECKey.generate()
                } catch {
                    throw ACMEError.local(error.description)
                }
                if let problem = DiskFiles().writeAtomically(fresh.pem, to: pendingPath, mode: 0o600) {
                    throw ACMEError.local(problem.description)
                }
                progress.order = nil
                key = fresh
            }
            guard let key else { throw ACMEError.local("no certificate key") }
            let issuance = Issuance(client: client, certificate: certificate, responder: self)
            var savedProgress = progress
            savedProgress.names = certificate.names
            let chain = try issuance.run(
                key: key, resume: progress.order, replaces: current?.renewalID,
                saved: { url in
                    savedProgress.order = url
                    self.save(savedProgress, certificate.name, directory: directory)
                })
            let issued: IssuedCertificate
            do throws(ACMECryptoError) {
                issued = try IssuedCertificate(pem: chain)
            } catch {
                throw ACMEError.badReply("the issued chain: \(error.description)")
            }
            if let problem = DiskFiles().writeAtomically(
                key.pem, to: joinPath(certs, certificate.name + ".key"), mode: 0o600)
                ?? DiskFiles().writeAtomically(chain, to: joinPath(certs, certificate.name + ".crt"), mode: 0o644)
            {
                throw ACMEError.local(problem.description)
            }
            unlink(pendingPath)
            progress = ACMEProgress()
            progress.names = certificate.names
            progress.lastAttempt = now
            progress.ordersValid = savedProgress.ordersValid + 1
            progress.ordersFailed = savedProgress.ordersFailed
            Log.info(
                "acme: issued \(certificate.name) (\(certificate.names.joined(separator: ", "))) until "
                    + "\(RFC3339.text(issued.notAfter)); reason: \(reason); \(client.requests) request(s) to the CA so far, "
                    + "\(client.nonceRetries) sent again after a refused nonce")
            self.issued(certificate.name)
        } catch {
            progress.failures += 1
            progress.ordersFailed += 1
            progress.order = nil
            progress.lastError = error.description
            let retryAfter = (error.problemType != nil) ? ACMEManager.retryAfter(error) : nil
            progress.nextAttempt =
                Int(time(nil))
                + RenewalPolicy.backoff(
                    failures: progress.failures, random: Double.random(in: 0..<1), retryAfter: retryAfter)
            Log.error(
                "acme: \(certificate.name) (\(reason)) failed: \(error.description); next attempt at "
                    + "\(RFC3339.text(progress.nextAttempt)) (failure \(progress.failures))")
        }
    }

    static func retryAfter(_ error: ACMEError) -> Int? {
        if case .problem(let problem) = error { return problem.retryAfter }
        return nil
    }

    func progress(_ name: String, directory: String) -> ACMEProgress {
        let path = joinPath(joinPath(directory, "state"), name + ".json")
        guard case .success(let bytes) = DiskFiles().read(path), let json = JSON.parse(bytes) else {
            return ACMEProgress()
        }
        return ACMEProgress(json: json)
    }

    func save(_ progress: ACMEProgress, _ name: String, directory: String) {
        let state = joinPath(directory, "state")
        do throws(ACMEError) {
            try ACMEManager.makeDirectory(directory)
            try ACMEManager.makeDirectory(state)
        } catch {
            return Log.error("acme: \(error.description)")
        }
        let path = joinPath(state, name + ".json")
        if case .success(let bytes) = DiskFiles().read(path), JSON.parse(bytes).map(ACMEProgress.init) == progress {
            return
        }
        if let problem = DiskFiles().writeAtomically(Array(progress.json.text(pretty: true).utf8), to: path) {
            Log.error("acme: \(problem.description)")
        }
    }

    /// The certificate issued for `name`, when there is one.
    func current(_ name: String, directory: String) -> IssuedCertificate? {
        let path = joinPath(joinPath(directory, "certs"), name + ".crt")
        guard case .success(let pem) = DiskFiles().read(path) else { return nil }
        return try? IssuedCertificate(pem: pem)
    }

    // MARK: - Proofs

    public func publishDNS(_ records: [ChallengeRecord]) throws(ACMEError) {
        let own = records.filter { if case .ownZone = $0.route { true } else { false } }
        let delegated = records.filter { if case .delegated = $0.route { true } else { false } }
        for record in delegated { try self.checkDelegation(record) }
        // Both live in Frontdoor's own zones: one compile and publication for all of them.
        if !own.isEmpty || !delegated.isEmpty { try self.publishOwn(own + delegated) }
        let elsewhere = records.filter { if case .dnsUpdate = $0.route { true } else { false } }
        for (route, group) in Dictionary(grouping: elsewhere, by: \.route) {
            guard case .dnsUpdate(let name, let zone) = route else { continue }
            if let cloudflare = self.cloudflare(name) {
                try self.publishCloudflare(
                    group, zone: zone, provider: name, zoneID: cloudflare.zoneID, token: cloudflare.tokenFile)
                continue
            }
            let (server, key) = try self.primary(name)
            for (owner, values) in Dictionary(grouping: group, by: \.owner) {
                do throws(DynDNSError) {
                    try DNSUpdate.pushTXT(
                        server: server, zone: zone, owner: owner, add: values.map(\.value), delete: [], key: key)
                } catch {
                    throw .local("the UPDATE of \(owner.hostDescription) at \(server) (provider \(name)): \(error)")
                }
                // Asked directly, not through a cache, until it answers them (30 s at most).
                guard try self.unserved(values, at: server, tries: 60, timeout: 5_000).isEmpty else {
                    throw .local("\(server) does not serve the TXT record \(owner.hostDescription) after the UPDATE")
                }
            }
        }
    }

    /// A delegated proof needs its CNAME at the zone's DNS host: asked of the upstream resolvers (the public
    /// DNS as the CA sees it). Missing or pointing elsewhere: an error that names the record to create.
    func checkDelegation(_ record: ChallengeRecord) throws(ACMEError) {
        guard let challenge = CertificatePlan.challengeOwner(record.identifier) else { return }
        let wanted = "\(challenge) CNAME \(record.owner)"
        let upstreams = self.appliance.compiledSnapshot?.settings.upstreams ?? []
        guard !upstreams.isEmpty else {
            Log.warning("acme: no upstream resolver to check the delegation; it must be: \(wanted)")
            return
        }
        var found: DomainName?
        var problem = ""
        for upstream in upstreams {
            do throws(DynDNSError) {
                found = try DNSUpdate.cname(server: upstream, owner: challenge)
                problem = ""
                break
            } catch {
                problem = "\(upstream): \(error)"
            }
        }
        if !problem.isEmpty { throw .local("cannot check the delegation \(wanted): \(problem)") }
        guard let found else { throw .local("create this record at the DNS host of the zone: \(wanted)") }
        guard found == record.owner else {
            throw .local("\(challenge) is a CNAME to \(found); it must be: \(wanted)")
        }
    }

    /// The records `server`, asked directly (no cache), still does not serve after `tries` rounds half a second
    /// apart (each question bounded by `timeout` ms); empty as soon as it serves them all.
    func unserved(_ records: [ChallengeRecord], at server: SocketAddress, tries: Int, timeout: UInt64)
        throws(ACMEError) -> [ChallengeRecord]
    {
        var missing = records
        for attempt in 0..<tries {
            missing = missing.filter { record in
                !((try? DNSUpdate.txt(server: server, owner: record.owner, timeout: timeout)) ?? []).contains(
                    record.value)
            }
            if missing.isEmpty || attempt == tries - 1 { break }
            guard self.pause(500) else { throw .local("stopping") }
        }
        return missing
    }

    /// The zone ID and token file of `name` when it is a `cloudflare` provider.
    func cloudflare(_ name: String) -> (zoneID: String, tokenFile: String)? {
        let settings = self.appliance.compiledSnapshot?.settings ?? Settings()
        guard let provider = settings.providers.first(where: { $0.name == name }),
            case .cloudflare(let zoneID, _, let tokenFile) = provider.kind
        else { return nil }
        return (zoneID, tokenFile)
    }

    /// Adds the proofs through Cloudflare's API (their record IDs kept for the withdrawal), then waits until
    /// the zone's authoritative servers (its NS, found through the upstream resolvers, each asked directly)
    /// serve them.
    func publishCloudflare(
        _ records: [ChallengeRecord], zone: DomainName, provider: String, zoneID: String, token: String
    )
        throws(ACMEError)
    {
        let client = ProviderClient(caFile: self.appliance.compiledSnapshot?.settings.caFile)
        for record in records {
            let name = String(record.owner.hostDescription)
            switch client.cloudflareAddTXT(zoneID: zoneID, name: name, value: record.value, tokenFile: token) {
            case .success(let id): self.cloudflareIDs[ACMEManager.key(record)] = id
            case .failure(let outcome):
                throw .local("provider \(provider): adding \(name) TXT: \(outcome.summary)")
            }
        }
        let servers = self.authoritativeServers(zone)
        guard !servers.isEmpty else {
            Log.warning(
                "acme: cannot find \(zone.hostDescription)'s name servers through the upstream resolvers; "
                    + "waiting 20 s for the proof to spread")
            guard self.pause(20_000) else { throw .local("stopping") }
            return
        }
        for server in servers {
            if let first = try self.unserved(records, at: server, tries: 120, timeout: 2_000).first {
                throw .local(
                    "\(server) (a name server of \(zone.hostDescription)) does not serve \(first.owner) TXT after 60 s")
            }
        }
    }

    /// The addresses of `zone`'s name servers, port 53, asked of the upstream resolvers.
    func authoritativeServers(_ zone: DomainName) -> [SocketAddress] {
        let upstreams = self.appliance.compiledSnapshot?.settings.upstreams ?? []
        for upstream in upstreams {
            guard let names = try? DNSUpdate.names(server: upstream, owner: zone, type: 2), !names.isEmpty else {
                continue
            }
            var servers: [SocketAddress] = []
            for name in names {
                for address in (try? DNSUpdate.addresses(server: upstream, owner: name)) ?? [] {
                    servers.append(SocketAddress(address: address, port: 53))
                }
            }
            if !servers.isEmpty { return servers }
        }
        return []
    }

    static func key(_ record: ChallengeRecord) -> String { "\(record.owner) \(record.value)" }

    /// The server and TSIG key of the `rfc2136` provider `name`.
    func primary(_ name: String) throws(ACMEError) -> (SocketAddress, TSIGKey) {
        let settings = self.appliance.compiledSnapshot?.settings ?? Settings()
        guard let provider = settings.providers.first(where: { $0.name == name }),
            case .rfc2136(let server, _, _, let keyFile) = provider.kind
        else { throw .local("no rfc2136 provider '\(name)'") }
        guard case .success(let bytes) = DiskFiles().read(SecretFiles.resolve(keyFile)),
            let key = try? TSIGKey.parse(bindKeyFile: String(decoding: bytes, as: UTF8.self))
        else { throw .local("provider \(name): cannot read the TSIG key \(keyFile)") }
        return (server, key)
    }

    /// Publishes proofs in Frontdoor's own zones and checks its answers in every view serving each.
    func publishOwn(_ records: [ChallengeRecord]) throws(ACMEError) {
        var challenges = self.published
        for record in records { challenges[record.owner, default: []].append(record.value) }
        try self.publish(challenges)
        guard let store = self.appliance.store else { throw .local("no DNS data published yet") }
        let tables = store.tables()
        for record in records {
            let views = tables.snapshot.views.indices.filter {
                tables.snapshot.views[$0].zone(containing: record.owner) != nil
            }
            guard !views.isEmpty else { throw .local("\(record.owner) is in no zone Frontdoor serves") }
            for view in views {
                let values = ACMEManager.answer(tables, view: view, owner: record.owner)
                guard values.contains(record.value) else {
                    throw .local(
                        "the TXT record \(record.owner) is not in Frontdoor's answers in view "
                            + "\(tables.snapshot.views[view].name)")
                }
            }
        }
        // Public secondaries (a hidden primary) answer the CA too: wait until each serves the proofs, which
        // NOTIFY and IXFR bring within a second or two (30 s at most, then a warning: the CA may ask it).
        let viewNames = Set(
            records.flatMap { record in
                tables.snapshot.views.filter { $0.zone(containing: record.owner) != nil }.map(\.name)
            })
        for secondary in tables.snapshot.settings.secondaries where viewNames.contains(secondary.view) {
            let started = monotonicMilliseconds()
            let missing = try self.unserved(records, at: secondary.address, tries: 60, timeout: 1_000)
            if missing.isEmpty {
                Log.info(
                    "acme: secondary \(secondary.name) serves the proofs (after "
                        + "\(monotonicMilliseconds() - started) ms)")
            } else if let first = missing.first {
                Log.warning(
                    "acme: secondary \(secondary.name) does not serve \(first.owner.hostDescription) TXT after 30 s; "
                        + "the CA may ask it and fail")
            }
        }
    }

    public func withdrawDNS(_ records: [ChallengeRecord]) {
        var challenges = self.published
        for record in records {
            switch record.route {
            case .ownZone, .delegated:
                challenges[record.owner]?.removeAll { $0 == record.value }
                if challenges[record.owner]?.isEmpty == true { challenges[record.owner] = nil }
            case .dnsUpdate(let name, _) where self.cloudflare(name) != nil:
                guard let cloudflare = self.cloudflare(name),
                    let id = self.cloudflareIDs.removeValue(forKey: ACMEManager.key(record))
                else { continue }
                let client = ProviderClient(caFile: self.appliance.compiledSnapshot?.settings.caFile)
                if let problem = client.cloudflareDelete(
                    zoneID: cloudflare.zoneID, id: id, tokenFile: cloudflare.tokenFile)
                {
                    Log.error(
                        "acme: withdrawing \(record.owner.hostDescription) at provider \(name): \(problem.summary)")
                }
            case .dnsUpdate(let name, let zone):
                do throws(ACMEError) {
                    let (server, key) = try self.primary(name)
                    try? DNSUpdate.pushTXT(
                        server: server, zone: zone, owner: record.owner, add: [], delete: [record.value], key: key)
                } catch {
                    Log.error("acme: withdrawing \(record.owner.hostDescription): \(error.description)")
                }
            case .http:
                break
            }
        }
        do throws(ACMEError) {
            if challenges != self.published { try self.publish(challenges) }
        } catch {
            Log.error("acme: withdrawing the challenge records: \(error.description)")
        }
    }

    func publish(_ challenges: [DomainName: [String]]) throws(ACMEError) {
        if let diagnostics = self.appliance.setChallenges(challenges, dateSerial: todaySerial()) {
            throw .local(
                "the challenge records do not compile: \(diagnostics.errors.map(\.description).joined(separator: "; "))"
            )
        }
        self.published = challenges
    }

    /// The TXT values Frontdoor answers for `owner` in `view`.
    static func answer(_ tables: DNSTables, view: Int, owner: DomainName) -> [String] {
        let packet = QueryBuilder.query(id: 1, name: owner, type: RecordType.txt.rawValue, udpSize: 4096)
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: Responder.maximumMessage, alignment: 8)
        defer {
            key.deallocate()
            scratch.deallocate()
            out.deallocate()
        }
        let action = packet.withUnsafeBytes { raw -> ResponderAction in
            let parsed = QueryParser.parse(raw, lowercasedName: key)
            var hash: UInt64 = 0
            if case .success(let query) = parsed {
                hash = NameTable.hash(UnsafeRawBufferPointer(rebasing: key[0..<query.nameLength]))
            }
            let prepared = PreparedQuery(parsed: parsed, view: view, hash: hash)
            return Responder.respond(
                prepared, packet: raw, key: UnsafeRawBufferPointer(key), tcp: true, tables: tables, scratch: scratch,
                into: out
            ).0
        }
        guard case .reply(let length, _) = action,
            let message = try? DNSMessage.decode(UnsafeRawBufferPointer(rebasing: out[0..<length]))
        else { return [] }
        return message.answers.filter { $0.type == RecordType.txt.rawValue && $0.owner == owner }.compactMap { record in
            let strings = record.characterStrings
            return strings.count == 1 ? String(decoding: strings[0], as: UTF8.self) : nil
        }
    }

    public func publishHTTP(token: String, keyAuthorization: String, host: String) throws(ACMEError) {
        self.httpChallenges.add(token: token, keyAuthorization: keyAuthorization)
    }

    public func withdrawHTTP(token: String) { self.httpChallenges.remove(token: token) }
}

extension ACMEManager {
    /// Every planned certificate as the state directory holds it (what the running Frontdoor wrote): for
    /// `status`, the status page and `/metrics`.
    public static func report(_ snapshot: Snapshot) -> [ACMECertificateStatus] {
        guard let acme = snapshot.settings.acme, let directory = ACMEManager.directory(snapshot.settings) else {
            return []
        }
        return ACMEManager.plan(snapshot, acme: acme).map { certificate in
            var progress = ACMEProgress()
            if case .success(let bytes) = DiskFiles().read(
                joinPath(joinPath(directory, "state"), certificate.name + ".json")), let json = JSON.parse(bytes)
            {
                progress = ACMEProgress(json: json)
            }
            var issued: IssuedCertificate?
            if case .success(let pem) = DiskFiles().read(
                joinPath(joinPath(directory, "certs"), certificate.name + ".crt"))
            {
                issued = try? IssuedCertificate(pem: pem)
            }
            return ACMECertificateStatus(
                name: certificate.name, names: certificate.names, notAfter: issued?.notAfter, issuer: acme.directory,
                renewAt: progress.renewAt, lastAttempt: progress.lastAttempt, lastError: progress.lastError,
                nextAttempt: progress.failures > 0 ? progress.nextAttempt : nil, ordersValid: progress.ordersValid,
                ordersFailed: progress.ordersFailed)
        }
    }

    /// The report as text, one certificate a paragraph.
    public static func render(_ report: [ACMECertificateStatus], now: Int) -> String {
        var lines = ["certificates (acme):"]
        for entry in report {
            lines.append("  \(entry.name): \(entry.names.joined(separator: ", "))")
            if let notAfter = entry.notAfter {
                lines.append("    valid until \(RFC3339.text(notAfter)) (\((notAfter - now) / 86_400) days left)")
            } else {
                lines.append("    not issued yet")
            }
            if let renewAt = entry.renewAt { lines.append("    renewal from \(RFC3339.text(renewAt))") }
            if let issuer = entry.issuer { lines.append("    issuer \(issuer)") }
            if let attempt = entry.lastAttempt { lines.append("    last attempt \(RFC3339.text(attempt))") }
            if let error = entry.lastError { lines.append("    last error: \(error)") }
            if let next = entry.nextAttempt { lines.append("    next attempt \(RFC3339.text(next))") }
            lines.append("    orders: \(entry.ordersValid) valid, \(entry.ordersFailed) failed")
        }
        return lines.joined(separator: "\n")
    }

    /// What `check` says of the ACME plan: one line per certificate (names and how each is proved), and the
    /// CNAME records a delegated zone needs at its DNS host.
    public static func describe(_ snapshot: Snapshot) -> [String] {
        guard let acme = snapshot.settings.acme else { return [] }
        var lines: [String] = []
        for certificate in ACMEManager.plan(snapshot, acme: acme) {
            var proofs: [String] = []
            for name in certificate.names {
                let how: String
                switch certificate.route(for: name) {
                case .ownZone(let apex)?: how = "DNS-01 in its own zone \(apex.hostDescription)"
                case .dnsUpdate(let provider, _)?: how = "DNS-01 through provider \(provider) (RFC 2136 or its API)"
                case .delegated(_, let target)?: how = "DNS-01 delegated into \(target.hostDescription)"
                case .http?: how = "HTTP-01 through the proxy"
                case nil: how = "?"
                }
                if !proofs.contains(how) { proofs.append(how) }
            }
            lines.append(
                "acme: certificate \(certificate.name) for \(certificate.names.joined(separator: ", ")) from "
                    + "\(acme.directory), proved by \(proofs.joined(separator: "; "))")
            for name in certificate.names {
                guard let route = certificate.route(for: name), case .delegated = route,
                    let challenge = CertificatePlan.challengeOwner(name), let owner = route.owner(for: name)
                else { continue }
                let line = "acme: create at the DNS host of \(name): \(challenge) CNAME \(owner)"
                if !lines.contains(line) { lines.append(line) }
            }
        }
        return lines
    }
}

extension ACMEManager {
    /// Whether certificate name `pattern` (maybe `*.`) covers host `name`.
    public static func covers(_ pattern: String, _ name: String) -> Bool { Runtime.covers(pattern, name) }
}

/// Whether certificate name `pattern` (maybe `*.`) covers host `name`.
func covers(_ pattern: String, _ name: String) -> Bool {
    let pattern = pattern.lowercased()
    let name = name.lowercased()
    if pattern == name { return true }
    guard pattern.hasPrefix("*.") else { return false }
    guard let dot = name.firstIndex(of: ".") else { return false }
    return name[name.index(after: dot)...] == pattern.dropFirst(2)
}
