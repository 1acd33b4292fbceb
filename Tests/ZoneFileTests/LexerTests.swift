import TestSupport
import Testing
import ZoneFile
import ZoneModel

@Suite struct LexerTests {
    func entries(_ text: String) -> ([[String]], Diagnostics) {
        var diagnostics = Diagnostics()
        let entries = Lexer.entries(of: Array(text.utf8), file: "t.zone", diagnostics: &diagnostics)
        return (entries.map { $0.tokens.map(\.string) }, diagnostics)
    }

    @Test func parenthesesJoinLinesIntoOneEntry() {
        let (entries, diagnostics) = self.entries("@ SOA ns host (\n 1 ; serial\n 2 3\n 4 5 )\nwww A 192.0.2.1\n")
        #expect(entries == [["@", "SOA", "ns", "host", "1", "2", "3", "4", "5"], ["www", "A", "192.0.2.1"]])
        #expect(diagnostics.all.isEmpty)
    }

    @Test func quotedStringsKeepSpacesSemicolonsAndEscapes() {
        let (entries, _) = self.entries("t TXT \"a ; b\" \"c\\\"d\" plain\\ word\n")
        #expect(entries == [["t", "TXT", "a ; b", "c\\\"d", "plain\\ word"]])
    }

    @Test func leadingWhiteSpaceMeansTheOwnerIsOmitted() {
        var diagnostics = Diagnostics()
        let entries = Lexer.entries(
            of: Array("www A 192.0.2.1\n  AAAA 2001:db8::1\n".utf8), file: "t", diagnostics: &diagnostics)
        #expect(entries.map(\.ownerOmitted) == [false, true])
        #expect(entries.map(\.line) == [1, 2])
    }

    @Test func commentsAndBlankLinesYieldNothing() {
        let (entries, diagnostics) = self.entries("; only a comment\n\n   \t\n; another\n")
        #expect(entries.isEmpty && diagnostics.all.isEmpty)
    }

    @Test func tokenColumnsAreOneBased() {
        var diagnostics = Diagnostics()
        let entries = Lexer.entries(of: Array("www  A\t192.0.2.1\n".utf8), file: "t", diagnostics: &diagnostics)
        #expect(entries.first?.tokens.map(\.column) == [1, 6, 8])
    }

    @Test func crlfLineEndingsWork() {
        let (entries, diagnostics) = self.entries("a A 192.0.2.1\r\nb A 192.0.2.2\r\n")
        #expect(entries == [["a", "A", "192.0.2.1"], ["b", "A", "192.0.2.2"]])
        #expect(diagnostics.all.isEmpty)
    }

    @Test(arguments: [
        ("t TXT \"open\n", DiagnosticCode.unterminatedString),
        ("t A ( 192.0.2.1\n", .unbalancedParenthesis),
        ("t A 192.0.2.1 )\n", .unbalancedParenthesis),
        ("t A 192.0.2.1 \\\n", .badEscape),
        ("t A \u{01}192.0.2.1\n", .unexpectedToken),
    ])
    func lexicalErrorsAreReportedAndMarkTheEntry(text: String, code: DiagnosticCode) {
        var diagnostics = Diagnostics()
        let entries = Lexer.entries(of: Array(text.utf8), file: "t", diagnostics: &diagnostics)
        #expect(diagnostics.all.map(\.code) == [code])
        #expect(!entries.isEmpty && entries.allSatisfy { $0.damaged })
    }

    /// Random and mutated input never traps or hangs the lexer or the parser (the fuzzer goes further).
    @Test func arbitraryBytesNeverCrashTheParser() {
        var generator = SplitMix(seed: 0x5eed)
        let seed = Array(Fixtures.text("Tests/Fixtures/zones/ok/syntax.zone").utf8)
        let alphabet = Array("\"();\\\n\t $@.*0123456789ABCaINSOA#".utf8)
        for round in 0..<400 {
            var bytes = seed
            for _ in 0..<(1 + round % 16) {
                let index = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[index] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: index)
                default: bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            _ = Fixtures.compile(zones: [("r.zone", text)])
        }
    }
}

@Suite struct TTLTests {
    @Test(arguments: [
        ("300", UInt32(300)), ("1h30m", 5400), ("2w", 1_209_600), ("1D", 86400), ("0", 0),
        ("2147483647", 2_147_483_647),
    ])
    func parsesSecondsAndUnits(text: String, expected: UInt32) {
        #expect(TTLText.parse(Array(text.utf8)) == expected)
    }

    @Test(arguments: ["2147483648", "999999999999w999999999999w999999999999w999999999999w", "1x", "h", "1h1x"])
    func rejectsWhatIsTooLargeOrNotATTL(text: String) {
        #expect(TTLText.parse(Array(text.utf8)) == nil)
    }
}
