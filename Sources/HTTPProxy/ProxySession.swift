import HTTPWire
import ZoneModel

/// How long each wait may last, in milliseconds (issue 4 §7).
public struct ProxyTimeouts: Sendable {
    /// A client sending a request head (slowloris).
    public var headerRead: UInt64 = 10_000
    /// A client connection with no request in progress.
    public var keepAliveIdle: UInt64 = 60_000
    public var connect: UInt64 = 5_000
    /// From the request sent to the backend's response head.
    public var responseHeader: UInt64 = 60_000
    /// Between body octets in either direction.
    public var bodyIdle: UInt64 = 60_000
    /// An upgraded connection (WebSocket) with no traffic either way.
    public var tunnelIdle: UInt64 = 600_000

    public init() {}
}

extension ProxyTimeouts {
    /// What restarts a connection's clock.
    public enum Event: Sendable {
        /// The session entered another phase.
        case phaseChanged
        /// Bytes moved on the connection.
        case activity
    }

    /// How long a connection may stay silent in `phase`.
    @inlinable
    public func limit(in phase: ProxySession.Phase) -> UInt64 {
        switch phase {
        case .idle: self.keepAliveIdle
        case .readingHead: self.headerRead
        case .connecting: self.connect
        case .awaitingResponse: self.responseHeader
        case .streaming, .closing: self.bodyIdle
        case .tunnel: self.tunnelIdle
        }
    }

    /// A connection's deadline after `event` at `now` (`current` is the one it had): the one rule for every
    /// timeout of the proxy loop. A tunnel is idle only when nothing moves either way. A new phase starts
    /// its own clock. Activity restarts the clock only while a response is awaited or streamed: a client
    /// trickling a head byte by byte, or an idle one, must not push its deadline on (slowloris).
    @inlinable
    public func deadline(
        after event: Event, phase: ProxySession.Phase, tunnel: Bool, now: UInt64, current: UInt64
    ) -> UInt64 {
        if tunnel { return now + self.tunnelIdle }
        switch (event, phase) {
        case (.phaseChanged, _), (.activity, .awaitingResponse), (.activity, .streaming):
            return now + self.limit(in: phase)
        case (.activity, _):
            return current
        }
    }
}

/// What the proxy loop must do for a session.
public enum ProxyAction: Sendable {
    case writeClient([UInt8])
    case writeBackend([UInt8])
    /// Pick a backend of `site` other than those in `excluding`, then connect to it (or take an idle pooled
    /// connection) and report `backendReady`, or `noBackend` when all are down.
    case connectBackend(site: CompiledSite, excluding: [Int])
    /// Done with the backend connection: back to the pool when `reusable`, else closed. `failed` counts
    /// against the backend's passive health; otherwise the exchange counts as a success.
    case releaseBackend(reusable: Bool, failed: Bool)
    /// The response was 101: relay raw bytes both ways from now on.
    case startTunnel
    /// Flush what is queued for the client, then close it (and any backend connection).
    case closeClient
    case log(AccessRecord)
}

/// One request as the access log shows it. The text fields are cut from the request head only when a line
/// is written, so a proxy without an access log never builds them.
public struct AccessRecord: Sendable {
    public var client: IPAddress
    /// The request head as received (empty for a request that never parsed).
    var head: [UInt8]
    var method: Range<Int> = 0..<0
    var target: Range<Int> = 0..<0
    var minorVersion = 1
    var hostRange: Range<Int>?
    var refererRange: Range<Int>?
    var userAgentRange: Range<Int>?
    public var status: Int
    public var bytes: UInt64
    /// The site's name (nil when none was found).
    public var site: DomainName?
    /// Index into the site's backends, and that backend's address.
    public var backend: Int?
    public var backendAddress: SocketAddress?
    public var started: UInt64

    init(client: IPAddress, started: UInt64) {
        self.client = client
        self.head = []
        self.status = 0
        self.bytes = 0
        self.started = started
    }

    func text(_ range: Range<Int>?) -> String? {
        guard let range, range.upperBound <= self.head.count else { return nil }
        return String(decoding: self.head[range], as: UTF8.self)
    }

