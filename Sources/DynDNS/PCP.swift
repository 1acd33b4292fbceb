import CSys
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The Port Control Protocol (RFC 6887), as far as learning the WAN address goes: a MAP request for a UDP
/// port of a socket of our own, whose response names the router's external address, then the mapping
/// deleted at once (lifetime 0). Pure encoding and decoding here; `externalAddress` does the exchange.
public enum PCP {
    public static let port: UInt16 = 5351

    /// A MAP response (RFC 6887 §7.2, §11.1).
    public struct MapResponse: Equatable, Sendable {
        public var result: UInt8
        public var lifetime: UInt32
        /// The server's epoch: it goes backwards when the router restarted (its mappings are gone).
        public var epoch: UInt32
        public var internalPort: UInt16
        public var externalPort: UInt16
        public var externalAddress: IPAddress?

        public init(
            result: UInt8, lifetime: UInt32, epoch: UInt32, internalPort: UInt16, externalPort: UInt16,
            externalAddress: IPAddress?
        ) {
            self.result = result
            self.lifetime = lifetime
            self.epoch = epoch
            self.internalPort = internalPort
            self.externalPort = externalPort
            self.externalAddress = externalAddress
        }
    }

    /// RFC 6887 §7.4's result codes, as the log says them.
    static let results: [UInt8: String] = [
        1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED (PCP is switched off on the router, or this host may not map)",
        3: "MALFORMED_REQUEST", 4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION",
        7: "NETWORK_FAILURE (the router has no working WAN address)", 8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL",
        10: "USER_EX_QUOTA", 11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH (a NAT between us and the router?)",
        13: "EXCESSIVE_REMOTE_PEERS",
    ]

    /// A MAP request's nonce: 12 random bytes from the kernel (RFC 6887 §11.1).
    public static func newNonce() -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        _ = nonce.withUnsafeMutableBytes { csys_random_fill($0.baseAddress, 12) }
        return nonce
    }

    /// A 32-bit field of PCP and NAT-PMP (network order), read and written.
    static func uint32(_ bytes: [UInt8], at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// The 16-byte form of an address in PCP (IPv4 as ::ffff:a.b.c.d).
    static func wire(_ address: IPAddress) -> [UInt8] {
        switch address {
        case .v4(let v4): [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + v4.bytes
        case .v6(let v6): v6.bytes
        }
    }

    static func address(_ bytes: ArraySlice<UInt8>) -> IPAddress? {
        let bytes = Array(bytes)
        guard bytes.count == 16 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        return IPAddress(bytes: bytes)
    }

    /// A MAP request (60 bytes): `client` is the request's own source address, `nonce` 12 random bytes.
    public static func mapRequest(
        client: IPAddress, nonce: [UInt8], protocol number: UInt8, internalPort: UInt16, lifetime: UInt32,
        externalPort: UInt16 = 0
    ) -> [UInt8] {
        var out: [UInt8] = [2, 1, 0, 0] + PCP.bigEndian(lifetime)
        out += PCP.wire(client)
        out += nonce.prefix(12) + [UInt8](repeating: 0, count: max(0, 12 - nonce.count))
        out += [number, 0, 0, 0, UInt8(internalPort >> 8), UInt8(internalPort & 0xFF)]
        out += [UInt8(externalPort >> 8), UInt8(externalPort & 0xFF)]
        out += [UInt8](repeating: 0, count: 16)
        return out
    }

    /// The response to our MAP request with `nonce`; nil for a datagram that is not one (another reply, an
    /// ANNOUNCE, a NAT-PMP answer), a failure for a refusal or a malformed reply.
    public static func mapResponse(_ bytes: [UInt8], nonce: [UInt8]) -> Result<MapResponse, DetectError>? {
        guard bytes.count >= 4 else { return nil }
        // A NAT-PMP-only router answers version 0 with "unsupported version".
        if bytes[0] == 0 && bytes.count >= 4 && bytes[1] >= 128 {
            return .failure(DetectError("the router speaks NAT-PMP, not PCP (use 'wan natpmp')"))
        }
        guard bytes[0] == 2, bytes[1] == 0x81 else { return nil }
        let result = bytes[3]
        guard bytes.count >= 24 else { return .failure(DetectError("a truncated PCP reply (\(bytes.count) bytes)")) }
        if result != 0 && bytes.count < 60 {
            return .failure(DetectError("router says: \(PCP.results[result] ?? "result code \(result)")"))
        }
        guard bytes.count >= 60, bytes.count <= 1100 else {
            return .failure(DetectError("a PCP MAP reply of \(bytes.count) bytes"))
        }
        guard Array(bytes[24..<36]) == nonce else { return nil }
        guard result == 0 else {
            return .failure(DetectError("router says: \(PCP.results[result] ?? "result code \(result)")"))
        }
        return .success(
            MapResponse(
                result: result, lifetime: PCP.uint32(bytes, at: 4), epoch: PCP.uint32(bytes, at: 8),
                internalPort: UInt16(bytes[40]) << 8 | UInt16(bytes[41]),
                externalPort: UInt16(bytes[42]) << 8 | UInt16(bytes[43]), externalAddress: PCP.address(bytes[44..<60])))
    }

    /// Asks the gateway for a short mapping of a UDP socket of our own and reads the external address from the
    /// answer; the mapping is deleted at once.
    public static func externalAddress(gateway: IPAddress, timeout: UInt64 = 2_000) -> Result<IPAddress, DetectError> {
        let server = SocketAddress(address: gateway, port: PCP.port)
        let socket: BlockingSocket
        do {
            socket = try BlockingSocket(udp: server, timeout: timeout)
        } catch {
            return .failure(DetectError("\(error)"))
        }
        guard let local = Sockets.address(of: socket.fd, peer: false) else {
            return .failure(DetectError("cannot read the local address towards \(gateway)"))
        }
        let (client, port) = (local.address, local.port)
        let nonce = PCP.newNonce()
        let request = PCP.mapRequest(client: client, nonce: nonce, protocol: 17, internalPort: port, lifetime: 120)
        var wait: UInt64 = 250
        var outcome: Result<MapResponse, DetectError>?
        while outcome == nil && monotonicMilliseconds() < socket.deadline {
            guard (try? socket.send(request)) != nil else { return .failure(DetectError("cannot send to \(server)")) }
            let until = min(socket.deadline, monotonicMilliseconds() + wait)
            while outcome == nil, monotonicMilliseconds() < until,
                let datagram = try? socket.receive(maximum: 1100, until: until)
            {
                outcome = PCP.mapResponse(datagram, nonce: nonce)
            }
            wait = min(wait * 2, 1_000)
        }
        guard let outcome else { return .failure(DetectError("no PCP answer from \(server) within \(timeout) ms")) }
        // The mapping pointed at this socket, which closes now: delete it (the answer is not awaited).
        if case .success = outcome {
            _ = try? socket.send(
                PCP.mapRequest(client: client, nonce: nonce, protocol: 17, internalPort: port, lifetime: 0))
        }
        return outcome.flatMap { response in
            guard let address = response.externalAddress else {
                return .failure(DetectError("the router's PCP answer names no external address"))
            }
            return .success(address)
        }
    }
}
