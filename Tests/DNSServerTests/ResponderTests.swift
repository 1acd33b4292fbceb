import DNSServer
import DNSWire
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The authoritative responder, without sockets: query bytes in, response bytes out, decoded and checked.
@Suite struct ResponderTests {
    static let tables: DNSTables? = {
        let big = (0..<40).map { "big TXT \"\(String(repeating: "x", count: 40))-\($0)\"" }.joined(separator: "\n")
        let extra = "$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n" + big + "\nmx MX 10 ns1\n"
        let zones =
            ["sites.zone", "syntax.zone", "delegation.zone"].map {
                ($0, Fixtures.text("Tests/Fixtures/zones/ok/\($0)"))
            }
            + [("big.zone", "; apex: big.example.\n" + extra)]
            + [
                (
                    "cut.zone",
                    "; apex: cut.example.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\nsub NS ns.sub\nns.sub A 192.0.2.54\n"
                        + "x.sub CNAME ns1\ny CNAME ns1\nz CNAME ns1\n"
                ),
                (
                    "wild.zone",
                    "; apex: wild.example.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n*.w A 192.0.2.99\n"
                        + "cwild CNAME x.w\nchain CNAME cwild\n"
                        + "del NS ns.del\nns.del A 192.0.2.55\nsigned NS ns.del\nsigned TYPE43 \\# 36 3039 0d 02 "
                        + String(repeating: "ab", count: 32) + "\n"
                ),
            ]
        return Fixtures.compile(zones: zones).snapshot.map { DNSTables(snapshot: $0) }
    }()