    public var requestLine: String {
        guard !self.head.isEmpty else { return "-" }
        return "\(self.text(self.method) ?? "") \(self.text(self.target) ?? "") HTTP/1.\(self.minorVersion)"
    }
    public var host: String? { self.text(self.hostRange) }
    public var referer: String? { self.text(self.refererRange) }
    public var userAgent: String? { self.text(self.userAgentRange) }
}

/// One client connection's protocol logic: request events in, actions out, no sockets and no clock of its own
/// (the loop passes `now` and reports timeouts for the current `phase`).
///
/// Requests are answered in order, one at a time: the request stream pauses after each request and resumes
/// when its response is complete, so pipelined requests wait in the client's buffer.
public struct ProxySession: Sendable {
    /// What the connection is waiting for; the loop applies the matching timeout.
    public enum Phase: Equatable, Sendable {
        /// Between requests (keep-alive idle).
        case idle
        /// Part of a request head arrived.
        case readingHead
        case connecting
        /// Request sent (or being sent); no response head yet.
        case awaitingResponse
        /// Response head passed on, body flowing.
        case streaming
        case tunnel
        case closing
    }

    /// The request in progress: a class, so the many updates of a request's life do not copy it.
    final class Exchange: @unchecked Sendable {
        var site: CompiledSite?
        var upstreamHead: [UInt8] = []
        var chunked = false
        var idempotent = true
        var keepAlive = true
        var headRequest = false
        var upgrade = false
        var answeredLocally = false
        var requestComplete = false
        var backend: Int?
        var reused = false
        var tried: [Int] = []
        /// Body octets (already framed for the backend) waiting for a connection.
        var pendingBody: [[UInt8]] = []
        /// Body octets sent, kept while small so a failed attempt can be replayed elsewhere.
        var sentBody: [[UInt8]] = []
        var sentBodyBytes = 0
        var bodySent = false
        var response: ResponseStream
        var record: AccessRecord

        init(response: ResponseStream, record: AccessRecord) {
            self.response = response
            self.record = record
        }
    }

