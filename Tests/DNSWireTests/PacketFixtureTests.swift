import DNSWire
import TestSupport
import Testing
import ZoneModel

/// Annotated hex fixtures (`Tests/Fixtures/packets/*.hex`): `; expect: ok` or the `WireError` case the
/// decoder must throw; `;` starts a comment, the rest is hex octets.
@Suite struct PacketFixtureTests {
    static let fixtures = Fixtures.list("Tests/Fixtures/packets").filter { $0.hasSuffix(".hex") }

    static func bytes(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for line in text.split(separator: "\n") {
            let code = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for word in code.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                if let byte = UInt8(word, radix: 16) { bytes.append(byte) }
            }
        }
        return bytes
    }

    static func expectation(_ text: String) -> String {
        text.split(separator: "\n").first { $0.hasPrefix("; expect: ") }.map { String($0.dropFirst(10)) } ?? "?"
    }

    static func kind(_ error: WireError) -> String {
        switch error {
        case .truncated: "truncated"
        case .badPointer: "badPointer"
        case .nameTooLong: "nameTooLong"
        case .badLabelType: "badLabelType"
        case .trailingData: "trailingData"
        case .malformed: "malformed"
        }
    }

    @Test func fixturesArePresent() { #expect(Self.fixtures.count >= 8) }

    @Test(arguments: fixtures)
    func decoderMeetsTheFixture(name: String) {
        let text = Fixtures.text("Tests/Fixtures/packets/\(name)")
        let bytes = Self.bytes(text)
        let expected = Self.expectation(text)
        do {
            _ = try DNSMessage.decode(bytes)
            #expect(expected == "ok", "\(name) decoded but should fail with \(expected)")
        } catch {
            #expect(Self.kind(error) == expected, "\(name): \(error)")
        }
        // Every prefix of the packet is refused or decoded, never a trap.
        for length in 0..<bytes.count { _ = try? DNSMessage.decode(Array(bytes[0..<length])) }
    }

    @Test func digQueryParsesToItsQuestionAndEDNS() throws {
        let bytes = Self.bytes(Fixtures.text("Tests/Fixtures/packets/query-dig-edns.hex"))
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { key.deallocate() }
        let result = bytes.withUnsafeBytes { QueryParser.parse($0, lowercasedName: key) }
        guard case .success(let query) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(query.id == 0xBEEF && query.recursionDesired && query.type == 1 && query.qclass == 1)
        #expect(query.edns == EDNSInfo(udpSize: 1232, version: 0, dnssecOK: false))
        #expect(Array(key[0..<query.nameLength]) == (try DomainName("myserver.example.com.")).wire)
    }

    @Test func compressedNamesExpand() throws {
        let message = try DNSMessage.decode(Self.bytes(Fixtures.text("Tests/Fixtures/packets/response-compressed.hex")))
        #expect(message.answers.map(\.owner.description) == ["myserver.example.com.", "reverseproxy.example.com."])
        #expect(DomainName(uncheckedWire: message.answers[0].data).description == "reverseproxy.example.com.")
        #expect(message.answers[1].data == [192, 0, 2, 42])
    }

    @Test func writerCompressesAndReaderRestores() throws {
        var writer = MessageWriter(base: 12)
        let records = [
            Record(
                owner: try DomainName("a.example.com."), type: .cname, ttl: 60,
                data: .name(try DomainName("b.example.com."))),
            Record(
                owner: try DomainName("b.example.com."), type: .mx, ttl: 60,
                data: .mx(preference: 5, exchange: try DomainName("mx.example.com."))),
            Record(
                owner: try DomainName("b.example.com."), type: .srv, ttl: 60,
                data: .srv(priority: 1, weight: 2, port: 3, target: try DomainName("t.example.com."))),
        ]
        for record in records { writer.writeRecord(record) }
        let header: [UInt8] = [0, 1, 0x81, 0x80, 0, 0, 0, 3, 0, 0, 0, 0]
        let message = try DNSMessage.decode(header + writer.bytes)
        #expect(message.answers.map(\.owner.description) == ["a.example.com.", "b.example.com.", "b.example.com."])
        #expect(writer.bytes.count < records.reduce(0) { $0 + $1.owner.wire.count + 10 + $1.data.wire.count })
        // RFC 2782: the SRV target is never compressed.
        #expect(
            writer.bytes.suffix(15).elementsEqual([1, 116, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0]))
    }
}

/// The parser lower-cases question names eight bytes at a time: it must agree with the byte-wise rule for
/// every octet value, at every position, in names of every length.
@Suite struct QuestionNameCaseTests {
    @Test func everyOctetIsLowerCasedExactlyWhenItIsAnASCIICapital() throws {
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { key.deallocate() }
        var state: UInt64 = 0x1234_5678
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        // Labels hold any octets; walk all 256 values through every lane, in names from 2 to 255 octets.
        for round in 0..<600 {
            var name: [UInt8] = []
            let target = 1 + round % 254
            while name.count + 1 < target {
                let length = min(63, target - 1 - name.count - 1, 1 + Int(next()) % 63)
                guard length > 0 else { break }
                name.append(UInt8(length))
                for index in 0..<length { name.append(round < 256 && index == 0 ? UInt8(round) : next()) }
            }
            name.append(0)
            let packet = QueryBuilder.query(id: 1, name: DomainName(uncheckedWire: [0]), type: 1, udpSize: nil)
            let query = Array(packet[0..<12]) + name + [0, 1, 0, 1]
            let result = query.withUnsafeBytes { QueryParser.parse($0, lowercasedName: key) }
            guard case .success(let parsed) = result else {
                Issue.record("round \(round): \(result)")
                continue
            }
            let expected = name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
            #expect(Array(key[0..<parsed.nameLength]) == expected, "round \(round)")
        }
    }
}
