import ZoneModel

/// What one detection source reported in one poll.
public struct WANObservation: Equatable, Sendable {
    public var source: String
    public var result: Result<IPAddress, DetectError>

    public init(source: String, result: Result<IPAddress, DetectError>) {
        self.source = source
        self.result = result
    }
}

/// Why a source gave no address.
public struct DetectError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

/// Decides, from what the sources report, which WAN address to publish — and when: only global unicast
/// addresses, the configured agreement between sources, and a change only after it has been seen twice at
/// least `confirmation` milliseconds apart (no flapping). Pure: the caller passes the clock.
public struct WANJudge: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Publish this address now (the first one, or a change that held).
        case publish(IPAddress)
        /// The published address still holds (or nothing is published and nothing usable was seen).
        case unchanged
        /// A new address was seen; it is published if it is still there after the confirmation time.
        case pending(IPAddress)
        /// No usable address: why, in words for the log and `frontdoor status`.
        case noAddress(String)
        /// No usable address for longer than the grace period: the published one is withdrawn (the wan view
        /// answers without it, providers are left alone) — the address withdrawn and why.
        case withdraw(IPAddress, String)
    }

    public var policy: WANPolicy
    /// Milliseconds a new address must hold before it replaces the published one.
    public var confirmation: UInt64
    /// Accept RFC 5737/3849 documentation addresses (test networks only).
    public var acceptDocumentation: Bool
    public private(set) var published: IPAddress?
    public private(set) var candidate: (address: IPAddress, since: UInt64)?
    /// Milliseconds the published address is kept while no source gives a usable one (nil: for ever).
    public var grace: UInt64?
    /// Since when no source has given a usable address while one is published.
    public private(set) var lostSince: UInt64?
    /// Warnings from the last judgement (CGNAT, private answers), for the log.
    public private(set) var warnings: [String] = []

    public init(policy: WANPolicy, confirmation: UInt64, acceptDocumentation: Bool = false, published: IPAddress? = nil)
    {
        self.policy = policy
        self.confirmation = confirmation
        self.acceptDocumentation = acceptDocumentation
        self.published = published
    }

    public mutating func judge(_ observations: [WANObservation], now: UInt64) -> Decision {
        self.warnings = []
        var usable: [(source: String, address: IPAddress)] = []
        var failures: [String] = []
        for observation in observations {
            switch observation.result {
            case .failure(let error):
                failures.append("\(observation.source): \(error)")
            case .success(let address):
                switch address.scope {
                case .global:
                    usable.append((observation.source, address))
                case .documentation where self.acceptDocumentation:
                    usable.append((observation.source, address))
                case .carrierGradeNAT:
                    self.warnings.append(
                        "\(observation.source) reports \(address), a carrier-grade NAT address (100.64.0.0/10): the "
                            + "ISP shares one public address among customers, so port forwarding cannot reach this "
                            + "network; ask the ISP for a public address (or IPv6), or use a tunnel")
                case .privateNetwork:
                    self.warnings.append(
                        "\(observation.source) reports \(address), a private address: it sees a router's LAN side "
                            + "(double NAT?), not the internet's view; ignored")
                case .documentation, .special:
                    self.warnings.append(
                        "\(observation.source) reports \(address), which is not a public address; ignored")
                }
            }
        }
        let chosen: IPAddress
        switch self.policy {
        case .firstAnswer:
            guard let first = usable.first else {
                return self.lost(self.reason(failures: failures), now: now)
            }
            chosen = first.address
        case .agreement(let needed):
            var counts: [IPAddress: Int] = [:]
            for entry in usable { counts[entry.address, default: 0] += 1 }
            guard let best = counts.filter({ $0.value >= needed }).max(by: { $0.value < $1.value }) else {
                if usable.isEmpty { return self.lost(self.reason(failures: failures), now: now) }
                let said = usable.map { "\($0.source) says \($0.address)" }.joined(separator: ", ")
                return self.lost("sources disagree (\(needed) must agree): \(said)", now: now)
            }
            chosen = best.key
        }
        self.lostSince = nil
        guard let published = self.published else {
            // Nothing to flap from: the first address is published at once.
            self.published = chosen
            self.candidate = nil
            return .publish(chosen)
        }
        if chosen == published {
            self.candidate = nil
            return .unchanged
        }
        if let candidate = self.candidate, candidate.address == chosen {
            if now &- candidate.since >= self.confirmation {
                self.published = chosen
                self.candidate = nil
                return .publish(chosen)
            }
            return .pending(chosen)
        }
        self.candidate = (chosen, now)
        if self.confirmation == 0 {
            self.published = chosen
            self.candidate = nil
            return .publish(chosen)
        }
        return .pending(chosen)
    }

    /// No usable address now: keep the published one through the grace period, then withdraw it.
    mutating func lost(_ reason: String, now: UInt64) -> Decision {
        guard let published = self.published else { return .noAddress(reason) }
        let since = self.lostSince ?? now
        self.lostSince = since
        if let grace = self.grace, now &- since >= grace {
            self.published = nil
            self.candidate = nil
            self.lostSince = nil
            return .withdraw(published, reason)
        }
        return .noAddress(reason)
    }

    func reason(failures: [String]) -> String {
        var parts = self.warnings
        parts += failures
        return parts.isEmpty ? "no source is configured" : parts.joined(separator: "; ")
    }

    /// When to poll next: `interval` milliseconds with up to ±10% jitter, so many homes behind one provider
    /// do not poll in step.
    public static func nextPoll(after now: UInt64, interval: UInt64, random: UInt32) -> UInt64 {
        let spread = max(1, interval / 5)
        return now + interval - interval / 10 + UInt64(random) % spread
    }
}
