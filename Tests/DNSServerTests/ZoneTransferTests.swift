import DNSAuth
import DNSServer
import DNSWire
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The hidden-primary rules as tables: who may transfer which view, what AXFR and IXFR send, how every
/// message is signed, and what the journal keeps. Real NSD, Knot and BIND secondaries run in SecondaryTests.
@Suite struct ZoneTransferTests {
    static let secret = "q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="
    static let key = TSIGKey(
        name: try! DomainName("wan-key."), algorithm: .sha256, secret: Base64.decode(ZoneTransferTests.secret)!)
    static let lanKey = TSIGKey(name: try! DomainName("lan-key."), algorithm: .sha256, secret: [1, 2, 3, 4])
    static let now: UInt64 = 1_800_000_000

    static let config = """
        view lan 192.0.2.0/24 recursion
        view wan *
        upstream 127.0.0.1:9
        secondary vps 198.51.100.53 view=wan key=wan.key
        secondary lan-copy 192.0.2.54 view=lan key=lan.key
        secondary plain 203.0.113.53 view=lan
        """

    static func zone(sites: Int, wan: String = "203.0.113.7") -> String {
        var text = """
            ; apex: example.com.
            $ORIGIN example.com.
            $TTL 300
            $PROXY reverseproxy lan=192.0.2.42 wan=\(wan)
            mail IN A 192.0.2.25
            @ IN MX 10 mail

            """
        for index in 0..<sites { text += "$SITE site\(index) http://127.0.0.1:9\n" }
        return text
    }

    /// The model compiled; pass the serials of the one it follows, so a change moves them as at run time.
    static func tables(
        sites: Int = 3, wan: String = "203.0.113.7", after previous: DNSTables? = nil,
        journal: TransferJournal = TransferJournal()
    ) throws -> DNSTables {
        let keyFile = { (key: TSIGKey) in
            "key \"\(key.name)\" { algorithm hmac-sha256; secret \"\(Base64.encode(key.secret))\"; };"
        }
        let result = Fixtures.compile(
            zones: [("example.com.zone", Self.zone(sites: sites, wan: wan))],
            extraFiles: ["wan.key": keyFile(Self.key), "lan.key": keyFile(Self.lanKey)], config: Self.config,
            serials: previous?.snapshot.serials ?? SerialBook())
        guard let snapshot = result.snapshot else {
            throw FixtureError(message: "\(result.diagnostics.sorted.prefix(3).map(\.description))")
        }
        return DNSTables(snapshot: snapshot, journal: journal)
    }

    static func request(_ type: RecordType, zone: String = "example.com.", serial: UInt32? = nil) throws -> [UInt8] {
        var packet = QueryBuilder.query(id: 0x1234, name: try DomainName(zone), type: type.rawValue, udpSize: nil)
        if let serial {
            // IXFR: the secondary's SOA in the authority section (RFC 1995 §3).
            packet[9] = 1
            packet += try DomainName(zone).wire + [0, 6, 0, 1, 0, 0, 0, 0]
            let data =
                [0, 0] + [UInt8(serial >> 24), UInt8(serial >> 16 & 0xFF), UInt8(serial >> 8 & 0xFF)]
                + [UInt8(serial & 0xFF)] + [UInt8](repeating: 0, count: 16)
            packet += [0, UInt8(data.count)] + data
        }
        return packet
    }

