import HTTPWire
import ZoneModel

/// What the proxy does with a request whose head parsed.
public enum RouteDecision: Equatable, Sendable {
    /// Forward to this site's backends.
    case forward(CompiledSite)
    /// Answer here: 421 for a host no site serves, 403 for a site hidden from the client's view.
    case respond(status: Int)
    /// Answer 308 with this Location: a plain-HTTP request for a site HTTPS serves.
    case redirect(location: [UInt8])
    /// Answer 200 with this body: an ACME HTTP-01 proof (see `ChallengeTokens`).
    case proof([UInt8])
}

/// Which sites plain HTTP is redirected away from, and the HTTPS port to send clients to. The loop builds one
/// from the certificates and the sites (a site whose name a certificate covers, unless it opted out); a
/// connection keeps the one it was accepted with.
public final class HTTPSUpgrade: Sendable {
    public let sites: Set<DomainName>
    /// ":PORT" for a port other than 443, else empty.
    let portSuffix: [UInt8]

    public init(sites: Set<DomainName>, port: UInt16) {
        self.sites = sites
        self.portSuffix = port == 443 ? [] : Array(":\(port)".utf8)
    }

    /// Paths that stay on plain HTTP: ACME's HTTP-01 challenges (RFC 8555 §8.3) must be reachable there.
    static let exempt: StaticString = "/.well-known/acme-challenge/"
}

/// Picks the site for a request from the snapshot — the same views and sites DNS answers from, so a
/// LAN-only site that DNS hides from the WAN is also refused to it here.
public enum RequestRouter {
    public static func route(
        _ head: HTTPRequestHead, in buffer: UnsafeRawBufferPointer, client: IPAddress, snapshot: Snapshot,
        upgrade: HTTPSUpgrade? = nil
    ) -> RouteDecision {
        guard let hostRange = RequestRouter.host(head, in: buffer) else { return .respond(status: 421) }
        let host = UnsafeRawBufferPointer(rebasing: buffer[hostRange])
        guard let site = snapshot.routes.route(host: host) else { return .respond(status: 421) }
        guard let view = snapshot.viewIndex(for: client), site.isVisible(toView: view) else {
            return .respond(status: 403)
        }
        if let upgrade, site.httpsRedirect || site.passthrough, upgrade.sites.contains(site.name),
            let location = RequestRouter.httpsLocation(head, in: buffer, host: hostRange, upgrade: upgrade)
        {
            return .redirect(location: location)
        }
        // A passthrough site's backends speak TLS only: plain HTTP has nowhere to go.
        if site.passthrough { return .respond(status: 421) }
        return .forward(site)
    }

    /// `https://HOST[:PORT]/PATH?QUERY` for a request (the host without the port it came with); nil for
    /// `OPTIONS *` and ACME challenge paths, which are served on plain HTTP.
    static func httpsLocation(
        _ head: HTTPRequestHead, in buffer: UnsafeRawBufferPointer, host: Range<Int>, upgrade: HTTPSUpgrade
    ) -> [UInt8]? {
        var path = head.target
        if let authority = RequestRouter.authority(of: path, in: buffer) {
            var start = authority.upperBound
            while start < path.upperBound && buffer[start] != UInt8(ascii: "/") && buffer[start] != UInt8(ascii: "?") {
                start += 1
            }
            path = start..<path.upperBound
        }
        guard path.isEmpty || buffer[path.lowerBound] != UInt8(ascii: "*") else { return nil }
        let exempt = HTTPSUpgrade.exempt
        if path.count >= exempt.utf8CodeUnitCount
            && UnsafeRawBufferPointer(rebasing: buffer[path.lowerBound..<(path.lowerBound + exempt.utf8CodeUnitCount)])
                .elementsEqual(UnsafeRawBufferPointer(start: exempt.utf8Start, count: exempt.utf8CodeUnitCount))
        {
            return nil
        }
        // The host without its port; an IPv6 literal keeps its brackets.
        var end = host.lowerBound
        if end < host.upperBound && buffer[end] == UInt8(ascii: "[") {
            while end < host.upperBound && buffer[end] != UInt8(ascii: "]") { end += 1 }
            if end < host.upperBound { end += 1 }
        } else {
            while end < host.upperBound && buffer[end] != UInt8(ascii: ":") { end += 1 }
        }
        var location = Array("https://".utf8)
        location += buffer[host.lowerBound..<end]
        location += upgrade.portSuffix
        if path.isEmpty || buffer[path.lowerBound] != UInt8(ascii: "/") { location.append(UInt8(ascii: "/")) }
        location += buffer[path]
        return location
    }

