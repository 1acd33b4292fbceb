import ZoneModel

/// The PROXY protocol, version 2 (HAProxy's specification, §2.2): the binary header a passthrough backend
/// reads before the client's TLS stream, telling it the client's address and port and the address the
/// client reached. Pure; nginx (`listen ... proxy_protocol`), HAProxy and most appliances read it.
public enum ProxyProtocol {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// The v2 header for a TCP connection from `source` to `destination`: PROXY command, TCP over IPv4 when
    /// both are IPv4 (IPv4-mapped IPv6 counts as IPv4), else TCP over IPv6 with IPv4 addresses mapped.
    public static func header(source: SocketAddress, destination: SocketAddress) -> [UInt8] {
        var bytes = ProxyProtocol.signature
        bytes.append(0x21)  // version 2, PROXY
        let from = source.address.unmapped
        let to = destination.address.unmapped
        if case .v4(let a) = from, case .v4(let b) = to {
            bytes += [0x11, 0x00, 12]  // TCP over IPv4, 12 octets follow
            bytes += ProxyProtocol.octets(a.value) + ProxyProtocol.octets(b.value)
        } else {
            bytes += [0x21, 0x00, 36]  // TCP over IPv6, 36 octets follow
            bytes += ProxyProtocol.octets16(from) + ProxyProtocol.octets16(to)
        }
        bytes += [UInt8(source.port >> 8), UInt8(source.port & 0xFF)]
        bytes += [UInt8(destination.port >> 8), UInt8(destination.port & 0xFF)]
        return bytes
    }

    static func octets(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func octets16(_ address: IPAddress) -> [UInt8] {
        let (high, low): (UInt64, UInt64)
        switch address {
        case .v4(let v4): (high, low) = (0, 0xFFFF_0000_0000 | UInt64(v4.value))
        case .v6(let v6): (high, low) = (v6.high, v6.low)
        }
        return (0..<8).map { UInt8((high >> (56 - 8 * UInt64($0))) & 0xFF) }
            + (0..<8).map { UInt8((low >> (56 - 8 * UInt64($0))) & 0xFF) }
    }
}
