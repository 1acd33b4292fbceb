import Foundation
import Glibc
import TLS
import TestSupport
import Testing

/// Reading the SNI of a real client's first flight without terminating TLS (for passthrough).
@Suite struct ClientHelloTests {
    /// The first bytes a real client sends to a listener that never answers, read until `ClientHello.peek`
    /// has decided (the client is stopped then).
    static func capture(_ program: String, _ arguments: (UInt16) -> [String]) throws -> (
        bytes: [UInt8], peek: ClientHello.Peek
    )? {
        guard let path = Tool.find(program) else {
            Tool.skip(program, package: program)
            return nil
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        guard withLoopbackAddress(port: 0, { bind(listener, $0, $1) }) == 0, listen(listener, 1) == 0 else {
            throw FixtureError(message: "cannot listen")
        }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        let pid = try Tool.spawn(path, arguments(port))
        defer { Tool.stop(pid) }
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { throw FixtureError(message: "no connection") }
        defer { close(connection) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let peek = bytes.withUnsafeBytes { ClientHello.peek($0) }
            if peek != .needMore { return (bytes, peek) }
            let got = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { return (bytes, peek) }
            bytes += chunk[0..<got]
        }
    }

    @Test(.bug(id: "15")) func readsTheNameRealClientsSend() throws {
        guard
            let curl = try Self.capture(
                "curl",
                {
                    [
                        "-sk", "--max-time", "5", "--resolve", "nas.example.com:\($0):127.0.0.1",
                        "https://nas.example.com:\($0)/",
                    ]
                })
        else { return }
        #expect(curl.peek == .serverName("nas.example.com"))
        guard
            let openssl = try Self.capture(
                "openssl",
                { ["s_client", "-connect", "127.0.0.1:\($0)", "-servername", "Router.Example.COM", "-tls1_2"] })
        else { return }
        #expect(openssl.peek == .serverName("Router.Example.COM"))
        guard let none = try Self.capture("openssl", { ["s_client", "-connect", "127.0.0.1:\($0)", "-noservername"] })
        else { return }
        #expect(none.peek == .serverName(nil))
        // Every cut of a real ClientHello is "need more", never a wrong answer; every single-byte change gives
        // an answer or a refusal, never a crash.
        for cut in 0..<curl.bytes.count {
            #expect(curl.bytes[0..<cut].withUnsafeBytes { ClientHello.peek($0) } == .needMore, "cut at \(cut)")
        }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var mutated = curl.bytes
            mutated[Int.random(in: 0..<mutated.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            _ = mutated.withUnsafeBytes { ClientHello.peek($0) }
        }
    }

    @Test(
        .bug(id: "15"),
        arguments: [
            (Array("GET / HTTP/1.1\r\n".utf8), ClientHello.Peek.notTLS),
            ([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00], .malformed),
            ([0x16, 0x03, 0x01, 0x00, 0x00], .malformed),
            ([0x17, 0x03, 0x03, 0x00, 0x10], .notTLS),
            ([0x16, 0x02, 0x00, 0x00, 0x10], .malformed),
            ([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0x03, 0x03, 0x00, 0x00], .malformed),
            ([0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0xFF, 0xFF, 0xFF, 0x03, 0x03], .malformed),
        ] as [([UInt8], ClientHello.Peek)])
    func refusesWhatIsNotAClientHello(bytes: [UInt8], expected: ClientHello.Peek) {
        #expect(bytes.withUnsafeBytes { ClientHello.peek($0) } == expected)
    }

    /// A ClientHello split over two records (allowed by RFC 8446 §5.1) is put back together.
    @Test(.bug(id: "15")) func aClientHelloSpreadOverRecordsIsReassembled() throws {
        let name = Array("split.example.com".utf8)
        let serverName: [UInt8] =
            [0x00, 0x00] + Self.u16(name.count + 5) + Self.u16(name.count + 3) + [0x00] + Self.u16(name.count) + name
        let body: [UInt8] =
            [0x03, 0x03] + Array(repeating: 7, count: 32) + [0x00] + [0x00, 0x02, 0x13, 0x01] + [0x01, 0x00]
            + Self.u16(serverName.count) + serverName
        let message: [UInt8] = [0x01, 0x00] + Self.u16(body.count) + body
        let half = message.count / 2
        let records =
            [0x16, 0x03, 0x01] + Self.u16(half) + message[0..<half] + [0x16, 0x03, 0x01]
            + Self.u16(message.count - half) + message[half...]
        #expect(records.withUnsafeBytes { ClientHello.peek($0) } == .serverName("split.example.com"))
        #expect(records.dropLast().withUnsafeBytes { ClientHello.peek($0) } == .needMore)
    }

    static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
}
