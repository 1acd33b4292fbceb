import ACME
import CSys
import DynDNS
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// What the admin listener reports on: the running services (any may be off).
public struct AdminContext: Sendable {
    public var store: SnapshotStore
    public var dns: DNSService?
    public var http: HTTPService?
    public var updater: WANUpdater?
    /// The router's port forwards, when asked for.
    public var forwarder: PortForwarder?
    /// Wall-clock seconds at start.
    public var started: Double

    public init(
        store: SnapshotStore, dns: DNSService?, http: HTTPService?, updater: WANUpdater?, started: Double,
        forwarder: PortForwarder? = nil
    ) {
        self.store = store
        self.dns = dns
        self.http = http
        self.updater = updater
        self.started = started
        self.forwarder = forwarder
    }
}

/// The admin listener (127.0.0.1:9053 by default): `/metrics` in Prometheus text format, `/status` as JSON,
/// and `/` a small HTML status page. One thread, one request per connection: control plane only.
public final class AdminServer: @unchecked Sendable {
    let listeners: [Int32]
    public let boundListeners: [SocketAddress]
    let context: AdminContext
    let stopped = Atomic<Bool>(false)

    public init(listeners: [SocketAddress], context: AdminContext) throws(SocketError) {
        var fds: [Int32] = []
        var bound: [SocketAddress] = []
        do throws(SocketError) {
            for address in listeners {
                let fd = try Sockets.tcpListener(address, shared: false, backlog: 64)
                fds.append(fd)
                bound.append(SocketAddress(address: address.address, port: Sockets.localPort(fd) ?? address.port))
            }
        } catch {
            for fd in fds { Sockets.close(fd) }
            throw error
        }
        self.listeners = fds
        self.boundListeners = bound
        self.context = context
    }

    public func stop() { self.stopped.store(true, ordering: .releasing) }

    public func run() {
        var entries = self.listeners.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var backoff = AcceptBackoff()
        while !self.stopped.load(ordering: .acquiring) {
            if backoff.isPaused {
                usleep(UInt32(AcceptBackoff.pause * 1000))
                _ = backoff.resumes(now: monotonicMilliseconds())
            }
            guard poll(&entries, nfds_t(entries.count), 250) > 0 else { continue }
            for entry in entries where entry.revents & Int16(POLLIN) != 0 {
                var peer = sockaddr_storage()
                var length = socklen_t(0)
                let fd = csys_accept(entry.fd, &peer, &length)
                guard fd >= 0 else {
                    if AcceptBackoff.isExhaustion(-fd),
                        let line = backoff.exhausted(-fd, service: "admin", open: 0, now: monotonicMilliseconds())
                    {
                        Log.error(line)
                    }
                    continue
                }
                let client = withUnsafePointer(to: &peer) { IPAddress(peer: $0) }
                if let client, self.allows(client) {
                    self.serve(fd)
                } else {
                    self.answer(fd, AdminRouting.forbidden)
                }
                Sockets.close(fd)
            }
        }
        for fd in self.listeners { Sockets.close(fd) }
    }

    func allows(_ client: IPAddress) -> Bool {
        let view = self.context.store.tables().snapshot.view(for: client.unmapped)
        return AdminRouting.allows(client, recursionView: view?.recursion)
    }

