import ZoneModel

/// Header constants (RFC 1035 §4.1.1, RFC 6895 §2).
public enum DNSHeader {
    public static let size = 12
    public static let qr: UInt16 = 0x8000
    public static let aa: UInt16 = 0x0400
    public static let tc: UInt16 = 0x0200
    public static let rd: UInt16 = 0x0100
    public static let ra: UInt16 = 0x0080
    public static let ad: UInt16 = 0x0020
    public static let cd: UInt16 = 0x0010
    public static let opcodeMask: UInt16 = 0x7800
}

/// Response codes (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS).
public enum DNSRcode: UInt16, Sendable {
    case noError = 0
    case formErr = 1
    case servFail = 2
    case nxDomain = 3
    case notImp = 4
    case refused = 5
    /// Extended: the upper eight bits travel in the OPT record.
    case badVers = 16

    /// The mnemonic of any response code (RFC 1035, RFC 2136), "RCODE n" for others: for log lines.
    public static func name(_ code: UInt16) -> String {
        let names = [
            0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
            7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
        ]
        return names[Int(code)] ?? "RCODE \(code)"
    }
}

/// What a query's OPT record said (RFC 6891 §6.1).
public struct EDNSInfo: Equatable, Sendable {
    /// The requestor's UDP payload size, raised to 512 when smaller (RFC 6891 §6.2.5).
    public var udpSize: Int
    public var version: UInt8
    /// DNSSEC OK: copied into the response (RFC 3225 §3).
    public var dnssecOK: Bool

    public init(udpSize: Int, version: UInt8, dnssecOK: Bool) {
        self.udpSize = udpSize
        self.version = version
        self.dnssecOK = dnssecOK
    }
}

/// The parts of a query the server needs, found without allocating.
public struct DNSQuery: Equatable, Sendable {
    public var id: UInt16
    public var flags: UInt16
    /// Offset and length of the question name in the packet (uncompressed, as the client wrote it).
    public var nameOffset: Int
    public var nameLength: Int
    public var type: UInt16
    public var qclass: UInt16
    /// Offset just past the question: the question section is `packet[12..<questionEnd]`.
    public var questionEnd: Int
    /// Present when the query carried an OPT record.
    public var edns: EDNSInfo?

    public var opcode: UInt16 { (self.flags & DNSHeader.opcodeMask) >> 11 }
    public var recursionDesired: Bool { self.flags & DNSHeader.rd != 0 }
}

/// Why a query gets no normal answer; the server turns each into a response (or silence) in one switch.
public enum QueryProblem: Error, Equatable, Sendable {
    /// Not worth an answer: shorter than a header, or a response (QR=1) that could start a loop.
    case drop
    /// FORMERR with the ID (and the question when it could be read).
    case formErr(questionEnd: Int?)
    /// An opcode other than QUERY: NOTIMP (RFC 1035 §4.1.1).
    case notImp(questionEnd: Int?)
    /// A zone transfer (AXFR, IXFR) or a query with a TSIG record (RFC 8945): not for the fast path; the
    /// zone-transfer path reads it whole and answers from the asking secondary's view.
    case transfer
}