    public private(set) var phase: Phase = .idle
    var stream = RequestStream(pausesAfterEachRequest: true)
    var exchange: Exchange?
    public let client: IPAddress
    let trustedPeer: Bool
    let scheme: String
    /// Terminated TLS (scheme https): only then may a site's HSTS field be sent.
    let secure: Bool
    /// Plain HTTP only: the sites redirected to https.
    let upgrade: HTTPSUpgrade?
    /// ACME HTTP-01 proofs answered on plain HTTP before any routing.
    let challenges: ChallengeTokens?
    static let idempotentMethods: [[UInt8]] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].map {
        Array($0.utf8)
    }
    /// The client address as text, for X-Forwarded-For and X-Real-IP.
    let clientText: [UInt8]
    /// Body octets kept for a replay, at most.
    static let replayLimit = 64 * 1024
    /// Client octets buffered behind a request in progress before reading stops.
    public static let clientBufferLimit = 64 * 1024

    public init(
        client: IPAddress, trustedPeer: Bool, scheme: String = "http", upgrade: HTTPSUpgrade? = nil,
        challenges: ChallengeTokens? = nil
    ) {
        self.challenges = challenges
        self.client = client
        self.trustedPeer = trustedPeer
        self.scheme = scheme
        self.secure = scheme == "https"
        self.upgrade = upgrade
        self.clientText = Array(client.unmapped.description.utf8)
    }

    /// Whether the loop should read from the client now (it also holds back while the backend's send queue
    /// is full). A mutating getter on purpose, as `spliceableBytes`: the loop keeps the session in a class,
    /// and a plain getter from another module made Swift copy the whole session (twelve retains) to call it.
    public var wantsClientData: Bool {
        mutating get {
            self.readsClient
        }
    }

    var readsClient: Bool {
        switch self.phase {
        case .idle, .readingHead:
            return true
        case .connecting, .awaitingResponse, .streaming:
            guard let exchange = self.exchange else { return true }
            if !exchange.requestComplete { return exchange.pendingBody.count < 4 }
            return self.stream.bufferedCount < ProxySession.clientBufferLimit
        case .tunnel, .closing:
            return false
        }
    }

    /// Octets of the current response body the loop may splice from backend to client (a Content-Length
    /// body after its head was passed on); 0 when the bytes must go through `backendData`.
    public var spliceableBytes: UInt64 {
        mutating get {
            guard self.phase == .streaming, let exchange = self.exchange, exchange.backend != nil else { return 0 }
            return exchange.response.fixedRemaining
        }
    }

    /// The loop spliced `count` body octets from the backend to the client.
    public mutating func spliced(_ count: UInt64, snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]) {
        guard let exchange = self.exchange, exchange.backend != nil else { return }
        var events: [ResponseStream.Event] = []
        exchange.response.passedThrough(count, into: &events)
        self.handle(events, snapshot: snapshot, now: now, into: &actions)
    }

    /// The site of the request in progress.
    public var currentSite: CompiledSite? { self.exchange?.site }

    /// Client octets that arrived behind an upgrade request: they belong to the tunnel.
    public mutating func takeHeldClientBytes() -> [UInt8] { self.stream.takeHeld() }

    // MARK: - Client side

    public mutating func clientData(
        _ bytes: [UInt8], snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        guard self.phase != .closing && self.phase != .tunnel else { return }
        if self.phase == .idle { self.phase = .readingHead }
        let events = self.stream.feed(bytes)
        self.handle(events, snapshot: snapshot, now: now, into: &actions)
    }

    /// The client closed its side (or the connection broke).
    public mutating func clientClosed(into actions: inout [ProxyAction]) {
        guard self.phase != .closing else { return }
        if let exchange = self.exchange, exchange.backend != nil {
            exchange.backend = nil
            self.exchange = exchange
            actions.append(.releaseBackend(reusable: false, failed: false))
            if !exchange.answeredLocally {
                var record = exchange.record
                record.status = exchange.response.headSent ? exchange.response.status : 499
                record.bytes = exchange.response.bodyBytes
                actions.append(.log(record))
            }
        }
        self.exchange = nil
        self.phase = .closing
        actions.append(.closeClient)
    }

    mutating func handle(
        _ events: [RequestStream.Event], snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        for event in events {
            guard self.phase != .closing else { return }
            switch event {
            case .head(let head, let bytes):
                self.begin(head, bytes: bytes, snapshot: snapshot, now: now, into: &actions)
            case .body(let data):
                guard var exchange = self.exchange, !exchange.answeredLocally else { continue }
                var framed = data
                if exchange.chunked {
                    framed = Array(String(data.count, radix: 16).utf8) + [13, 10] + data + [13, 10]
                }
                self.sendBody(framed, exchange: &exchange, into: &actions)
                self.exchange = exchange
            case .end:
                guard var exchange = self.exchange else { continue }
                exchange.requestComplete = true
                if exchange.answeredLocally {
                    self.exchange = exchange
                    self.finishExchange(keepAlive: exchange.keepAlive, snapshot: snapshot, now: now, into: &actions)
                    continue
                }
                if exchange.chunked { self.sendBody(Array("0\r\n\r\n".utf8), exchange: &exchange, into: &actions) }
                self.exchange = exchange
            case .error(let error):
                if let exchange = self.exchange, exchange.backend != nil {
                    // A broken body: the backend got part of a request and cannot be reused.
                    exchange.backend = nil
                    self.exchange = exchange
                    actions.append(.releaseBackend(reusable: false, failed: false))
                    if exchange.response.headSent {
                        self.close(into: &actions)
                        return
                    }
                }
                self.answer(error.status, close: true, now: now, into: &actions)
                return
            }
        }
    }

    mutating func sendBody(_ framed: [UInt8], exchange: inout Exchange, into actions: inout [ProxyAction]) {
        if exchange.backend != nil && exchange.pendingBody.isEmpty && self.phase != .connecting {
            actions.append(.writeBackend(framed))
            exchange.bodySent = true
            exchange.sentBodyBytes += framed.count
            if exchange.sentBodyBytes <= ProxySession.replayLimit { exchange.sentBody.append(framed) }
        } else {
            exchange.pendingBody.append(framed)
        }
    }

    mutating func begin(
        _ head: HTTPRequestHead, bytes: [UInt8], snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        let (decision, record, upstream, idempotent, headRequest) = bytes.withUnsafeBytes { buffer in
            var decision: RouteDecision
            if !self.secure, let challenges = self.challenges,
                let proof = challenges.response(target: UnsafeRawBufferPointer(rebasing: buffer[head.target]))
            {
                decision = .proof(proof)
            } else {
                decision = RequestRouter.route(
                    head, in: buffer, client: self.client, snapshot: snapshot, upgrade: self.upgrade)
            }
            func field(_ name: StaticString) -> Range<Int>? {
                head.fields.first { HTTPRequestParser.equalsIgnoringCase(buffer, $0.name, name) }?.value
            }
            var record = AccessRecord(client: self.client, started: now)
            record.head = bytes
            record.method = head.method
            record.target = head.target
            record.minorVersion = head.minorVersion
            record.hostRange = RequestRouter.host(head, in: buffer)
            record.refererRange = field("referer")
            record.userAgentRange = field("user-agent")
            var upstream: [UInt8] = []
            if case .forward = decision {
                upstream = RequestRewriter.upstreamHead(
                    head, in: buffer, clientText: self.clientText, trustedPeer: self.trustedPeer, scheme: self.scheme)
            }
            let method = UnsafeRawBufferPointer(rebasing: buffer[head.method])
            let idempotent = ProxySession.idempotentMethods.contains { method.elementsEqual($0) }
            return (decision, record, upstream, idempotent, method.elementsEqual("HEAD".utf8))
        }
        // HSTS only over HTTPS (RFC 6797 §7.2: a plain-HTTP response must not carry it).
        var hsts: [UInt8]?
        // The Bool first: a plain-HTTP request does not even copy the site out of the decision.
        if self.secure, case .forward(let site) = decision, let field = site.hstsField { hsts = field }
        let exchange = Exchange(
            response: ResponseStream(
                headRequest: headRequest, legacyClient: head.minorVersion == 0, clientKeepAlive: head.keepAlive,
                upgradeRequested: head.upgrade, extraField: hsts),
            record: record)
        exchange.keepAlive = head.keepAlive
        exchange.headRequest = headRequest
        exchange.idempotent = idempotent
        exchange.upgrade = head.upgrade
        exchange.chunked = head.framing == .chunked
        switch decision {
        case .respond(let status):
            exchange.answeredLocally = true
            self.exchange = exchange
            // A body the request carries would have to be read and thrown away; closing is simpler and safe.
            let keepAlive = head.keepAlive && head.framing == .none
            self.exchange?.keepAlive = keepAlive
            self.answer(status, close: !keepAlive, now: now, into: &actions)
        case .proof(let body):
            exchange.answeredLocally = true
            self.exchange = exchange
            let keepAlive = head.keepAlive && head.framing == .none
            self.exchange?.keepAlive = keepAlive
            let response = ResponseWriter.complete(
                status: 200, contentType: "application/octet-stream", body: body, fields: ["Cache-Control: no-store"],
                close: !keepAlive, headRequest: headRequest)
            actions.append(.writeClient(response))
            var record = exchange.record
            record.status = 200
            record.bytes = UInt64(response.count)
            actions.append(.log(record))
            if !keepAlive { self.close(into: &actions) }
        case .redirect(let location):
            exchange.answeredLocally = true
            self.exchange = exchange
            let keepAlive = head.keepAlive && head.framing == .none
            self.exchange?.keepAlive = keepAlive
            self.answer(308, close: !keepAlive, now: now, into: &actions, location: location)
        case .forward(let site):
            exchange.site = site
            exchange.record.site = site.name
            exchange.upstreamHead = upstream
            self.exchange = exchange
            self.phase = .connecting
            actions.append(.connectBackend(site: site, excluding: []))
        }
    }

    /// Answers the current request (or a broken one) with an error page of Frontdoor's own.
    mutating func answer(
        _ status: Int, close: Bool, now: UInt64, into actions: inout [ProxyAction], location: [UInt8]? = nil
    ) {
        let page = ProxyResponses.errorPage(
            status, close: close, headRequest: self.exchange?.headRequest ?? false, location: location)
        actions.append(.writeClient(page))
        var record = self.exchange?.record ?? AccessRecord(client: self.client, started: now)
        record.status = status
        record.bytes = UInt64(page.count)
        record.backend = self.exchange?.backend
        actions.append(.log(record))
        self.exchange?.answeredLocally = true
        if close { self.close(into: &actions) }
    }

    mutating func close(into actions: inout [ProxyAction]) {
        self.phase = .closing
        self.exchange = nil
        actions.append(.closeClient)
    }

    /// The response (and request) are done: next request, or close.
    mutating func finishExchange(
        keepAlive: Bool, snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        self.exchange = nil
        guard keepAlive else {
            self.close(into: &actions)
            return
        }
        self.phase = .idle
        let events = self.stream.resume()
        if !events.isEmpty || self.stream.bufferedCount > 0 { self.phase = .readingHead }
        self.handle(events, snapshot: snapshot, now: now, into: &actions)
        if self.phase == .readingHead && self.exchange == nil && self.stream.bufferedCount == 0 { self.phase = .idle }
    }

    // MARK: - Backend side

    /// The loop picked backend `index` and is connecting to it, or took an idle connection to it from the
    /// pool (`reused`).
    public mutating func backendChosen(_ index: Int, reused: Bool) {
        self.exchange?.backend = index
        self.exchange?.reused = reused
        self.exchange?.record.backend = index
        if let site = self.exchange?.site, index < site.backends.count {
            self.exchange?.record.backendAddress = site.backends[index].address
        }
    }

    /// The connection to the chosen backend is open: the request goes out.
    public mutating func backendReady(into actions: inout [ProxyAction]) {
        guard let exchange = self.exchange, exchange.backend != nil, self.phase == .connecting else {
            actions.append(.releaseBackend(reusable: false, failed: false))
            return
        }
        actions.append(.writeBackend(exchange.upstreamHead))
        // A replay sends again what the failed attempt had sent, then what waited.
        for piece in exchange.sentBody { actions.append(.writeBackend(piece)) }
        for piece in exchange.pendingBody {
            actions.append(.writeBackend(piece))
            exchange.bodySent = true
            exchange.sentBodyBytes += piece.count
            if exchange.sentBodyBytes <= ProxySession.replayLimit { exchange.sentBody.append(piece) }
        }
        exchange.pendingBody = []
        self.exchange = exchange
        self.phase = .awaitingResponse
    }

    /// No backend of the site is up.
    public mutating func noBackend(now: UInt64, snapshot: Snapshot, into actions: inout [ProxyAction]) {
        guard let exchange = self.exchange else { return }
        self.answer(502, close: !(exchange.requestComplete && exchange.keepAlive), now: now, into: &actions)
        if self.phase != .closing {
            self.finishExchange(keepAlive: true, snapshot: snapshot, now: now, into: &actions)
        }
    }

    public mutating func backendData(
        _ bytes: UnsafeRawBufferPointer, snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        guard let exchange = self.exchange, exchange.backend != nil else { return }
        var events: [ResponseStream.Event] = []
        exchange.response.feed(bytes, into: &events)
        self.exchange = exchange
        self.handle(events, snapshot: snapshot, now: now, into: &actions)
    }

    /// The backend closed the connection (EOF).
    public mutating func backendClosed(snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]) {
        guard let exchange = self.exchange, exchange.backend != nil else { return }
        if !exchange.response.receivedAny {
            self.backendFailed(connectFailed: false, snapshot: snapshot, now: now, into: &actions)
            return
        }
        var events: [ResponseStream.Event] = []
        exchange.response.closed(into: &events)
        self.exchange = exchange
        self.handle(events, snapshot: snapshot, now: now, into: &actions)
    }

    /// The connect failed, or the connection broke (reset, write error) before the response was complete.
    public mutating func backendFailed(
        connectFailed: Bool, snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        guard let exchange = self.exchange, let site = exchange.site else { return }
        let backend = exchange.backend
        exchange.backend = nil
        actions.append(.releaseBackend(reusable: false, failed: connectFailed || !exchange.reused))
        // Retry elsewhere when nothing came back and either nothing was sent that cannot be sent again:
        // a failed connect, or a reused idle connection the backend had closed (RFC 9112 §9.3.1).
        let replayable =
            !exchange.bodySent || (exchange.idempotent && exchange.sentBodyBytes <= ProxySession.replayLimit)
        if !exchange.response.receivedAny && (connectFailed || exchange.reused) && replayable {
            if let backend, !exchange.reused || connectFailed { exchange.tried.append(backend) }
            exchange.reused = false
            self.exchange = exchange
            self.phase = .connecting
            actions.append(.connectBackend(site: site, excluding: exchange.tried))
            return
        }
        self.exchange = exchange
        self.backendBroke(exchange, now: now, into: &actions)
    }

    /// The backend failed mid-exchange: a client that already has part of the response can only be cut off
    /// (and the request logged as it went); one that has nothing yet gets a 502 page.
    mutating func backendBroke(_ exchange: Exchange, now: UInt64, into actions: inout [ProxyAction]) {
        if exchange.response.headSent {
            var record = exchange.record
            record.status = exchange.response.status
            record.bytes = exchange.response.bodyBytes
            actions.append(.log(record))
            self.close(into: &actions)
        } else {
            self.answer(502, close: true, now: now, into: &actions)
        }
    }

    /// The deadline for the current phase passed.
    public mutating func timedOut(snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]) {
        switch self.phase {
        case .idle, .tunnel, .closing:
            self.close(into: &actions)
        case .readingHead:
            if self.exchange == nil {
                self.answer(408, close: true, now: now, into: &actions)
            } else {
                self.close(into: &actions)
            }
        case .connecting:
            self.backendFailed(connectFailed: true, snapshot: snapshot, now: now, into: &actions)
        case .awaitingResponse:
            if self.exchange?.backend != nil { actions.append(.releaseBackend(reusable: false, failed: true)) }
            self.exchange?.backend = nil
            self.answer(504, close: true, now: now, into: &actions)
        case .streaming:
            if self.exchange?.backend != nil { actions.append(.releaseBackend(reusable: false, failed: true)) }
            self.close(into: &actions)
        }
    }

    mutating func handle(
        _ events: [ResponseStream.Event], snapshot: Snapshot, now: UInt64, into actions: inout [ProxyAction]
    ) {
        for event in events {
            guard let exchange = self.exchange else { return }
            switch event {
            case .interim(let bytes):
                actions.append(.writeClient(bytes))
            case .head(let status, let bytes):
                actions.append(.writeClient(bytes))
                if status == 101 {
                    // Bytes the backend sent right behind its 101 already belong to the tunnel.
                    for case .body(let early) in events { actions.append(.writeClient(early)) }
                    var record = exchange.record
                    record.status = 101
                    actions.append(.log(record))
                    actions.append(.startTunnel)
                    self.phase = .tunnel
                    self.exchange = nil
                    return
                }
                self.phase = .streaming
            case .body(let bytes):
                actions.append(.writeClient(bytes))
            case .end(let reusable):
                var record = exchange.record
                record.status = exchange.response.status
                record.bytes = exchange.response.bodyBytes
                actions.append(.releaseBackend(reusable: reusable && exchange.requestComplete, failed: false))
                exchange.backend = nil
                self.exchange = exchange
                actions.append(.log(record))
                if exchange.requestComplete {
                    self.finishExchange(
                        keepAlive: exchange.response.clientKeepAlive, snapshot: snapshot, now: now, into: &actions)
                } else {
                    // The backend answered without reading the whole body (a 413, say): the rest of the body
                    // cannot be told from a next request without reading it all, so the connection closes.
                    self.close(into: &actions)
                }
                return
            case .error:
                actions.append(.releaseBackend(reusable: false, failed: true))
                exchange.backend = nil
                self.exchange = exchange
                self.backendBroke(exchange, now: now, into: &actions)
                return
            }
        }
    }
}