    /// Reads one request (two seconds at most) and answers it.
    func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        let deadline = monotonicMilliseconds() + 2_000
        var head: HTTPRequestHead?
        while head == nil && buffer.count < 16384 {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int64(deadline) - Int64(monotonicMilliseconds())
            guard left > 0, poll(&entry, 1, Int32(left)) == 1 else { return }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { return }
            buffer += chunk[0..<got]
            do {
                head = try buffer.withUnsafeBytes { raw throws(HTTPRequestError) in try HTTPRequestParser.parse(raw) }
            } catch {
                self.answer(fd, .refusal(status: 400, text: "bad request\n"))
                return
            }
        }
        guard let head else { return }
        self.answer(fd, AdminRouting.answer(head, in: buffer))
    }

    /// Writes `answer` (building the page it names) and returns; the caller closes.
    func answer(_ fd: Int32, _ answer: AdminRouting.Answer) {
        switch answer {
        case .page(.metrics, let headOnly):
            AdminServer.send(fd, status: 200, type: "text/plain; version=0.0.4", body: self.metrics(), head: headOnly)
        case .page(.status, let headOnly):
            AdminServer.send(
                fd, status: 200, type: "application/json", body: self.status().text(pretty: true) + "\n",
                head: headOnly)
        case .page(.overview, let headOnly):
            AdminServer.send(fd, status: 200, type: "text/html; charset=utf-8", body: self.page(), head: headOnly)
        case .refusal(let status, let text):
            AdminServer.send(fd, status: status, type: "text/plain", body: text)
        }
    }

    static func send(_ fd: Int32, status: Int, type: String, body: String, head: Bool = false) {
        let all = ResponseWriter.complete(
            status: status, contentType: type, body: Array(body.utf8), fields: ["Cache-Control: no-store"],
            close: true, headRequest: head)
        var offset = 0
        while offset < all.count {
            let sent = all.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    // MARK: - Content

    /// `text` with every scalar `replacement` names replaced by its text.
    static func replacing(_ text: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if let replaced = replacement(scalar) { out += replaced } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// A Prometheus label value: backslash, double quote and newline escaped.
    static func label(_ text: String) -> String {
        AdminServer.replacing(text) { scalar in
            switch scalar {
            case "\\": "\\\\"
            case "\"": "\\\""
            case "\n": "\\n"
            default: nil
            }
        }
    }

    /// Prometheus text exposition format.
    public func metrics() -> String {
        var lines: [String] = []
        func metric(_ name: String, _ kind: String, _ help: String, _ samples: [(String, Double)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(kind)")
            for (labels, value) in samples {
                let number = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
                lines.append(labels.isEmpty ? "\(name) \(number)" : "\(name){\(labels)} \(number)")
            }
        }
        let snapshot = self.context.store.tables().snapshot
        metric(
            "frontdoor_up", "gauge", "1 while Frontdoor runs.", [("", 1)])
        metric(
            "frontdoor_model_generation", "counter", "Models published since start (reloads and WAN changes).",
            [("", Double(self.context.store.generation))])
        metric("frontdoor_sites", "gauge", "Sites in the model.", [("", Double(snapshot.routes.sites.count))])
        if let dns = self.context.dns {
            let statistics = dns.statistics
            let rcodes = [
                0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
            ]
            var samples: [(String, Double)] = []
            for (view, byRcode) in statistics.responses.sorted(by: { $0.key < $1.key }) {
                let name = view < snapshot.views.count ? snapshot.views[view].name : "view\(view)"
                for (rcode, count) in byRcode.sorted(by: { $0.key < $1.key }) {
                    let label = rcodes[rcode] ?? "RCODE\(rcode)"
                    samples.append(("view=\"\(AdminServer.label(name))\",rcode=\"\(label)\"", Double(count)))
                }
            }
            metric(
                "frontdoor_dns_responses_total", "counter",
                "DNS responses sent, by the client's view and the response code (UDP and TCP, forwarded included).",
                samples)
            metric(
                "frontdoor_dns_cache_hits_total", "counter", "Forwarded questions answered from the cache.",
                [("", Double(statistics.cacheHits))])
            metric(
                "frontdoor_dns_cache_misses_total", "counter", "Forwarded questions that were not in the cache.",
                [("", Double(statistics.cacheMisses))])
            metric(
                "frontdoor_dns_cache_hits_in_batch_total", "counter",
                "Cache hits the UDP threads answered from the shared wire cache in their batch (part of the hits).",
                [("", Double(statistics.batchCacheHits))])
            let asked = statistics.cacheHits + statistics.cacheMisses
            metric(
                "frontdoor_dns_cache_hit_ratio", "gauge", "Cache hits over forwarded questions since start.",
                [("", asked == 0 ? 0 : Double(statistics.cacheHits) / Double(asked))])
            metric(
                "frontdoor_dns_cache_bytes", "gauge", "The shared wire cache's fixed size (slots times slot size).",
                [("", Double(dns.wireCache.byteSize))])
            metric(
                "frontdoor_dns_stale_answers_total", "counter",
                "Expired answers served because every upstream failed (RFC 8767 serve-stale).",
                [("", Double(statistics.staleAnswers))])
            metric(
                "frontdoor_dns_prefetches_total", "counter",
                "Popular cache entries refreshed upstream in the last tenth of their lifetime.",
                [("", Double(statistics.prefetches))])
            metric(
                "frontdoor_dns_upstream_queries_total", "counter",
                "Queries sent to the upstream resolvers, retries and TCP fallbacks included.",
                [("", Double(statistics.upstreamQueries))])
            lines.append("# HELP frontdoor_dns_upstream_seconds Time from a question sent upstream to its reply.")
            lines.append("# TYPE frontdoor_dns_upstream_seconds summary")
            lines.append("frontdoor_dns_upstream_seconds_sum \(Double(statistics.upstreamMilliseconds) / 1000)")
            lines.append("frontdoor_dns_upstream_seconds_count \(statistics.upstreamReplies)")
            let upstreams = dns.upstreamHealth.report
            metric(
                "frontdoor_dns_upstream_up", "gauge",
                "1 while the upstream resolver answers; 0 after \(UpstreamHealth.downAfter) failed attempts in a row.",
                upstreams.map { ("upstream=\"\($0.address)\"", $0.up ? 1 : 0) })
            metric(
                "frontdoor_dns_upstream_failures_total", "counter",
                "Attempts to an upstream resolver that timed out or failed.",
                upstreams.map { ("upstream=\"\($0.address)\"", Double($0.failures)) })
            let secondaries = dns.secondaries.report
            let names = snapshot.settings.secondaries.map(\.name)
            metric(
                "frontdoor_dns_transfers_total", "counter", "Zone transfers (AXFR, IXFR) completed, by secondary.",
                names.map { ("secondary=\"\(AdminServer.label($0))\"", Double(secondaries[$0]?.transfers ?? 0)) })
            metric(
                "frontdoor_dns_notifies_acknowledged_total", "counter", "NOTIFY messages acknowledged, by secondary.",
                names.map { ("secondary=\"\(AdminServer.label($0))\"", Double(secondaries[$0]?.notifies ?? 0)) })
            metric(
                "frontdoor_dns_transfer_refusals_total", "counter",
                "Transfers and signed queries refused (not a secondary, wrong key, wrong zone).",
                [("", Double(dns.secondaries.refusals.load(ordering: .relaxed)))])
        }
        if let forwarder = self.context.forwarder {
            let forwards = forwarder.forwards
            metric(
                "frontdoor_router_forward_up", "gauge", "1 while the router holds the port forward to this host.",
                forwards.map { ("forward=\"\($0.key)\"", $0.value.up ? 1 : 0) })
            metric(
                "frontdoor_router_forward_renewals_total", "counter", "Port forwards renewed at half their lifetime.",
                forwards.map { ("forward=\"\($0.key)\"", Double($0.value.renewals)) })
        }
        let certificates = ACMEManager.report(snapshot)
        if !certificates.isEmpty {
            let now = Int(time(nil))
            metric(
                "frontdoor_acme_certificate_expiry_seconds", "gauge",
                "Seconds until each ACME certificate expires (absent until it is issued).",
                certificates.compactMap { entry in
                    entry.notAfter.map { ("certificate=\"\(AdminServer.label(entry.name))\"", Double($0 - now)) }
                })
            metric(
                "frontdoor_acme_orders_total", "counter", "ACME orders by certificate and result.",
                certificates.flatMap { entry in
                    [
                        (
                            "certificate=\"\(AdminServer.label(entry.name))\",result=\"valid\"",
                            Double(entry.ordersValid)
                        ),
                        (
                            "certificate=\"\(AdminServer.label(entry.name))\",result=\"failed\"",
                            Double(entry.ordersFailed)
                        ),
                    ]
                })
        }
        if let http = self.context.http {
            let counts = http.requestCounts.sorted { ($0.key.site, $0.key.status) < ($1.key.site, $1.key.status) }
            metric(
                "frontdoor_http_requests_total", "counter", "HTTP requests answered, by site and status.",
                counts.map {
                    ("site=\"\(AdminServer.label($0.key.site))\",status=\"\($0.key.status)\"", Double($0.value))
                })
            metric(
                "frontdoor_http_open_connections", "gauge", "Client connections open now.",
                [("", Double(http.openConnections))])
            metric(
                "frontdoor_http_backend_reuse_total", "counter", "Requests sent on a kept-alive backend connection.",
                [("", Double(http.reusedBackendConnections))])
            if let store = http.tlsStore {
                let tls = store.current
                let handshakes = http.tlsHandshakes
                metric(
                    "frontdoor_tls_handshakes_total", "counter",
                    "TLS connections on the HTTPS listeners by handshake result (failed: closed before it finished; "
                        + "plain_http: an HTTP request sent to the HTTPS port; passthrough: relayed to a backend).",
                    [
                        ("result=\"full\"", Double(handshakes.full)),
                        ("result=\"resumed\"", Double(handshakes.resumed)),
                        ("result=\"failed\"", Double(handshakes.failed)),
                        ("result=\"plain_http\"", Double(handshakes.plainHTTP)),
                        ("result=\"passthrough\"", Double(handshakes.passthrough)),
                    ])
                metric(
                    "frontdoor_tls_versions_total", "counter", "Finished TLS handshakes by protocol version.",
                    [
                        ("version=\"TLSv1.2\"", Double(handshakes.tls12)),
                        ("version=\"TLSv1.3\"", Double(handshakes.tls13)),
                    ])
                metric(
                    "frontdoor_tls_certificate_days_left", "gauge", "Days until each served certificate expires.",
                    (tls?.certificates ?? []).map {
                        ("certificate=\"\(AdminServer.label($0.origin))\"", Double($0.daysLeft))
                    })
            }
            metric(
                "frontdoor_tls_backend_handshake_failures_total", "counter",
                "TLS handshakes to https:// backends that failed (a refused certificate, most often: see the log).",
                [("", Double(http.backendTLSFailures))])
            metric(
                "frontdoor_backend_up", "gauge", "1 when the backend's last active health check passed.",
                http.healthChecks.sorted { ($0.site, $0.backend) < ($1.site, $1.backend) }.map {
                    ("site=\"\(AdminServer.label($0.site))\",backend=\"\($0.backend)\"", $0.up ? 1 : 0)
                })
        }
        if let updater = self.context.updater {
            let state = updater.published.withLock { $0 }
            metric(
                "frontdoor_wan_changes_total", "counter", "WAN address changes published (history kept: 20).",
                [("", Double(state.history.count))])
            metric(
                "frontdoor_wan_address_published", "gauge",
                "1 while the wan view answers a WAN address of the family; 0 before one is known or once the "
                    + "grace period withdrew it.",
                [("family=\"ipv4\"", state.address == nil ? 0 : 1), ("family=\"ipv6\"", state.address6 == nil ? 0 : 1)])
            metric(
                "frontdoor_wan_source_up", "gauge", "1 when the WAN source gave an address at the last poll.",
                state.sources.map {
                    ("source=\"\(AdminServer.label($0.source))\"", $0.said.hasPrefix("no answer") ? 0 : 1)
                })
            metric(
                "frontdoor_provider_pushes_total", "counter", "Pushes attempted per provider (kept across restarts).",
                state.providers.sorted { $0.key < $1.key }.map {
                    ("provider=\"\(AdminServer.label($0.key))\"", Double($0.value.pushes))
                })
            metric(
                "frontdoor_provider_pushes_failing", "gauge",
                "Consecutive failed pushes per provider (0: the last push worked).",
                state.providers.sorted { $0.key < $1.key }.map {
                    ("provider=\"\(AdminServer.label($0.key))\"", Double($0.value.failures))
                })
            metric(
                "frontdoor_provider_stopped", "gauge",
                "1 when a provider refused for good (until its settings or secret change, or a reload).",
                state.providers.sorted { $0.key < $1.key }.map {
                    ("provider=\"\(AdminServer.label($0.key))\"", $0.value.stopped ? 1 : 0)
                })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The same facts as JSON.
    public func status() -> JSON {
        let snapshot = self.context.store.tables().snapshot
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let health = self.context.http?.healthChecks ?? []
        let counts = self.context.http?.requestCounts ?? [:]
        let tls = self.context.http?.tlsStore?.current
        let sites: [JSON] = snapshot.routes.sites.map { site in
            let name = site.name.hostDescription
            let views = snapshot.views.filter { site.viewIndices.contains($0.index) }.map { JSON.string($0.name) }
            let backends: [JSON] = site.backends.map { backend in
                let check = health.first { $0.site == name && $0.backend == backend.address.description }
                let state: JSON =
                    site.healthPath == nil
                    ? .string("not checked") : check.map { .string($0.up ? "up" : "down") } ?? .string("pending")
                return .object([("address", .string(backend.address.description)), ("health", state)])
            }
            let requests = counts.filter { $0.key.site == name }.reduce(0) { $0 + $1.value }
            var certificate = JSON.null
            if let served = tls?.table.covering(name) {
                certificate = .object([
                    ("source", .string(served.origin)), ("issuer", .string(served.issuer)),
                    ("days_left", .number(Double(served.daysLeft))),
                    ("redirects_http", .bool(site.httpsRedirect)),
                ])
            }
            return .object([
                ("certificate", certificate),
                ("name", .string(name)), ("views", .array(views)), ("backends", .array(backends)),
                ("balance", .string("\(site.balance)")), ("requests", .number(Double(requests))),
            ])
        }
        var members: [(String, JSON)] = [
            ("uptime_seconds", .number((Double(now.tv_sec) - self.context.started).rounded())),
            (
                "views",
                .array(
                    snapshot.views.map { view in
                        .object([
                            ("name", .string(view.name)),
                            ("networks", .array(view.networks.map { .string($0.description) })),
                            ("recursion", .bool(view.recursion)),
                        ])
                    })
            ),
            ("sites", .array(sites)),
        ]
        if let dns = self.context.dns {
            members.append(("dns_responses", .number(Double(dns.answered))))
            let statistics = dns.statistics
            let asked = statistics.cacheHits + statistics.cacheMisses
            members.append(
                (
                    "cache",
                    .object([
                        ("hits", .number(Double(statistics.cacheHits))),
                        ("misses", .number(Double(statistics.cacheMisses))),
                        ("hit_ratio", .number(asked == 0 ? 0 : Double(statistics.cacheHits) / Double(asked))),
                        ("stale_answers", .number(Double(statistics.staleAnswers))),
                        ("prefetches", .number(Double(statistics.prefetches))),
                        ("bytes", .number(Double(dns.wireCache.byteSize))),
                    ])
                ))
            members.append(
                (
                    "upstreams",
                    .array(
                        dns.upstreamHealth.report.map { upstream in
                            .object([
                                ("address", .string(upstream.address.description)), ("up", .bool(upstream.up)),
                                ("failures", .number(Double(upstream.failures))),
                            ])
                        })
                ))
            let activity = dns.secondaries.report
            members.append(
                (
                    "secondaries",
                    .array(
                        snapshot.settings.secondaries.map { secondary in
                            let entry = activity[secondary.name]
                            return .object([
                                ("name", .string(secondary.name)), ("address", .string(secondary.address.description)),
                                ("view", .string(secondary.view)), ("signed", .bool(secondary.key != nil)),
                                ("last_notify", entry?.lastNotify.map { .string($0) } ?? .null),
                                ("last_transfer", entry?.lastTransfer.map { .string($0) } ?? .null),
                                ("last_refusal", entry?.lastRefusal.map { .string($0) } ?? .null),
                            ])
                        })
                ))
        }
        if let http = self.context.http {
            members.append(("http_open_connections", .number(Double(http.openConnections))))
        }
        if let updater = self.context.updater { members.append(("wan", updater.published.withLock { $0 }.json)) }
        if let forwarder = self.context.forwarder {
            let forwards = forwarder.forwards
            members.append(
                (
                    "forwards",
                    .array(
                        forwards.map {
                            .object([
                                ("forward", .string($0.key)), ("up", .bool($0.value.up)),
                                ("state", .string($0.value.text)),
                                ("renewals", .number(Double($0.value.renewals))),
                            ])
                        })
                ))
        }
        let certificates = ACMEManager.report(snapshot)
        if !certificates.isEmpty {
            members.append(
                (
                    "certificates",
                    .array(
                        certificates.map { entry in
                            func time(_ value: Int?) -> JSON { value.map { .string(RFC3339.text($0)) } ?? .null }
                            return .object([
                                ("name", .string(entry.name)), ("names", .array(entry.names.map { .string($0) })),
                                ("issuer", entry.issuer.map { .string($0) } ?? .null),
                                ("not_after", time(entry.notAfter)), ("renewal", time(entry.renewAt)),
                                ("last_attempt", time(entry.lastAttempt)),
                                ("last_error", entry.lastError.map { .string($0) } ?? .null),
                                ("next_attempt", time(entry.nextAttempt)),
                            ])
                        })
                ))
        }
        return .object(members)
    }

    /// Text for HTML content and attribute values.
    static func escape(_ text: String) -> String {
        AdminServer.replacing(text) { scalar in
            switch scalar {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            default: nil
            }
        }
    }

    /// A small HTML page: sites with backend health, views, the WAN address history, request counts.
    public func page() -> String {
        let status = self.status()
        var html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Frontdoor</title>
            <meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="refresh" content="10">
            <style>
            body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
            h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
            table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
            .up{color:#0a0;font-weight:bold}.down{color:#c00;font-weight:bold}.muted{color:#888}
            </style></head><body><h1>Frontdoor</h1>
            """
        html += "<p class=\"muted\">up \(Int(status["uptime_seconds"]?.number ?? 0)) s; refreshes every 10 s; "
        html += "also <a href=\"/status\">/status</a> and <a href=\"/metrics\">/metrics</a></p>"
        html += "<h2>Sites</h2><table><tr><th>site</th><th>views</th><th>backends</th><th>certificate</th>"
        html += "<th>requests</th></tr>"
        for site in status["sites"]?.array ?? [] {
            let views = (site["views"]?.array ?? []).compactMap(\.string).joined(separator: ", ")
            let backends = (site["backends"]?.array ?? []).map { backend -> String in
                let health = backend["health"]?.string ?? ""
                let style = health == "up" ? "up" : health == "down" ? "down" : "muted"
                return
                    "\(AdminServer.escape(backend["address"]?.string ?? "")) <span class=\"\(style)\">\(health)</span>"
            }.joined(separator: "<br>")
            html +=
                "<tr><td>\(AdminServer.escape(site["name"]?.string ?? ""))</td><td>\(AdminServer.escape(views))</td>"
            var certificate = "<span class=\"muted\">none (plain HTTP)</span>"
            if let served = site["certificate"], let days = served["days_left"]?.number {
                let style = days < 7 ? "down" : "up"
                certificate =
                    "\(AdminServer.escape(served["issuer"]?.string ?? ""))<br><span class=\"\(style)\">"
                    + "\(Int(days)) days left</span>"
            }
            html += "<td>\(backends)</td><td>\(certificate)</td><td>\(Int(site["requests"]?.number ?? 0))</td></tr>"
        }
        html += "</table><h2>Views</h2><table><tr><th>view</th><th>networks</th><th>recursion</th></tr>"
        for view in status["views"]?.array ?? [] {
            let networks = (view["networks"]?.array ?? []).compactMap(\.string).joined(separator: " ")
            html += "<tr><td>\(AdminServer.escape(view["name"]?.string ?? ""))</td>"
            html += "<td>\(AdminServer.escape(networks.isEmpty ? "everyone else" : networks))</td>"
            html += "<td>\(view["recursion"]?.bool == true ? "yes" : "no")</td></tr>"
        }
        html += "</table>"
        if let upstreams = status["upstreams"]?.array, !upstreams.isEmpty {
            html += "<h2>Upstream resolvers</h2><table><tr><th>upstream</th><th>state</th><th>failed attempts</th></tr>"
            for upstream in upstreams {
                let up = upstream["up"]?.bool == true
                html += "<tr><td>\(AdminServer.escape(upstream["address"]?.string ?? ""))</td>"
                html += "<td><span class=\"\(up ? "up" : "down")\">\(up ? "answering" : "not answering")</span></td>"
                html += "<td>\(Int(upstream["failures"]?.number ?? 0))</td></tr>"
            }
            html += "</table>"
        }
        if let cache = status["cache"] {
            let number = { (key: String) in Int(cache[key]?.number ?? 0) }
            let ratio = Int(((cache["hit_ratio"]?.number ?? 0) * 100).rounded())
            html += "<h2>Resolver cache</h2><p>\(number("hits")) hits, \(number("misses")) misses (\(ratio)% hits); "
            html += "\(number("stale_answers")) stale answers served, \(number("prefetches")) prefetches; "
            html += "\(number("bytes") >> 20) MiB shared by the UDP threads</p>"
        }
        if let secondaries = status["secondaries"]?.array, !secondaries.isEmpty {
            html += "<h2>Secondaries</h2><table><tr><th>secondary</th><th>view</th><th>last NOTIFY</th>"
            html += "<th>last transfer</th><th>last refusal</th></tr>"
            for secondary in secondaries {
                let cells = ["name", "view", "last_notify", "last_transfer", "last_refusal"].map { key in
                    AdminServer.escape(secondary[key]?.string ?? "—")
                }
                html += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>"
            }
            html += "</table>"
        }
        if let forwards = status["forwards"]?.array, !forwards.isEmpty {
            html +=
                "<h2>Port forwards on the router</h2><table><tr><th>forward</th><th>state</th><th>renewals</th></tr>"
            for forward in forwards {
                let up = forward["up"]?.bool == true
                html += "<tr><td>\(AdminServer.escape(forward["forward"]?.string ?? ""))</td>"
                html += "<td class=\"\(up ? "up" : "down")\">\(AdminServer.escape(forward["state"]?.string ?? ""))</td>"
                html += "<td>\(Int(forward["renewals"]?.number ?? 0))</td></tr>"
            }
            html += "</table>"
        }
        if let certificates = status["certificates"]?.array, !certificates.isEmpty {
            html += "<h2>Certificates (ACME)</h2><table><tr><th>certificate</th><th>names</th><th>valid until</th>"
            html += "<th>renewal</th><th>last attempt</th><th>last error</th></tr>"
            for certificate in certificates {
                let names = (certificate["names"]?.array ?? []).compactMap(\.string).joined(separator: ", ")
                var cells = [certificate["name"]?.string ?? "", names]
                cells += ["not_after", "renewal", "last_attempt", "last_error"].map { certificate[$0]?.string ?? "—" }
                html += "<tr>" + cells.map { "<td>\(AdminServer.escape($0))</td>" }.joined() + "</tr>"
            }
            html += "</table>"
        }
        html += "<h2>WAN address</h2>"
        if let wan = status["wan"] {
            html += "<p><b>\(AdminServer.escape(wan["address"]?.string ?? "unknown"))</b>"
            if let six = wan["address6"]?.string { html += " and <b>\(AdminServer.escape(six))</b>" }
            html += "</p>"
            if let note = wan["note"]?.string { html += "<p class=\"down\">\(AdminServer.escape(note))</p>" }
            html += "<table><tr><th>changed (UTC)</th><th>address</th></tr>"
            for change in (wan["history"]?.array ?? []).reversed() {
                html += "<tr><td>\(utcDateTime(change["time"]?.number ?? 0))</td>"
                html += "<td>\(AdminServer.escape(change["address"]?.string ?? ""))</td></tr>"
            }
            html += "</table>"
        } else {
            html += "<p class=\"muted\">DynDNS is off.</p>"
        }
        return html + "</body></html>\n"
    }

}

/// `2026-11-26 18:11:42`: wall-clock seconds as UTC date and time, for the status page and `frontdoor status`.
public func utcDateTime(_ seconds: Double) -> String {
    var value = time_t(seconds)
    var parts = tm()
    gmtime_r(&value, &parts)
    func two(_ number: Int32) -> String { number < 10 ? "0\(number)" : "\(number)" }
    return "\(Int(parts.tm_year) + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
