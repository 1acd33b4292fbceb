import DNSServer
import EventLoop
import Foundation
import Glibc
import HTTPProxy
import Synchronization
import TestSupport
import Testing
import ZoneModel

/// The reverse proxy through real sockets, with nginx (and a small WebSocket echo server) as backends.
@Suite(.serialized) struct ProxyEndToEndTests {
    /// A zone whose sites point at the given backend ports on loopback. `nas` is LAN-only (127.0.0.1 is
    /// in the fixture's lan view; 127.0.0.2 falls into wan).
    static func zone(_ lines: String) -> [(name: String, text: String)] {
        [
            (
                "example.com.zone",
                """
                ; apex: example.com.
                $ORIGIN example.com.
                $TTL 300
                $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
                \(lines)
                """
            )
        ]
    }

    static func get(_ path: String, host: String, extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\(extra)\r\n"
    }

    @Test func routesByHostAndRewritesForwardingFields() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(
            zones: Self.zone(
                "$SITE www http://127.0.0.1:\(nginx.port)\n$SITE nas http://127.0.0.1:\(nginx.port) views=lan"))
        defer { withExtendedLifetime(proxy) {} }
        let socket = try TestSocket(port: proxy.port)
        // Host case, port and trailing dot do not matter; a client's X-Forwarded-For from an untrusted peer is
        // replaced; hop-by-hop fields (and those Connection names) do not reach the backend.
        socket.send(
            Self.get(
                "/echo", host: "WWW.Example.COM.:80",
                extra: "X-Forwarded-For: 6.6.6.6\r\nConnection: x-secret, TE\r\nX-Secret: 1\r\nTE: trailers\r\n"))
        let echo = try #require(socket.readResponse())
        #expect(echo.status == 200)
        let parts = echo.text.dropLast().split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        #expect(parts[0] == "GET")
        #expect(parts[1] == "127.0.0.1", "X-Forwarded-For: \(echo.text)")
        #expect(parts[2] == "WWW.Example.COM.:80", "Host is preserved")
        #expect(parts[3] == "127.0.0.1", "X-Real-IP")
        #expect(parts[4] == "1.1 frontdoor", "Via")
        #expect(parts[6] == "http", "X-Forwarded-Proto")
        #expect(parts[7] == "keep-alive", "the backend connection's own Connection field")
        #expect(parts[8] == "", "TE is hop-by-hop")
        // Unknown host: 421 on the same connection (it stays open).
        socket.send(Self.get("/", host: "nope.example.com"))
        let unknown = try #require(socket.readResponse())
        #expect(unknown.status == 421)
        #expect(unknown.text.contains("No site is served under this name"))
        socket.send(Self.get("/", host: "nas.example.com"))
        #expect(try #require(socket.readResponse()).text == "hello from nginx\n", "LAN client reaches the LAN site")
        // From 127.0.0.2 (the wan view) the LAN-only site is refused.
        let outside = try TestSocket(port: proxy.port, source: 2)
        outside.send(Self.get("/", host: "nas.example.com"))
        #expect(try #require(outside.readResponse()).status == 403)
        outside.send(Self.get("/", host: "www.example.com"))
        #expect(try #require(outside.readResponse()).status == 200, "public sites work from outside")
    }

    /// Backend connections held, read from the kernel: established TCP connections to 127.0.0.1:`port`.
    static func connections(to port: UInt16) -> Int {
        let hex = String(format: ":%04X", port)
        return Fixtures.textAt("/proc/net/tcp").split(separator: "\n").dropFirst().filter { line in
            let columns = line.split(separator: " ")
            return columns.count > 3 && columns[2].hasSuffix(hex) && columns[3] == "01"
        }.count
    }

    @Test(.bug(id: "13")) func idleKeepAliveClientsDoNotPinBackendConnections() throws {
        guard let nginx = try NginxServer() else { return }
        // Each client takes a descriptor here and the proxy, in this process, one more.
        raiseOpenFileLimit()
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"), workers: 2)
        defer { withExtendedLifetime(proxy) {} }
        var clients: [TestSocket] = []
        defer { for client in clients { client.close() } }
        // 3,000 clients arrive 500 at a time, each makes one request and then stays connected, idle. Parked
        // connections live at most 500 ms (grace and tick), so fewer than 1,200 are ever open at once; the
        // test nginx takes 4,096.
        for _ in 0..<6 {
            for _ in 0..<500 {
                let client = try TestSocket(port: proxy.port)
                client.send(Self.get("/", host: "www.example.com"))
                guard client.readResponse()?.status == 200 else {
                    Issue.record("request \(clients.count + 1) failed")
                    return
                }
                clients.append(client)
            }
            usleep(300_000)
        }
        // Past the parking grace and a tick: what is left is the workers' pools.
        usleep(700_000)
        let held = Self.connections(to: nginx.port)
        let bound = 2 * BackendReuse().maximumIdle
        #expect(held <= bound, "backend connections held by 3,000 idle clients: \(held), bound \(bound)")
        #expect(held > 0, "kept alive for the next requests")
        // The idle clients still work: their next requests find a pooled connection or a new one.
        for client in clients.prefix(20) {
            client.send(Self.get("/", host: "www.example.com"))
            #expect(client.readResponse()?.status == 200)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderAndKeepAliveIsReused() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"))
        defer { withExtendedLifetime(proxy) {} }
        let socket = try TestSocket(port: proxy.port)
        socket.send(
            Self.get("/echo", host: "www.example.com") + Self.get("/", host: "www.example.com")
                + "HEAD / HTTP/1.1\r\nHost: www.example.com\r\n\r\n" + Self.get("/echo", host: "www.example.com"))
        let first = try #require(socket.readResponse())
        let second = try #require(socket.readResponse())
        let third = try #require(socket.readResponse(headRequest: true))
        let fourth = try #require(socket.readResponse())
        #expect(first.text.hasPrefix("GET|"))
        #expect(second.text == "hello from nginx\n")
        #expect(third.status == 200 && third.body.isEmpty && third.field("Content-Length") == "17")
        #expect(fourth.text.hasPrefix("GET|"))
        // nginx's $connection: the same backend connection served both /echo requests.
        let serial = { (response: TestResponse) in response.text.split(separator: "|")[5] }
        #expect(serial(first) == serial(fourth), "\(first.text) \(fourth.text)")
        // Once that client leaves, its backend connection goes to the pool and the next client gets it.
        socket.close()
        usleep(100_000)
        let other = try TestSocket(port: proxy.port)
        other.send(Self.get("/echo", host: "www.example.com"))
        #expect(serial(try #require(other.readResponse())) == serial(first))
        #expect(proxy.service.reusedBackendConnections >= 4)
    }

    @Test func chunkedBodiesBothWaysAndHTTP10Clients() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"))
        defer { withExtendedLifetime(proxy) {} }
        let socket = try TestSocket(port: proxy.port)
        // A chunked upload (with an extension and a trailer) lands whole on the backend.
        socket.send(
            "PUT /dav/up.txt HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
        let put = try #require(socket.readResponse())
        #expect(put.status == 201, "\(put.head)")
        #expect(Fixtures.textAt("\(nginx.root)/dav/up.txt") == "hello, world")
        // A chunked response passes through chunked.
        socket.send(Self.get("/chunked", host: "www.example.com"))
        let chunked = try #require(socket.readResponse())
        if chunked.status == 404 { return print("SKIP: nginx's echo module is missing (libnginx-mod-http-echo)") }
        #expect(chunked.field("Transfer-Encoding") == "chunked")
        #expect(chunked.text == "first\nsecond\n")
        // An HTTP/1.0 client cannot read chunks: it gets the body de-chunked and the connection closes.
        let legacy = try TestSocket(port: proxy.port)
        legacy.send("GET /chunked HTTP/1.0\r\nHost: www.example.com\r\n\r\n")
        let raw = String(decoding: legacy.readToEnd(), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 200"))
        #expect(!raw.lowercased().contains("transfer-encoding"))
        #expect(raw.contains("Connection: close"))
        #expect(raw.hasSuffix("\r\n\r\nfirst\nsecond\n"), "\(raw)")
    }

    @Test func hundredMegabytesEachWayWithBoundedMemory() throws {
        guard let nginx = try NginxServer() else { return }
        guard let curl = Tool.find("curl") else { return Tool.skip("curl", package: "curl") }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"))
        defer { withExtendedLifetime(proxy) {} }
        let source = "\(nginx.directory)/source.bin"
        let size = 100 * 1024 * 1024
        let created = FileManager.default.createFile(atPath: source, contents: nil)
        #expect(created)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
        var block = [UInt8](repeating: 0, count: 1 << 20)
        for index in 0..<100 {
            for offset in stride(from: 0, to: block.count, by: 4096) {
                block[offset] = UInt8(truncatingIfNeeded: index &* 7 &+ offset)
            }
            handle.write(Data(block))
        }
        try handle.close()
        let baseline = residentKiB()
        let peakKiB = Mutex(baseline)
        let sampler = Thread {
            while !Thread.current.isCancelled {
                let now = residentKiB()
                peakKiB.withLock { $0 = max($0, now) }
                usleep(20_000)
            }
        }
        sampler.start()
        let url = "http://127.0.0.1:\(proxy.port)"
        let upload = try Tool.run(
            curl,
            [
                "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: www.example.com", "-T", source,
                "\(url)/dav/big.bin",
            ])
        #expect(upload.stdout == "201", "\(upload.stdout) \(upload.stderr)")
        let download = try Tool.run(
            curl,
            [
                "-sS", "-o", "\(nginx.directory)/back.bin", "-w", "%{http_code} %{size_download}", "-H",
                "Host: www.example.com", "\(url)/dav/big.bin",
            ])
        sampler.cancel()
        usleep(50_000)
        #expect(download.stdout == "200 \(size)", "\(download.stdout) \(download.stderr)")
        let cmp = try Tool.run("/usr/bin/cmp", [source, "\(nginx.root)/dav/big.bin"])
        #expect(cmp.status == 0, "the uploaded file arrived intact")
        let back = try Tool.run("/usr/bin/cmp", [source, "\(nginx.directory)/back.bin"])
        #expect(back.status == 0, "the downloaded file is intact")
        // The download's body went backend → pipe → client with splice(2), not through the process.
        #expect(proxy.service.splicedBytes > 99 * 1024 * 1024, "spliced \(proxy.service.splicedBytes) bytes")
        // 100 MB each way never sat in memory: the proxy's queues are bounded (256 KiB a side).
        let peak = peakKiB.withLock { $0 }
        #expect(peak - baseline < 32 * 1024, "resident grew by \(peak - baseline) KiB")
    }

    @Test func webSocketEchoThroughTheTunnel() throws {
        guard let python = Tool.find("python3") else { return Tool.skip("python3", package: "python3") }
        let port = try freePort()
        let echo = try Tool.spawn(python, [Fixtures.path("Tests/Fixtures/ws_echo.py"), "\(port)"])
        defer { Tool.stop(echo) }
        #expect(waitForPort(port))
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE ws http://127.0.0.1:\(port)"))
        defer { withExtendedLifetime(proxy) {} }
        let socket = try TestSocket(port: proxy.port)
        socket.send(
            "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let head = try #require(socket.readResponse())
        #expect(head.status == 101)
        // RFC 6455 §1.3's example key and its answer.
        #expect(head.field("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(head.field("Upgrade")?.lowercased() == "websocket")
        for message in ["hello", String(repeating: "x", count: 70_000)] {
            let payload = Array(message.utf8)
            let mask: [UInt8] = [1, 2, 3, 4]
            var frame: [UInt8] = [0x81]
            if payload.count < 126 {
                frame.append(0x80 | UInt8(payload.count))
            } else {
                frame.append(0x80 | 127)
                for shift in stride(from: 56, through: 0, by: -8) {
                    frame.append(UInt8(truncatingIfNeeded: payload.count >> shift))
                }
            }
            frame += mask
            frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
            socket.send(frame)
            let header = socket.read(count: 2)
            #expect(header.first == 0x81)
            var length = Int(header.last ?? 0)
            if length == 127 { length = socket.read(count: 8).reduce(0) { $0 << 8 | Int($1) } }
            #expect(String(decoding: socket.read(count: length), as: UTF8.self) == message)
        }
    }

    @Test func backendKilledMidResponseCutsTheClientAndTheProxyCarriesOn() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"))
        defer { withExtendedLifetime(proxy) {} }
        try Data(count: 4 * 1024 * 1024).write(to: URL(fileURLWithPath: "\(nginx.root)/slow/file.bin"))
        let socket = try TestSocket(port: proxy.port, timeout: 5)
        socket.send(Self.get("/slow/file.bin", host: "www.example.com"))
        _ = socket.read(count: 1000)
        nginx.kill()
        let rest = socket.readToEnd()
        // The client sees the cut (far fewer than 4 MiB, then the connection closes) rather than a hang.
        #expect(rest.count < 3 * 1024 * 1024)
        // With the backend gone, new requests get a clean 502.
        let next = try TestSocket(port: proxy.port)
        next.send(Self.get("/", host: "www.example.com"))
        #expect(try #require(next.readResponse()).status == 502)
    }

    @Test func deadBackendGives502ThenRecoversThroughTheHealthCheck() throws {
        let port = try freePort()
        let proxy = try FrontdoorHTTP(
            zones: Self.zone("$SITE app http://127.0.0.1:\(port) health=/healthz")
        ) { options in options.healthInterval = 200 }
        defer { withExtendedLifetime(proxy) {} }
        let first = try TestSocket(port: proxy.port)
        first.send(Self.get("/", host: "app.example.com"))
        let bad = try #require(first.readResponse())
        #expect(bad.status == 502)
        #expect(bad.text.contains("could not be reached"))
        guard let nginx = try NginxServer(port: port) else { return }
        defer { withExtendedLifetime(nginx) {} }
        var status = 0
        for _ in 0..<50 {
            let socket = try TestSocket(port: proxy.port)
            socket.send(Self.get("/", host: "app.example.com"))
            status = socket.readResponse()?.status ?? 0
            if status == 200 { break }
            usleep(100_000)
        }
        #expect(status == 200, "the backend is back once a health check passes")
    }

    @Test func failoverToTheOtherBackendWhenOneIsDown() throws {
        guard let nginx = try NginxServer() else { return }
        let dead = try freePort()
        let proxy = try FrontdoorHTTP(
            zones: Self.zone("$SITE www http://127.0.0.1:\(dead) http://127.0.0.1:\(nginx.port)"))
        defer { withExtendedLifetime(proxy) {} }
        // Round-robin would send every other request to the dead one: the connect fails and it is retried
        // on the live one, so every request succeeds.
        for _ in 0..<6 {
            let socket = try TestSocket(port: proxy.port)
            socket.send(Self.get("/", host: "www.example.com"))
            #expect(try #require(socket.readResponse()).status == 200)
        }
    }

    @Test func smugglingAttemptsAreRefusedAndSlowHeadsTimeOut() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)")) { options in
            options.timeouts.headerRead = 500
        }
        defer { withExtendedLifetime(proxy) {} }
        let vectors = [
            "POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
            "GET / HTTP/1.1\r\nHost : www.example.com\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        ]
        for vector in vectors {
            let socket = try TestSocket(port: proxy.port)
            socket.send(vector)
            let raw = String(decoding: socket.readToEnd(), as: UTF8.self)
            #expect(raw.hasPrefix("HTTP/1.1 400 "), "\(vector.debugDescription) → \(raw)")
            #expect(raw.contains("Connection: close"))
        }
        // Slowloris: a head that never completes gets 408 after the header timeout.
        let slow = try TestSocket(port: proxy.port)
        slow.send("GET / HTTP/1.1\r\nHost: www.exa")
        let raw = String(decoding: slow.readToEnd(), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 408 "), "\(raw)")
    }

    @Test func drainFinishesTheRequestInProgress() throws {
        guard let nginx = try NginxServer() else { return }
        let proxy = try FrontdoorHTTP(zones: Self.zone("$SITE www http://127.0.0.1:\(nginx.port)"))
        try Data(count: 1024 * 1024).write(to: URL(fileURLWithPath: "\(nginx.root)/slow/mb.bin"))
        let idle = try TestSocket(port: proxy.port)
        idle.send(Self.get("/", host: "www.example.com"))
        _ = try #require(idle.readResponse())
        let socket = try TestSocket(port: proxy.port)
        socket.send(Self.get("/slow/mb.bin", host: "www.example.com"))
        // SIGTERM's path: stop accepting, close idle connections, let the download finish (it takes ~1 s).
        let service = proxy.service
        let drainer = Thread {
            usleep(200_000)
            service.drain(grace: 10_000)
        }
        drainer.start()
        let response = try #require(socket.readResponse())
        #expect(response.status == 200 && response.body.count == 1024 * 1024)
        #expect(idle.readToEnd().isEmpty, "the idle keep-alive connection was closed")
        #expect((try? TestSocket(port: proxy.port)) == nil, "no longer accepting")
    }
}

