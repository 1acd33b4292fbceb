import HTTPProxy
import TestSupport
import Testing
import ZoneModel

/// The connection state machine without sockets: events in, actions out.
@Suite struct ProxySessionTests {
    static let snapshot: Snapshot = {
        let zone = """
            ; apex: example.com.
            $ORIGIN example.com.
            $TTL 300
            $PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1
            $SITE www http://192.0.2.69:80 http://192.0.2.70:80
            $SITE nas http://192.0.2.10:5000 views=lan
            """
        return Fixtures.compile(zones: [("example.com.zone", zone)]).snapshot!
    }()
    static let lanClient = IPAddress("127.0.0.1")!
    static let wanClient = IPAddress("198.51.100.7")!

    /// A short description of each action, for readable expectations.
    static func describe(_ actions: [ProxyAction]) -> [String] {
        actions.map { action in
            switch action {
            case .writeClient(let bytes):
                let text = String(decoding: bytes, as: UTF8.self)
                return "client:" + (text.split(separator: "\r\n").first.map(String.init) ?? text)
            case .writeBackend(let bytes):
                let text = String(decoding: bytes, as: UTF8.self)
                return "backend:" + (text.split(separator: "\r\n").first.map(String.init) ?? text)
            case .connectBackend(let site, let excluding):
                return "connect:\(site.name.hostDescription)\(excluding.isEmpty ? "" : " excluding \(excluding)")"
            case .releaseBackend(let reusable, let failed):
                return "release:\(reusable ? "reuse" : "close")\(failed ? ",failed" : "")"
            case .startTunnel: return "tunnel"
            case .closeClient: return "close"
            case .log(let record): return "log:\(record.status)"
            }
        }
    }

    struct Driver {
        var session: ProxySession
        var actions: [ProxyAction] = []

        init(client: IPAddress = ProxySessionTests.lanClient) {
            self.session = ProxySession(client: client, trustedPeer: false)
        }

        mutating func client(_ text: String) -> [String] {
            self.actions = []
            self.session.clientData(Array(text.utf8), snapshot: ProxySessionTests.snapshot, now: 0, into: &self.actions)
            return ProxySessionTests.describe(self.actions)
        }

        mutating func backend(_ text: String) -> [String] {
            self.actions = []
            Array(text.utf8).withUnsafeBytes {
                self.session.backendData($0, snapshot: ProxySessionTests.snapshot, now: 0, into: &self.actions)
            }
            return ProxySessionTests.describe(self.actions)
        }

        mutating func ready(_ index: Int, reused: Bool = false) -> [String] {
            self.actions = []
            self.session.backendChosen(index, reused: reused)
            self.session.backendReady(into: &self.actions)
            return ProxySessionTests.describe(self.actions)
        }

        mutating func failed(connect: Bool) -> [String] {
            self.actions = []
            self.session.backendFailed(
                connectFailed: connect, snapshot: ProxySessionTests.snapshot, now: 0, into: &self.actions)
            return ProxySessionTests.describe(self.actions)
        }

        mutating func timeout() -> [String] {
            self.actions = []
            self.session.timedOut(snapshot: ProxySessionTests.snapshot, now: 0, into: &self.actions)
            return ProxySessionTests.describe(self.actions)
        }
    }

