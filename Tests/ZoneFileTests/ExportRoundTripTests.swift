import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// `export` prints plain RFC 1035 text; parsing and compiling that text must give the same answers.
@Suite struct ExportRoundTripTests {
    static let cases: [(fixture: String, view: String)] = [
        "syntax.zone", "sites.zone", "include.zone", "delegation.zone",
    ]
    .flatMap { name in ["lan", "wan"].map { (name, $0) } }

    static let types: [RecordType] = [
        .a, .aaaa, .cname, .mx, .txt, .ns, .soa, .srv, .caa, .ptr, RecordType(rawValue: 65400), .any,
    ]

    @Test(arguments: cases)
    func exportParsesBackToTheSameAnswers(fixture: String, view viewName: String) throws {
        let original = try #require(Fixtures.compileFixture("ok", fixture).snapshot)
        let apex = Fixtures.apex(of: Fixtures.text("Tests/Fixtures/zones/ok/\(fixture)"))
        let view = try #require(original.view(named: viewName))
        let text = try #require(ZoneExporter.export(view, apex: apex))

        let reparsed = Fixtures.compile(zones: [("export.zone", "; apex: \(apex)\n" + text)], config: "view all *\n")
        #expect(reparsed.diagnostics.all.isEmpty, "\(reparsed.diagnostics.sorted.map(\.description))")
        let copy = try #require(reparsed.snapshot?.views.first)

        var names = Set(view.nodes.keys.filter { $0.isSubdomain(of: apex) })
        for name in Array(names) { if let child = try? name.prepending(Array("nx-child".utf8)) { names.insert(child) } }
        #expect(names.count > 4)
        for name in names {
            for type in Self.types {
                #expect(
                    Fixtures.answerLines(copy.lookup(name, type)) == Fixtures.answerLines(view.lookup(name, type)),
                    "\(name) \(type) in view \(viewName)")
            }
        }
    }
}
