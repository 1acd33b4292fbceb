import Testing
import ZoneModel

@Suite struct DomainNameTests {
    let origin = try! DomainName("home.arpa.")

    @Test(arguments: [
        ("www", "www.home.arpa."),
        ("www.example.com.", "www.example.com."),
        ("@", "home.arpa."),
        ("WWW.Home.Arpa.", "www.home.arpa."),
        ("a\\.b", "a\\.b.home.arpa."),
        ("\\065bc", "abc.home.arpa."),
        ("sp\\ ace", "sp\\032ace.home.arpa."),
        ("*.lab", "*.lab.home.arpa."),
        (".", "."),
    ])
    func parsesPresentationFormat(text: String, expected: String) throws {
        let name = try DomainName(parsing: Array(text.utf8), origin: self.origin)
        #expect(name.description == expected)
    }

    @Test(arguments: [
        ("a..b", NameError.emptyLabel),
        (".a", NameError.emptyLabel),
        ("bad\\256", NameError.badEscape),
        ("bad\\12", NameError.badEscape),
        ("end\\", NameError.badEscape),
        (String(repeating: "a", count: 64) + ".", NameError.labelTooLong(length: 64)),
    ])
    func rejectsBadNames(text: String, error: NameError) {
        #expect(throws: error) { try DomainName(parsing: Array(text.utf8), origin: self.origin) }
    }

    @Test func enforcesTheWholeNameLimitOf255Octets() throws {
        let label = String(repeating: "a", count: 63)
        // Four 63-octet labels: 4 * 64 + 1 = 257 octets on the wire.
        #expect(throws: NameError.nameTooLong(length: 257)) {
            try DomainName([label, label, label, label].joined(separator: ".") + ".")
        }
        // 3 * 64 + 62 + 1 = 255 octets: the largest legal name.
        let largest = try DomainName(
            [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".") + ".")
        #expect(largest.wire.count == 255)
    }

    @Test func relativeNameWithoutOriginIsRefused() {
        #expect(throws: NameError.relativeWithoutOrigin) { try DomainName(parsing: Array("www".utf8), origin: nil) }
    }

    @Test func subdomainRespectsLabelBoundaries() throws {
        let apex = try DomainName("example.com.")
        #expect(try DomainName("www.example.com.").isSubdomain(of: apex))
        #expect(apex.isSubdomain(of: apex))
        #expect(!(try DomainName("wwwexample.com.").isSubdomain(of: apex)))
        #expect(!(try DomainName("example.org.").isSubdomain(of: apex)))
        #expect(apex.isSubdomain(of: .root))
    }

    @Test func comparesWithoutCase() throws {
        #expect(try DomainName("WWW.Example.COM.") == DomainName("www.example.com."))
    }

    @Test func canonicalOrderFollowsRFC4034() throws {
        // RFC 4034 §6.1's own example order.
        let names = [
            "example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.",
            "\\001.z.example.", "*.z.example.", "\\200.z.example.",
        ]
        let parsed = try names.map { try DomainName($0) }
        #expect(parsed.shuffled().sorted() == parsed)
    }

    @Test func printsRelativeToAnOrigin() throws {
        #expect(try DomainName("www.home.arpa.").relativeDescription(to: self.origin) == "www")
        #expect(self.origin.relativeDescription(to: self.origin) == "@")
        #expect(try DomainName("www.example.").relativeDescription(to: self.origin) == "www.example.")
    }
}
