import Files
import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// `conf/*.conftest`: `#! file PATH MODE [empty|zone]` lines create files (a secret, unless they say
/// otherwise), then the config, `-----`, and the
/// diagnostics expected, one per line, exactly as `frontdoor check` prints them.
@Suite struct ConfigFixtureTests {
    static let fixtures = Fixtures.list("Tests/Fixtures/conf").filter { $0.hasSuffix(".conftest") }

    @Test func fixturesArePresent() {
        #expect(Self.fixtures.count >= 3)
    }

    @Test(arguments: fixtures)
    func configReportsExactlyItsExpectedDiagnostics(name: String) throws {
        let text = Fixtures.text("Tests/Fixtures/conf/\(name)")
        let parts = text.components(separatedBy: "\n-----\n")
        try #require(parts.count == 2, "\(name) needs one '-----' line")
        var files: [String: String] = [:]
        var modes: [String: UInt32] = [:]
        for line in parts[0].split(separator: "\n") where line.hasPrefix("#! file ") {
            let fields = line.split(separator: " ")
            let path = "/fixture/" + fields[2]
            // An optional fourth field says what the file holds: nothing, or zone data.
            switch fields.count > 4 ? fields[4] : "" {
            case "empty": files[path] = ""
            case "zone": files[path] = "$ORIGIN example.com.\n@ SOA ns hostmaster 1 2 3 4 5\n"
            default: files[path] = "secret\n"
            }
            modes[path] = UInt32(fields[3], radix: 8) ?? 0o600
        }
        files["/fixture/frontdoor.conf"] = parts[0]
        let memory = MemoryFiles(files, modes: modes)
        let (model, loaded) = ModelLoader.load(directory: "/fixture", files: memory)
        var mutable = model
        let result = Pipeline.finish(
            &mutable, diagnostics: loaded, inputs: CompileInputs(dateSerial: Fixtures.dateSerial))
        let printed = result.diagnostics.sorted.map { $0.description.replacingOccurrences(of: "/fixture/", with: "") }
        let expected = parts[1].split(separator: "\n").map(String.init)
        #expect(printed == expected)
    }
}
