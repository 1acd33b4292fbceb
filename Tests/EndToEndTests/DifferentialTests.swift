import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// Issue 14: Frontdoor against NSD, Knot and BIND serving the same zone (Frontdoor's own export of it): every
/// name × every type, in random letter case, names below the cut and under wildcards, over UDP with and
/// without EDNS and over TCP. Each answer (status, AA, answer and authority sections) must equal what the
/// majority of the three gives, or be one of the differences the README lists with the RFC that allows it.
@Suite(.serialized) struct DifferentialTests {
    static let key =
        "AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8zlj65KYatR5wBWMrh18TYzK/ig6Y1t5YTWCO68bynorpNu9fqNFALX7bVl9/gybA0v0EhF+dgXmoUfRX7ksMGgBvtfa2/Y9a3klXNLqkTszIQ4PEMVCjtryl19Be9/PkFeC9ITjgMRQsQhmB39eyMYnal+f3bUxKk4fq7cuEU0dbRpue4H/N6jPucXWOwiMAkTJhghqgy+o9FfIp+tR/emKao94/wpVXDcPf5B18j7xz2SvTTxiuqCzCMtsxnikZHcoh1j4g+Y1B8zIMIvrEM+pZGhh/Yuf4RwCBgaYCi9hpiMWVvS4WBzx0/lU="
    static let digest = "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"

    /// One zone with every type of issue 14 point 2, wildcards, a CNAME into a wildcard, a delegation with DS,
    /// empty non-terminals, CNAME chains in and out of the zone.
    static let zone = """
        $ORIGIN diff.example.
        $TTL 300
        @ NS ns1
        @ NS ns2
        ns1 A 192.0.2.53
        ns2 AAAA 2001:db8::53
        @ MX 10 mail
        @ TXT "v=spf1 mx -all"
        @ CAA 0 issue "letsencrypt.org"
        @ DNSKEY 257 3 8 \(key)
        @ CDNSKEY 257 3 8 \(key)
        @ CDS 20326 8 2 \(digest)
        @ HTTPS 1 . alpn="h2,h3" ipv4hint=192.0.2.80 ipv6hint=2001:db8::80
        @ LOC 52 22 23.000 N 4 53 32.000 E -2.00m 1m 10000m 10m
        mail A 192.0.2.25
        mail AAAA 2001:db8::25
        mail SMIMEA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
        mail OPENPGPKEY \(key)
        www A 192.0.2.80
        www AAAA 2001:db8::80
        _443._tcp.www TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
        host HINFO "PC-Intel" "Linux"
        host RP admin.diff.example. txt.diff.example.
        host SSHFP 4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789
        host A 192.0.2.10
        txt TXT "contact"
        sip NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.diff.example.
        _sip._udp SRV 10 5 5060 host.diff.example.
        _http._tcp URI 10 1 "http://www.diff.example/path"
        cert CERT PKIX 12345 8 \(key)
        svc SVCB 1 www.diff.example. alpn=h2 port=8443 mandatory=alpn
        alias SVCB 0 www.diff.example.
        alias HTTPS 0 www.diff.example.
        loc LOC 42 21 54 N 71 06 18 W -24m 30m
        10.2.0.192 PTR www.diff.example.
        child NS ns.child
        child NS ns.elsewhere.example.
        ns.child A 192.0.2.54
        child DS 20326 8 2 \(digest)
        nods NS ns.elsewhere.example.
        *.wild A 192.0.2.99
        *.wild TXT "wildcard"
        cwild CNAME x.wild
        cwww CNAME www
        chain CNAME cwww
        out CNAME www.elsewhere.example.
        a.b.c.ent A 192.0.2.77
        """

    static let types = [
        "A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "PTR", "SRV", "CAA", "HINFO", "RP", "NAPTR", "CERT", "DS",
        "DNSKEY", "CDS", "CDNSKEY", "SSHFP", "TLSA", "SMIMEA", "OPENPGPKEY", "URI", "SVCB", "HTTPS", "LOC", "ANY",
    ]

    /// What is compared: the status, whether AA is set, and the answer and authority sections (owners folded
    /// to lower case: the letters of the question are echoed differently, and case carries no meaning).
    struct Outcome: Hashable, CustomStringConvertible {
        var status: String
        var authoritative: Bool
        var answer: [String]
        var authority: [String]
        var additional: [String]

        init(_ dig: Dig) {
            // Names anywhere in a record may come back in the question's letters (compression pointers into
            // it): everything outside quoted strings is folded.
            func fold(_ lines: [String]) -> [String] {
                lines.map { line in
                    var quoted = false
                    return String(
                        line.map { character -> Character in
                            if character == "\"" { quoted.toggle() }
                            return quoted ? character : Character(character.lowercased())
                        })
                }.sorted()
            }
            self.status = dig.status
            self.authoritative = dig.flags.contains("aa")
            self.answer = fold(dig.answer)
            // The zone's NS beside a positive answer is optional (RFC 2181 §6.1 leaves it to the server): NSD
            // and BIND add it, Knot and Frontdoor do not (README). Referrals and negative answers are compared.
            let authority = fold(dig.authority)
            let kept = self.answer.isEmpty ? authority : authority.filter { !$0.contains(" 300 in ns ") }
            self.authority = kept
            // The addresses of those name servers go with them.
            let dropped = Set(
                authority.filter { !kept.contains($0) }.compactMap { $0.split(separator: " ").last.map(String.init) })
            self.additional = fold(dig.additional).filter { !dropped.contains(String($0.split(separator: " ")[0])) }
        }

        var description: String {
            "\(self.status)\(self.authoritative ? " aa" : "") answer \(self.answer) authority \(self.authority) "
                + "additional \(self.additional)"
        }
    }