    /// Every message of a reply, each checked with TSIG as a secondary checks it when `key` is given.
    static func messages(_ reply: TransferReply, request: [UInt8], key: TSIGKey?) throws -> [DNSMessage] {
        var raw: [[UInt8]] = []
        switch reply {
        case .message(let bytes): raw = [bytes]
        case .stream(var stream):
            while let next = stream.next(now: Self.now) { raw.append(next) }
            #expect(stream.isFinished)
        case .drop: return []
        }
        if let key {
            guard case .signed(_, let record) = TSIG.split(request) else {
                Issue.record("the request is not signed")
                return []
            }
            var prior = record.mac
            for (index, bytes) in raw.enumerated() {
                #expect(
                    TSIG.verify(bytes, requestMAC: prior, key: key, now: Self.now, timersOnly: index > 0) == .valid,
                    "message \(index)")
                guard case .signed(_, let signature) = TSIG.split(bytes) else { break }
                prior = signature.mac
            }
        }
        return try raw.map { try DNSMessage.decode($0) }
    }

    static func text(_ messages: [DNSMessage]) -> [String] {
        messages.flatMap(\.answers).map { "\($0.owner) \(RecordType(rawValue: $0.type))" }
    }

    @Test func axfrIsAnsweredFromTheViewTheKeyIsBoundTo() throws {
        let tables = try Self.tables()
        // Asked from a LAN address, signed with the wan key: the wan view's data.
        let signed = TSIG.sign(try Self.request(.axfr), key: Self.key, time: Self.now).message
        let (reply, note) = ZoneTransfer.respond(
            to: signed, from: IPAddress("192.0.2.77")!, tcp: true, tables: tables, now: Self.now)
        let messages = try Self.messages(reply, request: signed, key: Self.key)
        #expect(note.peer == "vps" && note.kind == "AXFR" && note.refusal == nil)
        let records = messages.flatMap(\.answers)
        #expect(records.first?.type == 6 && records.last?.type == 6, "SOA first and last")
        #expect(records.count == 9)  // SOA, NS, MX, mail, proxy, three sites, SOA
        let proxy = records.first { $0.owner == (try? DomainName("reverseproxy.example.com.")) && $0.type == 1 }
        #expect(proxy?.data == [203, 0, 113, 7])
        #expect(messages.first?.flags ?? 0 & DNSHeader.aa != 0)
        // The lan key: the LAN address.
        let lan = TSIG.sign(try Self.request(.axfr), key: Self.lanKey, time: Self.now).message
        let (lanReply, lanNote) = ZoneTransfer.respond(
            to: lan, from: IPAddress("203.0.113.1")!, tcp: true, tables: tables, now: Self.now)
        let lanRecords = try Self.messages(lanReply, request: lan, key: Self.lanKey).flatMap(\.answers)
        #expect(lanNote.peer == "lan-copy")
        #expect(lanRecords.contains { $0.type == 1 && $0.data == [192, 0, 2, 42] })
        // A keyless secondary by its address.
        let (plainReply, plainNote) = ZoneTransfer.respond(
            to: try Self.request(.axfr), from: IPAddress("203.0.113.53")!, tcp: true, tables: tables, now: Self.now)
        #expect(plainNote.peer == "plain")
        let plainRecords = try Self.messages(plainReply, request: [], key: nil).flatMap(\.answers)
        #expect(plainRecords.count == 9 && plainRecords.contains { $0.type == 1 && $0.data == [192, 0, 2, 42] })
        // Its plain queries (SOA checks) are answered from its view too, though its address matches wan.
        #expect(tables.viewIndex(for: IPAddress("203.0.113.53")!) == 0)
        #expect(tables.viewIndex(for: IPAddress("203.0.113.54")!) == 1)
    }

    /// (who asks, how) → what they get.
    @Test(arguments: [
        ("198.51.100.53", "unsigned", "REFUSED", "unsigned, but the secondary at 198.51.100.53 has a key"),
        ("192.0.2.99", "unsigned", "REFUSED", "192.0.2.99 is not a configured secondary"),
        ("198.51.100.53", "wrong-secret", "NOTAUTH", "BADSIG: signed with key wan-key. but a different secret"),
        ("198.51.100.53", "unknown-key", "NOTAUTH", "BADKEY: key other-key. is not a configured secondary's"),
        ("198.51.100.53", "old-clock", "NOTAUTH", "BADTIME: its clock is off by more than 300 s"),
        ("198.51.100.53", "other-zone", "NOTAUTH", "view 'wan' serves no zone example.org."),
    ])
    func whoIsRefusedAndHow(client: String, how: String, rcode: String, reason: String) throws {
        let tables = try Self.tables()
        var request = try Self.request(.axfr, zone: how == "other-zone" ? "example.org." : "example.com.")
        switch how {
        case "wrong-secret":
            var key = Self.key
            key.secret = [9, 9, 9]
            request = TSIG.sign(request, key: key, time: Self.now).message
        case "unknown-key":
            var key = Self.key
            key.name = try DomainName("other-key.")
            request = TSIG.sign(request, key: key, time: Self.now).message
        case "old-clock": request = TSIG.sign(request, key: Self.key, time: Self.now - 3600).message
        case "other-zone": request = TSIG.sign(request, key: Self.key, time: Self.now).message
        default: break
        }
        let (reply, note) = ZoneTransfer.respond(
            to: request, from: IPAddress(client)!, tcp: true, tables: tables, now: Self.now)
        guard case .message(let bytes) = reply else {
            Issue.record("expected one message, got \(reply)")
            return
        }
        let message = try DNSMessage.decode(bytes)
        #expect(message.answers.isEmpty)
        #expect((message.rcode == 5 ? "REFUSED" : message.rcode == 9 ? "NOTAUTH" : "\(message.rcode)") == rcode)
        #expect(note.refusal == reason)
        if how == "wrong-secret" || how == "unknown-key" {
            // RFC 8945 §5.2: the error travels in an unsigned TSIG.
            guard case .signed(_, let record) = TSIG.split(bytes) else {
                Issue.record("no TSIG in the error reply")
                return
            }
            #expect(record.error == (how == "wrong-secret" ? TSIG.badSig : TSIG.badKey) && record.mac.isEmpty)
        }
        if how == "old-clock" {
            // BADTIME is signed, with the server's time as other data.
            #expect(TSIG.verify(bytes, requestMAC: [], key: Self.key, now: Self.now) == .serverError(TSIG.badTime))
        }
    }

    @Test func aLargeZoneGoesInSeveralMessagesEachSigned() throws {
        let tables = try Self.tables(sites: 2000)
        let signed = TSIG.sign(try Self.request(.axfr), key: Self.key, time: Self.now).message
        let (reply, _) = ZoneTransfer.respond(
            to: signed, from: IPAddress("198.51.100.53")!, tcp: true, tables: tables, now: Self.now)
        let messages = try Self.messages(reply, request: signed, key: Self.key)
        #expect(messages.count >= 3)
        #expect(messages.dropFirst().allSatisfy { $0.question == nil }, "the question only in the first")
        let records = messages.flatMap(\.answers)
        #expect(records.count == 2006)
        #expect(Set(records.map { "\($0.owner) \($0.type)" }).count == 2005, "each record once, the SOA twice")
    }

    @Test func ixfrSendsTheChangeWhenTheJournalReachesBack() throws {
        let before = try Self.tables()
        let after = try Self.tables(wan: "203.0.113.8", after: before)
        let journal = TransferJournal().recording(old: before.snapshot, new: after.snapshot)
        let wanKey = SerialBook.key(view: "wan", apex: try DomainName("example.com."))
        let delta = try #require(journal.zones[wanKey]?.first)
        #expect(delta.removed.count == 1 && delta.added.count == 1, "only the proxy's address changed")
        #expect(journal.zones[SerialBook.key(view: "lan", apex: try DomainName("example.com."))] == nil)
        let tables = DNSTables(snapshot: after.snapshot, journal: journal)
        let oldSerial = delta.from
        let signed = TSIG.sign(try Self.request(.ixfr, serial: oldSerial), key: Self.key, time: Self.now).message
        let (reply, note) = ZoneTransfer.respond(
            to: signed, from: IPAddress("198.51.100.53")!, tcp: true, tables: tables, now: Self.now)
        #expect(note.kind == "IXFR")
        let answers = try Self.messages(reply, request: signed, key: Self.key).flatMap(\.answers)
        // New SOA, old SOA, removed, new SOA, added, new SOA (RFC 1995 §4).
        #expect(answers.map(\.type) == [6, 6, 1, 6, 1, 6])
        #expect(answers[2].data == [203, 0, 113, 7] && answers[4].data == [203, 0, 113, 8])
        // Up to date: the SOA alone. Too old for the journal: the whole zone.
        let current = TSIG.sign(try Self.request(.ixfr, serial: delta.to), key: Self.key, time: Self.now).message
        let (same, sameNote) = ZoneTransfer.respond(
            to: current, from: IPAddress("198.51.100.53")!, tcp: true, tables: tables, now: Self.now)
        #expect(try Self.messages(same, request: current, key: Self.key).flatMap(\.answers).map(\.type) == [6])
        #expect(sameNote.kind == "IXFR (up to date)")
        let ancient = TSIG.sign(try Self.request(.ixfr, serial: 7), key: Self.key, time: Self.now).message
        let (full, fullNote) = ZoneTransfer.respond(
            to: ancient, from: IPAddress("198.51.100.53")!, tcp: true, tables: tables, now: Self.now)
        #expect(fullNote.kind == "IXFR (full)")
        #expect(try Self.messages(full, request: ancient, key: Self.key).flatMap(\.answers).count == 9)
    }

    @Test func aSignedSOAQueryIsAnsweredFromTheKeysViewAndSigned() throws {
        let tables = try Self.tables(wan: "203.0.113.8")
        let query = QueryBuilder.query(
            id: 7, name: try DomainName("reverseproxy.example.com."), type: 1, recursionDesired: false, udpSize: 1232)
        let signed = TSIG.sign(query, key: Self.key, time: Self.now)
        // From a LAN address: still the wan view, because of the key.
        let (reply, _) = ZoneTransfer.respond(
            to: signed.message, from: IPAddress("192.0.2.10")!, tcp: false, tables: tables, now: Self.now)
        guard case .message(let bytes) = reply else {
            Issue.record("expected one message")
            return
        }
        #expect(TSIG.verify(bytes, requestMAC: signed.mac, key: Self.key, now: Self.now) == .valid)
        #expect(try DNSMessage.decode(bytes).answers.map(\.data) == [[203, 0, 113, 8]])
    }

    @Test func theJournalIsBoundedAndSurvivesItsStateFile() throws {
        var journal = TransferJournal()
        var previousTables = try Self.tables(wan: "203.0.113.1")
        for step in 2..<(TransferJournal.maximumDeltas + 10) {
            let next = try Self.tables(wan: "203.0.113.\(step)", after: previousTables)
            journal = journal.recording(old: previousTables.snapshot, new: next.snapshot)
            previousTables = next
        }
        let previous = previousTables.snapshot
        let key = SerialBook.key(view: "wan", apex: try DomainName("example.com."))
        #expect(journal.zones[key]?.count == TransferJournal.maximumDeltas)
        #expect(TransferJournal(encoded: journal.encoded) == journal)
        #expect(journal.matching(previous) == journal)
        // A damaged file is no journal at all, never a crash.
        var damaged = journal.encoded
        damaged.removeLast()
        #expect(TransferJournal(encoded: damaged) == nil)
        #expect(TransferJournal(encoded: Array("FDJ1".utf8) + [255, 255, 255, 255]) == nil)
        #expect(TransferJournal(encoded: []) == nil)
        // A journal that does not end at the served serial is dropped.
        let other = try Self.tables(wan: "203.0.113.200", after: previousTables).snapshot
        #expect(journal.matching(other).zones[key] == nil)
        // A change bigger than the bound empties the zone's journal (IXFR falls back to AXFR).
        let huge = try Self.tables(sites: TransferJournal.maximumRecords + 1, after: previousTables).snapshot
        #expect(journal.recording(old: previous, new: huge).zones[key] == nil)
    }

    @Test func notifyIsRetriedUntilAcknowledgedAndSignedWhenKeyed() throws {
        let tables = try Self.tables()
        let targets = NotifyTarget.owed(old: nil, new: tables.snapshot)
        #expect(targets.map(\.secondary).sorted() == ["lan-copy", "plain", "vps"])
        #expect(NotifyTarget.owed(old: tables.snapshot, new: tables.snapshot).isEmpty, "no change, no NOTIFY")
        let changed = try Self.tables(wan: "203.0.113.9", after: tables)
        #expect(
            NotifyTarget.owed(old: tables.snapshot, new: changed.snapshot).map(\.secondary) == ["vps"],
            "only the wan view changed")
        var schedule = NotifySchedule()
        let vps = try #require(targets.first { $0.secondary == "vps" })
        schedule.add([vps], now: 0)
        var ids: [UInt16] = []
        var sentAt: [UInt64] = []
        var events: [NotifyEvent] = []
        for now in stride(from: UInt64(0), through: 70_000, by: 500) {
            let (sends, happened) = schedule.due(now: now, wallClock: Self.now) { UInt16(now / 500) }
            events += happened
            for (address, message) in sends {
                #expect(address == SocketAddress("198.51.100.53:53", defaultPort: 53))
                guard case .signed(let unsigned, _) = TSIG.split(message) else {
                    Issue.record("NOTIFY to a keyed secondary is signed")
                    continue
                }
                let decoded = try DNSMessage.decode(unsigned)
                #expect(decoded.flags & DNSHeader.opcodeMask == 4 << 11 && decoded.answers.first?.type == 6)
                ids.append(decoded.id)
                sentAt.append(now)
            }
        }
        #expect(sentAt == [0, 2000, 6000, 14000, 30000], "at once, then after 2, 4, 8 and 16 s")
        #expect(events.count == 1 && { if case .gaveUp = events[0] { true } else { false } }())
        // Acknowledged: a signed reply with the last ID ends it; a reply from elsewhere or unsigned does not.
        schedule.add([vps], now: 0)
        let (sends, _) = schedule.due(now: 0, wallClock: Self.now) { 0x4242 }
        let sent = try #require(sends.first?.message)
        guard case .signed(let unsigned, let record) = TSIG.split(sent) else { return }
        var answer = unsigned
        answer[2] |= 0x80
        #expect(schedule.received(answer, from: IPAddress("198.51.100.53")!, wallClock: Self.now) != nil)
        #expect(!schedule.isEmpty, "an unsigned answer does not count")
        let signedAnswer = TSIG.signResponse(answer, key: Self.key, prior: record.mac, time: Self.now).message
        #expect(schedule.received(signedAnswer, from: IPAddress("192.0.2.1")!, wallClock: Self.now) == nil)
        #expect(
            schedule.received(signedAnswer, from: IPAddress("198.51.100.53")!, wallClock: Self.now)
                == .acknowledged(vps))
        #expect(schedule.isEmpty)
    }

    @Test func secondaryLinesAreCheckedWhereTheyAreWritten() throws {
        let base = "view lan 192.0.2.0/24 recursion\nview wan *\nupstream 127.0.0.1:9\n"
        let cases: [(String, String)] = [
            ("secondary vps", "'secondary' needs a name, an address and view=VIEW"),
            ("secondary vps nowhere view=wan", "secondary 'vps': 'nowhere' is not an address"),
            ("secondary vps 198.51.100.53", "secondary 'vps' needs view=VIEW"),
            ("secondary vps 198.51.100.53 view=dmz", "secondary 'vps': no view 'dmz' (views: lan, wan)"),
            (
                "secondary vps 198.51.100.53 view=wan key=missing.key",
                "secret file '/fixture/missing.key' does not exist"
            ),
            (
                "secondary vps 198.51.100.53 view=wan key=bad.key",
                "key file /fixture/bad.key: key secret is not valid base64"
            ),
            ("secondary vps 198.51.100.53 view=wan notify=maybe", "notify=maybe: yes or no"),
            ("secondary vps 198.51.100.53 view=wan color=blue", "unknown secondary option 'color=blue'"),
            (
                "secondary a 198.51.100.53 view=wan key=wan.key\nsecondary b 198.51.100.54 view=lan key=wan.key",
                "use key wan-key. with different views or secrets"
            ),
            (
                "secondary a 198.51.100.53 view=wan\nsecondary b 198.51.100.53 view=lan",
                "share the address 198.51.100.53 without keys but copy different views"
            ),
        ]
        for (line, expected) in cases {
            let result = Fixtures.compile(
                zones: [("example.com.zone", Self.zone(sites: 1))],
                extraFiles: [
                    "wan.key": "key \"wan-key\" { algorithm hmac-sha256; secret \"\(Self.secret)\"; };",
                    "bad.key": "key \"k\" { algorithm hmac-sha256; secret \"*\"; };",
                ], config: base + line)
            let messages = result.diagnostics.errors.map(\.message)
            #expect(messages.contains { $0.contains(expected) }, "\(line): \(messages)")
        }
    }
}
