import CSys
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Port forwards asked of the router (`router forward tcp/80 tcp/443`): the same port outside and inside, to
/// this host, over PCP (RFC 6887 MAP), NAT-PMP (RFC 6886) or UPnP IGD (`AddPortMapping`). A lifetime of 0
/// removes the mapping. Each call is one bounded exchange; a refusal says why, a port another device holds
/// says so.
public enum PortMapping {
    public enum Transport: String, Sendable, Hashable {
        case tcp, udp
        var number: UInt8 { self == .tcp ? 6 : 17 }
    }

    /// What the router granted: the lifetime (s) and, over PCP and NAT-PMP, its epoch (seconds since its
    /// mapping state began; see `RouterEpoch`).
    public struct Grant: Equatable, Sendable {
        public var lifetime: UInt32
        public var epoch: UInt32?

        public init(lifetime: UInt32, epoch: UInt32?) {
            self.lifetime = lifetime
            self.epoch = epoch
        }
    }

    /// This host's address towards `gateway` (the source address the kernel picks).
    public static func localAddress(toward gateway: IPAddress) -> IPAddress? {
        guard let socket = try? BlockingSocket(udp: SocketAddress(address: gateway, port: PCP.port), timeout: 100)
        else {
            return nil
        }
        return Sockets.address(of: socket.fd, peer: false)?.address
    }

    /// PCP MAP of `port` (same port outside) to `client`; the lifetime the router granted.
    public static func pcp(
        gateway: IPAddress, client: IPAddress, nonce: [UInt8], transport: Transport, port: UInt16, lifetime: UInt32,
        timeout: UInt64 = 2_000
    ) -> Result<Grant, DetectError> {
        let request = PCP.mapRequest(
            client: client, nonce: nonce, protocol: transport.number, internalPort: port, lifetime: lifetime,
            externalPort: port)
        let answer: Result<PCP.MapResponse, DetectError>? = Detectors.ask(
            SocketAddress(address: gateway, port: PCP.port), request, timeout: timeout, firstWait: 250, maximum: 1100
        ) { PCP.mapResponse($0, nonce: nonce) }
        guard let answer else { return .failure(DetectError("no PCP answer from \(gateway)")) }
        return answer.flatMap { response in
            if lifetime > 0 && response.externalPort != port {
                // The router mapped another port instead: that mapping is not wanted, take it back.
                _ = PortMapping.pcp(
                    gateway: gateway, client: client, nonce: nonce, transport: transport, port: port, lifetime: 0,
                    timeout: 500)
                return .failure(
                    DetectError(
                        "the router gave port \(response.externalPort) instead of \(port): another device holds "
                            + "\(transport.rawValue)/\(port) on the router (free it in the router's settings)"))
            }
            return .success(Grant(lifetime: response.lifetime, epoch: response.epoch))
        }
    }

    /// NAT-PMP mapping (RFC 6886 §3.3) of `port` to this host; the lifetime granted.
    public static func natPMP(
        gateway: IPAddress, transport: Transport, port: UInt16, lifetime: UInt32, timeout: UInt64 = 2_000
    ) -> Result<Grant, DetectError> {
        let opcode: UInt8 = transport == .udp ? 1 : 2
        let request: [UInt8] =
            [0, opcode, 0, 0, UInt8(port >> 8), UInt8(port & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF)]
            + PCP.bigEndian(lifetime)
        let answer: Result<Grant, DetectError>? = Detectors.ask(
            SocketAddress(address: gateway, port: 5351), request, timeout: timeout, firstWait: 250, maximum: 64
        ) { reply in
            guard reply.count >= 16, reply[0] == 0, reply[1] == 128 + opcode,
                UInt16(reply[8]) << 8 | UInt16(reply[9]) == port
            else { return nil }
            let result = UInt16(reply[2]) << 8 | UInt16(reply[3])
            guard result == 0 else {
                return .failure(DetectError("the router refused the NAT-PMP mapping (result code \(result))"))
            }
            let external = UInt16(reply[10]) << 8 | UInt16(reply[11])
            if lifetime > 0 && external != port {
                // The router mapped another port instead: that mapping is not wanted, take it back.
                _ = PortMapping.natPMP(gateway: gateway, transport: transport, port: port, lifetime: 0, timeout: 500)
                return .failure(
                    DetectError(
                        "the router gave port \(external) instead of \(port): another device holds "
                            + "\(transport.rawValue)/\(port) on the router (free it in the router's settings)"))
            }
            return .success(Grant(lifetime: PCP.uint32(reply, at: 12), epoch: PCP.uint32(reply, at: 4)))
        }
        return answer ?? .failure(DetectError("no NAT-PMP answer from \(gateway)"))
    }

