/// A resource record type code (RFC 1035 §3.2.2, RFC 3597 for the rest).
public struct RecordType: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let a = RecordType(rawValue: 1)
    public static let ns = RecordType(rawValue: 2)
    public static let cname = RecordType(rawValue: 5)
    public static let soa = RecordType(rawValue: 6)
    public static let ptr = RecordType(rawValue: 12)
    public static let mx = RecordType(rawValue: 15)
    public static let txt = RecordType(rawValue: 16)
    public static let aaaa = RecordType(rawValue: 28)
    public static let srv = RecordType(rawValue: 33)
    public static let dname = RecordType(rawValue: 39)
    public static let opt = RecordType(rawValue: 41)
    public static let ds = RecordType(rawValue: 43)
    public static let rrsig = RecordType(rawValue: 46)
    public static let nsec = RecordType(rawValue: 47)
    public static let nsec3 = RecordType(rawValue: 50)
    public static let ixfr = RecordType(rawValue: 251)
    public static let axfr = RecordType(rawValue: 252)
    public static let any = RecordType(rawValue: 255)
    public static let caa = RecordType(rawValue: 257)

    /// The types the parser understands in their own presentation format (those after CAA through
    /// `RDataSchema`: fixed fields, stored as their wire bytes).
    static let mnemonics: [(String, RecordType)] = [
        ("A", .a), ("NS", .ns), ("CNAME", .cname), ("SOA", .soa), ("PTR", .ptr), ("MX", .mx), ("TXT", .txt),
        ("AAAA", .aaaa), ("SRV", .srv), ("CAA", .caa), ("ANY", .any), ("AXFR", .axfr), ("IXFR", .ixfr),
        ("OPT", .opt),
        ("HINFO", RecordType(rawValue: 13)), ("RP", RecordType(rawValue: 17)), ("NAPTR", RecordType(rawValue: 35)),
        ("CERT", RecordType(rawValue: 37)), ("DS", .ds), ("SSHFP", RecordType(rawValue: 44)),
        ("DNSKEY", RecordType(rawValue: 48)), ("TLSA", RecordType(rawValue: 52)), ("SMIMEA", RecordType(rawValue: 53)),
        ("CDS", RecordType(rawValue: 59)), ("CDNSKEY", RecordType(rawValue: 60)),
        ("OPENPGPKEY", RecordType(rawValue: 61)), ("URI", RecordType(rawValue: 256)),
        ("LOC", RecordType(rawValue: 29)), ("SVCB", RecordType(rawValue: 64)), ("HTTPS", RecordType(rawValue: 65)),
    ]

    /// Mnemonics of well-known types this model only takes in RFC 3597 generic form, so that a typo and an
    /// unsupported type get different advice.
    static let genericOnly: Set<String> = [
        "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "SPF", "ZONEMD",
    ]

    /// Looks up a mnemonic or `TYPEnnn` (RFC 3597 §5), ignoring case.
    public init?(mnemonic: String) {
        let upper = mnemonic.uppercased()
        if let match = RecordType.mnemonics.first(where: { $0.0 == upper }) {
            self = match.1
            return
        }
        guard upper.hasPrefix("TYPE"), let value = UInt16(upper.dropFirst(4)), upper.count > 4 else { return nil }
        self.init(rawValue: value)
    }

    /// Whether `mnemonic` names a real type that must be written in generic form here.
    public static func isGenericOnly(_ mnemonic: String) -> Bool {
        RecordType.genericOnly.contains(mnemonic.uppercased())
    }

    public var description: String {
        RecordType.mnemonics.first(where: { $0.1 == self })?.0 ?? "TYPE\(self.rawValue)"
    }

    public static func < (lhs: RecordType, rhs: RecordType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The data of one record, structured where the model needs to look inside it.
public enum RData: Hashable, Sendable {
    case a(IPv4Address)
    case aaaa(IPv6Address)
    /// NS, CNAME and PTR: a single domain name.
    case name(DomainName)
    case mx(preference: UInt16, exchange: DomainName)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DomainName)
    case soa(SOAData)
    /// One or more character-strings of at most 255 octets each.
    case txt([[UInt8]])
    case caa(flags: UInt8, tag: [UInt8], value: [UInt8])
    /// RFC 3597: opaque bytes of any other type.
    case generic([UInt8])

    /// The domain name this data points at (CNAME/NS/PTR target, MX exchange, SRV target).
    public var target: DomainName? {
        switch self {
        case .name(let name): name
        case .mx(_, let exchange): exchange
        case .srv(_, _, _, let target): target
        default: nil
        }
    }

    /// Uncompressed wire format (RFC 1035 §3.3, RFC 3597 §4 for names inside data).
    public var wire: [UInt8] {
        var bytes: [UInt8] = []
        func put16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        func put32(_ value: UInt32) {
            put16(UInt16(value >> 16))
            put16(UInt16(value & 0xFFFF))
        }
        switch self {
        case .a(let address): bytes = address.bytes
        case .aaaa(let address): bytes = address.bytes
        case .name(let name): bytes = name.wire
        case .mx(let preference, let exchange):
            put16(preference)
            bytes += exchange.wire
        case .srv(let priority, let weight, let port, let target):
            put16(priority)
            put16(weight)
            put16(port)
            bytes += target.wire
        case .soa(let soa):
            bytes = soa.mname.wire + soa.rname.wire
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { put32(value) }
        case .txt(let strings):
            for string in strings {
                bytes.append(UInt8(string.count))
                bytes += string
            }
        case .caa(let flags, let tag, let value):
            bytes = [flags, UInt8(tag.count)] + tag + value
        case .generic(let data):
            bytes = data
        }
        return bytes
    }
}

/// The fields of an SOA record (RFC 1035 §3.3.13).
public struct SOAData: Hashable, Sendable {
    public var mname: DomainName
    public var rname: DomainName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// Since RFC 2308 §4 this is the negative-caching TTL.
    public var minimum: UInt32

    public init(
        mname: DomainName, rname: DomainName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32,
        minimum: UInt32
    ) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// One resource record of class IN (the only class Frontdoor serves).
public struct Record: Hashable, Sendable {
    public var owner: DomainName
    public var type: RecordType
    public var ttl: UInt32
    public var data: RData

    public init(owner: DomainName, type: RecordType, ttl: UInt32, data: RData) {
        self.owner = owner
        self.type = type
        self.ttl = ttl
        self.data = data
    }

    /// The same record under another owner (wildcard synthesis, RFC 4592 §3.3.1).
    public func renamed(_ owner: DomainName) -> Record {
        Record(owner: owner, type: self.type, ttl: self.ttl, data: self.data)
    }
}
