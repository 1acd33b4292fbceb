/// An IPv4 or IPv6 address, parsed and printed without the C library so the model stays pure.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses dotted-quad IPv4 or RFC 4291 §2.2 IPv6 text (no zone index, no brackets).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`), as dual-stack sockets
    /// report IPv4 clients; any other address unchanged.
    public var unmapped: IPAddress {
        if case .v6(let v6) = self, v6.high == 0, v6.low >> 32 == 0xFFFF {
            return .v4(IPv4Address(UInt32(truncatingIfNeeded: v6.low)))
        }
        return self
    }

    public var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }

    /// 0.0.0.0 or ::.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let address): address.value == 0
        case .v6(let address): address.high == 0 && address.low == 0
        }
    }

    /// The address in network byte order: 4 or 16 bytes.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let address): address.bytes
        case .v6(let address): address.bytes
        }
    }
}

/// A 32-bit IPv4 address.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    /// Parses exactly four decimal octets, each 0...255 without leading zeros (which some parsers read as
    /// octal), separated by dots.
    public init?(_ text: some StringProtocol) {
        var value: UInt32 = 0
        var octets = 0
        for part in text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard part.count >= 1, part.count <= 3, part.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            guard part.count == 1 || part.first != UInt8(ascii: "0") else { return nil }
            let octet = part.reduce(0) { $0 * 10 + UInt32($1 - 48) }
            guard octet <= 255 else { return nil }
            value = value << 8 | octet
            octets += 1
        }
        guard octets == 4 else { return nil }
        self.value = value
    }

    public var bytes: [UInt8] {
        [
            UInt8(self.value >> 24), UInt8(self.value >> 16 & 0xFF), UInt8(self.value >> 8 & 0xFF),
            UInt8(self.value & 0xFF),
        ]
    }

    public var description: String {
        "\(self.value >> 24).\(self.value >> 16 & 0xFF).\(self.value >> 8 & 0xFF).\(self.value & 0xFF)"
    }
}

/// A 128-bit IPv6 address as two big-endian halves.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses RFC 4291 §2.2 text: up to eight groups of 1–4 hex digits, at most one `::`, and an optional
    /// trailing dotted quad.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var index = 0
        if bytes.starts(with: [58, 58]) {
            sawGap = true
            index = 2
            if index == bytes.count {
                self.init(high: 0, low: 0)
                return
            }
        } else if bytes.first == 58 {
            return nil
        }
        while index < bytes.count {
            // A dotted quad may end the address.
            var end = index
            while end < bytes.count && bytes[end] != 58 { end += 1 }
            let part = bytes[index..<end]
            if end == bytes.count, part.contains(UInt8(ascii: ".")) {
                guard let v4 = IPv4Address(String(decoding: part, as: UTF8.self)) else { return nil }
                let groups = [UInt16(v4.value >> 16), UInt16(v4.value & 0xFFFF)]
                if sawGap { tail += groups } else { head += groups }
                index = end
                break
            }
            guard part.count >= 1, part.count <= 4 else { return nil }
            var group: UInt16 = 0
            for byte in part {
                guard let digit = hexDigitValue(byte) else { return nil }
                group = group << 4 | UInt16(digit)
            }
            if sawGap { tail.append(group) } else { head.append(group) }
            index = end
            if index == bytes.count { break }
            // At a colon: `::` opens the gap once; a single colon must be followed by a group.
            if index + 1 < bytes.count && bytes[index + 1] == 58 {
                guard !sawGap else { return nil }
                sawGap = true
                index += 2
            } else {
                index += 1
                guard index < bytes.count else { return nil }
            }
        }
        let count = head.count + tail.count
        if sawGap {
            guard count <= 7 else { return nil }
        } else {
            guard count == 8 else { return nil }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        self.init(high: high, low: low)
    }

    var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: self.high >> (48 - 16 * UInt64($0))) }
            + (0..<4).map { UInt16(truncatingIfNeeded: self.low >> (48 - 16 * UInt64($0))) }
    }

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: self.high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: self.low >> (56 - 8 * UInt64($0))) }
    }

    /// RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as `::`.
    public var description: String {
        let groups = self.groups
        var bestStart = -1
        var bestLength = 0
        var start = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if start < 0 { start = index }
            } else if start >= 0 {
                if index - start > bestLength {
                    bestStart = start
                    bestLength = index - start
                }
                start = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }
}