/// Parses queries (RFC 1035 §4.1, RFC 6891 §6): header, exactly one question, and an OPT record if any.
public enum QueryParser {
    /// Parses `packet`, writing the lower-cased question name (wire format) into `key`.
    ///
    /// `key` must have room for 255 octets; nothing is allocated.
    public static func parse(
        _ packet: UnsafeRawBufferPointer, lowercasedName key: UnsafeMutableRawBufferPointer
    ) -> Result<DNSQuery, QueryProblem> {
        guard packet.count >= DNSHeader.size else { return .failure(.drop) }
        let flags = UInt16(packet[2]) << 8 | UInt16(packet[3])
        guard flags & DNSHeader.qr == 0 else { return .failure(.drop) }
        let id = UInt16(packet[0]) << 8 | UInt16(packet[1])
        let qdcount = UInt16(packet[4]) << 8 | UInt16(packet[5])
        guard qdcount == 1 else {
            return .failure(
                (flags & DNSHeader.opcodeMask) != 0 ? .notImp(questionEnd: nil) : .formErr(questionEnd: nil))
        }
        // The question name: plain labels only (nothing before it could be a pointer target). First its
        // shape, label by label, then one lower-casing copy of the whole.
        var position = DNSHeader.size
        while true {
            guard position < packet.count else { return .failure(.formErr(questionEnd: nil)) }
            let label = Int(packet[position])
            guard label & 0xC0 == 0 else { return .failure(.formErr(questionEnd: nil)) }
            position += label + 1
            guard position - DNSHeader.size <= 255, position <= packet.count else {
                return .failure(.formErr(questionEnd: nil))
            }
            if label == 0 { break }
        }
        let length = position - DNSHeader.size
        QueryParser.lowercase(packet, from: DNSHeader.size, count: length, into: key)
        guard position + 4 <= packet.count else { return .failure(.formErr(questionEnd: nil)) }
        let type = UInt16(packet[position]) << 8 | UInt16(packet[position + 1])
        let qclass = UInt16(packet[position + 2]) << 8 | UInt16(packet[position + 3])
        let questionEnd = position + 4
        if flags & DNSHeader.opcodeMask != 0 { return .failure(.notImp(questionEnd: questionEnd)) }
        if type == 252 || type == 251 { return .failure(.transfer) }
        var query = DNSQuery(
            id: id, flags: flags, nameOffset: DNSHeader.size, nameLength: length, type: type, qclass: qclass,
            questionEnd: questionEnd, edns: nil)
        // Answer and authority records are skipped (checked for shape); additional ones may hold the OPT.
        let ancount = Int(UInt16(packet[6]) << 8 | UInt16(packet[7]))
        let nscount = Int(UInt16(packet[8]) << 8 | UInt16(packet[9]))
        let arcount = Int(UInt16(packet[10]) << 8 | UInt16(packet[11]))
        var reader = WireReader(packet, offset: questionEnd)
        do throws(WireError) {
            for _ in 0..<(ancount + nscount) {
                try reader.skipName()
                try reader.skip(8)
                try reader.skip(Int(try reader.readUInt16()))
            }
            for _ in 0..<arcount {
                let ownerIsRoot = reader.offset < packet.count && packet[reader.offset] == 0
                try reader.skipName()
                let rrType = try reader.readUInt16()
                let rrClass = try reader.readUInt16()
                let ttl = try reader.readUInt32()
                let rdLength = Int(try reader.readUInt16())
                try reader.skip(rdLength)
                if rrType == 250 { return .failure(.transfer) }
                guard rrType == 41 else { continue }  // OPT (a literal: the static is a lazy global)
                // RFC 6891 §6.1.1: one OPT, owned by the root.
                guard query.edns == nil, ownerIsRoot else { return .failure(.formErr(questionEnd: questionEnd)) }
                query.edns = EDNSInfo(
                    udpSize: max(512, Int(rrClass)), version: UInt8(truncatingIfNeeded: ttl >> 16),
                    dnssecOK: ttl & 0x8000 != 0)
            }
            guard reader.isAtEnd else { throw WireError.trailingData(offset: reader.offset) }
        } catch {
            return .failure(.formErr(questionEnd: questionEnd))
        }
        return .success(query)
    }

    /// Copies `count` bytes of `packet` from `start` into `key`, ASCII upper case turned lower, eight bytes at
    /// a time. A wire name may go through whole: its length octets (at most 63) are never letters.
    @inlinable @inline(__always)
    static func lowercase(
        _ packet: UnsafeRawBufferPointer, from start: Int, count: Int, into key: UnsafeMutableRawBufferPointer
    ) {
        guard let source = packet.baseAddress, let target = key.baseAddress else { return }
        var index = 0
        while index + 8 <= count {
            let word = source.loadUnaligned(fromByteOffset: start + index, as: UInt64.self)
            target.storeBytes(of: QueryParser.lowercaseWord(word), toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let byte = source.load(fromByteOffset: start + index, as: UInt8.self)
            target.storeBytes(
                of: byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte, toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }

    /// Each byte of `word` from "A" to "Z" with 0x20 added; every other byte unchanged.
    @inlinable @inline(__always)
    static func lowercaseWord(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low = word & (ones &* 0x7F)
        // Per byte, without carries between bytes (each is below 0x80): the top bit says >= "A", resp. > "Z".
        let atLeastA = low &+ ones &* (0x80 - 0x41)
        let aboveZ = low &+ ones &* (0x80 - 0x5B)
        let upper = atLeastA & ~aboveZ & ~word & (ones &* 0x80)
        return word | (upper >> 2)
    }
}
