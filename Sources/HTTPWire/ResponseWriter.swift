/// Complete responses that Frontdoor writes itself (error pages, the admin listener): the status line with
/// its reason phrase, the framing fields, the body, written the same way everywhere.
public enum ResponseWriter {
    /// RFC 9110 §15 reason phrases for the statuses Frontdoor answers with itself.
    static let reasons: [Int: String] = [
        200: "OK", 308: "Permanent Redirect", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
        417: "Expectation Failed", 421: "Misdirected Request", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    ]

    public static func reason(_ status: Int) -> String { ResponseWriter.reasons[status] ?? "Error" }

    /// A whole response: status line, Content-Type, Content-Length, `fields` (each "Name: value"), then
    /// `Connection: close` when `close`, and the body unless the request was HEAD (RFC 9110 §9.3.2: the same
    /// fields, no content).
    public static func complete(
        status: Int, contentType: String, body: [UInt8], fields: [String] = [], close: Bool, headRequest: Bool = false
    ) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(ResponseWriter.reason(status))\r\nContent-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for field in fields { head += field + "\r\n" }
        head += close ? "Connection: close\r\n\r\n" : "\r\n"
        return Array(head.utf8) + (headRequest ? [] : body)
    }
}
