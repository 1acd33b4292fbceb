import ZoneModel

/// Where the proof for one name is published.
public enum ChallengeRoute: Hashable, Sendable {
    /// DNS-01: the `_acme-challenge` TXT record goes into Frontdoor's own zone `apex`.
    case ownZone(apex: DomainName)
    /// DNS-01 at the zone's own primary elsewhere: RFC 2136 UPDATE with the TSIG key of the named
    /// `rfc2136` provider, whose server is then asked directly until it serves the record.
    case dnsUpdate(provider: String, zone: DomainName)
    /// DNS-01 delegated (the acme-dns pattern): the zone's DNS host holds, once, a CNAME from each name's
    /// `_acme-challenge` to a name under `target`, a zone Frontdoor serves, where the proof is published.
    case delegated(zone: DomainName, target: DomainName)
    /// HTTP-01: the proxy answers `/.well-known/acme-challenge/TOKEN` on port 80.
    case http

    /// Whether the proof is a DNS record.
    public var isDNS: Bool { self != .http }

    /// Where the TXT record for identifier `name` (`*.` dropped) is published: `_acme-challenge.NAME`, or for
    /// a delegated zone the name's labels below the zone put under the target (`app.example.org` with target
    /// `acme.example.com`: `app.acme.example.com`; the apex: the target itself).
    public func owner(for name: String) -> DomainName? {
        guard let challenge = CertificatePlan.challengeOwner(name) else { return nil }
        guard case .delegated(let zone, let target) = self else { return challenge }
        let base = challenge.labels.dropFirst()
        guard let identifier = try? DomainName(labels: Array(base)), identifier.isSubdomain(of: zone) else {
            return nil
        }
        let relative = identifier.labels.dropLast(zone.labelCount)
        return try? DomainName(labels: Array(relative) + target.labels)
    }
}

/// One certificate Frontdoor keeps from the CA: its file name, the names it carries, and how each is proved.
public struct PlannedCertificate: Hashable, Sendable {
    /// The stem of its files in the state directory (`NAME.crt`, `NAME.key`): the zone or the site.
    public var name: String
    /// Its identifiers, in order (the apex first, then wildcards, then single names).
    public var names: [String]
    /// Per identifier (without `*.`), where the challenge is answered.
    public var routes: [String: ChallengeRoute]

    public init(name: String, names: [String], routes: [String: ChallengeRoute]) {
        self.name = name
        self.names = names
        self.routes = routes
    }

    /// The route for identifier `name` (`*.` dropped).
    public func route(for name: String) -> ChallengeRoute? {
        self.routes[name.hasPrefix("*.") ? String(name.dropFirst(2)) : name]
    }
}

/// Which certificates the sites need from the CA (pure).
///
/// - One certificate per zone by default: the apex and `*.apex`, so every site of the zone — LAN-only ones
///   included — is covered without its name in the public Certificate Transparency logs. A site two or more
///   labels below the apex adds its parent's wildcard (`*.w.example.com`), a wildcard covering one label only.
///   `per-site` (every zone, or `per-site=ZONE,...`): one certificate per site instead, named for it alone.
/// - Proved by DNS-01 in the zone Frontdoor serves publicly, or through the zone's primary elsewhere (RFC
///   2136); a site in any other zone is proved by HTTP-01 through the proxy, one certificate per site.
/// - Names no public CA will sign (`.home.arpa`, `.lan`, `.internal`, ...; see `privateSuffixes`) are left out:
///   the internal CA covers them.
/// - Sites covered by the operator's own certificate files, and passthrough sites, need none.
public enum CertificatePlan {
    /// Suffixes that are not public DNS (RFC 6761, RFC 6762, RFC 8375, and common home-router habits).
    public static let privateSuffixes: [DomainName] = [
        "home.arpa.", "local.", "lan.", "home.", "internal.", "localhost.", "test.", "invalid.", "onion.",
        "localdomain.",
        "corp.", "intranet.", "private.",
    ].compactMap { try? DomainName($0) }

