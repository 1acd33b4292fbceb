import TLS
import Testing

/// Which certificate a client gets for the name it sends.
@Suite struct CertificateTableTests {
    static func table(fallback: String? = nil) -> CertificateTable<String> {
        var table = CertificateTable<String>()
        table.insert("www.example.com", "sites")
        table.insert("example.com", "sites")
        table.insert("*.w.example.com", "wild")
        table.insert("exact.w.example.com", "exact")
        if let fallback { table.setFallback(fallback) }
        return table
    }

    @Test(
        arguments: [
            ("www.example.com", "sites"),
            ("WWW.Example.COM", "sites"),
            ("www.example.com.", "sites"),
            ("example.com", "sites"),
            ("a.w.example.com", "wild"),
            ("exact.w.example.com", "exact"),
            ("w.example.com", nil),
            ("a.b.w.example.com", nil),
            ("other.example.com", nil),
            ("www.example.com.evil", nil),
            ("", nil),
            ("a..w.example.com", nil),
            ("bad name.example.com", nil),
        ] as [(String, String?)])
    func picksByName(name: String, expected: String?) {
        #expect(Self.table().lookup(name) == expected)
    }

    @Test func aClientWithoutAKnownNameGetsTheDefaultOrNothing() {
        #expect(Self.table().lookup(nil) == nil, "no default: no certificate, so the handshake ends in an alert")
        #expect(Self.table(fallback: "default").lookup(nil) == "default")
        #expect(Self.table(fallback: "default").lookup("unknown.example.org") == "default")
        #expect(Self.table(fallback: "default").lookup("www.example.com") == "sites")
    }

    @Test func theFirstCertificateForANameKeepsIt() {
        var table = CertificateTable<String>()
        var inserted = table.insert("a.example.com", "first")
        #expect(inserted)
        inserted = table.insert("A.example.com.", "second")
        #expect(!inserted)
        inserted = table.insert("*.example.com", "wild")
        #expect(inserted)
        inserted = table.insert("*.example.com", "again")
        #expect(!inserted)
        inserted = table.insert("a.*.example.com", "inner wildcard")
        #expect(!inserted)
        inserted = table.insert("*", "bare wildcard")
        #expect(!inserted)
        inserted = table.insert("", "empty")
        #expect(!inserted)
        #expect(table.lookup("a.example.com") == "first")
        #expect(table.names == ["a.example.com", "*.example.com"])
    }
}

/// ALPN: the server takes http/1.1 from the client's list, or nothing.
@Suite struct ALPNTests {
    static func list(_ names: [String]) -> [UInt8] { names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } }

    @Test(arguments: [
        (["h2", "http/1.1"], true),
        (["http/1.1"], true),
        (["h2"], false),
        (["http/1.0", "spdy/3"], false),
        ([], false),
    ])
    func choosesHTTP11(offered: [String], chosen: Bool) {
        let bytes = Self.list(offered)
        let range = bytes.withUnsafeBufferPointer { ALPN.select(ALPN.http11, from: $0) }
        #expect((range != nil) == chosen)
        if let range { #expect(Array(bytes[range]) == ALPN.http11) }
    }

    @Test(arguments: [[0], [9, 0x68], [2, 0x68], [8] + Array("http/1.".utf8)] as [[UInt8]])
    func aMalformedListChoosesNothing(bytes: [UInt8]) {
        #expect(bytes.withUnsafeBufferPointer { ALPN.select(ALPN.http11, from: $0) } == nil)
    }
}
