import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Zone fixtures: `ok/*.zone` compile cleanly to the export in `.out`; each line of `bad/*.zone` marked
/// `; expect-error: CODE` (or `expect-warning`) yields exactly that diagnostic on that line, and nothing else.
@Suite struct FixtureTests {
    static let okFixtures = Fixtures.list("Tests/Fixtures/zones/ok").filter { $0.hasSuffix(".zone") }
    static let badFixtures = Fixtures.list("Tests/Fixtures/zones/bad").filter { $0.hasSuffix(".zone") }

    @Test func fixturesArePresent() {
        #expect(Self.okFixtures.count >= 4)
        #expect(Self.badFixtures.count >= 4)
    }

    @Test(arguments: okFixtures)
    func goodFixtureCompilesToItsExpectedZones(name: String) throws {
        let result = Fixtures.compileFixture("ok", name)
        #expect(result.diagnostics.all.isEmpty, "\(result.diagnostics.sorted.map(\.description))")
        let snapshot = try #require(result.snapshot)
        let apex = Fixtures.apex(of: Fixtures.text("Tests/Fixtures/zones/ok/\(name)"))
        let actual = snapshot.views.compactMap { ZoneExporter.export($0, apex: apex) }.joined()
        let expectedPath = "Tests/Fixtures/zones/ok/" + name.replacingOccurrences(of: ".zone", with: ".out")
        let expected = Fixtures.text(expectedPath)
        #expect(actual == expected, "\(expectedPath) differs; the compiled text is:\n\(actual)")
    }

    /// (line, severity, code) triples marked in a bad fixture.
    static func expectations(_ text: String) -> Set<String> {
        var result: Set<String> = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for severity in ["error", "warning"] {
                guard let range = line.range(of: "expect-\(severity): ") else { continue }
                let code = line[range.upperBound...].prefix { !$0.isWhitespace }
                result.insert("\(index + 1) \(severity) \(code)")
            }
        }
        return result
    }

    @Test(arguments: badFixtures)
    func badFixtureReportsEachMarkedProblemAtItsLine(name: String) {
        let text = Fixtures.text("Tests/Fixtures/zones/bad/\(name)")
        let result = Fixtures.compileFixture("bad", name)
        #expect(result.snapshot == nil, "a model with errors must not be published")
        let actual = Set(
            result.diagnostics.all.map { "\($0.location.line) \($0.severity.rawValue) \($0.code.rawValue)" })
        let expected = Self.expectations(text)
        #expect(expected.subtracting(actual).isEmpty, "missing: \(expected.subtracting(actual).sorted())")
        #expect(
            actual.subtracting(expected).isEmpty,
            "unexpected: \(result.diagnostics.sorted.filter { actual.subtracting(expected).contains("\($0.location.line) \($0.severity.rawValue) \($0.code.rawValue)") }.map(\.description))"
        )
        for diagnostic in result.diagnostics.all {
            let printed = diagnostic.description
            #expect(printed.hasPrefix("/fixture/\(name):\(diagnostic.location.line):\(diagnostic.location.column): "))
            #expect(printed.contains(": \(diagnostic.severity.rawValue): "))
        }
    }

    @Test func fileWithFiveDistinctErrorsReportsAllFive() {
        let result = Fixtures.compileFixture("bad", "five-errors.zone")
        let errors = result.diagnostics.errors
        #expect(errors.count == 5, "\(errors.map(\.description))")
        #expect(Set(errors.map(\.code)).count == 5)
    }

    @Test func diagnosticsQuoteTheTokenAndPointAtItsColumn() {
        let result = Fixtures.compile(zones: [
            ("z.zone", "$TTL 300\n@ NS ns1\nwww  AAA 192.0.2.1\nmail A 192.0.2.300\nns1 A 192.0.2.53\n")
        ])
        let printed = result.diagnostics.sorted.map(\.description)
        #expect(
            printed == [
                "/fixture/z.zone:3:6: error: unknown record type 'AAA'",
                "/fixture/z.zone:4:8: error: bad IPv4 address '192.0.2.300'",
            ])
    }
}
