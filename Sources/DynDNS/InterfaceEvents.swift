/// The kernel's notices about interfaces (rtnetlink: the messages a NETLINK_ROUTE socket subscribed to links and
/// addresses receives), read into what the WAN updater needs: which interface changed and how. Pure — bytes
/// in, events out; anything malformed or of another kind is skipped. Netlink is in the host's byte order.
public enum InterfaceEvents {
    public struct Event: Equatable, Sendable, CustomStringConvertible {
        public enum Kind: Equatable, Sendable {
            /// The link's state: administratively up and running (with carrier), or not.
            case link(up: Bool)
            case linkRemoved
            case addressAdded
            case addressRemoved
        }

        public var index: UInt32
        /// The name when the message carries it (links always; IPv4 addresses as their label).
        public var name: String?
        public var kind: Kind

        public init(index: UInt32, name: String?, kind: Kind) {
            self.index = index
            self.name = name
            self.kind = kind
        }

        public var description: String {
            switch self.kind {
            case .link(let up): up ? "link up" : "link down"
            case .linkRemoved: "interface removed"
            case .addressAdded: "address added"
            case .addressRemoved: "address removed"
            }
        }
    }

    // rtnetlink message types (linux/rtnetlink.h) and flags (linux/if.h).
    static let newLink: UInt16 = 16
    static let deleteLink: UInt16 = 17
    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    /// IFF_UP and IFF_RUNNING (administratively up; the link has carrier), also read by `Detectors.interface`.
    static let up: UInt32 = 0x1
    static let running: UInt32 = 0x40

    /// The events in one datagram from the socket (it may hold several messages).
    public static func decode(_ bytes: [UInt8]) -> [Event] {
        var events: [Event] = []
        var offset = 0
        // struct nlmsghdr: length u32, type u16, flags u16, sequence u32, port u32.
        while offset + 16 <= bytes.count {
            let length = Int(InterfaceEvents.word(bytes, offset))
            guard length >= 16, offset + length <= bytes.count else { break }
            let type = InterfaceEvents.half(bytes, offset + 4)
            let body = offset + 16
            let end = offset + length
            switch type {
            case InterfaceEvents.newLink, InterfaceEvents.deleteLink:
                // struct ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32.
                guard body + 16 <= end else { break }
                let index = InterfaceEvents.word(bytes, body + 4)
                let flags = InterfaceEvents.word(bytes, body + 8)
                let name = InterfaceEvents.attribute(3, in: bytes, from: body + 16, to: end)  // IFLA_IFNAME
                let kind: Event.Kind =
                    type == InterfaceEvents.deleteLink
                    ? .linkRemoved
                    : .link(up: flags & InterfaceEvents.up != 0 && flags & InterfaceEvents.running != 0)
                events.append(Event(index: index, name: name, kind: kind))
            case InterfaceEvents.newAddress, InterfaceEvents.deleteAddress:
                // struct ifaddrmsg: family u8, prefix length u8, flags u8, scope u8, index u32.
                guard body + 8 <= end else { break }
                let index = InterfaceEvents.word(bytes, body + 4)
                let label = InterfaceEvents.attribute(3, in: bytes, from: body + 8, to: end)  // IFA_LABEL
                events.append(
                    Event(
                        index: index, name: label,
                        kind: type == InterfaceEvents.newAddress ? .addressAdded : .addressRemoved))
            default:
                break
            }
            offset += (length + 3) & ~3
        }
        return events
    }

    /// A string attribute (struct rtattr: length u16, type u16, value, padded to 4) between `from` and `to`.
    static func attribute(_ wanted: UInt16, in bytes: [UInt8], from: Int, to end: Int) -> String? {
        var at = from
        while at + 4 <= end {
            let length = Int(InterfaceEvents.half(bytes, at))
            guard length >= 4, at + length <= end else { return nil }
            if InterfaceEvents.half(bytes, at + 2) == wanted {
                let value = bytes[(at + 4)..<(at + length)].prefix { $0 != 0 }
                return value.isEmpty || value.count > 64 ? nil : String(decoding: value, as: UTF8.self)
            }
            at += (length + 3) & ~3
        }
        return nil
    }

    static func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
    }

    static func half(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) }
    }
}