    /// The authority of an absolute-form target wins over Host (RFC 9112 §3.2.2); else the Host field.
    public static func host(_ head: HTTPRequestHead, in buffer: UnsafeRawBufferPointer) -> Range<Int>? {
        let target = head.target
        if let authority = RequestRouter.authority(of: target, in: buffer) { return authority }
        return head.host
    }

    /// `http://AUTHORITY/...` → AUTHORITY (without user info); nil for origin-form targets.
    static func authority(of target: Range<Int>, in buffer: UnsafeRawBufferPointer) -> Range<Int>? {
        guard target.count > 7, buffer[target.lowerBound] != UInt8(ascii: "/") else { return nil }
        var index = target.lowerBound
        while index + 2 < target.upperBound {
            if buffer[index] == UInt8(ascii: ":") && buffer[index + 1] == UInt8(ascii: "/")
                && buffer[index + 2] == UInt8(ascii: "/")
            {
                var start = index + 3
                var end = start
                while end < target.upperBound && buffer[end] != UInt8(ascii: "/") && buffer[end] != UInt8(ascii: "?") {
                    if buffer[end] == UInt8(ascii: "@") { start = end + 1 }
                    end += 1
                }
                return start < end ? start..<end : nil
            }
            index += 1
        }
        return nil
    }
}

/// Writes the head sent to a backend (RFC 9110 §7.6): hop-by-hop fields removed, forwarding fields added.
public enum RequestRewriter {
    /// Fields Frontdoor sets itself, whose incoming copies are dropped: X-Forwarded-Proto, X-Forwarded-Host
    /// and X-Real-IP (X-Forwarded-For is handled apart).
    @inline(__always)
    static func isReplaced(_ buffer: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        switch name.count {
        case 9: return HTTPRequestParser.equalsIgnoringCase(buffer, name, "x-real-ip")
        case 16: return HTTPRequestParser.equalsIgnoringCase(buffer, name, "x-forwarded-host")
        case 17: return HTTPRequestParser.equalsIgnoringCase(buffer, name, "x-forwarded-proto")
        default: return false
        }
    }

    /// The upstream request head. `trustedPeer` says whether the peer is a configured trusted proxy, whose
    /// X-Forwarded-For is extended instead of replaced. `upgrade` keeps Connection: upgrade and Upgrade.
    public static func upstreamHead(
        _ head: HTTPRequestHead, in buffer: UnsafeRawBufferPointer, client: IPAddress, trustedPeer: Bool,
        scheme: String = "http"
    ) -> [UInt8] {
        RequestRewriter.upstreamHead(
            head, in: buffer, clientText: Array(client.unmapped.description.utf8), trustedPeer: trustedPeer,
            scheme: scheme)
    }

