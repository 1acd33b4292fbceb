import DynDNS
import Foundation
import TestSupport
import Testing
import ZoneModel

/// The pieces of the UPnP IGD client that read what a router sends: the XML reader, the SSDP reply, the
/// device description (miniupnpd's own, captured from it), the SOAP answer — each bad input a clear error.
@Suite struct UPnPTests {
    static let gateway = IPAddress("192.0.2.1")!

    @Test(.bug(id: "19")) func readsElementsTextAndEntities() throws {
        let root = try XMLReader.parse(
            Array(
                """
                \u{FEFF}<?xml version="1.0"?>\r\n<!-- a comment --><s:Envelope xmlns:s="x" a='>'><s:Body>\
                <u:R><NewExternalIPAddress> 11.22.33.44 </NewExternalIPAddress><T>a &amp; b &lt;&#x41;&#66;&gt;</T>\
                <E/><C><![CDATA[<raw>]]></C></u:R></s:Body></s:Envelope>\r\n
                """.utf8))
        #expect(root.name == "Envelope")
        #expect(root.first("NewExternalIPAddress")?.text == " 11.22.33.44 ")
        #expect(root.first("R")?.value("T") == "a & b <AB>")
        #expect(root.first("E")?.text == "")
        #expect(root.first("C")?.text == "<raw>")
        #expect(root.all("R").count == 1)
    }

    @Test(
        .bug(id: "19"),
        arguments: [
            ("", "no document element"), ("<a>", "<a> is never closed"), ("<a></b>", "</b> closes <a>"),
            ("</a>", "end tag </a> without a start tag"), ("<a/><b/>", "more than one document element"),
            ("text<a/>", "text outside the document element"), ("<a>&bogus;</a>", "unknown entity &bogus;"),
            ("<a>&amp</a>", "an unterminated entity reference"), ("<a><!-- </a>", "unterminated construct (no -->)"),
            ("<!DOCTYPE a [<!ENTITY x \"y\">]><a/>", "document type declarations are not accepted"),
            ("<a", "unterminated start tag"), ("<a>&#0;</a>", "unknown entity &#0;"), ("< >", "bad element name"),
        ])
    func refusesMalformedXML(text: String, error: String) {
        #expect(Result { try XMLReader.parse(Array(text.utf8)) }.failureDescription == error)
    }

    @Test(.bug(id: "19")) func boundsDepthElementsAndSize() {
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        #expect(Result { try XMLReader.parse(Array(deep.utf8)) }.failureDescription == "nested deeper than 32 levels")
        let wide = "<a>" + String(repeating: "<b/>", count: 5000) + "</a>"
        #expect(Result { try XMLReader.parse(Array(wide.utf8)) }.failureDescription == "more than 4096 elements")
        let large = [UInt8](repeating: 32, count: 300 * 1024)
        #expect(Result { try XMLReader.parse(large) }.failureDescription == "larger than 256 KiB")
    }

