import DNSAuth
import DNSWire
import ZoneModel

/// One NOTIFY to send: a zone of a view changed, a secondary copies that view.
public struct NotifyTarget: Equatable, Sendable {
    public var secondary: String
    public var address: SocketAddress
    public var key: TSIGKey?
    public var zone: DomainName
    public var soa: Record

    public init(secondary: String, address: SocketAddress, key: TSIGKey?, zone: DomainName, soa: Record) {
        self.secondary = secondary
        self.address = address
        self.key = key
        self.zone = zone
        self.soa = soa
    }

    public var serial: UInt32 { ZoneTransfer.serial(of: self.soa) }

    /// Every NOTIFY owed when the model went from `old` to `new`: for each secondary with notify on, each zone
    /// of its view whose serial moved (every zone when there was no old model: a restart tells them all).
    public static func owed(old: Snapshot?, new: Snapshot) -> [NotifyTarget] {
        var targets: [NotifyTarget] = []
        for secondary in new.settings.secondaries where secondary.notify {
            guard let view = new.view(named: secondary.view) else { continue }
            let oldView = old?.view(named: secondary.view)
            let oldSecondary = old?.settings.secondaries.first { $0.name == secondary.name }
            for apex in view.zones.keys.sorted() {
                guard let zone = view.zones[apex] else { continue }
                if let oldView, let oldZone = oldView.zones[apex], oldSecondary == secondary,
                    ZoneTransfer.serial(of: oldZone.soa) == ZoneTransfer.serial(of: zone.soa)
                {
                    continue
                }
                targets.append(
                    NotifyTarget(
                        secondary: secondary.name, address: secondary.address, key: secondary.key, zone: apex,
                        soa: zone.soa))
            }
        }
        return targets
    }
}

/// What came of a NOTIFY.
public enum NotifyEvent: Equatable, Sendable {
    case acknowledged(NotifyTarget)
    /// The secondary answered with an error (REFUSED, NOTAUTH, a bad TSIG): retried like silence.
    case rejected(NotifyTarget, reason: String)
    /// No acknowledgement after every attempt.
    case gaveUp(NotifyTarget, reason: String)
}

/// NOTIFY (RFC 1996) as a schedule, pure: changes come in, messages to send and outcomes go out. A target is
/// sent at once and again after 2, 4, 8 and 16 s until acknowledged (§3.6); a newer serial for the same
/// secondary and zone replaces an older one still waiting.
public struct NotifySchedule: Sendable {
    struct Pending: Sendable {
        var target: NotifyTarget
        var attempts = 0
        var due: UInt64
        var id: UInt16 = 0
        var mac: [UInt8] = []
        var lastProblem = "no answer"
    }

    public static let maximumAttempts = 5
    public static let firstRetry: UInt64 = 2_000

    var pending: [Pending] = []

    public init() {}

    public var isEmpty: Bool { self.pending.isEmpty }

    /// Queues `targets`, due now.
    public mutating func add(_ targets: [NotifyTarget], now: UInt64) {
        for target in targets {
            self.pending.removeAll { $0.target.secondary == target.secondary && $0.target.zone == target.zone }
            self.pending.append(Pending(target: target, due: now))
        }
    }

    /// When the next message is due (nil: nothing waits).
    public var nextDue: UInt64? { self.pending.map(\.due).min() }

    /// The messages due at `now`, each with where it goes; targets out of attempts come back as given up.
    public mutating func due(now: UInt64, wallClock: UInt64, id: () -> UInt16) -> (
        sends: [(address: SocketAddress, message: [UInt8])], events: [NotifyEvent]
    ) {
        var sends: [(address: SocketAddress, message: [UInt8])] = []
        var events: [NotifyEvent] = []
        var kept: [Pending] = []
        for var entry in self.pending {
            guard entry.due <= now else {
                kept.append(entry)
                continue
            }
            if entry.attempts >= NotifySchedule.maximumAttempts {
                events.append(.gaveUp(entry.target, reason: entry.lastProblem))
                continue
            }
            entry.id = id()
            let message = NotifySchedule.message(id: entry.id, target: entry.target)
            if let key = entry.target.key {
                let signed = TSIG.sign(message, key: key, time: wallClock)
                entry.mac = signed.mac
                sends.append((entry.target.address, signed.message))
            } else {
                sends.append((entry.target.address, message))
            }
            entry.due = now + NotifySchedule.firstRetry << UInt64(entry.attempts)
            entry.attempts += 1
            kept.append(entry)
        }
        self.pending = kept
        return (sends, events)
    }

    /// Reads a reply from `source`; the event when it answers a waiting NOTIFY (nil for anything else).
    public mutating func received(_ reply: [UInt8], from source: IPAddress, wallClock: UInt64) -> NotifyEvent? {
        guard reply.count >= 12, reply[2] & 0x80 != 0 else { return nil }
        let id = UInt16(reply[0]) << 8 | UInt16(reply[1])
        guard
            let index = self.pending.firstIndex(where: {
                $0.attempts > 0 && $0.id == id && $0.target.address.address == source
            })
        else { return nil }
        let target = self.pending[index].target
        let rcode = reply[3] & 0x0F
        if let key = target.key {
            let verdict = TSIG.verify(reply, requestMAC: self.pending[index].mac, key: key, now: wallClock)
            guard verdict == .valid else {
                let problem: String
                switch verdict {
                case .serverError(let code): problem = "it refused the key: \(TSIG.errorName(code))"
                case .unsigned: problem = rcode == 9 ? "it does not know key \(key.name) (NOTAUTH)" : "unsigned reply"
                default: problem = "its reply's TSIG does not verify"
                }
                self.pending[index].lastProblem = problem
                return .rejected(target, reason: problem)
            }
        }
        guard rcode == 0, reply[2] & 0x78 == 0x20 else {
            let problem = "it answered \(DNSRcode.name(UInt16(rcode)))"
            self.pending[index].lastProblem = problem
            return .rejected(target, reason: problem)
        }
        self.pending.remove(at: index)
        return .acknowledged(target)
    }

    /// A NOTIFY for the target's zone (opcode 4, AA, the SOA as a hint, §3.7).
    public static func message(id: UInt16, target: NotifyTarget) -> [UInt8] {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x24, 0, 0, 1, 0, 1, 0, 0, 0, 0]
        out += target.zone.wire + [0, 6, 0, 1]
        out += ZoneTransfer.wire(target.soa)
        return out
    }
}
