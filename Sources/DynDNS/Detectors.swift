import CSys
import DNSWire
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// The ways of learning the WAN address (issue 5 §1). Each is one bounded exchange; failures say why.
public enum Detectors {
    /// A local interface's address: the first IPv4 (or, with `v6`, global IPv6) address of `name`. An interface
    /// that holds the public address directly (PPPoE on this machine, or a bridged modem). An interface that is
    /// down or has lost its link has no usable address, whatever it still holds.
    public static func interface(_ name: String, v6: Bool = false) -> Result<IPAddress, DetectError> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return .failure(DetectError("getifaddrs failed")) }
        defer { freeifaddrs(list) }
        var found: [IPAddress] = []
        var sawInterface = false
        var flags: UInt32 = 0
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard String(cString: current.pointee.ifa_name) == name else { continue }
            sawInterface = true
            flags = current.pointee.ifa_flags
            guard let address = current.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == (v6 ? AF_INET6 : AF_INET) else { continue }
            let parsed = address.withMemoryRebound(to: sockaddr_storage.self, capacity: 1) { IPAddress(peer: $0) }
            if let parsed { found.append(parsed) }
        }
        guard sawInterface else { return .failure(DetectError("no interface named \(name)")) }
        // An address stays on an interface whose link went down; it is no use there.
        guard flags & InterfaceEvents.up != 0 else { return .failure(DetectError("\(name) is down")) }
        guard flags & InterfaceEvents.running != 0 else {
            return .failure(DetectError("\(name) has no link (no carrier)"))
        }
        // Prefer a global address; else report what there is (the judge explains why it is not usable).
        if let global = found.first(where: { $0.scope == .global }) { return .success(global) }
        if let any = found.first { return .success(any) }
        return .failure(DetectError("\(name) has no \(v6 ? "IPv6" : "IPv4") address"))
    }

    /// One UDP question to `server`, sent again after `firstWait` ms, then twice as long each time (at most 4 s
    /// apart), until `timeout` passes. `reply` reads each datagram: nil to ignore it and keep waiting, else the
    /// outcome. Nil when nothing usable came in time.
    static func ask<Answer>(
        _ server: SocketAddress, _ request: [UInt8], timeout: UInt64, firstWait: UInt64, maximum: Int,
        reply: ([UInt8]) -> Result<Answer, DetectError>?
    ) -> Result<Answer, DetectError>? {
        let socket: BlockingSocket
        do {
            socket = try BlockingSocket(udp: server, timeout: timeout)
        } catch {
            return .failure(DetectError("\(error)"))
        }
        var wait = firstWait
        while monotonicMilliseconds() < socket.deadline {
            guard (try? socket.send(request)) != nil else { return .failure(DetectError("cannot send to \(server)")) }
            let until = min(socket.deadline, monotonicMilliseconds() + wait)
            while monotonicMilliseconds() < until {
                guard let datagram = try? socket.receive(maximum: maximum, until: until) else {
                    // An ICMP refusal ends the receive early: wait out the interval before sending again.
                    Detectors.sleep(until: until)
                    break
                }
                if let outcome = reply(datagram) { return outcome }
            }
            wait = min(wait * 2, 4_000)
        }
        return nil
    }

    /// NAT-PMP external address request (RFC 6886 §3.2) to the gateway, retried at 250 ms, 500 ms, ... within
    /// `timeout` milliseconds.
    public static func natPMP(_ gateway: SocketAddress, timeout: UInt64 = 2_000) -> Result<IPAddress, DetectError> {
        let outcome: Result<IPAddress, DetectError>? = Detectors.ask(
            gateway, [0, 0], timeout: timeout, firstWait: 250, maximum: 64
        ) { reply in
            // version 0, opcode 128 (answer to 0), result, epoch, address.
            guard reply.count >= 12, reply[0] == 0, reply[1] == 128 else { return nil }
            let result = UInt16(reply[2]) << 8 | UInt16(reply[3])
            guard result == 0 else {
                let reasons = [
                    1: "unsupported version", 2: "not authorized (NAT-PMP is switched off on the router)",
                    3: "network failure (the router has no public WAN address: none yet, or its own is private or "
                        + "carrier-grade NAT; 'wan router' also asks it over UPnP, which names the address)",
                    4: "out of resources",
                    5: "unsupported opcode",
                ]
                return .failure(DetectError("router says: \(reasons[Int(result)] ?? "result code \(result)")"))
            }
            return IPAddress(bytes: Array(reply[8..<12])).map { .success($0) }
        }
        return outcome ?? .failure(DetectError("no NAT-PMP answer from \(gateway) within \(timeout) ms"))
    }

    /// Asks `server` a question whose answer is the asker's address: an A/AAAA record
    /// (`myip.opendns.com` at resolver1.opendns.com), or a TXT record holding it as text
    /// (`o-o.myaddr.l.google.com`, or `whoami.cloudflare` in class CH).
    public static func dns(
        name: DomainName, type: RecordType, server: SocketAddress, chaos: Bool = false, timeout: UInt64 = 2_000
    ) -> Result<IPAddress, DetectError> {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        let query = QueryBuilder.query(id: id, name: name, type: type.rawValue, qclass: chaos ? 3 : 1)
        let outcome: Result<IPAddress, DetectError>? = Detectors.ask(
            server, query, timeout: timeout, firstWait: 500, maximum: 4096
        ) { reply in
            guard let message = try? DNSMessage.decode(reply), message.id == id,
                message.question?.name == name, message.question?.type == type.rawValue
            else { return nil }
            guard message.rcode == 0 else {
                return .failure(DetectError("\(server) answered rcode \(message.rcode) for \(name.hostDescription)"))
            }
            for answer in message.answers where answer.type == type.rawValue {
                if type == .txt {
                    // The address is the first character-string that parses.
                    for string in answer.characterStrings {
                        let text = String(decoding: string, as: UTF8.self)
                        if let address = IPAddress(text.trimmingSpaces) { return .success(address) }
                    }
                } else if let address = IPAddress(bytes: answer.data) {
                    return .success(address)
                }
            }
            return .failure(DetectError("\(server) gave no address for \(name.hostDescription)"))
        }
        return outcome ?? .failure(DetectError("no answer from \(server) within \(timeout) ms"))
    }

    static func sleep(until deadline: UInt64) {
        let now = monotonicMilliseconds()
        if deadline > now { usleep(UInt32(min(deadline - now, 4_000)) * 1000) }
    }

    /// An echo URL (`http://` or `https://`) whose body is the caller's address as text.
    public static func http(_ url: String, timeout: UInt64 = 5_000, caFile: String? = nil) -> Result<
        IPAddress, DetectError
    > {
        do {
            let response = try HTTPClient.request(
                HTTPClient.Request(method: "GET", url: url, headers: [], body: []), timeout: timeout, caFile: caFile)
            guard response.status == 200 else {
                return .failure(DetectError("\(url) answered \(response.status)"))
            }
            let text = String(decoding: response.body.prefix(100), as: UTF8.self).trimmingSpaces
            guard let address = IPAddress(text) else {
                return .failure(
                    DetectError("\(url) did not return an address (got \(text.prefix(40).debugDescription))"))
            }
            return .success(address)
        } catch {
            return .failure(DetectError("\(url): \(error)"))
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first,
            first == " " || first == "\n" || first == "\r" || first == "\t" || first == "\""
        {
            scalars = scalars.dropFirst()
        }
        while let last = scalars.last, last == " " || last == "\n" || last == "\r" || last == "\t" || last == "\"" {
            scalars = scalars.dropLast()
        }
        return String(scalars)
    }
}