/// An address prefix such as `192.0.2.0/24` or `2001:db8::/32`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Why a prefix was rejected.
    public enum ParseError: Error, Equatable {
        case badAddress
        case badLength
        /// Bits set after the prefix length (`192.0.2.1/24`): almost always a typo for another network.
        case hostBitsSet(suggestion: String)
    }

    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDR/LEN`, or a bare address as a host prefix.
    public static func parse(_ text: String) -> Result<CIDR, ParseError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return .failure(.badAddress) }
        let maximum = address.bitWidth
        var length = maximum
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= maximum, parts[1].allSatisfy(\.isNumber) else {
                return .failure(.badLength)
            }
            length = value
        }
        let cidr = CIDR(address: address, prefixLength: length)
        let network = cidr.network
        guard network == address else {
            return .failure(.hostBitsSet(suggestion: "\(network)/\(length)"))
        }
        return .success(cidr)
    }

    /// The address with every bit after the prefix cleared.
    public var network: IPAddress {
        switch self.address {
        case .v4(let v4):
            let mask: UInt32 = self.prefixLength == 0 ? 0 : ~0 << (32 - UInt32(self.prefixLength))
            return .v4(IPv4Address(v4.value & mask))
        case .v6(let v6):
            let (highMask, lowMask) = CIDR.v6Masks(self.prefixLength)
            return .v6(IPv6Address(high: v6.high & highMask, low: v6.low & lowMask))
        }
    }

    static func v6Masks(_ length: Int) -> (UInt64, UInt64) {
        let high: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << UInt64(64 - length))
        let low: UInt64 = length <= 64 ? 0 : (length == 128 ? ~0 : ~0 << UInt64(128 - length))
        return (high, low)
    }

    /// Whether `candidate` lies inside this prefix (IPv4-mapped IPv6 clients count as IPv4).
    public func contains(_ candidate: IPAddress) -> Bool {
        switch (self.address, candidate.unmapped) {
        case (.v4(let network), .v4(let host)):
            let mask: UInt32 = self.prefixLength == 0 ? 0 : ~0 << (32 - UInt32(self.prefixLength))
            return host.value & mask == network.value
        case (.v6(let network), .v6(let host)):
            let (highMask, lowMask) = CIDR.v6Masks(self.prefixLength)
            return host.high & highMask == network.high && host.low & lowMask == network.low
        default:
            return false
        }
    }

    /// Whether every address of `other` lies inside this prefix.
    public func covers(_ other: CIDR) -> Bool {
        other.prefixLength >= self.prefixLength && self.contains(other.address)
    }

    public var description: String { "\(self.address)/\(self.prefixLength)" }
}

extension IPAddress {
    /// 32 or 128.
    public var bitWidth: Int {
        switch self {
        case .v4: 32
        case .v6: 128
        }
    }
}

/// A transport endpoint such as `0.0.0.0:53` or `[::]:53`.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `ADDR:PORT` or `[V6]:PORT`; a bare address takes `defaultPort` when one is given.
    public init?(_ text: String, defaultPort: UInt16? = nil) {
        var host = Substring(text)
        var portText: Substring? = nil
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
            guard case .v6 = IPAddress(host) else { return nil }
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let address = IPAddress(host) else { return nil }
        if let portText {
            guard let port = UInt16(portText), port > 0, portText.allSatisfy(\.isNumber) else { return nil }
            self.init(address: address, port: port)
        } else {
            guard let defaultPort else { return nil }
            self.init(address: address, port: defaultPort)
        }
    }

    public var description: String {
        switch self.address {
        case .v4: "\(self.address):\(self.port)"
        case .v6: "[\(self.address)]:\(self.port)"
        }
    }
}

/// The value of one hexadecimal digit (either case), or nil.
package func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 48...57: byte - 48
    case 65...70: byte - 55
    case 97...102: byte - 87
    default: nil
    }
}

extension IPAddress {
    /// From 4 or 16 bytes in network order.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4:
            self = .v4(IPv4Address(bytes.reduce(0) { $0 << 8 | UInt32($1) }))
        case 16:
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(IPv6Address(high: high, low: low))
        default:
            return nil
        }
    }

    public var isV4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// What kind of address a WAN detector reported: only `global` can be published.
    public enum Scope: Equatable, Sendable {
        case global
        /// RFC 6598 shared address space (100.64.0.0/10): the ISP's carrier-grade NAT.
        case carrierGradeNAT
        /// RFC 1918 private, or IPv6 unique local (fc00::/7).
        case privateNetwork
        /// RFC 5737 / RFC 3849 documentation ranges: never real, but what test networks use.
        case documentation
        /// Loopback, link-local, unspecified, multicast, benchmarking, reserved and the like.
        case special
    }

    public var scope: Scope {
        switch self {
        case .v4(let address):
            let value = address.value
            func within(_ base: UInt32, _ bits: UInt32) -> Bool {
                bits == 0 || value >> (32 - bits) == base >> (32 - bits)
            }
            if within(0x6440_0000, 10) { return .carrierGradeNAT }
            if within(0x0A00_0000, 8) || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16) { return .privateNetwork }
            if within(0xC000_0200, 24) || within(0xC633_6400, 24) || within(0xCB00_7100, 24) { return .documentation }
            let special: [(UInt32, UInt32)] = [
                (0x0000_0000, 8), (0x7F00_0000, 8), (0xA9FE_0000, 16), (0xC000_0000, 24), (0xC612_0000, 15),
                (0xE000_0000, 4), (0xF000_0000, 4),
            ]
            return special.contains { within($0.0, $0.1) } ? .special : .global
        case .v6(let address):
            let top = address.high >> 48
            if address.high == 0 && address.low >> 32 == 0xFFFF {
                return self.unmapped.scope
            }
            if top & 0xFE00 == 0xFC00 { return .privateNetwork }
            // Global unicast is 2000::/3, less documentation (2001:db8::/32).
            guard top & 0xE000 == 0x2000 else { return .special }
            if address.high >> 32 == 0x2001_0DB8 { return .documentation }
            return .global
        }
    }
}
