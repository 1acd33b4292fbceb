import ZoneModel

/// One record as read from the wire, with any compressed names inside its data expanded.
public struct WireRecord: Equatable, Sendable {
    public var owner: DomainName
    public var type: UInt16
    public var rrClass: UInt16
    public var ttl: UInt32
    /// RDATA with no compression pointers left in it.
    public var data: [UInt8]

    public init(owner: DomainName, type: UInt16, rrClass: UInt16, ttl: UInt32, data: [UInt8]) {
        self.owner = owner
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.data = data
    }
}

/// A whole message decoded (RFC 1035 §4): for upstream replies and tests, not for the query hot path.
public struct DNSMessage: Equatable, Sendable {
    public var id: UInt16
    public var flags: UInt16
    public var question: (name: DomainName, type: UInt16, qclass: UInt16)?
    public var answers: [WireRecord]
    public var authority: [WireRecord]
    /// Additional records without the OPT pseudo-record.
    public var additional: [WireRecord]
    public var edns: EDNSInfo?
    /// The full response code: header bits plus the OPT's extended bits.
    public var rcode: UInt16

    public init(
        id: UInt16, flags: UInt16, question: (name: DomainName, type: UInt16, qclass: UInt16)?, answers: [WireRecord],
        authority: [WireRecord], additional: [WireRecord], edns: EDNSInfo?, rcode: UInt16
    ) {
        self.id = id
        self.flags = flags
        self.question = question
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
        self.rcode = rcode
    }

    public static func == (lhs: DNSMessage, rhs: DNSMessage) -> Bool {
        lhs.id == rhs.id && lhs.flags == rhs.flags && lhs.question?.name == rhs.question?.name
            && lhs.question?.type == rhs.question?.type && lhs.question?.qclass == rhs.question?.qclass
            && lhs.answers == rhs.answers && lhs.authority == rhs.authority && lhs.additional == rhs.additional
            && lhs.edns == rhs.edns && lhs.rcode == rhs.rcode
    }

    /// Decodes `bytes`, rejecting anything malformed: bad pointers, truncation, trailing data.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> DNSMessage {
        let result = bytes.withUnsafeBytes { buffer in
            Result<DNSMessage, WireError> { () throws(WireError) -> DNSMessage in try DNSMessage.decode(buffer) }
        }
        return try result.get()
    }

    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(WireError) -> DNSMessage {
        var reader = WireReader(buffer)
        let id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        let qdcount = try reader.readUInt16()
        let counts = [Int(try reader.readUInt16()), Int(try reader.readUInt16()), Int(try reader.readUInt16())]
        guard qdcount <= 1 else { throw .malformed("\(qdcount) questions") }
        var message = DNSMessage(
            id: id, flags: flags, question: nil, answers: [], authority: [], additional: [], edns: nil,
            rcode: flags & 0x000F)
        if qdcount == 1 {
            let name = try reader.readName()
            message.question = (name, try reader.readUInt16(), try reader.readUInt16())
        }
        for section in 0..<3 {
            for _ in 0..<counts[section] {
                let record = try DNSMessage.readRecord(&reader)
                switch section {
                case 0: message.answers.append(record)
                case 1: message.authority.append(record)
                default:
                    if record.type == RecordType.opt.rawValue {
                        guard message.edns == nil, record.owner.isRoot else { throw .malformed("bad OPT record") }
                        message.edns = EDNSInfo(
                            udpSize: max(512, Int(record.rrClass)),
                            version: UInt8(truncatingIfNeeded: record.ttl >> 16),
                            dnssecOK: record.ttl & 0x8000 != 0)
                        message.rcode |= UInt16(record.ttl >> 24) << 4
                    } else {
                        message.additional.append(record)
                    }
                }
            }
        }
        guard reader.isAtEnd else { throw .trailingData(offset: reader.offset) }
        return message
    }

    /// Reads one record, expanding names in the data of the types allowed to compress them.
    static func readRecord(_ reader: inout WireReader) throws(WireError) -> WireRecord {
        let owner = try reader.readName()
        let type = try reader.readUInt16()
        let rrClass = try reader.readUInt16()
        let ttl = try reader.readUInt32()
        let length = Int(try reader.readUInt16())
        let end = reader.offset + length
        guard end <= reader.bytes.count else { throw .truncated(offset: reader.offset) }
        var data: [UInt8] = []
        switch RecordType(rawValue: type) {
        case .ns, .cname, .ptr:
            try reader.readName(appendingTo: &data)
        case .mx:
            let preference = try reader.readUInt16()
            data = [UInt8(preference >> 8), UInt8(preference & 0xFF)]
            try reader.readName(appendingTo: &data)
        case .srv:
            // RFC 2782 forbids compression here; expanding anyway keeps a sloppy upstream harmless.
            data = try reader.readBytes(6)
            try reader.readName(appendingTo: &data)
        case .soa:
            try reader.readName(appendingTo: &data)
            try reader.readName(appendingTo: &data)
            data += try reader.readBytes(20)
        default:
            data = try reader.readBytes(length)
        }
        guard reader.offset == end else { throw .malformed("record data length does not match its contents") }
        return WireRecord(owner: owner, type: type, rrClass: rrClass, ttl: ttl, data: data)
    }
}

extension WireRecord {
    /// The character-strings of TXT data (RFC 1035 §3.3.14), in order; one cut short by the end of the data
    /// keeps what is there.
    public var characterStrings: [ArraySlice<UInt8>] {
        var strings: [ArraySlice<UInt8>] = []
        var index = 0
        while index < self.data.count {
            let end = min(self.data.count, index + 1 + Int(self.data[index]))
            strings.append(self.data[(index + 1)..<end])
            index = end
        }
        return strings
    }

    /// The name at the start of the data (CNAME, NS, PTR: expanded by `decode`); nil when it is not one.
    public var nameData: DomainName? {
        self.data.withUnsafeBytes { raw -> DomainName? in
            var reader = WireReader(raw)
            return try? reader.readName()
        }
    }
}
