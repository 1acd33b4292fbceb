import HTTPWire
import ZoneModel

/// The admin listener's rules, without sockets: who may look, and what a request gets.
public enum AdminRouting {
    /// What the admin listener serves.
    public enum Page: Equatable, Sendable {
        /// Prometheus text format.
        case metrics
        /// JSON.
        case status
        /// The HTML status page.
        case overview
    }

    /// What to answer.
    public enum Answer: Equatable, Sendable {
        /// The page, or only its head for HEAD.
        case page(Page, headOnly: Bool)
        /// A short plain-text refusal.
        case refusal(status: Int, text: String)
    }

    /// The answer for a client the listener does not serve.
    public static let forbidden = Answer.refusal(
        status: 403, text: "the admin listener answers this machine and LAN views (with recursion) only\n")

    /// This machine (loopback) and clients of views that may recurse — the LAN — may look; others get 403,
    /// wherever the listener is bound. `recursionView` says whether the client's view recurses (nil: no view).
    public static func allows(_ client: IPAddress, recursionView: Bool?) -> Bool {
        switch client.unmapped {
        case .v4(let address) where address.value >> 24 == 127: return true
        case .v6(let address) where address.high == 0 && address.low == 1: return true
        default: return recursionView == true
        }
    }

    /// The answer to a request head (`bytes` holds it): GET and HEAD only, the query ignored.
    public static func answer(_ head: HTTPRequestHead, in bytes: [UInt8]) -> Answer {
        let method = bytes[head.method]
        let headOnly = method.elementsEqual("HEAD".utf8)
        guard headOnly || method.elementsEqual("GET".utf8) else {
            return .refusal(status: 405, text: "GET only\n")
        }
        var path = bytes[head.target]
        if let query = path.firstIndex(of: UInt8(ascii: "?")) { path = path[..<query] }
        switch String(decoding: path, as: UTF8.self) {
        case "/metrics": return .page(.metrics, headOnly: headOnly)
        case "/status": return .page(.status, headOnly: headOnly)
        case "/": return .page(.overview, headOnly: headOnly)
        default: return .refusal(status: 404, text: "not found: try /, /status or /metrics\n")
        }
    }
}
