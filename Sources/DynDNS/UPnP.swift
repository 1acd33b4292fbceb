import ZoneModel

/// The router's WAN address over UPnP IGD (the most widespread router protocol): an SSDP search sent to the
/// gateway, its device description fetched from the LOCATION it names, and `GetExternalIPAddress` asked of
/// its WANIPConnection (or WANPPPConnection) service over SOAP. Strict and bounded: every URL must point at
/// the gateway itself (a reply cannot send Frontdoor anywhere else), descriptions are read with `XMLReader`
/// (256 KiB, 32 levels), every exchange has a deadline.
public enum UPnP {
    /// The services that answer `GetExternalIPAddress`.
    static let services = [
        "urn:schemas-upnp-org:service:WANIPConnection:", "urn:schemas-upnp-org:service:WANPPPConnection:",
    ]

    /// The SSDP M-SEARCH for an Internet Gateway Device (UPnP Device Architecture 1.1 §1.3.2).
    public static let searchRequest = Array(
        ("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
            + "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n").utf8)

    /// The LOCATION of an SSDP search response, when it is one (`HTTP/1.1 200`, at most 8 KiB).
    public static func location(ofSearchResponse bytes: [UInt8]) -> Result<String, DetectError>? {
        guard bytes.count <= 8192 else { return .failure(DetectError("an SSDP reply larger than 8 KiB")) }
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\r\n" || $0 == "\n" })
        guard let status = lines.first, status.hasPrefix("HTTP/1.1 200") || status.hasPrefix("HTTP/1.0 200") else {
            return nil
        }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].trimmingCharacters(in: " ").lowercased() == "location" {
                return .success(String(line[line.index(after: colon)...]).trimmingSpaces)
            }
        }
        return .failure(DetectError("an SSDP reply without LOCATION"))
    }

    /// `url` when it is plain HTTP to `gateway` itself (any port); else why not.
    public static func checked(_ url: String, gateway: IPAddress) -> Result<String, DetectError> {
        guard url.hasPrefix("http://") else { return .failure(DetectError("\(url) is not an http:// URL on the LAN")) }
        let authority = url.dropFirst(7).prefix { $0 != "/" && $0 != "?" }
        var host = Substring(authority)
        if host.hasPrefix("[") {
            host = host.dropFirst().prefix { $0 != "]" }
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        guard let address = IPAddress(String(host)), address == gateway else {
            return .failure(DetectError("\(url) points away from the gateway \(gateway): not followed"))
        }
        return .success(url)
    }

    /// The control URL and service type of the first WAN connection service in a device description, made
    /// absolute against `location` (or the description's URLBase), and checked to stay on the gateway.
    public static func controlURL(description bytes: [UInt8], location: String, gateway: IPAddress) -> Result<
        (url: String, service: String), DetectError
    > {
        let root: XMLElement
        do {
            root = try XMLReader.parse(bytes)
        } catch {
            return .failure(DetectError("the device description is not readable XML: \(error)"))
        }
        for service in root.all("service") {
            guard let type = service.value("serviceType"), UPnP.services.contains(where: { type.hasPrefix($0) }),
                let control = service.value("controlURL"), !control.isEmpty
            else { continue }
            let base = root.value("URLBase").flatMap { $0.isEmpty ? nil : $0 } ?? location
            return UPnP.checked(UPnP.resolve(control, against: base), gateway: gateway).map { ($0, type) }
        }
        return .failure(DetectError("the router's description has no WANIPConnection or WANPPPConnection service"))
    }

    /// `reference` made absolute against `base` (an http:// URL).
    static func resolve(_ reference: String, against base: String) -> String {
        if reference.hasPrefix("http://") || reference.hasPrefix("https://") { return reference }
        let afterScheme = base.hasPrefix("http://") ? base.dropFirst(7) : Substring(base)
        let authority = afterScheme.prefix { $0 != "/" }
        if reference.hasPrefix("/") { return "http://\(authority)\(reference)" }
        let path = afterScheme.dropFirst(authority.count)
        let directory = path.lastIndex(of: "/").map { path[...$0] } ?? "/"
        return "http://\(authority)\(directory)\(reference)"
    }

    /// The SOAP request body for `action` of `service` with its `arguments` (values escaped).
    public static func soapBody(action: String, service: String, arguments: [(String, String)] = []) -> [UInt8] {
        func escaped(_ text: String) -> String {
            text.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
        }
        let values = arguments.map { "<\($0.0)>\(escaped($0.1))</\($0.0)>" }.joined()
        return Array(
            ("<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                + "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:\(action) xmlns:u=\""
                + "\(service)\">\(values)</u:\(action)></s:Body></s:Envelope>\r\n").utf8)
    }

    /// The control URL and service type of the gateway's WAN connection service (search, description).
    public static func control(gateway: IPAddress, timeout: UInt64) -> Result<
        (url: String, service: String), DetectError
    > {
        let search = Detectors.ask(
            SocketAddress(address: gateway, port: 1900), UPnP.searchRequest, timeout: timeout, firstWait: 500,
            maximum: 8192
        ) { UPnP.location(ofSearchResponse: $0) }
        guard let search else {
            return .failure(DetectError("no UPnP IGD answer from \(gateway) within \(timeout) ms"))
        }
        let location: String
        switch search.flatMap({ UPnP.checked($0, gateway: gateway) }) {
        case .success(let url): location = url
        case .failure(let error): return .failure(error)
        }
        let description: HTTPClient.Response
        do {
            description = try HTTPClient.request(
                HTTPClient.Request(method: "GET", url: location, headers: [], body: []), timeout: timeout)
        } catch {
            return .failure(DetectError("the device description \(location): \(error)"))
        }
        guard description.status == 200 else {
            return .failure(DetectError("the device description \(location): HTTP \(description.status)"))
        }
        return UPnP.controlURL(description: description.body, location: location, gateway: gateway)
    }

    /// The address in a `GetExternalIPAddress` response, or the SOAP fault's reason.
    public static func externalAddress(status: Int, body: [UInt8]) -> Result<IPAddress, DetectError> {
        let root: XMLElement
        do {
            root = try XMLReader.parse(body)
        } catch {
            return .failure(DetectError("the router's SOAP reply (HTTP \(status)) is not readable XML: \(error)"))
        }
        if let fault = root.first("Fault") {
            let code = fault.first("errorCode")?.text.trimmingSpaces ?? fault.first("faultcode")?.text.trimmingSpaces
            let text =
                fault.first("errorDescription")?.text.trimmingSpaces ?? fault.first("faultstring")?.text.trimmingSpaces
            return .failure(DetectError("the router answered a SOAP fault: \(code ?? "?") \(text ?? "")"))
        }
        guard status == 200 else { return .failure(DetectError("the router answered HTTP \(status)")) }
        guard let text = root.first("NewExternalIPAddress")?.text.trimmingSpaces else {
            return .failure(DetectError("the router's reply has no NewExternalIPAddress"))
        }
        guard !text.isEmpty else { return .failure(DetectError("the router has no WAN address (an empty answer)")) }
        guard let address = IPAddress(text) else {
            return .failure(DetectError("the router's WAN address '\(text.prefix(64))' is not an IP address"))
        }
        return .success(address)
    }

    /// The whole exchange with the gateway, within `timeout` milliseconds per step.
    public static func externalAddress(gateway: IPAddress, timeout: UInt64 = 3_000) -> Result<IPAddress, DetectError> {
        let control: (url: String, service: String)
        switch UPnP.control(gateway: gateway, timeout: timeout) {
        case .success(let found): control = found
        case .failure(let error): return .failure(error)
        }
        return UPnP.call(control, action: "GetExternalIPAddress", timeout: timeout).flatMap { reply in
            UPnP.externalAddress(status: reply.status, body: reply.body)
        }
    }

    /// One SOAP action of the WAN connection service.
    static func call(
        _ control: (url: String, service: String), action: String, arguments: [(String, String)] = [],
        timeout: UInt64
    ) -> Result<HTTPClient.Response, DetectError> {
        do {
            return .success(
                try HTTPClient.request(
                    HTTPClient.Request(
                        method: "POST", url: control.url,
                        headers: [
                            ("Content-Type", "text/xml; charset=\"utf-8\""),
                            ("SOAPAction", "\"\(control.service)#\(action)\""),
                        ], body: UPnP.soapBody(action: action, service: control.service, arguments: arguments)),
                    timeout: timeout))
        } catch {
            return .failure(DetectError("\(action) at \(control.url): \(error)"))
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var text = self
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return text
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, _ replacement: String) -> String {
        self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