    /// Whether a CA can validate `name` at all.
    public static func isPublic(_ name: DomainName) -> Bool {
        !CertificatePlan.privateSuffixes.contains { name.isSubdomain(of: $0) }
    }

    /// The certificates for `sites` (host names), with `zones` the apexes whose DNS-01 proofs can be published
    /// and how (Frontdoor's own zone, or an RFC 2136 primary); `covered` says a name already has a
    /// certificate (the operator's files).
    public static func plan(
        sites: [DomainName], zones: [DomainName: ChallengeRoute], perSite: Bool, perSiteZones: [DomainName] = [],
        covered: (String) -> Bool = { _ in false }
    ) -> [PlannedCertificate] {
        func zone(of name: DomainName) -> DomainName? {
            zones.keys.filter { name.isSubdomain(of: $0) }.max { $0.labelCount < $1.labelCount }
        }
        var planned: [PlannedCertificate] = []
        var byZone: [DomainName: Int] = [:]
        for site in sites.sorted() where CertificatePlan.isPublic(site) && !covered(site.hostDescription) {
            let host = site.hostDescription
            guard let apex = zone(of: site), let route = zones[apex], route.isDNS else {
                planned.append(PlannedCertificate(name: host, names: [host], routes: [host: .http]))
                continue
            }
            if perSite || perSiteZones.contains(apex) {
                planned.append(PlannedCertificate(name: host, names: [host], routes: [host: route]))
                continue
            }
            let apexText = apex.hostDescription
            let index: Int
            if let known = byZone[apex] {
                index = known
            } else {
                index = planned.count
                byZone[apex] = index
                planned.append(
                    PlannedCertificate(
                        name: apexText, names: [apexText, "*." + apexText], routes: [apexText: route]))
            }
            // Deeper than one label below the apex: its parent's wildcard.
            if site.labelCount > apex.labelCount + 1 {
                let parent = site.parent.hostDescription
                if !planned[index].names.contains("*." + parent) {
                    planned[index].names.append("*." + parent)
                    planned[index].routes[parent] = route
                }
            }
        }
        return planned
    }

    /// The owner of the DNS-01 TXT record for identifier `name` (`*.` dropped).
    public static func challengeOwner(_ name: String) -> DomainName? {
        let base = name.hasPrefix("*.") ? String(name.dropFirst(2)) : name
        return try? DomainName("_acme-challenge." + base + ".")
    }
}

/// When to renew, and how long to wait after a failure (pure).
public enum RenewalPolicy {
    /// When `certificate` should be renewed: at a random moment inside the CA's window when it gave one
    /// (RFC 9773 §4.2; `random` in 0..<1), else once two thirds of its lifetime have passed.
    public static func renewalTime(_ certificate: IssuedCertificate, window: RenewalWindow?, random: Double) -> Int {
        if let window {
            return window.start + Int(Double(window.end - window.start) * min(max(random, 0), 0.999))
        }
        return certificate.notBefore + (certificate.notAfter - certificate.notBefore) * 2 / 3
    }

    /// The first retry after one failure.
    public static let firstRetry = 60
    /// The longest wait between attempts.
    public static let longestRetry = 12 * 3600

    /// Seconds to wait after `failures` failures in a row (1, 2, ...): doubling from a minute, capped at
    /// twelve hours, with ±20% jitter (`random` in 0..<1) so many installations do not retry in step; never
    /// less than what the CA asked for (`retryAfter`).
    public static func backoff(failures: Int, random: Double, retryAfter: Int? = nil) -> Int {
        let exponent = min(max(failures - 1, 0), 20)
        let base = min(RenewalPolicy.firstRetry << exponent, RenewalPolicy.longestRetry)
        let jittered = Int(Double(base) * (0.8 + 0.4 * min(max(random, 0), 1)))
        return max(jittered, retryAfter ?? 0)
    }
}