    @Test func pipelinedRequestsWaitForTheResponseBeforeThem() {
        var driver = Driver()
        let two = "GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        #expect(driver.client(two) == ["connect:www.example.com"])
        #expect(driver.session.phase == .connecting)
        #expect(driver.ready(0) == ["backend:GET /a HTTP/1.1"])
        // The second request is only started once the first response is complete.
        #expect(
            driver.backend("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                == [
                    "client:HTTP/1.1 200 OK", "client:ok", "release:reuse", "log:200", "connect:www.example.com",
                ])
        #expect(driver.ready(1, reused: true) == ["backend:GET /b HTTP/1.1"])
        #expect(
            driver.backend("HTTP/1.1 204 No Content\r\n\r\n") == [
                "client:HTTP/1.1 204 No Content", "release:reuse", "log:204",
            ])
        #expect(driver.session.phase == .idle)
    }

    @Test func aFailedConnectIsRetriedOnAnotherBackendAndAStaleReusedConnectionToo() {
        var driver = Driver()
        _ = driver.client("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        driver.session.backendChosen(0, reused: false)
        #expect(driver.failed(connect: true) == ["release:close,failed", "connect:www.example.com excluding [0]"])
        // A pooled connection that dies before any response byte: the backend closed it while idle.
        _ = driver.ready(1, reused: true)
        #expect(driver.failed(connect: false) == ["release:close", "connect:www.example.com excluding [0]"])
        _ = driver.ready(1)
        #expect(driver.failed(connect: false).suffix(2) == ["log:502", "close"], "a fresh connection failing is a 502")
    }

    @Test func aPOSTWhoseBodyWasSentIsNeverReplayed() {
        var driver = Driver()
        _ = driver.client("POST /x HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n\r\n")
        #expect(driver.ready(0, reused: true) == ["backend:POST /x HTTP/1.1"])
        #expect(driver.client("abc") == ["backend:abc"])
        #expect(
            driver.failed(connect: false) == ["release:close", "client:HTTP/1.1 502 Bad Gateway", "log:502", "close"])
        // Without a body sent yet, the same failure is retried.
        var empty = Driver()
        _ = empty.client("POST /x HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\n\r\n")
        _ = empty.ready(0, reused: true)
        #expect(empty.failed(connect: false) == ["release:close", "connect:www.example.com"])
    }

    @Test func localAnswersAndViews() {
        var driver = Driver()
        #expect(
            driver.client("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n") == [
                "client:HTTP/1.1 421 Misdirected Request", "log:421",
            ])
        #expect(driver.session.phase == .idle, "a body-less request keeps the connection")
        var outside = Driver(client: ProxySessionTests.wanClient)
        #expect(
            outside.client("GET / HTTP/1.1\r\nHost: nas.example.com\r\n\r\n") == [
                "client:HTTP/1.1 403 Forbidden", "log:403",
            ])
        var inside = Driver()
        #expect(inside.client("GET / HTTP/1.1\r\nHost: nas.example.com\r\n\r\n") == ["connect:nas.example.com"])
        var broken = Driver()
        #expect(
            broken.client("GET / HTTP/1.1\r\nHost: a\r\nHost : b\r\n\r\n") == [
                "client:HTTP/1.1 400 Bad Request", "log:400", "close",
            ])
    }

    @Test func timeoutsAnswerForTheirPhase() {
        var slow = Driver()
        _ = slow.client("GET / HTTP/1.1\r\nHost: www.ex")
        #expect(slow.session.phase == .readingHead)
        #expect(slow.timeout() == ["client:HTTP/1.1 408 Request Timeout", "log:408", "close"])
        var waiting = Driver()
        _ = waiting.client("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        _ = waiting.ready(0)
        #expect(waiting.session.phase == .awaitingResponse)
        #expect(
            waiting.timeout() == ["release:close,failed", "client:HTTP/1.1 504 Gateway Timeout", "log:504", "close"])
        var idle = Driver()
        #expect(idle.timeout() == ["close"])
    }

    @Test func upgradeBecomesATunnelAndHTTP10GetsDechunkedBodies() {
        var driver = Driver()
        _ = driver.client(
            "GET /ws HTTP/1.1\r\nHost: www.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY")
        #expect(driver.ready(0) == ["backend:GET /ws HTTP/1.1"])
        #expect(
            driver.backend("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi")
                == ["client:HTTP/1.1 101 Switching Protocols", "client:hi", "log:101", "tunnel"])
        #expect(driver.session.takeHeldClientBytes() == Array("EARLY".utf8))
        // A 101 nobody asked for is a broken backend.
        var unasked = Driver()
        _ = unasked.client("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        _ = unasked.ready(0)
        #expect(unasked.backend("HTTP/1.1 101 Switching Protocols\r\n\r\n").contains("client:HTTP/1.1 502 Bad Gateway"))
        var legacy = Driver()
        _ = legacy.client("GET / HTTP/1.0\r\nHost: www.example.com\r\n\r\n")
        _ = legacy.ready(0)
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(
            legacy.backend(head + "3\r\nabc\r\n0\r\n\r\n") == [
                "client:HTTP/1.1 200 OK", "client:abc", "release:reuse", "log:200", "close",
            ])
        let sent = legacy.actions.compactMap { action -> String? in
            if case .writeClient(let bytes) = action { return String(decoding: bytes, as: UTF8.self) }
            return nil
        }
        #expect(sent.first == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    }
}
