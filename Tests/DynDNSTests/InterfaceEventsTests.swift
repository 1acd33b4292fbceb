import DynDNS
import Testing

/// The kernel's rtnetlink notices, as bytes laid out like linux/rtnetlink.h (host order: little-endian here).
@Suite struct InterfaceEventsTests {
    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(value >> ($0 * 8) & 0xFF) } }
    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }

    /// One attribute, padded to 4 bytes.
    static func attribute(_ type: UInt16, _ text: String) -> [UInt8] {
        let value = Array(text.utf8) + [0]
        let bytes = le16(UInt16(4 + value.count)) + le16(type) + value
        return bytes + [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
    }

    static func message(_ type: UInt16, _ body: [UInt8]) -> [UInt8] {
        le32(UInt32(16 + body.count)) + le16(type) + le16(0) + le32(0) + le32(0) + body
    }

    /// RTM_NEWLINK / RTM_DELLINK with struct ifinfomsg and IFLA_IFNAME.
    static func link(_ type: UInt16, index: UInt32, flags: UInt32, name: String?) -> [UInt8] {
        let info: [UInt8] = [0, 0] + le16(1) + le32(index) + le32(flags) + le32(0xFFFF_FFFF)
        return message(type, info + (name.map { attribute(3, $0) } ?? []))
    }

    /// RTM_NEWADDR / RTM_DELADDR with struct ifaddrmsg and, for IPv4, IFA_LABEL.
    static func address(_ type: UInt16, index: UInt32, label: String?) -> [UInt8] {
        let info: [UInt8] = [2, 24, 0, 0] + le32(index)
        return message(type, info + [0x08, 0x00, 0x01, 0x00, 198, 51, 100, 7] + (label.map { attribute(3, $0) } ?? []))
    }

    @Test(.bug(id: "19")) func linksAndAddresses() {
        typealias Event = InterfaceEvents.Event
        let table: [(bytes: [UInt8], events: [Event], why: String)] = [
            (
                Self.link(16, index: 7, flags: 0x1 | 0x40, name: "wan0"),
                [Event(index: 7, name: "wan0", kind: .link(up: true))], "up and running"
            ),
            (
                Self.link(16, index: 7, flags: 0x1, name: "wan0"),
                [Event(index: 7, name: "wan0", kind: .link(up: false))], "up, no carrier"
            ),
            (
                Self.link(16, index: 7, flags: 0x40, name: "wan0"),
                [Event(index: 7, name: "wan0", kind: .link(up: false))], "switched off"
            ),
            (
                Self.link(17, index: 7, flags: 0, name: "ppp0"), [Event(index: 7, name: "ppp0", kind: .linkRemoved)],
                "removed"
            ),
            (
                Self.address(20, index: 3, label: "wan0"), [Event(index: 3, name: "wan0", kind: .addressAdded)],
                "IPv4 added"
            ),
            (
                Self.address(21, index: 3, label: nil), [Event(index: 3, name: nil, kind: .addressRemoved)],
                "IPv6 removed: no label"
            ),
            (
                Self.address(20, index: 3, label: "wan0") + Self.link(16, index: 4, flags: 0x41, name: "lan0"),
                [
                    Event(index: 3, name: "wan0", kind: .addressAdded),
                    Event(index: 4, name: "lan0", kind: .link(up: true)),
                ],
                "two in one datagram"
            ),
            (Self.message(24, [UInt8](repeating: 0, count: 12)), [], "a route: not ours"),
            (Self.message(3, Self.le32(0)), [], "NLMSG_DONE"),
            (Array(Self.link(16, index: 7, flags: 1, name: "wan0").prefix(20)), [], "truncated"),
            (Self.message(16, [0, 0, 0, 0]), [], "a link message too short for its header"),
        ]
        for row in table {
            #expect(InterfaceEvents.decode(row.bytes) == row.events, "\(row.why)")
        }
        // A name attribute whose length runs past the message is not read.
        var bad = Self.link(16, index: 7, flags: 0x41, name: "wan0")
        bad[32] = 200
        #expect(InterfaceEvents.decode(bad) == [InterfaceEvents.Event(index: 7, name: nil, kind: .link(up: true))])
    }

    /// Random and truncated datagrams: events or none, never a crash.
    @Test(.bug(id: "19")) func randomDatagrams() {
        var generator = SystemRandomNumberGenerator()
        let whole = Self.address(20, index: 3, label: "wan0") + Self.link(16, index: 4, flags: 0x41, name: "lan0")
        for cut in 0..<whole.count { _ = InterfaceEvents.decode(Array(whole.prefix(cut))) }
        for _ in 0..<20_000 {
            var bytes = whole
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = InterfaceEvents.decode(Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator))))
        }
    }
}
