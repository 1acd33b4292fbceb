import Foundation
import TLS
import TestSupport
import Testing

/// Loading certificates: what is served, and a clear error for what cannot be.
@Suite struct TLSServerTests {
    @Test func servesTheNamesOfEachCertificate() throws {
        guard let authority = try TestCertificates() else { return }
        try authority.issue("sites", names: ["www.example.com", "example.com"])
        try authority.issue("wild", names: ["*.w.example.com"], rsa: true)
        let server = try TLSServer(directory: authority.path("certs"), fallback: nil)
        #expect(server.table.names == ["example.com", "www.example.com", "*.w.example.com"])
        #expect(server.table.lookup("a.w.example.com")?.origin.hasSuffix("/wild.crt") == true)
        #expect(server.table.lookup("nope.example.com") == nil)
        let sites = try #require(server.table.lookup("www.example.com"))
        #expect((6...7).contains(sites.daysLeft), "issued for 7 days: \(sites.daysLeft)")
        #expect(sites.issuer.contains("Frontdoor Test CA"))
        let withDefault = try TLSServer(directory: authority.path("certs"), fallback: "www.example.com")
        #expect(withDefault.table.lookup("nope.example.com")?.origin.hasSuffix("/sites.crt") == true)
    }

    @Test func refusesWhatCannotBeServedWithTheReason() throws {
        guard let authority = try TestCertificates() else { return }
        let one = try authority.issue("one", names: ["one.example.com"], into: "a")
        let two = try authority.issue("two", names: ["two.example.com"], into: "b")
        try authority.issue("plain", names: [], into: "c")
        func problem(_ body: () throws -> Void) -> String {
            do {
                try body()
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(
            problem { _ = try TLSServer(certificates: [CertificateFiles(chain: one.chain, key: two.key)]) }
                .contains("does not belong to"))
        #expect(problem { _ = try TLSServer(directory: authority.path("c"), fallback: nil) }.contains("subjectAltName"))
        #expect(
            problem { _ = try TLSServer(certificates: [CertificateFiles(chain: one.key, key: one.key)]) }
                .contains("not a PEM certificate chain"))
        #expect(
            problem { _ = try TLSServer(directory: authority.path("a"), fallback: "x.example.com") }.contains(
                "x.example.com"))
        #expect(
            problem { _ = try TLSServer(directory: authority.path("missing"), fallback: nil) }.contains(
                "cannot be listed"))
        try FileManager.default.removeItem(atPath: two.key)
        #expect(
            problem { _ = try TLSServer(directory: authority.path("b"), fallback: nil) }.contains("no key beside it"))
        try FileManager.default.createDirectory(atPath: authority.path("empty"), withIntermediateDirectories: true)
        #expect(
            problem { _ = try TLSServer(directory: authority.path("empty"), fallback: nil) }.contains("no NAME.crt"))
    }
}