    /// Runs one packet through the responder.
    static func run(_ packet: [UInt8], from client: String, tcp: Bool = false) throws -> (ResponderAction, [UInt8]) {
        let tables = try #require(Self.tables)
        let address = try #require(IPAddress(client))
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: Responder.maximumMessage, alignment: 8)
        defer {
            scratch.deallocate()
            out.deallocate()
        }
        let (action, _) = packet.withUnsafeBytes {
            Responder.respond(to: $0, from: address, tcp: tcp, tables: tables, scratch: scratch, into: out)
        }
        if case .reply(let length, _) = action { return (action, Array(out[0..<length])) }
        return (action, [])
    }

    static func ask(
        _ name: String, _ type: RecordType, from client: String, udpSize: UInt16? = 1232, tcp: Bool = false
    ) throws -> DNSMessage {
        let packet = QueryBuilder.query(id: 0xBEEF, name: try DomainName(name), type: type.rawValue, udpSize: udpSize)
        let (action, bytes) = try Self.run(packet, from: client, tcp: tcp)
        guard case .reply = action else {
            Issue.record("expected a reply, got \(action)")
            return try DNSMessage.decode(QueryBuilder.query(id: 0, name: .root, type: 1))
        }
        return try DNSMessage.decode(bytes)
    }

    static func text(_ records: [WireRecord]) -> [String] {
        records.map { record in
            let data = ResponderTests.presentation(record)
            return "\(record.owner) \(record.ttl) \(RecordType(rawValue: record.type)) \(data)"
        }
    }

    static func presentation(_ record: WireRecord) -> String {
        switch RecordType(rawValue: record.type) {
        case .a: return record.data.map(String.init).joined(separator: ".")
        case .cname, .ns, .ptr: return DomainName(uncheckedWire: record.data).description
        case .soa:
            var reader = ByteCursor(record.data)
            return "\(reader.name()) \(reader.name()) \(reader.uint32())"
        default: return "\(record.data.count) bytes"
        }
    }

    @Test func lanClientGetsTheChainToTheLANAddress() throws {
        let response = try Self.ask("myserver.example.com.", .a, from: "192.0.2.100")
        #expect(response.id == 0xBEEF)
        #expect(
            response.flags & DNSHeader.aa != 0 && response.flags & DNSHeader.ra != 0
                && response.flags & DNSHeader.rd != 0)
        #expect(
            Self.text(response.answers) == [
                "myserver.example.com. 300 CNAME reverseproxy.example.com.",
                "reverseproxy.example.com. 60 A 192.0.2.42",
            ])
        #expect(response.edns?.udpSize == 1232)
    }

    @Test func wanClientGetsTheWANAddressWithoutRecursionAvailable() throws {
        let response = try Self.ask("myserver.example.com.", .a, from: "198.51.100.7")
        #expect(response.flags & DNSHeader.ra == 0)
        #expect(Self.text(response.answers).last == "reverseproxy.example.com. 60 A 203.0.113.1")
    }

    @Test func questionLetterCaseIsPreserved() throws {
        let packet = QueryBuilder.query(id: 7, name: try DomainName("myserver.example.com."), type: 1)
        var mixed = packet
        for (index, byte) in "\u{8}MyServer\u{7}ExAmPlE\u{3}CoM".utf8.enumerated() { mixed[12 + index] = byte }
        let (_, response) = try Self.run(mixed, from: "192.0.2.100")
        #expect(Array(response[12..<(12 + 22)]) == Array(mixed[12..<(12 + 22)]))
        // The answer's owner is a pointer to the question, so it shows the same letters.
        #expect(response[12 + 22 + 4] == 0xC0 && response[12 + 22 + 5] == 12)
    }

    @Test func nxDomainAndNoDataCarryTheSOAWithTheNegativeTTL() throws {
        let nx = try Self.ask("nothing.example.com.", .a, from: "198.51.100.7")
        #expect(nx.rcode == DNSRcode.nxDomain.rawValue && nx.answers.isEmpty)
        #expect(
            Self.text(nx.authority) == [
                "example.com. 300 SOA reverseproxy.example.com. hostmaster.example.com. 2024060100"
            ])
        let noData = try Self.ask("myserver.example.com.", .aaaa, from: "198.51.100.7")
        #expect(noData.rcode == 0)
        #expect(Self.text(noData.answers) == ["myserver.example.com. 300 CNAME reverseproxy.example.com."])
        #expect(noData.authority.count == 1 && noData.authority[0].type == RecordType.soa.rawValue)
    }

    @Test(arguments: ["grafana.lab.example.com.", "a.b.lab.example.com.", "x.lab.example.com."])
    func wildcardAnswersTakeTheQuestionNameAndValidPointers(name: String) throws {
        let response = try Self.ask(name, .a, from: "192.0.2.100")
        #expect(
            Self.text(response.answers) == [
                "\(name) 300 CNAME reverseproxy.example.com.", "reverseproxy.example.com. 60 A 192.0.2.42",
            ])
    }

    /// Issue 14: a CNAME whose target a wildcard covers is followed into the wildcard's data, as NSD, Knot and
    /// BIND answer (RFC 1034 §4.3.2 step 3c, RFC 4592), not left as the CNAME plus a SOA ("no data").
    @Test(.bug(id: "14"), arguments: ["cwild.wild.example.", "chain.wild.example."])
    func aCNAMEIntoAWildcardIsExpanded(name: String) throws {
        let answer = try Self.ask(name, .a, from: "192.0.2.9")
        #expect(answer.rcode == 0)
        let lines = Self.text(answer.answers)
        #expect(lines.last == "x.w.wild.example. 300 A 192.0.2.99", "\(lines)")
        #expect(lines.contains("cwild.wild.example. 300 CNAME x.w.wild.example."))
        #expect(answer.authority.isEmpty, "an answer, not a negative one")
        let noData = try Self.ask(name, .mx, from: "192.0.2.9")
        #expect(Self.text(noData.answers).last == "cwild.wild.example. 300 CNAME x.w.wild.example.")
        #expect(noData.authority.count == 1, "the wildcard has no MX: NODATA with the SOA")
    }

    /// Issue 14: the parent is authoritative for DS at a delegation point (RFC 4035 §3.1.4.1): the RRset, or
    /// NODATA with the SOA, AA=1 — not a referral. Below the cut, and for other types at it, a referral.
    @Test(.bug(id: "14")) func dsAtADelegationPointIsAnsweredByTheParent() throws {
        let signed = try Self.ask("signed.wild.example.", .ds, from: "192.0.2.9")
        #expect(signed.flags & DNSHeader.aa != 0 && signed.rcode == 0)
        #expect(signed.answers.count == 1 && signed.answers.first?.type == RecordType.ds.rawValue)
        let unsigned = try Self.ask("del.wild.example.", .ds, from: "192.0.2.9")
        #expect(unsigned.flags & DNSHeader.aa != 0 && unsigned.rcode == 0 && unsigned.answers.isEmpty)
        #expect(unsigned.authority.first?.type == RecordType.soa.rawValue, "NODATA carries the SOA")
        for (name, type) in [("www.del.wild.example.", RecordType.ds), ("del.wild.example.", .a)] {
            let referral = try Self.ask(name, type, from: "192.0.2.9")
            #expect(referral.flags & DNSHeader.aa == 0, "\(name) \(type)")
            #expect(Self.text(referral.authority) == ["del.wild.example. 300 NS ns.del.wild.example."])
        }
    }

    /// Issue 14: MAILB and MAILA are answered as NSD answers them (the CNAME chain, then NODATA), not
    /// FORMERR; true meta types (TSIG as a question) still are.
    @Test(.bug(id: "14")) func mailbAndMailaAreQuestionsNotErrors() throws {
        for type in [RecordType(rawValue: 253), RecordType(rawValue: 254)] {
            let answer = try Self.ask("cwild.wild.example.", type, from: "192.0.2.9")
            #expect(answer.rcode == 0 && answer.flags & DNSHeader.aa != 0, "\(type)")
            #expect(Self.text(answer.answers).first == "cwild.wild.example. 300 CNAME x.w.wild.example.")
        }
        #expect(try Self.ask("cwild.wild.example.", RecordType(rawValue: 250), from: "192.0.2.9").rcode == 1)
    }

    @Test func lanOnlyNamesDoNotExistForTheWAN() throws {
        #expect(try Self.ask("nas.example.com.", .a, from: "198.51.100.7").rcode == DNSRcode.nxDomain.rawValue)
        #expect(try Self.ask("nas.example.com.", .a, from: "192.0.2.100").answers.count == 2)
    }

    @Test func namesOutsideTheZonesAreForwardedForLANAndRefusedForWAN() throws {
        let packet = QueryBuilder.query(id: 1, name: try DomainName("www.debian.org."), type: 1)
        let (lan, _) = try Self.run(packet, from: "192.0.2.100")
        #expect(lan == .forward(view: 0, prefix: -1))
        let wan = try Self.ask("www.debian.org.", .a, from: "198.51.100.7")
        #expect(wan.rcode == DNSRcode.refused.rawValue && wan.answers.isEmpty && wan.flags & DNSHeader.aa == 0)
    }

    @Test func referralsAreNotAuthoritativeAndCarryGlue() throws {
        let response = try Self.ask("www.child.example.net.", .a, from: "192.0.2.100")
        #expect(response.flags & DNSHeader.aa == 0 && response.rcode == 0 && response.answers.isEmpty)
        #expect(Self.text(response.authority) == ["child.example.net. 300 NS ns.child.example.net."])
        #expect(Self.text(response.additional) == ["ns.child.example.net. 300 A 192.0.2.54"])
    }

    @Test func namesSharingACNAMETargetStillGetReferralsBelowACut() throws {
        // y and z share their compiled answers; x.sub has the same CNAME but sits below the cut at sub.
        for name in ["y.cut.example.", "z.cut.example."] {
            let response = try Self.ask(name, .a, from: "192.0.2.100")
            #expect(
                Self.text(response.answers) == [
                    "\(name) 300 CNAME ns1.cut.example.", "ns1.cut.example. 300 A 192.0.2.53",
                ])
        }
        let below = try Self.ask("x.sub.cut.example.", .a, from: "192.0.2.100")
        #expect(below.flags & DNSHeader.aa == 0 && below.answers.isEmpty)
        #expect(Self.text(below.authority) == ["sub.cut.example. 300 NS ns.sub.cut.example."])
    }

    @Test func additionalAddressesForMX() throws {
        let response = try Self.ask("mx.big.example.", .mx, from: "192.0.2.100")
        #expect(Self.text(response.additional) == ["ns1.big.example. 300 A 192.0.2.53"])
    }

    @Test func anyIsAnsweredWithOneRRset() throws {
        let response = try Self.ask("example.com.", .any, from: "192.0.2.100")
        #expect(Set(response.answers.map(\.type)).count == 1)
    }

    @Test func largeAnswersAreTruncatedOverUDPAndWholeOverTCP() throws {
        let plain = try Self.ask("big.big.example.", .txt, from: "192.0.2.100", udpSize: nil)
        #expect(plain.flags & DNSHeader.tc != 0 && plain.answers.isEmpty)
        let edns = try Self.ask("big.big.example.", .txt, from: "192.0.2.100", udpSize: 4096)
        #expect(edns.flags & DNSHeader.tc != 0, "we never send more than 1232 bytes over UDP")
        let tcp = try Self.ask("big.big.example.", .txt, from: "192.0.2.100", udpSize: nil, tcp: true)
        #expect(tcp.flags & DNSHeader.tc == 0 && tcp.answers.count == 40)
    }

    @Test func transfersAndOtherClassesAreRefused() throws {
        // Transfers leave the fast path for ZoneTransfer, which refuses anyone not configured as a secondary.
        for type in [RecordType.axfr, .ixfr] {
            let packet = QueryBuilder.query(id: 0xBEEF, name: try DomainName("example.com."), type: type.rawValue)
            let (action, _) = try Self.run(packet, from: "192.0.2.100", tcp: true)
            #expect(action == .transfer)
            let (reply, note) = ZoneTransfer.respond(
                to: packet, from: IPAddress("192.0.2.100")!, tcp: true, tables: try #require(Self.tables), now: 1)
            guard case .message(let bytes) = reply else {
                Issue.record("expected one message")
                continue
            }
            #expect(try DNSMessage.decode(bytes).rcode == DNSRcode.refused.rawValue)
            #expect(note.refusal == "192.0.2.100 is not a configured secondary")
        }
        let chaos = QueryBuilder.query(id: 3, name: try DomainName("version.bind."), type: 16, qclass: 3)
        let (_, bytes) = try Self.run(chaos, from: "192.0.2.100")
        #expect(try DNSMessage.decode(bytes).rcode == DNSRcode.refused.rawValue)
    }

    @Test func unknownEDNSVersionGetsBADVERS() throws {
        var packet = QueryBuilder.query(id: 5, name: try DomainName("example.com."), type: 1)
        packet[packet.count - 5] = 1  // OPT TTL: extended rcode 0, version 1
        let (_, bytes) = try Self.run(packet, from: "192.0.2.100")
        let response = try DNSMessage.decode(bytes)
        #expect(response.rcode == DNSRcode.badVers.rawValue && response.edns?.version == 0)
    }

    @Test func malformedQueriesGetFORMERROrNothing() throws {
        let good = QueryBuilder.query(id: 9, name: try DomainName("example.com."), type: 1, udpSize: nil)
        // QR=1: a response is never answered.
        var response = good
        response[2] |= 0x80
        #expect(try Self.run(response, from: "192.0.2.100").0 == .drop)
        #expect(try Self.run(Array(good[0..<11]), from: "192.0.2.100").0 == .drop)
        // Two questions, trailing garbage, a compressed question name, two OPT records: FORMERR.
        var two = good
        two[5] = 2
        var trailing = good
        trailing.append(0)
        var pointer = good
        pointer[12] = 0xC0
        pointer[13] = 12
        var twoOPT = QueryBuilder.query(id: 9, name: try DomainName("example.com."), type: 1)
        twoOPT += twoOPT.suffix(11)
        twoOPT[11] = 2
        for packet in [two, trailing, pointer, twoOPT] {
            let (action, bytes) = try Self.run(packet, from: "192.0.2.100")
            guard case .reply = action else {
                Issue.record("no reply")
                continue
            }
            let decoded = try DNSMessage.decode(bytes)
            #expect(decoded.rcode == DNSRcode.formErr.rawValue && decoded.id == 9)
        }
        // Opcode 2 (STATUS): NOTIMP.
        var status = good
        status[2] = 0x10
        let (_, bytes) = try Self.run(status, from: "192.0.2.100")
        #expect(try DNSMessage.decode(bytes).rcode == DNSRcode.notImp.rawValue)
    }

    @Test func randomPacketsNeverCrashTheResponder() throws {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let seed = QueryBuilder.query(id: 1, name: try DomainName("a.b.lab.example.com."), type: 1)
        for round in 0..<5000 {
            var packet = round % 3 == 0 ? (0..<(Int(next() % 64))).map { _ in UInt8(truncatingIfNeeded: next()) } : seed
            for _ in 0..<(1 + round % 6) where !packet.isEmpty {
                packet[Int(next() % UInt64(packet.count))] = UInt8(truncatingIfNeeded: next())
            }
            let (action, bytes) = try Self.run(packet, from: round % 2 == 0 ? "192.0.2.100" : "198.51.100.7")
            if case .reply = action { _ = try? DNSMessage.decode(bytes) }
        }
    }

    /// The UDP loop prepares a batch first (name into a buffer of its own, view, hash) and answers later; that
    /// path must give the same bytes as answering in one step, for every kind of answer and for garbage.
    @Test func preparedQueriesAreAnsweredAlikeToOneStepAnswers() throws {
        let tables = try #require(Self.tables)
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let first = UnsafeMutableRawBufferPointer.allocate(byteCount: Responder.maximumMessage, alignment: 8)
        let second = UnsafeMutableRawBufferPointer.allocate(byteCount: Responder.maximumMessage, alignment: 8)
        defer {
            for buffer in [key, scratch, first, second] { buffer.deallocate() }
        }
        var packets: [[UInt8]] = []
        let questions: [(String, RecordType)] = [
            ("myserver.example.com.", .a), ("MyServer.Example.COM.", .aaaa), ("x.lab.example.com.", .a),
            ("a.b.LAB.example.com.", .txt), ("nothing.example.com.", .a), ("example.com.", .mx),
            ("example.com.", .any), ("big.example.", .txt), ("x.sub.cut.example.", .a), ("other.example.", .a),
            ("example.com.", .axfr),
        ]
        for (name, type) in questions {
            packets.append(QueryBuilder.query(id: 9, name: try DomainName(name), type: type.rawValue))
            packets.append(QueryBuilder.query(id: 9, name: try DomainName(name), type: type.rawValue, udpSize: nil))
        }
        packets += [[], [1, 2, 3], Array(packets[0][0..<20]), packets[0] + [0]]
        for client in ["192.0.2.100", "198.51.100.7"] {
            let address = try #require(IPAddress(client))
            for packet in packets {
                let (one, _) = packet.withUnsafeBytes {
                    Responder.respond(to: $0, from: address, tcp: false, tables: tables, scratch: scratch, into: first)
                }
                let (two, _) = packet.withUnsafeBytes { bytes in
                    let prepared = Responder.prepare(bytes, from: address, tables: tables, key: key)
                    return Responder.respond(
                        prepared, packet: bytes, key: UnsafeRawBufferPointer(key), tcp: false, tables: tables,
                        scratch: scratch, into: second)
                }
                #expect(one == two, "\(client) \(packet)")
                if case .reply(let length, _) = one {
                    #expect(Array(first[0..<length]) == Array(second[0..<length]), "\(client) \(packet)")
                }
            }
        }
    }
}

/// Reads fields out of record data in tests.
struct ByteCursor {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func name() -> DomainName {
        var wire: [UInt8] = []
        while offset < bytes.count {
            let length = Int(bytes[offset])
            wire += bytes[offset...(offset + length)]
            offset += length + 1
            if length == 0 { break }
        }
        return DomainName(uncheckedWire: wire)
    }

    mutating func uint32() -> UInt32 {
        defer { offset += 4 }
        return bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
