import Foundation
import Glibc
import HTTPProxy
import Runtime
import TLS
import TestSupport
import Testing
import ZoneModel

/// HTTPS termination through real sockets, with curl and openssl s_client as clients and nginx behind.
@Suite(.serialized) struct HTTPSEndToEndTests {
    /// A proxy with one HTTPS listener serving `certs/` of `authority`, in front of nginx.
    final class Setup {
        let authority: TestCertificates
        let nginx: NginxServer
        let proxy: FrontdoorHTTP
        var port: UInt16 { self.proxy.service.boundTLSListeners[0].port }

        init?(fallback: String? = nil, tweak: (inout HTTPOptions) -> Void = { _ in }) throws {
            guard let authority = try TestCertificates(), let nginx = try NginxServer() else { return nil }
            guard Tool.find("curl") != nil else {
                Tool.skip("curl", package: "curl")
                return nil
            }
            try authority.issue("sites", names: ["www.example.com", "a.example.com"])
            try authority.issue("wild", names: ["*.w.example.com"])
            self.authority = authority
            self.nginx = nginx
            let server = try TLSServer(directory: authority.path("certs"), fallback: fallback)
            self.proxy = try FrontdoorHTTP(
                zones: ProxyEndToEndTests.zone(
                    """
                    $SITE www http://127.0.0.1:\(nginx.port) hsts=52w
                    $SITE a http://127.0.0.1:\(nginx.port) https=off
                    $SITE x.w http://127.0.0.1:\(nginx.port)
                    $SITE nocert http://127.0.0.1:\(nginx.port)
                    """)
            ) { options in
                options.tlsListeners = [SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: 0)]
                options.tls = TLSServerStore(server)
                tweak(&options)
            }
        }

        /// curl to https://NAME:PORT/PATH with the test CA, the name resolved to loopback.
        func curl(_ name: String, _ path: String = "/echo", _ extra: [String] = []) throws -> Tool.Outcome {
            try Tool.run(
                Tool.find("curl") ?? "curl",
                [
                    "-sS", "-v", "--max-time", "10", "--cacert", self.authority.authority, "--resolve",
                    "\(name):\(self.port):127.0.0.1", "https://\(name):\(self.port)\(path)",
                ] + extra)
        }

