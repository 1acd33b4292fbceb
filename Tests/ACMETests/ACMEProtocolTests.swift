import ACME
import DynDNS
import Foundation
import TestSupport
import Testing
import ZoneModel

/// The pure parts of the ACME client: encodings, keys, the CA's documents, the plan and the renewal policy.
@Suite struct ACMEProtocolTests {
    @Test(
        .bug(id: "16"),
        arguments: [
            ([UInt8](), ""), ([0xFB], "-w"), ([0xFB, 0xFF], "-_8"), ([0xFB, 0xFF, 0xBF], "-_-_"),
            (Array("hi?".utf8), "aGk_"),
        ])
    func base64URL(bytes: [UInt8], text: String) {
        #expect(Base64URL.encode(bytes) == text)
        #expect(Base64URL.decode(text) == bytes)
    }

    @Test(.bug(id: "16")) func base64URLRefusesOtherAlphabetsAndPadding() {
        #expect(Base64URL.decode("+w") == nil)
        #expect(Base64URL.decode("/w") == nil)
        #expect(Base64URL.decode("-w==") == nil)
        #expect(Base64URL.decode("a") == nil)
    }

    /// The JWK and its thumbprint (RFC 7638) agree with what the openssl command reads from the same key, and
    /// the ES256 signature verifies with openssl (converted to DER by hand here).
    @Test(.bug(id: "16")) func keyJWKThumbprintAndSignatureAgreeWithOpenSSL() throws {
        guard let openssl = Tool.find("openssl") else { return Tool.skip("openssl", package: "openssl") }
        let key = try ECKey.generate()
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(key.pem).write(to: URL(fileURLWithPath: directory + "/key.pem"))
        let text = try Tool.run(openssl, ["ec", "-in", directory + "/key.pem", "-noout", "-text"])
        // "pub:" is followed by the 65-byte point in hex, colon-separated over several lines.
        let afterPub = try #require(text.stdout.components(separatedBy: "pub:").last)
        let hex = afterPub.components(separatedBy: "ASN1 OID").first?.filter(\.isHexDigit) ?? ""
        let point = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
        }
        #expect(point.count == 65 && point[0] == 4, "\(text.stdout)")
        let jwk = Dictionary(uniqueKeysWithValues: key.jwk)
        #expect(jwk["x"] == Base64URL.encode(Array(point[1..<33])))
        #expect(jwk["y"] == Base64URL.encode(Array(point[33..<65])))
        #expect(
            key.jwkText == "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(jwk["x"] ?? "")\",\"y\":\"\(jwk["y"] ?? "")\"}")
        // The thumbprint: SHA-256 of that text, which openssl computes independently.
        try key.jwkText.write(toFile: directory + "/jwk", atomically: true, encoding: .utf8)
        let digest = try Tool.run(
            openssl, ["dgst", "-sha256", "-binary", "-out", directory + "/jwk.sha", directory + "/jwk"])
        #expect(digest.status == 0)
        let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/jwk.sha")))
        #expect(key.thumbprint == Base64URL.encode(expected))
        // The signature: r ‖ s as DER, verified by openssl with the public key.
        let message = Array("eyJhbGciOiJFUzI1NiJ9.eyJ0ZXN0Ijp0cnVlfQ".utf8)
        let signature = try key.sign(message)
        #expect(signature.count == 64)
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var value = Array(bytes.drop { $0 == 0 })
            if value.isEmpty { value = [0] }
            if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
            return [0x02, UInt8(value.count)] + value
        }
        let body = integer(signature[0..<32]) + integer(signature[32..<64])
        try Data([0x30, UInt8(body.count)] + body).write(to: URL(fileURLWithPath: directory + "/sig.der"))
        try Data(message).write(to: URL(fileURLWithPath: directory + "/message"))
        _ = try Tool.run(openssl, ["ec", "-in", directory + "/key.pem", "-pubout", "-out", directory + "/pub.pem"])
        let verified = try Tool.run(
            openssl,
            [
                "dgst", "-sha256", "-verify", directory + "/pub.pem", "-signature", directory + "/sig.der",
                directory + "/message",
            ])
        #expect(verified.stdout.contains("Verified OK"), "\(verified.stdout) \(verified.stderr)")
        // The key survives its PEM.
        #expect(try ECKey(pem: key.pem).thumbprint == key.thumbprint)
        #expect(throws: ACMECryptoError.self) { try ECKey(pem: Array("not a key".utf8)) }
    }

    /// The CSR names every identifier, and openssl reads it.
    @Test(.bug(id: "16")) func certificateRequestCarriesTheNames() throws {
        guard let openssl = Tool.find("openssl") else { return Tool.skip("openssl", package: "openssl") }
        let der = try ECKey.generate().certificateRequest(names: ["example.com", "*.example.com", "*.w.example.com"])
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(der).write(to: URL(fileURLWithPath: directory + "/csr.der"))
        let text = try Tool.run(
            openssl, ["req", "-inform", "DER", "-in", directory + "/csr.der", "-noout", "-text", "-verify"])
        #expect(text.stdout.contains("DNS:example.com, DNS:*.example.com, DNS:*.w.example.com"), "\(text.stdout)")
        #expect(text.stdout.contains("CN = example.com"), "\(text.stdout)")
        #expect(text.stderr.contains("verify OK") || text.stdout.contains("verify OK"), "\(text.stderr)")
    }

    /// RFC 9773 §4.1's example: authority key identifier 69:88:5B:..., serial 0x87654321 →
    /// "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"; made with openssl, read back by IssuedCertificate.
    @Test(.bug(id: "16")) func renewalIdentifierMatchesRFC9773() throws {
        guard let openssl = Tool.find("openssl") else { return Tool.skip("openssl", package: "openssl") }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ski = "69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4"
        var outcome = try Tool.run(
            openssl,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                "/CN=ARI CA", "-keyout", directory + "/ca.key", "-out", directory + "/ca.crt", "-addext",
                "subjectKeyIdentifier=\(ski)", "-addext", "basicConstraints=critical,CA:TRUE",
            ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        outcome = try Tool.run(
            openssl,
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=leaf",
                "-keyout", directory + "/leaf.key", "-out", directory + "/leaf.csr",
            ])
        try "subjectAltName=DNS:a.example,DNS:*.b.example\nauthorityKeyIdentifier=keyid:always\n".write(
            toFile: directory + "/ext", atomically: true, encoding: .utf8)
        outcome = try Tool.run(
            openssl,
            [
                "x509", "-req", "-in", directory + "/leaf.csr", "-CA", directory + "/ca.crt", "-CAkey",
                directory + "/ca.key",
                "-set_serial", "0x87654321", "-days", "3", "-extfile", directory + "/ext", "-out",
                directory + "/leaf.crt",
            ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let pem = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/leaf.crt")))
        let issued = try IssuedCertificate(pem: pem)
        #expect(issued.renewalID == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        #expect(issued.names == ["a.example", "*.b.example"])
        #expect(issued.notAfter - issued.notBefore == 3 * 86_400)
        #expect(throws: ACMECryptoError.self) { try IssuedCertificate(pem: Array("junk".utf8)) }
    }

    @Test(.bug(id: "16")) func problemDocuments() {
        let json = JSON.parse(
            Array(
                """
                {"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Some names were refused",
                 "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",
                 "identifier":{"type":"dns","value":"x.example.com"}}]}
                """.utf8))
        let problem = ACMEProblem(json: json ?? .null, status: 400, retryAfter: 30)
        #expect(problem.type == "rejectedIdentifier")
        #expect(
            problem.description
                == "rejectedIdentifier (HTTP 400): Some names were refused [dns:x.example.com: caa: CAA forbids]")
        #expect(problem.retryAfter == 30)
        // Not ACME's namespace: kept whole.
        #expect(ACMEProblem(json: .object([("type", .string("about:blank"))]), status: 500).type == "about:blank")
        #expect(ACMEError.problem(problem).problemType == "rejectedIdentifier")
        #expect(ACMEError.unreachable("x").problemType == nil)
    }

    @Test(.bug(id: "16")) func documentsWithoutTheirRequiredMembersAreRefused() throws {
        #expect(throws: ACMEError.self) { try ACMEDirectory(json: .object([("newNonce", .string("u"))])) }
        #expect(throws: ACMEError.self) { try ACMEOrder(json: .object([("status", .string("done"))])) }
        #expect(throws: ACMEError.self) { try ACMEOrder(json: .object([("status", .string("ready"))])) }
        #expect(throws: ACMEError.self) { try ACMEAuthorization(json: .object([("status", .string("pending"))])) }
        #expect(throws: ACMEError.self) { try RenewalWindow(json: .object([])) }
        let window = JSON.parse(
            Array(#"{"suggestedWindow":{"start":"2026-12-05T00:00:00Z","end":"2026-12-06T00:00:00.5+01:00"}}"#.utf8))
        let parsed = try RenewalWindow(json: window ?? .null)
        #expect(parsed == RenewalWindow(start: 1_796_428_800, end: 1_796_511_600))
        // A window that ends before it starts.
        let backwards = JSON.parse(
            Array(#"{"suggestedWindow":{"start":"2026-12-06T00:00:00Z","end":"2026-12-05T00:00:00Z"}}"#.utf8))
        #expect(throws: ACMEError.self) { try RenewalWindow(json: backwards ?? .null) }
    }

    @Test(
        .bug(id: "16"),
        arguments: [
            ("1970-01-01T00:00:00Z", 0), ("2026-12-05T10:54:34Z", 1_796_468_074),
            ("2000-02-29T12:00:00.123Z", 951_825_600),
            ("2026-12-05T10:54:34-02:30", 1_796_477_074),
        ])
    func rfc3339(text: String, seconds: Int) {
        #expect(RFC3339.seconds(text) == seconds)
        if !text.contains(".") && text.hasSuffix("Z") { #expect(RFC3339.text(seconds) == text) }
    }

    @Test(
        .bug(id: "16"),
        arguments: ["", "2026-12-05", "2026-13-05T00:00:00Z", "2026-12-05T00:00:00", "2026-12-05 00:00:00Z"])
    func rfc3339Refuses(text: String) {
        #expect(RFC3339.seconds(text) == nil)
    }

    @Test(.bug(id: "16")) func keyAuthorization() {
        // The value is base64url(SHA-256("token.thumbprint")): 43 characters, no padding.
        let value = KeyAuthorization.dnsValue(token: "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", thumbprint: "abc")
        #expect(value.count == 43 && !value.contains("="))
        #expect(KeyAuthorization.text(token: "t", thumbprint: "p") == "t.p")
        #expect(KeyAuthorization.validToken("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"))
        #expect(!KeyAuthorization.validToken("../../etc/passwd-is-long-enough-yes"))
        #expect(!KeyAuthorization.validToken("short"))
    }
}

/// Which certificates the sites get, where each proof goes, and when they renew.
@Suite struct CertificatePlanTests {
    static func names(_ texts: [String]) -> [DomainName] { texts.compactMap { try? DomainName($0 + ".") } }
    /// Zones Frontdoor serves publicly.
    static func own(_ texts: [String]) -> [DomainName: ChallengeRoute] {
        Dictionary(uniqueKeysWithValues: Self.names(texts).map { ($0, ChallengeRoute.ownZone(apex: $0)) })
    }

    @Test(.bug(id: "16")) func zonesUpdatedElsewhereAndHTTPZones() {
        let org = try? DomainName("example.org.")
        var zones = Self.own(["example.com"])
        if let org { zones[org] = .dnsUpdate(provider: "primary", zone: org) }
        let plan = CertificatePlan.plan(
            sites: Self.names(["www.example.org", "a.example.com", "b.example.net"]), zones: zones, perSite: false)
        #expect(
            plan.map(\.names) == [
                ["example.com", "*.example.com"], ["b.example.net"], ["example.org", "*.example.org"],
            ])
        #expect(plan[2].route(for: "*.example.org") == org.map { .dnsUpdate(provider: "primary", zone: $0) })
        #expect(plan[1].route(for: "b.example.net") == .http)
    }

    @Test(.bug(id: "16")) func oneWildcardCertificatePerZone() {
        let plan = CertificatePlan.plan(
            sites: Self.names([
                "www.example.com", "nas.example.com", "x.deep.example.com", "y.deep.example.com", "app.example.org",
                "printer.home.arpa", "example.net",
            ]),
            zones: Self.own(["example.com", "example.org", "example.net"]), perSite: false)
        #expect(
            plan.map(\.names) == [
                ["example.com", "*.example.com", "*.deep.example.com"], ["example.net", "*.example.net"],
                ["example.org", "*.example.org"],
            ])
        let apex = try? DomainName("example.com.")
        #expect(plan[0].route(for: "*.deep.example.com") == apex.map { .ownZone(apex: $0) })
        #expect(plan[0].route(for: "example.com") == apex.map { .ownZone(apex: $0) })
        #expect(plan[0].name == "example.com")
    }

    @Test(.bug(id: "16")) func perSiteHTTPForForeignZonesAndCoveredNames() {
        let plan = CertificatePlan.plan(
            sites: Self.names(["www.example.com", "shop.elsewhere.example", "nas.lan", "ops.example.com"]),
            zones: Self.own(["example.com", "sub.example.com"]), perSite: true, covered: { $0 == "ops.example.com" })
        // In DNS order (by the last label first).
        #expect(plan.map(\.name) == ["www.example.com", "shop.elsewhere.example"])
        #expect(plan[1].route(for: "shop.elsewhere.example") == .http)
        #expect(plan[0].names == ["www.example.com"])
        // The longest served apex holds the proof.
        let deep = CertificatePlan.plan(
            sites: Self.names(["a.sub.example.com"]), zones: Self.own(["example.com", "sub.example.com"]),
            perSite: true)
        #expect(
            deep[0].route(for: "a.sub.example.com")
                == (try? DomainName("sub.example.com.")).map { ChallengeRoute.ownZone(apex: $0) })
    }

    @Test(.bug(id: "16")) func perSiteForOneZone() {
        let plan = CertificatePlan.plan(
            sites: Self.names(["a.example.com", "b.example.com", "c.example.org"]),
            zones: Self.own(["example.com", "example.org"]), perSite: false, perSiteZones: Self.names(["example.org"]))
        #expect(plan.map(\.names) == [["example.com", "*.example.com"], ["c.example.org"]])
    }

    @Test(.bug(id: "16")) func challengeOwners() {
        #expect(CertificatePlan.challengeOwner("*.example.com")?.description == "_acme-challenge.example.com.")
        #expect(CertificatePlan.challengeOwner("example.com")?.description == "_acme-challenge.example.com.")
        #expect(CertificatePlan.isPublic(try! DomainName("x.example.com.")))
        #expect(!CertificatePlan.isPublic(try! DomainName("printer.home.arpa.")))
    }

    @Test(.bug(id: "16")) func renewalTimes() {
        let certificate = IssuedCertificate(notBefore: 1_000, notAfter: 91_000, names: [], renewalID: nil)
        #expect(RenewalPolicy.renewalTime(certificate, window: nil, random: 0.5) == 61_000)
        let window = RenewalWindow(start: 50_000, end: 60_000)
        #expect(RenewalPolicy.renewalTime(certificate, window: window, random: 0) == 50_000)
        #expect(RenewalPolicy.renewalTime(certificate, window: window, random: 0.5) == 55_000)
        #expect(RenewalPolicy.renewalTime(certificate, window: window, random: 1) < 60_000)
    }

    @Test(.bug(id: "16"), arguments: [(1, 60), (2, 120), (3, 240), (10, 30_720), (11, 43_200), (40, 43_200)])
    func backoffDoublesToACap(failures: Int, seconds: Int) {
        #expect(RenewalPolicy.backoff(failures: failures, random: 0.5) == seconds)
        #expect(RenewalPolicy.backoff(failures: failures, random: 0) == seconds * 8 / 10)
        #expect(RenewalPolicy.backoff(failures: failures, random: 1) == seconds * 12 / 10)
    }

    @Test(.bug(id: "16")) func backoffHonoursTheCA() {
        #expect(RenewalPolicy.backoff(failures: 1, random: 0.5, retryAfter: 3600) == 3600)
        #expect(RenewalPolicy.backoff(failures: 12, random: 0.5, retryAfter: 10) == 43_200)
    }
}