    @Test(.bug(id: "19")) func searchResponses() {
        let reply = Array(
            ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
                + "Location:  http://192.0.2.1:5000/rootDesc.xml \r\n\r\n").utf8)
        #expect(UPnP.location(ofSearchResponse: reply) == .success("http://192.0.2.1:5000/rootDesc.xml"))
        #expect(UPnP.location(ofSearchResponse: Array("NOTIFY * HTTP/1.1\r\n\r\n".utf8)) == nil)
        #expect(
            UPnP.location(ofSearchResponse: Array("HTTP/1.1 200 OK\r\nST: x\r\n\r\n".utf8))
                == .failure(DetectError("an SSDP reply without LOCATION")))
        #expect(
            UPnP.location(ofSearchResponse: [UInt8](repeating: 65, count: 9000))
                == .failure(DetectError("an SSDP reply larger than 8 KiB")))
    }

    @Test(.bug(id: "19")) func urlsMustStayOnTheGateway() {
        #expect(UPnP.checked("http://192.0.2.1:5000/x", gateway: Self.gateway) == .success("http://192.0.2.1:5000/x"))
        #expect(
            UPnP.checked("http://198.51.100.7/x", gateway: Self.gateway)
                == .failure(DetectError("http://198.51.100.7/x points away from the gateway 192.0.2.1: not followed")))
        #expect(
            UPnP.checked("http://router.example/x", gateway: Self.gateway)
                == .failure(DetectError("http://router.example/x points away from the gateway 192.0.2.1: not followed"))
        )
        #expect(
            UPnP.checked("https://192.0.2.1/x", gateway: Self.gateway)
                == .failure(DetectError("https://192.0.2.1/x is not an http:// URL on the LAN")))
    }

    /// miniupnpd's own description (captured from it): the WANIPConnection:2 control URL, made absolute.
    @Test(.bug(id: "19")) func miniupnpdDescription() throws {
        let description = Array(Fixtures.text("Tests/Fixtures/upnp/miniupnpd-rootDesc.xml").utf8)
        let found = UPnP.controlURL(
            description: description, location: "http://192.0.2.1:5000/rootDesc.xml", gateway: Self.gateway)
        let control = try found.get()
        #expect(control.url == "http://192.0.2.1:5000/ctl/IPConn")
        #expect(control.service == "urn:schemas-upnp-org:service:WANIPConnection:2")
        // The same description with its control URL moved off the LAN is refused.
        let moved = String(decoding: description, as: UTF8.self).replacingOccurrences(
            of: "<controlURL>/ctl/IPConn</controlURL>", with: "<controlURL>http://203.0.113.9/ctl</controlURL>")
        #expect(
            UPnP.controlURL(
                description: Array(moved.utf8), location: "http://192.0.2.1:5000/d.xml", gateway: Self.gateway
            )
            .failureDescription == "http://203.0.113.9/ctl points away from the gateway 192.0.2.1: not followed")
        #expect(
            UPnP.controlURL(description: Array("<root/>".utf8), location: "http://192.0.2.1/", gateway: Self.gateway)
                .failureDescription == "the router's description has no WANIPConnection or WANPPPConnection service")
    }

    @Test(.bug(id: "19")) func soapAnswersAndFaults() {
        func envelope(_ body: String) -> [UInt8] {
            Array("<s:Envelope xmlns:s=\"x\"><s:Body>\(body)</s:Body></s:Envelope>".utf8)
        }
        let good = envelope(
            "<u:GetExternalIPAddressResponse><NewExternalIPAddress>11.22.33.44</NewExternalIPAddress></u:GetExternalIPAddressResponse>"
        )
        #expect(UPnP.externalAddress(status: 200, body: good) == .success(IPAddress("11.22.33.44")!))
        let fault = envelope(
            "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError>"
                + "<errorCode>501</errorCode><errorDescription>Action Failed</errorDescription></UPnPError></detail></s:Fault>"
        )
        #expect(
            UPnP.externalAddress(status: 500, body: fault).failureDescription
                == "the router answered a SOAP fault: 501 Action Failed")
        let empty = envelope("<u:R><NewExternalIPAddress></NewExternalIPAddress></u:R>")
        #expect(
            UPnP.externalAddress(status: 200, body: empty).failureDescription
                == "the router has no WAN address (an empty answer)")
        let junk = envelope("<u:R><NewExternalIPAddress>not-an-address</NewExternalIPAddress></u:R>")
        #expect(
            UPnP.externalAddress(status: 200, body: junk).failureDescription
                == "the router's WAN address 'not-an-address' is not an IP address")
        #expect(
            UPnP.externalAddress(status: 200, body: Array("<html>".utf8)).failureDescription
                == "the router's SOAP reply (HTTP 200) is not readable XML: <html> is never closed")
    }
}

extension Result {
    /// The error's description, or nil on success.
    var failureDescription: String? {
        if case .failure(let error) = self { return "\(error)" }
        return nil
    }
}