        /// openssl s_client to the listener with `arguments`, sending `input` and waiting for the reply.
        func sClient(_ arguments: [String], input: String) throws -> Tool.Outcome {
            let command =
                "printf '\(input)' | openssl s_client -connect 127.0.0.1:\(self.port) -CAfile "
                + "\(self.authority.authority) -ign_eof " + arguments.joined(separator: " ")
            return try Tool.run("/bin/sh", ["-c", command])
        }
    }

    @Test(.bug(id: "15"), arguments: ["1.2", "1.3"])
    func eachNameGetsItsOwnCertificateOverTLS(version: String) throws {
        guard let setup = try Setup() else { return }
        for name in ["www.example.com", "a.example.com", "x.w.example.com"] {
            let outcome = try setup.curl(name, "/echo", ["--tlsv\(version)", "--tls-max", version])
            #expect(outcome.status == 0, "\(name): \(outcome.stderr)")
            #expect(outcome.stderr.contains("SSL connection using TLSv\(version)"), "\(outcome.stderr)")
            let fields = outcome.stdout.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            #expect(fields.count > 6 && fields[6] == "https", "X-Forwarded-Proto: \(outcome.stdout)")
            #expect(fields.count > 2 && fields[2] == "\(name):\(setup.port)", "Host: \(outcome.stdout)")
        }
        // Keep-alive over TLS: two requests on one connection.
        let twice = try setup.curl("www.example.com", "/echo", ["https://www.example.com:\(setup.port)/echo"])
        #expect(twice.status == 0 && twice.stderr.contains("Re-using existing connection"), "\(twice.stderr)")
    }

    @Test(.bug(id: "15")) func anUnknownNameGetsAnAlertOrTheDefault() throws {
        guard let setup = try Setup() else { return }
        let unknown = try setup.curl("nocert.example.com")
        #expect(unknown.status == 35, "a TLS alert, not another site's certificate: \(unknown.stderr)")
        #expect(unknown.stderr.contains("unrecognized name"), "\(unknown.stderr)")
        // The wildcard covers one label only.
        #expect(try setup.curl("a.b.w.example.com").status == 35)
        guard let withDefault = try Setup(fallback: "www.example.com") else { return }
        let fallback = try withDefault.curl("nocert.example.com")
        #expect(fallback.status == 60, "the default certificate, which does not name it: \(fallback.stderr)")
        let insecure = try withDefault.curl("nocert.example.com", "/echo", ["-k"])
        #expect(insecure.status == 0 && insecure.stdout.hasPrefix("GET|"), "\(insecure.stderr)")
    }

    @Test(.bug(id: "15")) func alpnAndResumption() throws {
        guard let setup = try Setup() else { return }
        guard Tool.find("openssl") != nil else { return }
        let request = "GET /echo HTTP/1.1\\r\\nHost: www.example.com\\r\\nConnection: close\\r\\n\\r\\n"
        let session = setup.authority.path("session.pem")
        let first = try setup.sClient(
            ["-servername", "www.example.com", "-alpn", "h2,http/1.1", "-sess_out", session], input: request)
        #expect(first.stdout.contains("ALPN protocol: http/1.1"), "\(first.stdout)")
        #expect(first.stdout.contains("Verify return code: 0 (ok)"), "\(first.stdout)")
        #expect(first.stdout.contains("GET|"), "the response came back: \(first.stdout)")
        let renewed = setup.authority.path("renewed.pem")
        let second = try setup.sClient(
            ["-servername", "www.example.com", "-sess_in", session, "-sess_out", renewed], input: request)
        #expect(second.stdout.contains("Reused, TLSv1.3"), "\(second.stdout)")
        // A resumed connection gets a fresh ticket (clients use each once), so the next one resumes too.
        let third = try setup.sClient(["-servername", "www.example.com", "-sess_in", renewed], input: request)
        #expect(third.stdout.contains("Reused, TLSv1.3"), "\(third.stdout)")
        // The server's suite order: AES-128-GCM although s_client lists AES-256 first; ChaCha20 for a client
        // that puts it first (no AES instructions).
        #expect(first.stdout.contains("Cipher is TLS_AES_128_GCM_SHA256"), "\(first.stdout)")
        let chacha = try setup.sClient(
            ["-servername", "www.example.com", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
            input: request)
        #expect(chacha.stdout.contains("Cipher is TLS_CHACHA20_POLY1305_SHA256"), "\(chacha.stdout)")
        let noALPN = try setup.sClient(["-servername", "www.example.com", "-alpn", "h2"], input: request)
        #expect(noALPN.stdout.contains("No ALPN negotiated"), "\(noALPN.stdout)")
        #expect(noALPN.stdout.contains("GET|"), "h2 alone is not refused: HTTP/1.1 is spoken")
        let twelve = try setup.sClient(
            ["-servername", "www.example.com", "-tls1_2", "-sess_out", session], input: request)
        #expect(twelve.stdout.contains("Protocol  : TLSv1.2"), "\(twelve.stdout)")
        let twelveAgain = try setup.sClient(
            ["-servername", "www.example.com", "-tls1_2", "-sess_in", session], input: request)
        #expect(twelveAgain.stdout.contains("Reused, TLSv1.2"), "\(twelveAgain.stdout)")
        let old = try setup.sClient(["-servername", "www.example.com", "-tls1_1"], input: request)
        #expect(!old.stdout.contains("GET|"), "TLS 1.1 is refused")
    }

    /// Session-ticket keys rotate: a ticket sealed before one rotation still resumes (the previous key is
    /// kept), one sealed two rotations ago does not, and a server with fresh keys knows none of them.
    @Test(.bug(id: "15")) func ticketKeysRotateAndThePreviousKeyStillResumes() throws {
        guard let setup = try Setup(), Tool.find("openssl") != nil else { return }
        let store = try #require(setup.proxy.service.tlsStore)
        let first = try #require(store.current)
        let request = "GET /echo HTTP/1.1\\r\\nHost: www.example.com\\r\\nConnection: close\\r\\n\\r\\n"
        let session = setup.authority.path("rotation.pem")
        func resumes(sealing: Bool = false) throws -> Bool {
            let outcome = try setup.sClient(
                ["-servername", "www.example.com", sealing ? "-sess_out" : "-sess_in", session], input: request)
            #expect(outcome.stdout.contains("GET|"), "\(outcome.stdout)")
            return outcome.stdout.contains("Reused, TLSv1.3")
        }
        func serve(_ keys: TicketKeys?) throws {
            store.replace(
                try TLSServer(directory: setup.authority.path("certs"), fallback: nil, ticketKeys: keys))
        }
        _ = try resumes(sealing: true)
        #expect(try resumes(), "the same keys")
        let once = try first.ticketKeys.rotated(now: 0)
        try serve(once)
        #expect(try resumes(), "sealed with the previous key")
        try serve(try once.rotated(now: 0))
        #expect(try !resumes(), "sealed two rotations ago")
        _ = try resumes(sealing: true)
        try serve(nil)
        #expect(try !resumes(), "fresh keys open no old ticket")
        #expect(first.ticketKeys.due(now: first.ticketKeys.made + TicketKeys.period))
        #expect(!first.ticketKeys.due(now: first.ticketKeys.made + TicketKeys.period - 1))
    }

    @Test(.bug(id: "15")) func badClientsAreClosedAndTheListenerGoesOn() throws {
        guard
            let setup = try Setup(tweak: { options in
                options.timeouts.headerRead = 300
            })
        else { return }
        // Plain HTTP to the HTTPS port: nginx's answer, in clear text.
        let plain = try TestSocket(port: setup.port)
        plain.send("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        let answer = String(decoding: plain.readToEnd(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(answer)")
        #expect(answer.contains("The plain HTTP request was sent to the HTTPS port."))
        // Garbage and a truncated ClientHello: closed.
        let garbage = try TestSocket(port: setup.port)
        garbage.send([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5] + Array(repeating: 0xAB, count: 100))
        #expect(garbage.readToEnd().count < 64, "an alert at most")
        #expect(garbage.peerClosed)
        // A handshake that never finishes is closed at the head-read deadline (slowloris on TLS): the proxy
        // closes (end of stream) long before the client's own 10 s read timeout would.
        let truncated = try TestSocket(port: setup.port)
        truncated.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        #expect(truncated.readToEnd().isEmpty && truncated.peerClosed, "closed by the deadline, not left hanging")
        let silent = try TestSocket(port: setup.port)
        #expect(silent.readToEnd().isEmpty && silent.peerClosed)
        // And the listener still serves.
        let after = try setup.curl("www.example.com")
        #expect(after.status == 0 && after.stdout.hasPrefix("GET|"), "\(after.stderr)")
    }

    @Test(.bug(id: "15")) func largeBodiesAndUploadsCrossTLSIntact() throws {
        guard let setup = try Setup() else { return }
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        try Data(body).write(to: URL(fileURLWithPath: setup.nginx.root + "/big.bin"))
        let output = setup.authority.path("big.out")
        let download = try setup.curl("www.example.com", "/big.bin", ["-o", output])
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(body), "300 KB through TLS, byte for byte")
        let upload = setup.authority.path("up.bin")
        try Data(body).write(to: URL(fileURLWithPath: upload))
        let put = try setup.curl(
            "www.example.com", "/dav/up.bin", ["-T", upload, "-o", "/dev/null", "-w", "%{http_code}"])
        #expect(put.stdout == "201" || put.stdout == "204", "\(put.stdout) \(put.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: setup.nginx.root + "/dav/up.bin")) == Data(body))
    }

    @Test(.bug(id: "15")) func plainHTTPIsRedirectedToHTTPSWhereACertificateServesTheSite() throws {
        guard let setup = try Setup() else { return }
        let plain = try TestSocket(port: setup.proxy.port)
        plain.send("GET /some/path?x=1 HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        let moved = try #require(plain.readResponse())
        #expect(moved.status == 308)
        #expect(moved.field("location") == "https://www.example.com:\(setup.port)/some/path?x=1", "\(moved.head)")
        #expect(moved.field("strict-transport-security") == nil, "never over plain HTTP (RFC 6797 §7.2)")
        // The same connection goes on: ACME challenges, an opted-out site and a site without certificate
        // are served on plain HTTP.
        plain.send("GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        #expect(try #require(plain.readResponse()).status == 404, "nginx's answer: forwarded")
        plain.send("GET /echo HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
        #expect(try #require(plain.readResponse()).text.hasPrefix("GET|"), "https=off")
        plain.send("GET /echo HTTP/1.1\r\nHost: nocert.example.com\r\n\r\n")
        #expect(try #require(plain.readResponse()).text.hasPrefix("GET|"), "no certificate covers it")
        // curl follows the redirect onto HTTPS, verifies, and the site's HSTS field comes with the answer.
        let followed = try Tool.run(
            Tool.find("curl") ?? "curl",
            [
                "-sS", "-i", "-L", "--max-time", "10", "--cacert", setup.authority.authority, "--resolve",
                "www.example.com:\(setup.proxy.port):127.0.0.1", "--resolve", "www.example.com:\(setup.port):127.0.0.1",
                "http://www.example.com:\(setup.proxy.port)/echo",
            ])
        #expect(followed.status == 0, "\(followed.stderr)")
        #expect(followed.stdout.contains("HTTP/1.1 308 Permanent Redirect"), "\(followed.stdout)")
        #expect(followed.stdout.contains("Strict-Transport-Security: max-age=31449600"), "\(followed.stdout)")
        #expect(followed.stdout.contains("|https|"), "answered over HTTPS: \(followed.stdout)")
    }

    /// Clients that stop reading mid-body and go away (slowly, or with a reset): the proxy's TLS writes meet
    /// a closed socket and must fail quietly, the connection closed and counted, the listener serving on.
    /// (This test process does not ignore SIGPIPE, as `frontdoor run` does: TLS writes go through a socket BIO
    /// that sends with MSG_NOSIGNAL.)
    @Test(.bug(id: "15")) func aClientThatLeavesMidBodyCostsNothing() throws {
        guard let setup = try Setup() else { return }
        let body = [UInt8](repeating: 0x5A, count: 20 << 20)
        try Data(body).write(to: URL(fileURLWithPath: setup.nginx.root + "/huge.bin"))
        // curl reading slowly and giving up; Python's TLS client reading a little and resetting the connection.
        for _ in 0..<2 {
            let cut = try setup.curl(
                "www.example.com", "/huge.bin", ["--limit-rate", "200k", "--max-time", "1", "-o", "/dev/null"])
            #expect(cut.status == 28, "curl gave up after a second: \(cut.stderr)")
        }
        let script = """
            import socket, ssl, struct, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            for _ in range(5):
                raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                client = context.wrap_socket(raw, server_hostname="www.example.com")
                client.sendall(b"GET /huge.bin HTTP/1.1\\r\\nHost: www.example.com\\r\\n\\r\\n")
                client.recv(1024)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            print("done")
            """
        let reset = try Tool.run("/usr/bin/python3", ["-c", script, "\(setup.port)", setup.authority.authority])
        #expect(reset.stdout == "done\n", "\(reset.stderr)")
        let after = try setup.curl("www.example.com")
        #expect(after.status == 0 && after.stdout.hasPrefix("GET|"), "\(after.stderr)")
    }

    /// SNI passthrough: `nas` keeps its own certificate (nginx with a CA Frontdoor has never seen), reached
    /// through Frontdoor's HTTPS listener untouched, with a PROXY v2 header telling nginx the client's
    /// address; `router` without one; a terminated site shares the listener.
    @Test(.bug(id: "15")) func passthroughSitesKeepTheirOwnTLS() throws {
        guard let backendCA = try TestCertificates() else { return }
        let nas = try backendCA.issue("nas", names: ["nas.example.com"])
        let router = try backendCA.issue("router", names: ["router.example.com"])
        let withHeader = try freePort()
        let withoutHeader = try freePort()
        let extra = """
            server {
              listen 127.0.0.1:\(withHeader) ssl proxy_protocol;
              ssl_certificate \(nas.chain); ssl_certificate_key \(nas.key);
              location / { return 200 "nas|$proxy_protocol_addr|$ssl_server_name|$ssl_protocol\\n"; }
            }
            server {
              listen 127.0.0.1:\(withoutHeader) ssl;
              ssl_certificate \(router.chain); ssl_certificate_key \(router.key);
              location / { return 200 "router|$remote_addr|$ssl_server_name\\n"; }
            }
            """
        guard let authority = try TestCertificates(), let nginx = try NginxServer(extra: extra),
            let curl = Tool.find("curl")
        else { return }
        try authority.issue("www", names: ["www.example.com"])
        let server = try TLSServer(directory: authority.path("certs"), fallback: nil)
        let proxy = try FrontdoorHTTP(
            zones: ProxyEndToEndTests.zone(
                """
                $SITE www http://127.0.0.1:\(nginx.port)
                $SITE nas tls-passthrough://127.0.0.1:\(withHeader) proxy-protocol=v2
                $SITE router tls-passthrough://127.0.0.1:\(withoutHeader)
                """)
        ) { options in
            options.tlsListeners = [SocketAddress(address: .v4(IPv4Address(0x7F00_0001)), port: 0)]
            options.tls = TLSServerStore(server)
        }
        let port = proxy.service.boundTLSListeners[0].port
        func fetch(_ name: String, ca: String, from source: String = "127.0.0.1") throws -> Tool.Outcome {
            try Tool.run(
                curl,
                [
                    "-sS", "--max-time", "10", "--interface", source, "--cacert", ca, "--resolve",
                    "\(name):\(port):127.0.0.1", "https://\(name):\(port)/",
                ])
        }
        // The client sees nginx's own certificate (verified with the backend's CA) and nginx sees the client's
        // address through the PROXY header.
        let relayed = try fetch("nas.example.com", ca: backendCA.authority, from: "127.0.0.3")
        #expect(relayed.status == 0, "\(relayed.stderr)")
        #expect(relayed.stdout.hasPrefix("nas|127.0.0.3|nas.example.com|TLSv1."), "\(relayed.stdout)")
        #expect(try fetch("nas.example.com", ca: authority.authority).status == 60, "not Frontdoor's certificate")
        let plain = try fetch("router.example.com", ca: backendCA.authority)
        #expect(plain.stdout.hasPrefix("router|127.0.0.1|router.example.com"), "\(plain.stdout) \(plain.stderr)")
        // The terminated site on the same listener, and an unknown name, as before.
        let terminated = try fetch("www.example.com", ca: authority.authority)
        #expect(terminated.status == 0 && terminated.stdout == "hello from nginx\n", "\(terminated.stderr)")
        #expect(try fetch("nope.example.com", ca: authority.authority).status == 35)
        // Plain HTTP to a passthrough site goes to https; its backends never see plain HTTP.
        let socket = try TestSocket(port: proxy.port)
        socket.send("GET /x HTTP/1.1\r\nHost: nas.example.com\r\n\r\n")
        let moved = try #require(socket.readResponse())
        #expect(moved.status == 308 && moved.field("location") == "https://nas.example.com:\(port)/x")
    }
}
