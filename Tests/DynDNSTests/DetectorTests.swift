import DNSWire
import DynDNS
import EventLoop
import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing
import ZoneModel

/// WAN detection against peers on loopback: a NAT-PMP responder written here (RFC 6886 §3.2), an
/// authoritative server (NSD) for the DNS-based sources, and an HTTP(S) echo server.
@Suite(.serialized) struct DetectorTests {
    /// A NAT-PMP gateway on 127.0.0.1: answers external-address requests with `address` and `result`, after
    /// ignoring the first `drop` requests (the client must retry).
    final class Gateway: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        final class Counter: Sendable { let value = Atomic<Int>(0) }
        let counter = Counter()
        var requests: Int { self.counter.value.load(ordering: .relaxed) }
        var thread: Thread?

        init(address: [UInt8], result: UInt16 = 0, drop: Int = 0) throws {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            let bound = withLoopbackAddress(port: 0) { bind(fd, $0, $1) }
            guard bound == 0, let port = Sockets.localPort(fd) else { throw FixtureError(message: "bind failed") }
            self.fd = fd
            self.port = port
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let counter = self.counter
            self.thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 64)
                var peer = sockaddr_storage()
                while !Thread.current.isCancelled {
                    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let got = withUnsafeMutablePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, &buffer, buffer.count, 0, $0, &length)
                        }
                    }
                    guard got == 2, buffer[0] == 0, buffer[1] == 0 else { continue }
                    let count = counter.value.add(1, ordering: .relaxed).newValue
                    if count <= drop { continue }
                    let reply: [UInt8] = [0, 128, UInt8(result >> 8), UInt8(result & 0xFF), 0, 0, 0x12, 0x34] + address
                    _ = withUnsafePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, reply, reply.count, 0, $0, length)
                        }
                    }
                }
            }
            self.thread?.start()
        }

        deinit {
            self.thread?.cancel()
            usleep(250_000)
            close(self.fd)
        }
    }

    static let loopback = IPAddress("127.0.0.1")!

    @Test func natPMPExternalAddressWithRetries() throws {
        let gateway = try Gateway(address: [198, 51, 100, 23], drop: 2)
        let result = Detectors.natPMP(SocketAddress(address: Self.loopback, port: gateway.port), timeout: 3_000)
        #expect(result == .success(IPAddress("198.51.100.23")!))
        #expect(gateway.requests == 3, "the first two requests went unanswered")
    }

    @Test func natPMPRefusalsAndSilenceAreReported() throws {
        let refusing = try Gateway(address: [0, 0, 0, 0], result: 2)
        let refused = Detectors.natPMP(SocketAddress(address: Self.loopback, port: refusing.port))
        #expect(refused == .failure(DetectError("router says: not authorized (NAT-PMP is switched off on the router)")))
        let silentPort = try freePort()
        let started = Date()
        let silent = Detectors.natPMP(SocketAddress(address: Self.loopback, port: silentPort), timeout: 800)
        guard case .failure(let error) = silent else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.message.contains("no NAT-PMP answer") || error.message.contains("cannot"))
        #expect(Date().timeIntervalSince(started) < 3, "bounded by the timeout")
    }

    @Test func dnsBasedDetectionAgainstALocalAuthoritativeServer() throws {
        let zone = """
            $ORIGIN whoami.test.
            $TTL 0
            @      SOA ns hostmaster 1 3600 600 86400 0
            @      NS  ns
            ns     A   192.0.2.53
            myip   A   198.51.100.44
            txt    TXT "198.51.100.45"
            v6     AAAA 2001:db8::45
            """
        guard let nsd = try NSDServer(zones: [("whoami.test.", zone)]) else { return }
        let server = SocketAddress(address: Self.loopback, port: nsd.port)
        // A run here once saw no answer at all to these (dig had just had one): say what NSD and dig saw then.
        func evidence() -> String {
            let dig = try? Tool.run(
                Tool.find("dig") ?? "/usr/bin/dig",
                ["@127.0.0.1", "-p", "\(nsd.port)", "+time=1", "+tries=1", "myip.whoami.test", "A"])
            return "nsd.log: \(Fixtures.textAt(nsd.directory + "/nsd.log"))\ndig now: \(dig?.stdout ?? "not run")"
        }
        let first = Detectors.dns(name: try DomainName("myip.whoami.test."), type: .a, server: server)
        #expect(
            first == .success(IPAddress("198.51.100.44")!),
            "\(first == .success(IPAddress("198.51.100.44")!) ? "" : evidence())")
        #expect(
            Detectors.dns(name: try DomainName("txt.whoami.test."), type: .txt, server: server)
                == .success(IPAddress("198.51.100.45")!))
        #expect(
            Detectors.dns(name: try DomainName("v6.whoami.test."), type: .aaaa, server: server)
                == .success(IPAddress("2001:db8::45")!))
        let missing = Detectors.dns(name: try DomainName("nope.whoami.test."), type: .a, server: server)
        #expect(missing == .failure(DetectError("127.0.0.1:\(nsd.port) answered rcode 3 for nope.whoami.test")))
    }

    @Test func interfaceAddressesFromGetifaddrs() {
        // Loopback has 127.0.0.1: found, and the judge rejects it as not public.
        #expect(Detectors.interface("lo") == .success(IPAddress("127.0.0.1")!))
        var judge = WANJudge(policy: .firstAnswer, confirmation: 0)
        let decision = judge.judge([WANObservation(source: "interface lo", result: Detectors.interface("lo"))], now: 0)
        #expect(decision == .noAddress("interface lo reports 127.0.0.1, which is not a public address; ignored"))
        #expect(Detectors.interface("no-such-if0") == .failure(DetectError("no interface named no-such-if0")))
    }
}