    /// UPnP IGD `AddPortMapping` (or `DeletePortMapping` with lifetime 0) of `port` to `client`.
    public static func upnp(
        gateway: IPAddress, client: IPAddress, transport: Transport, port: UInt16, lifetime: UInt32,
        timeout: UInt64 = 3_000
    ) -> Result<Grant, DetectError> {
        let control: (url: String, service: String)
        switch UPnP.control(gateway: gateway, timeout: timeout) {
        case .success(let found): control = found
        case .failure(let error): return .failure(error)
        }
        let proto = transport.rawValue.uppercased()
        let action = lifetime == 0 ? "DeletePortMapping" : "AddPortMapping"
        var arguments = [("NewRemoteHost", ""), ("NewExternalPort", "\(port)"), ("NewProtocol", proto)]
        if lifetime > 0 {
            arguments += [
                ("NewInternalPort", "\(port)"), ("NewInternalClient", client.description), ("NewEnabled", "1"),
                ("NewPortMappingDescription", "frontdoor \(transport.rawValue)/\(port)"),
                ("NewLeaseDuration", "\(lifetime)"),
            ]
        }
        let reply: HTTPClient.Response
        switch UPnP.call(control, action: action, arguments: arguments, timeout: timeout) {
        case .success(let response): reply = response
        case .failure(let error): return .failure(error)
        }
        if reply.status == 200 { return .success(Grant(lifetime: lifetime, epoch: nil)) }
        let fault = UPnP.externalAddress(status: reply.status, body: reply.body)
        if case .failure(let error) = fault, error.message.contains(" 718 ") || error.message.hasSuffix("718") {
            return .failure(
                DetectError(
                    "another device holds \(transport.rawValue)/\(port) on the router (UPnP 718, "
                        + "ConflictInMappingEntry): free it in the router's settings"))
        }
        if case .failure(let error) = fault { return .failure(error) }
        return .failure(DetectError("\(action): HTTP \(reply.status)"))
    }
}

/// A PCP or NAT-PMP server's epoch, followed across answers (RFC 6887 §8.5, RFC 6886 §3.6): a router that
/// restarted has lost its mappings, and says so by an epoch that went backwards or that advanced at a pace
/// that does not match the client's own clock. Then every mapping is asked for again at once.
public struct RouterEpoch: Equatable, Sendable {
    /// The last epoch seen and the client's monotonic time (ms) when it came.
    public private(set) var last: (server: UInt32, client: UInt64)?

    public init() {}

    public static func == (a: RouterEpoch, b: RouterEpoch) -> Bool {
        a.last?.server == b.last?.server && a.last?.client == b.last?.client
    }

    /// Records an epoch from an answer received at `now`; true when it shows the router lost its state.
    public mutating func observe(_ server: UInt32, now: UInt64) -> Bool {
        defer { self.last = (server, now) }
        guard let (previous, then) = self.last else { return false }
        // Backwards by more than a second: a restart.
        if UInt64(server) + 1 < UInt64(previous) { return true }
        let serverDelta = server >= previous ? UInt64(server - previous) : 0
        let clientDelta = (now &- then) / 1000
        // Each clock may drift from the other by 1/16, plus two seconds of rounding and transit.
        return clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16
    }
}
