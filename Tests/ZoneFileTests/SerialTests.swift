import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The SOA serial bumps by itself when a zone's compiled data changes, and never goes backwards.
@Suite struct SerialTests {
    let zone = "$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n"

    func serial(_ result: Pipeline.Result, view: String = "lan") throws -> UInt32 {
        let snapshot = try #require(result.snapshot)
        let apex = try DomainName("home.arpa.")
        guard case .soa(let soa) = try #require(snapshot.view(named: view)?.zones[apex]).soa.data else {
            Issue.record("no SOA")
            return 0
        }
        return soa.serial
    }

    @Test func firstCompileUsesTodaysDateSerial() throws {
        #expect(try self.serial(Fixtures.compile(zones: [("z.zone", self.zone)])) == Fixtures.dateSerial)
    }

    @Test func unchangedDataKeepsItsSerialAcrossRestarts() throws {
        let first = Fixtures.compile(zones: [("z.zone", self.zone)])
        let book = try #require(first.snapshot).serials
        // A restart on a later day: the stored book says nothing changed, so the serial stays.
        let again = Fixtures.compile(
            zones: [("z.zone", self.zone)], serials: SerialBook(text: book.text), dateSerial: 2_024_070_100)
        #expect(try self.serial(again) == Fixtures.dateSerial)
    }

    @Test func changedDataBumpsTheSerialEvenOnTheSameDay() throws {
        let first = Fixtures.compile(zones: [("z.zone", self.zone)])
        let book = try #require(first.snapshot).serials
        let changed = Fixtures.compile(zones: [("z.zone", self.zone + "new A 192.0.2.81\n")], serials: book)
        #expect(try self.serial(changed) == Fixtures.dateSerial + 1)
        let changedAgain = Fixtures.compile(
            zones: [("z.zone", self.zone + "new A 192.0.2.82\n")], serials: try #require(changed.snapshot).serials)
        #expect(try self.serial(changedAgain) == Fixtures.dateSerial + 2)
    }

    @Test func serialNeverGoesBackwardsWhenTheClockDoes() throws {
        let stored = SerialBook(entries: [
            SerialBook.key(view: "lan", apex: try DomainName("home.arpa.")): .init(
                contentHash: 1, serial: 2_030_010_105)
        ])
        let result = Fixtures.compile(zones: [("z.zone", self.zone)], serials: stored)
        #expect(try self.serial(result) == 2_030_010_106)
    }

    @Test func aWrittenSerialIsAFloor() throws {
        let written = "$TTL 300\n@ SOA ns1 hostmaster 2099010100 3600 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n"
        #expect(try self.serial(Fixtures.compile(zones: [("z.zone", written)])) == 2_099_010_100)
    }

    @Test func wanChangeBumpsOnlyTheWANView() throws {
        let proxied = "$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n"
        let before = Fixtures.compile(zones: [("z.zone", proxied)], wan: WANAddresses(v4: IPv4Address("203.0.113.1")))
        let book = try #require(before.snapshot).serials
        let after = Fixtures.compile(
            zones: [("z.zone", proxied)], wan: WANAddresses(v4: IPv4Address("203.0.113.2")), serials: book)
        #expect(try self.serial(after, view: "lan") == Fixtures.dateSerial)
        #expect(try self.serial(after, view: "wan") == Fixtures.dateSerial + 1)
    }

    @Test func serialBookSurvivesItsTextForm() {
        let book = SerialBook(entries: ["lan home.arpa.": .init(contentHash: 0xdead_beef, serial: 7)])
        #expect(SerialBook(text: book.text) == book)
        #expect(SerialBook(text: "garbage\nlan home.arpa. zz 1\n").entries.isEmpty)
    }
}