/// Reloads while requests flow: none fails, none waits for the reload.
@Suite(.serialized) struct ProxyReloadTests {
    @Test func reloadUnderLoadDropsNoRequest() throws {
        guard let nginx = try NginxServer() else { return }
        let port = nginx.port
        let zone: @Sendable (Int) -> [(String, String)] = { (extra: Int) in
            [
                (
                    "example.com.zone",
                    """
                    ; apex: example.com.
                    $ORIGIN example.com.
                    $TTL 300
                    $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
                    $SITE www http://127.0.0.1:\(port)
                    $SITE extra\(extra) http://127.0.0.1:\(port)
                    """
                )
            ]
        }
        let proxy = try FrontdoorHTTP(zones: zone(0), workers: 2)
        defer { withExtendedLifetime(proxy) {} }
        let store = proxy.store
        let publisher = Thread {
            for round in 1...10 {
                usleep(30_000)
                if let snapshot = Fixtures.compile(zones: zone(round)).snapshot {
                    store.publish(DNSTables(snapshot: snapshot))
                }
            }
        }
        publisher.start()
        var ok = 0
        var failed: [String] = []
        let keepAlive = try TestSocket(port: proxy.port)
        for index in 0..<300 {
            // Alternate a long-lived keep-alive connection and fresh connections.
            let socket = index % 2 == 0 ? keepAlive : try TestSocket(port: proxy.port)
            socket.send("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            if let response = socket.readResponse(), response.status == 200 {
                ok += 1
            } else {
                failed.append("request \(index)")
            }
        }
        while !publisher.isFinished { usleep(10_000) }
        #expect(ok == 300, "\(failed)")
        #expect(store.generation >= 10, "the model was republished while requests flowed")
        // The last model's new site is served.
        let last = try TestSocket(port: proxy.port)
        last.send("GET / HTTP/1.1\r\nHost: extra10.example.com\r\n\r\n")
        #expect(try #require(last.readResponse()).status == 200)
    }
}
