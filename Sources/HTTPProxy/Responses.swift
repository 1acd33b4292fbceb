import HTTPWire

/// Responses the proxy writes itself: small error pages and the access log line.
public enum ProxyResponses {
    static let explanations: [Int: String] = [
        400: "The request could not be understood.",
        403: "This site is not available from your network.",
        421: "No site is served under this name here.",
        431: "The request's header section is too large.",
        308: "This site is served over HTTPS.",
        414: "The request line is too long.",
        502: "The site's servers could not be reached.",
        504: "The site's servers did not answer in time.",
    ]

    /// A complete response with a small HTML page; `close` adds `Connection: close` (after 400-class
    /// protocol errors the connection cannot be trusted to stay in sync).
    public static func errorPage(_ status: Int, close: Bool, headRequest: Bool = false, location: [UInt8]? = nil)
        -> [UInt8]
    {
        let reason = ResponseWriter.reason(status)
        let text = ProxyResponses.explanations[status] ?? reason + "."
        let body = "<!doctype html><title>\(status) \(reason)</title><h1>\(status) \(reason)</h1><p>\(text)</p>\n"
        var fields = ["Cache-Control: no-store"]
        if let location { fields.append("Location: " + String(decoding: location, as: UTF8.self)) }
        return ResponseWriter.complete(
            status: status, contentType: "text/html; charset=utf-8", body: Array(body.utf8), fields: fields,
            close: close, headRequest: headRequest)
    }

    /// One access-log line in the combined log format, plus site, backend and duration:
    /// `CLIENT - - [TIME] "REQUEST" STATUS BYTES "REFERER" "AGENT" SITE BACKEND DURATIONms`.
    public static func accessLogLine(
        client: String, time: String, requestLine: String, status: Int, bytes: Int, referer: String?,
        userAgent: String?,
        site: String?, backend: String?, milliseconds: Int
    ) -> String {
        func quoted(_ value: String?) -> String {
            guard let value, !value.isEmpty else { return "\"-\"" }
            // Escape what would break the line for log parsers: quotes, backslashes, control bytes.
            var out = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                    out += "\\x" + String(scalar.value, radix: 16, uppercase: false).leftPadded(to: 2)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        return
            "\(client) - - [\(time)] \(quoted(requestLine)) \(status) \(bytes) \(quoted(referer)) \(quoted(userAgent)) "
            + "\(site ?? "-") \(backend ?? "-") \(milliseconds)ms"
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
    }
}
