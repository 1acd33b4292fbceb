import CSys
import EventLoop
import Files
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Finding the router when the operator wrote `auto` for its address (`wan router auto`): PCP and NAT-PMP ask
/// the default route's gateway (RFC 6887 §8.1, RFC 6886 §3); UPnP IGD is found by an SSDP search multicast on
/// the LAN (UPnP Device Architecture 1.1 §1.3.2), answered by a device whose description is on itself.
public enum RouterDiscovery {
    /// The default route in `/proc/net/route`'s text: its interface and its gateway (nil for a route without
    /// one, as on a point-to-point link). The file prints each address as the kernel stores it (network order)
    /// read as a little-endian number: 192.168.1.1 is 0101A8C0.
    public static func defaultRoute(table: [UInt8]) -> (interface: String, gateway: IPv4Address?)? {
        for line in String(decoding: table.prefix(1 << 20), as: UTF8.self).split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count > 2, fields[1] == "00000000", let raw = UInt32(fields[2], radix: 16) else { continue }
            return (String(fields[0]), raw == 0 ? nil : IPv4Address(raw.byteSwapped))
        }
        return nil
    }

    /// The default route's gateway on this host, or why there is none.
    public static func defaultGateway() -> Result<IPAddress, DetectError> {
        guard case .success(let bytes) = DiskFiles().read("/proc/net/route") else {
            return .failure(DetectError("cannot read /proc/net/route"))
        }
        guard let route = RouterDiscovery.defaultRoute(table: bytes) else {
            return .failure(DetectError("no default route: no router to ask ('wan router auto')"))
        }
        guard let gateway = route.gateway else {
            return .failure(DetectError("the default route (\(route.interface)) has no gateway to ask"))
        }
        return .success(.v4(gateway))
    }

    /// The IGD found last, asked directly until it stops answering.
    static let found = Mutex<IPAddress?>(nil)

    /// The UPnP IGD on the LAN: the one found before, else the first device that answers a multicast search
    /// with a description on its own address (a reply naming another host is ignored). Within `timeout` ms.
    public static func gatewayDevice(timeout: UInt64 = 3_000) -> Result<IPAddress, DetectError> {
        if let known = RouterDiscovery.found.withLock({ $0 }) { return .success(known) }
        let fd = csys_udp4_socket()
        guard fd >= 0 else { return .failure(DetectError("socket: \(String(cString: strerror(-fd)))")) }
        defer { close(fd) }
        // The search stays on the LAN: two hops at most, as the UPnP architecture asks.
        var ttl: UInt8 = 2
        setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, &ttl, 1)
        let group = SocketAddress(address: .v4(IPv4Address(0xEFFF_FFFA)), port: 1900)
        let deadline = monotonicMilliseconds() + timeout
        var wait: UInt64 = 500
        var ignored: [String] = []
        while monotonicMilliseconds() < deadline {
            _ = UPnP.searchRequest.withUnsafeBytes { bytes in
                group.withSockaddr { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
            }
            let until = min(deadline, monotonicMilliseconds() + wait)
            var buffer = [UInt8](repeating: 0, count: 8193)
            while monotonicMilliseconds() < until {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, Int32(clamping: until - monotonicMilliseconds())) > 0 else { break }
                let (count, sender) = Sockets.receive(fd, into: &buffer)
                guard count > 0, let sender else { continue }
                switch UPnP.location(ofSearchResponse: Array(buffer.prefix(count))) {
                case .success(let location):
                    if case .success = UPnP.checked(location, gateway: sender) {
                        RouterDiscovery.found.withLock { $0 = sender }
                        return .success(sender)
                    }
                    ignored.append("\(sender) named \(location.prefix(80))")
                case .failure(let error): ignored.append("\(sender): \(error)")
                case nil: continue
                }
            }
            wait = min(wait * 2, 2_000)
        }
        let also = ignored.isEmpty ? "" : " (ignored: \(ignored.prefix(3).joined(separator: "; ")))"
        return .failure(DetectError("no UPnP IGD answered a search on the LAN within \(timeout) ms\(also)"))
    }

    /// The IGD found by the search no longer answers: search again next time.
    public static func forget(_ device: IPAddress) {
        RouterDiscovery.found.withLock { if $0 == device { $0 = nil } }
    }

    /// The router to ask for `configured` (`auto` resolved); `upnp`: the IGD is searched for, not assumed
    /// to be the default gateway.
    public static func resolve(_ configured: IPAddress, upnp: Bool) -> Result<IPAddress, DetectError> {
        guard configured == WANSource.auto else { return .success(configured) }
        return upnp ? RouterDiscovery.gatewayDevice() : RouterDiscovery.defaultGateway()
    }
}
