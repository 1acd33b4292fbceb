import DNSWire
import ZoneModel

extension UpstreamExchange {
    /// The longest CNAME/DNAME chain followed in an upstream answer.
    static let maximumChain = 16

    /// Keeps what answers `question` and drops every other record, before the reply is cached or relayed,
    /// as Unbound's scrubber and BIND do: an upstream (or a forger who guessed right) must not plant
    /// records for names nobody asked about.
    ///
    /// - Answer: the records of the asked type (and their RRSIGs) at the question's name and along its
    ///   CNAME chain, the chain's CNAMEs, and DNAMEs above a name of the chain (RFC 6672).
    /// - Authority: SOA, NS and DS at the chain's last name or above it; NSEC, NSEC3 and RRSIG inside the
    ///   zone those name (the proofs of a negative answer).
    /// - Additional: addresses of the names that kept NS, MX and SRV records point at.
    ///
    /// Only class IN is kept.
    public static func scrub(_ message: DNSMessage, for question: CacheKey) -> DNSMessage {
        let inClass = message.answers.filter { $0.rrClass == 1 }
        var chain = [question.name]
        var kept = Array(repeating: false, count: inClass.count)
        var step = 0
        while step < chain.count && step <= UpstreamExchange.maximumChain {
            let name = chain[step]
            step += 1
            for (index, record) in inClass.enumerated() {
                if record.owner == name {
                    if record.type == RecordType.cname.rawValue && question.type != RecordType.cname.rawValue {
                        guard let target = UpstreamExchange.name(in: record.data, at: 0) else { continue }
                        kept[index] = true
                        if !chain.contains(target) { chain.append(target) }
                    } else if record.type == question.type || question.type == RecordType.any.rawValue
                        || record.type == RecordType.rrsig.rawValue
                    {
                        kept[index] = true
                    }
                } else if record.type == RecordType.dname.rawValue && name.isSubdomain(of: record.owner) {
                    // RFC 6672 §2.3: a DNAME redirects the names below its owner, not the owner itself.
                    kept[index] = true
                }
            }
        }
        let answers = inClass.indices.filter { kept[$0] }.map { inClass[$0] }

        let last = chain[chain.count - 1]
        var authority: [WireRecord] = []
        var zones: [DomainName] = []
        for record in message.authority where record.rrClass == 1 {
            switch RecordType(rawValue: record.type) {
            case .soa, .ns, .ds:
                if last.isSubdomain(of: record.owner) {
                    authority.append(record)
                    if !zones.contains(record.owner) { zones.append(record.owner) }
                }
            default:
                break
            }
        }
        for record in message.authority where record.rrClass == 1 {
            switch RecordType(rawValue: record.type) {
            case .nsec, .nsec3, .rrsig:
                if zones.contains(where: { record.owner.isSubdomain(of: $0) }) { authority.append(record) }
            default:
                break
            }
        }

        var targets: [DomainName] = []
        for record in answers + authority {
            let offset: Int
            switch RecordType(rawValue: record.type) {
            case .ns: offset = 0
            case .mx: offset = 2
            case .srv: offset = 6
            default: continue
            }
            if let target = UpstreamExchange.name(in: record.data, at: offset) { targets.append(target) }
        }
        let additional = message.additional.filter { record in
            record.rrClass == 1 && targets.contains(record.owner)
                && (record.type == RecordType.a.rawValue || record.type == RecordType.aaaa.rawValue
                    || record.type == RecordType.rrsig.rawValue)
        }

        var scrubbed = message
        scrubbed.answers = answers
        scrubbed.authority = authority
        scrubbed.additional = additional
        return scrubbed
    }

    /// The name at `offset` in expanded RDATA (lower-cased, as `WireReader` reads every name); nil when none
    /// fits there.
    static func name(in data: [UInt8], at offset: Int) -> DomainName? {
        data.withUnsafeBytes { raw in
            var reader = WireReader(raw, offset: offset)
            return try? reader.readName()
        }
    }
}