    @Test(.bug(id: "14")) func answersMatchTheMajorityOfNSDKnotAndBIND() throws {
        let compiled = Fixtures.compile(
            zones: [("diff.zone", "; apex: diff.example.\n" + Self.zone)], config: "view wan *\n")
        let snapshot = try #require(compiled.snapshot, "\(compiled.diagnostics.sorted.map(\.description))")
        let view = try #require(snapshot.view(named: "wan"))
        let exported = try #require(exportZone(view, try DomainName("diff.example.")))
        let server = try FrontdoorDNS(
            zones: [("diff.zone", "; apex: diff.example.\n" + Self.zone)], config: "view wan *\n")
        defer { withExtendedLifetime(server) {} }
        var references: [(String, UInt16)] = []
        let nsd = try NSDServer(zones: [("diff.example.", exported)])
        if let nsd { references.append(("NSD", nsd.port)) }
        let knot = try ReferenceServer(.knot, zones: [("diff.example.", exported)])
        if let knot { references.append(("Knot", knot.port)) }
        let bind = try ReferenceServer(.bind, zones: [("diff.example.", exported)])
        if let bind { references.append(("BIND", bind.port)) }
        defer { withExtendedLifetime((nsd, knot, bind)) {} }
        guard references.count >= 2 else { return Tool.skip("two of nsd, knotd, named", package: "nsd knot bind9") }

        var generator = SplitMix(seed: 14)
        func randomCase(_ name: String) -> String {
            String(name.map { Bool.random(using: &generator) ? Character($0.uppercased()) : $0 })
        }
        var names = view.nodes.keys.map(\.description)
        names += [
            "diff.example.", "nothing.diff.example.", "x.wild.diff.example.", "deep.x.wild.diff.example.",
            "below.child.diff.example.", "ns.child.diff.example.", "b.c.ent.diff.example.", "c.ent.diff.example.",
            "ent.diff.example.", "zzz.nods.diff.example.", "_tcp.www.diff.example.",
        ]
        names = Array(Set(names)).sorted()
        var questions: [[String]] = []
        for (index, name) in names.enumerated() {
            for (typeIndex, type) in Self.types.enumerated() {
                let asked = randomCase(name)
                questions.append(["+norec", asked, type])
                // TCP and no-EDNS for a third of them each (every question over UDP with EDNS).
                switch (index + typeIndex) % 3 {
                case 0: questions.append(["+norec", "+tcp", asked, type])
                case 1: questions.append(["+norec", "+noedns", asked, type])
                default: break
                }
            }
        }
        let ours = try #require(try Dig.askAll(port: server.port, questions))
        var theirs: [[Dig]] = []
        for (_, port) in references { theirs.append(try #require(try Dig.askAll(port: port, questions))) }
        var differences: [String] = []
        var listed: [String] = []
        var compared = 0
        for (index, question) in questions.enumerated() {
            let outcomes = theirs.map { Outcome($0[index]) }
            var counts: [Outcome: Int] = [:]
            for outcome in outcomes { counts[outcome, default: 0] += 1 }
            guard let (majority, votes) = counts.max(by: { $0.value < $1.value }), votes >= 2 else {
                let who = zip(references.map(\.0), outcomes).map { "\($0): \($1)" }.joined(separator: "\n    ")
                print("no majority: \(question.joined(separator: " "))\n  ours: \(Outcome(ours[index]))\n    \(who)")
                continue
            }
            compared += 1
            let mine = Outcome(ours[index])
            if mine != majority {
                let who = zip(references.map(\.0), outcomes).map { "\($0): \($1)" }.joined(separator: "\n    ")
                let text = "\(question.joined(separator: " "))\n  ours: \(mine)\n    \(who)"
                // Listed in the README: ANY is answered with one RRset and that RRset's additional records, as
                // its own type would be (Knot does the same; NSD and BIND add none for SVCB/HTTPS there).
                var additionalOnly = mine
                additionalOnly.additional = majority.additional
                let knot = references.firstIndex { $0.0 == "Knot" }.map { outcomes[$0] }
                if question.last == "ANY" && additionalOnly == majority && knot == mine {
                    listed.append(text)
                } else {
                    differences.append(text)
                }
            }
        }
        #expect(compared > questions.count * 9 / 10, "the references agreed on \(compared) of \(questions.count)")
        // Every type round-trips: named-checkzone accepts the export, and BIND loading the zone text as written
        // (not the export) serves the same data for each name and type.
        if let checker = Tool.find("named-checkzone") {
            let directory = try Tool.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try exported.write(toFile: "\(directory)/diff.zone", atomically: true, encoding: .utf8)
            let checked = try Tool.run(checker, ["-k", "fail", "-i", "full", "diff.example", "\(directory)/diff.zone"])
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        }
        let soa = "@ SOA ns1 hostmaster 2024060100 3600 900 1209600 300\n"
        if let original = try ReferenceServer(.bind, zones: [("diff.example.", soa + Self.zone)]) {
            defer { withExtendedLifetime(original) {} }
            let typed = questions.enumerated().filter { $0.element.count == 3 && $0.element[2] != "ANY" }
            let answers = try #require(try Dig.askAll(port: original.port, typed.map(\.element)))
            for ((index, question), theirs) in zip(typed, answers) {
                #expect(
                    Outcome(ours[index]).answer == Outcome(theirs).answer,
                    "\(question.joined(separator: " ")): ours \(ours[index].answer), BIND from the text \(theirs.answer)"
                )
            }
        }
        let report = differences.prefix(40).joined(separator: "\n")
        #expect(differences.isEmpty, "\(differences.count) difference(s):\n\(report)")
        print(
            "differential: \(questions.count) questions, \(compared) with a majority, \(listed.count) listed differences"
        )
    }
}
