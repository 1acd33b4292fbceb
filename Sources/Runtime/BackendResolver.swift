import CSys
import DNSWire
import EventLoop
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// What resolving a backend's name found, one step at a time (pure: table-tested).
package enum BackendLookup: Equatable {
    /// Its addresses, good for `ttl` seconds.
    case addresses([IPAddress], ttl: UInt32)
    /// The name definitely has no address (NXDOMAIN or no A/AAAA): why.
    case none(String)
    /// Not answered here: ask the upstream resolvers for this name (the name itself, or where a CNAME chain
    /// leaving Frontdoor's zones ends).
    case upstream(DomainName)
    /// No definite answer (a timeout, SERVFAIL, a reply that is not one): keep what is known, ask again soon.
    case failed(String)

    /// The view Frontdoor's own lookups use: the first that recurses (the LAN), else the first.
    package static func view(of snapshot: Snapshot) -> CompiledView? {
        snapshot.views.first(where: \.recursion) ?? snapshot.views.first
    }

    /// Frontdoor's zones first, as its LAN clients see them.
    package static func local(_ view: CompiledView, _ name: DomainName) -> BackendLookup {
        var addresses: [IPAddress] = []
        var ttl = UInt32.max
        var definite: String?
        for type in [RecordType.a, .aaaa] {
            switch view.lookup(name, type) {
            case .answer(let records, _):
                for record in records {
                    ttl = min(ttl, record.ttl)
                    switch record.data {
                    case .a(let address): addresses.append(.v4(address))
                    case .aaaa(let address): addresses.append(.v6(address))
                    default: break
                    }
                }
            case .nxDomain(let chain, let soa):
                ttl = min(ttl, min(soa.ttl, chain.map(\.ttl).min() ?? .max))
                definite = "NXDOMAIN in view '\(view.name)'"
            case .noData(let chain, let soa):
                ttl = min(ttl, min(soa.ttl, chain.map(\.ttl).min() ?? .max))
                definite = definite ?? "no A or AAAA record in view '\(view.name)'"
            case .partial(let chain):
                guard let end = chain.last?.data.target else { return .failed("a CNAME chain with no end") }
                return .upstream(end)
            case .notAuthoritative:
                return .upstream(name)
            case .referral:
                return .upstream(name)
            case .chainTooLong:
                return .none("its CNAME chain is too long in view '\(view.name)'")
            }
        }
        if !addresses.isEmpty { return .addresses(addresses, ttl: ttl) }
        return .none(definite ?? "no address in view '\(view.name)'")
    }

    /// An upstream's reply to `name`/`type`: the addresses at the end of its CNAME chain.
    package static func answer(_ message: DNSMessage, name: DomainName, type: RecordType) -> BackendLookup {
        guard message.flags & DNSHeader.qr != 0, let question = message.question, question.name == name,
            question.type == type.rawValue
        else { return .failed("a reply that does not answer the question") }
        switch message.rcode {
        case 0: break
        case 3: return .none("NXDOMAIN")
        default: return .failed("rcode \(message.rcode)")
        }
        var owner = name
        var ttl = UInt32.max
        for _ in 0...CompiledView.maximumChain {
            guard
                let cname = message.answers.first(where: { $0.owner == owner && $0.type == RecordType.cname.rawValue })
            else { break }
            let target = cname.data.withUnsafeBytes { raw -> DomainName? in
                var reader = WireReader(raw, offset: 0)
                return try? reader.readName()
            }
            guard let target else { return .failed("a CNAME that does not parse") }
            ttl = min(ttl, cname.ttl)
            owner = target
        }
        var addresses: [IPAddress] = []
        for record in message.answers where record.owner == owner && record.type == type.rawValue {
            if type == .a, record.data.count == 4 {
                let value = record.data.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                addresses.append(.v4(IPv4Address(value)))
            } else if type == .aaaa, record.data.count == 16 {
                let high = record.data[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let low = record.data[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                addresses.append(.v6(IPv6Address(high: high, low: low)))
            } else {
                continue
            }
            ttl = min(ttl, record.ttl)
        }
        guard !addresses.isEmpty else { return .none("no \(type) record") }
        return .addresses(addresses, ttl: ttl)
    }

    /// Seconds until a name is asked again: its TTL, within 5 s and an hour.
    package static func refresh(ttl: UInt32) -> Int { Int(min(max(ttl, 5), 3600)) }
}

/// Resolves the names of named backends (`http://jellyfin:8096`) through Frontdoor's own resolver path —
/// its zones as the LAN sees them, then its upstreams — and again as each answer's TTL runs out; publishes
/// the sites with those addresses (Appliance.setBackendAddresses). A name that does not resolve is logged
/// with the reason, and its site answers 502 until it does; a failed lookup (a timeout) keeps the addresses
/// known. Control plane: one thread.
public final class BackendResolver: @unchecked Sendable {
    struct Entry {
        var addresses: [IPAddress] = []
        /// Monotonic milliseconds when it is asked again.
        var due: UInt64 = 0
        /// The last failure logged, so one is not repeated at every retry.
        var problem: String?
    }

    let appliance: Appliance
    var entries: [String: Entry] = [:]
    /// The compile the names were last resolved for.
    var generation = -1
    let stopped = Atomic<Bool>(false)
    /// Milliseconds each upstream gets per question.
    let timeout: UInt64

    public init(appliance: Appliance, timeout: UInt64 = 1_000) {
        self.appliance = appliance
        self.timeout = timeout
    }

    public func stop() { self.stopped.store(true, ordering: .releasing) }

    /// Whether the model names any backend by host name.
    public var needed: Bool { !(self.appliance.compiledSnapshot?.backendNames.isEmpty ?? true) }

    /// Resolves every name now (at start, so the first requests find their backends).
    public func resolveNow() { self.resolveDue(now: monotonicMilliseconds()) }

    public func run() {
        while !self.stopped.load(ordering: .acquiring) {
            self.resolveDue(now: monotonicMilliseconds())
            for _ in 0..<20 where !self.stopped.load(ordering: .acquiring) { usleep(50_000) }
        }
    }

    /// Asks again for every name that is new or due, and publishes when an address set changed.
    public func resolveDue(now: UInt64) {
        guard let (snapshot, generation) = self.appliance.compiledWithGeneration else { return }
        let names = snapshot.backendNames
        // A reload may have changed the zones a name resolves in, or the upstreams: ask again at once.
        if generation != self.generation {
            self.generation = generation
            for name in self.entries.keys { self.entries[name]?.due = 0 }
        }
        var changed = false
        for gone in self.entries.keys where !names.contains(gone) {
            self.entries[gone] = nil
            changed = true
        }
        for name in names.sorted() where self.entries[name]?.due ?? 0 <= now {
            var entry = self.entries[name] ?? Entry()
            let before = entry.addresses
            self.resolve(name, snapshot: snapshot, into: &entry, now: now)
            if entry.addresses != before { changed = true }
            self.entries[name] = entry
        }
        if changed || names.contains(where: { self.entries[$0] == nil }) {
            self.appliance.setBackendAddresses(self.entries.mapValues(\.addresses))
        }
    }

    /// One name through the whole path: Frontdoor's zones as the LAN sees them, then the upstreams. The
    /// outcome and where it came from.
    package static func lookup(_ host: String, snapshot: Snapshot, timeout: UInt64 = 1_000) -> (
        outcome: BackendLookup, source: String
    ) {
        guard let name = try? DomainName(host + ".") else { return (.none("not a host name"), "its spelling") }
        var outcome: BackendLookup = .upstream(name)
        if let view = BackendLookup.view(of: snapshot) { outcome = BackendLookup.local(view, name) }
        guard case .upstream(let asked) = outcome else { return (outcome, "Frontdoor's zones") }
        return (
            // Plain upstreams only: this blocking client does not speak DNS over TLS.
            BackendResolver.askUpstreams(
                asked,
                upstreams: zip(
                    snapshot.settings.upstreams,
                    snapshot.settings.upstreamTLSNames
                        + [String?](
                            repeating: nil, count: snapshot.settings.upstreams.count)
                ).filter { $0.1 == nil }.map(\.0), timeout: timeout),
            "the upstream resolvers"
        )
    }

    func resolve(_ host: String, snapshot: Snapshot, into entry: inout Entry, now: UInt64) {
        let (outcome, source) = BackendResolver.lookup(host, snapshot: snapshot, timeout: self.timeout)
        switch outcome {
        case .addresses(let addresses, let ttl):
            if addresses != entry.addresses || entry.problem != nil {
                Log.info(
                    "proxy: backend name \(host) resolves to \(addresses.map(\.description).joined(separator: ", ")) "
                        + "(\(source), ttl \(ttl) s)")
            }
            entry.addresses = addresses
            entry.problem = nil
            entry.due = now + UInt64(BackendLookup.refresh(ttl: ttl)) * 1000
        case .none(let reason):
            let problem =
                "proxy: backend name \(host) does not resolve (\(reason) from \(source)); its sites answer "
                + "502 until it does"
            if problem != entry.problem { Log.error(problem) }
            entry.problem = problem
            entry.addresses = []
            entry.due = now + 10_000
        case .upstream:
            entry.due = now + 10_000
        case .failed(let reason):
            let problem =
                "proxy: backend name \(host) could not be resolved (\(reason))"
                + (entry.addresses.isEmpty ? "; its sites answer 502 until it is" : "; keeping its last addresses")
            if problem != entry.problem { Log.warning(problem) }
            entry.problem = problem
            entry.due = now + 10_000
        }
    }

    /// A and AAAA for `name` from the first upstream that answers both.
    static func askUpstreams(_ name: DomainName, upstreams: [SocketAddress], timeout: UInt64) -> BackendLookup {
        guard !upstreams.isEmpty else { return .none("not in Frontdoor's zones, and no upstream is configured") }
        var failure = "no upstream answered"
        for upstream in upstreams {
            var addresses: [IPAddress] = []
            var ttl = UInt32.max
            var definite: String?
            var answered = true
            for type in [RecordType.a, .aaaa] {
                switch BackendResolver.ask(name, type, upstream, timeout: timeout) {
                case .addresses(let found, let foundTTL):
                    addresses += found
                    ttl = min(ttl, foundTTL)
                case .none(let reason):
                    definite = definite ?? reason
                case .failed(let reason):
                    failure = "\(upstream): \(reason)"
                    answered = false
                case .upstream:
                    answered = false
                }
                if !answered { break }
            }
            guard answered else { continue }
            if !addresses.isEmpty { return .addresses(addresses, ttl: ttl) }
            return .none(definite ?? "no address")
        }
        return .failed(failure)
    }

    /// One question over UDP, within the timeout.
    static func ask(_ name: DomainName, _ type: RecordType, _ upstream: SocketAddress, timeout: UInt64) -> BackendLookup
    {
        guard let fd = try? Sockets.udpClient(upstream) else { return .failed("cannot reach it") }
        defer { Sockets.close(fd) }
        let id = UInt16(truncatingIfNeeded: csys_random32())
        let query = QueryBuilder.query(id: id, name: name, type: type.rawValue)
        guard query.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == query.count else {
            return .failed("cannot send to it")
        }
        let deadline = monotonicMilliseconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = Int64(deadline) - Int64(monotonicMilliseconds())
            guard left > 0 else { return .failed("no answer within \(timeout) ms") }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(clamping: left)) == 1 else { continue }
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { return .failed("it refused the question (ICMP)") }
            // Another reply (a late one, a forgery) is not ours: wait on for the right ID.
            guard let message = try? DNSMessage.decode(Array(buffer[0..<got])), message.id == id else { continue }
            return BackendLookup.answer(message, name: name, type: type)
        }
    }
}