    /// The same, with the client address already as text (a connection computes it once).
    public static func upstreamHead(
        _ head: HTTPRequestHead, in buffer: UnsafeRawBufferPointer, clientText: [UInt8], trustedPeer: Bool,
        scheme: String = "http"
    ) -> [UInt8] {
        // Everything written is a part of the head (each field line at most one byte longer, as "name: value"),
        // plus at most three more copies of the host and one of the first X-Forwarded-For entry (each at most
        // the head's length), the client's address three times (once bracketed), the scheme twice, and fixed
        // text (under 200 bytes) with 100 fields' one extra byte: 5 x the head + 3 x the address + 512.
        var scheme = scheme
        let capacity = 5 * head.length + 3 * clientText.count + 2 * scheme.utf8.count + 512
        return HeadWriter.build(capacity: capacity) { out in
            func append(_ range: Range<Int>) { out.write(UnsafeRawBufferPointer(rebasing: buffer[range])) }
            func append(_ text: StaticString) { out.write(text) }

            // Request line, always HTTP/1.1 to the backend; absolute-form becomes origin-form.
            append(head.method)
            append(" ")
            var target = head.target
            if let authority = RequestRouter.authority(of: target, in: buffer) {
                target = authority.upperBound..<target.upperBound
                if target.isEmpty || buffer[target.lowerBound] != UInt8(ascii: "/") { append("/") }
            }
            if !target.isEmpty { append(target) }
            append(" HTTP/1.1\r\n")

            // Fields named by Connection are hop-by-hop too.
            var named: [Range<Int>] = []
            var forwardedFor: [Range<Int>] = []
            var forwarded: [Range<Int>] = []
            for field in head.fields where HTTPRequestParser.equalsIgnoringCase(buffer, field.name, "connection") {
                named += HTTPRequestParser.list(buffer, field.value)
            }
            let host = RequestRouter.host(head, in: buffer)
            var wroteHost = false
            for field in head.fields {
                let name = field.name
                if HTTPRequestParser.isHopByHop(buffer, name) {
                    if head.upgrade && HTTPRequestParser.equalsIgnoringCase(buffer, name, "upgrade") {
                        append(field.name)
                        append(": ")
                        append(field.value)
                        append("\r\n")
                    }
                    continue
                }
                if RequestRewriter.isReplaced(buffer, name) { continue }
                if named.contains(where: { RequestRewriter.equal(buffer, $0, name) }) { continue }
                if HTTPRequestParser.equalsIgnoringCase(buffer, name, "x-forwarded-for") {
                    forwardedFor.append(field.value)
                    continue
                }
                if HTTPRequestParser.equalsIgnoringCase(buffer, name, "forwarded") {
                    forwarded.append(field.value)
                    continue
                }
                if HTTPRequestParser.equalsIgnoringCase(buffer, name, "host") {
                    // Host is preserved, but must agree with an absolute-form authority.
                    wroteHost = true
                    append("Host: ")
                    if let host { append(host) }
                    append("\r\n")
                    continue
                }
                append(field.name)
                append(": ")
                append(field.value)
                append("\r\n")
            }
            if !wroteHost, let host {
                append("Host: ")
                append(host)
                append("\r\n")
            }
            // X-Forwarded-For: a trusted peer's list is extended; anyone else's is dropped as unverifiable.
            append("X-Forwarded-For: ")
            if trustedPeer && !forwardedFor.isEmpty {
                for value in forwardedFor {
                    append(value)
                    append(", ")
                }
            }
            out.write(clientText)
            append("\r\nX-Real-IP: ")
            if trustedPeer, let first = forwardedFor.first.flatMap({ HTTPRequestParser.list(buffer, $0).first }) {
                append(first)
            } else {
                out.write(clientText)
            }
            append("\r\nX-Forwarded-Proto: ")
            scheme.withUTF8 { out.write(UnsafeRawBufferPointer($0)) }
            append("\r\n")
            if let host {
                append("X-Forwarded-Host: ")
                append(host)
                append("\r\n")
            }
            // Forwarded (RFC 7239), when the request carries one, as X-Forwarded-For: a trusted peer's elements
            // are kept and ours appended; anyone else's are replaced by ours, so the backend never reads a
            // forged one. Without one none is added (as nginx, HAProxy and Caddy do): X-Forwarded-* say the
            // same, and the common request pays nothing. An IPv6 node is bracketed and quoted (§6).
            if !forwarded.isEmpty {
                append("Forwarded: ")
                if trustedPeer {
                    for value in forwarded {
                        append(value)
                        append(", ")
                    }
                }
                append("for=")
                if clientText.contains(UInt8(ascii: ":")) {
                    append("\"[")
                    out.write(clientText)
                    append("]\"")
                } else {
                    out.write(clientText)
                }
                if let host, !host.isEmpty {
                    append(";host=\"")
                    append(host)
                    append("\"")
                }
                append(";proto=")
                scheme.withUTF8 { out.write(UnsafeRawBufferPointer($0)) }
                append("\r\n")
            }
            append(head.minorVersion == 0 ? "Via: 1.0 frontdoor\r\n" : "Via: 1.1 frontdoor\r\n")
            append(head.upgrade ? "Connection: upgrade\r\n" : "Connection: keep-alive\r\n")
            append("\r\n")
        }
    }

    static func equal(_ buffer: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for offset in 0..<a.count {
            let x = buffer[a.lowerBound + offset]
            let y = buffer[b.lowerBound + offset]
            if (x >= 65 && x <= 90 ? x | 0x20 : x) != (y >= 65 && y <= 90 ? y | 0x20 : y) { return false }
        }
        return true
    }
}
