import Foundation
import TestSupport
import Testing
import ZoneFile
import ZoneModel

/// The `frontdoor` command as a user runs it, checked against BIND's `named-checkzone`.
@Suite struct CLITests {
    func frontdoor(_ arguments: String...) throws -> Tool.Outcome {
        try Tool.run(Tool.frontdoor, arguments, directory: Fixtures.root)
    }

    @Test func checkOnTheShippedExampleIsClean() throws {
        let outcome = try self.frontdoor("check", "zones")
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("1 zone(s), 3 site(s), 2 view(s): 0 error(s), 0 warning(s)"))
    }

    @Test func checkOnABadModelExitsWith65AndPrintsEveryProblem() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Fixtures.config.write(toFile: directory + "/frontdoor.conf", atomically: true, encoding: .utf8)
        let text = Fixtures.text("Tests/Fixtures/zones/bad/five-errors.zone")
        try text.write(toFile: directory + "/home.arpa.zone", atomically: true, encoding: .utf8)
        let outcome = try self.frontdoor("check", directory)
        #expect(outcome.status == 65)
        let errors = outcome.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(errors.count == 5, "\(outcome.stderr)")
        for line in errors {
            #expect(line.hasPrefix("\(directory)/home.arpa.zone:"), "\(line)")
            #expect(line.wholeMatch(of: /.*\.zone:\d+:\d+: error: .+/) != nil, "\(line)")
        }
    }

    @Test func checkOnAMissingDirectorySaysSo() throws {
        let outcome = try self.frontdoor("check", "/nonexistent/frontdoor")
        #expect(outcome.status == 65)
        #expect(
            outcome.stderr.contains(
                "/nonexistent/frontdoor:1:1: error: the config directory /nonexistent/frontdoor does not exist"),
            "\(outcome.stderr)")
    }

    /// Issue 17, point 6: `export --view wan` without `--wan` uses the address DynDNS last published (as run
    /// serves), and says so; with none known it warns that the proxy name has no address in that zone.
    @Test(.bug(id: "17")) func exportWithoutWanUsesThePublishedAddressOrSaysItIsUnknown() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try
            "view lan 127.0.0.0/8 recursion\nview wan *\nupstream 127.0.0.1:9\nstate-dir state\nwan http http://127.0.0.1:9/\n"
            .write(toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n".write(
            toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        let unknown = try self.frontdoor("export", "--view", "wan", directory)
        #expect(unknown.status == 0)
        #expect(unknown.stderr.contains("warning: the WAN address is unknown"), "\(unknown.stderr)")
        #expect(!unknown.stdout.contains("reverseproxy.example.com.\t300\tIN\tA"))
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        try "{\"address\": \"203.0.113.77\"}\n".write(
            toFile: "\(directory)/state/dyndns.json", atomically: true, encoding: .utf8)
        let known = try self.frontdoor("export", "--view", "wan", directory)
        #expect(known.stdout.contains("reverseproxy.example.com.\t300\tIN\tA\t203.0.113.77"), "\(known.stdout)")
        #expect(known.stderr.contains("'auto' is 203.0.113.77, the WAN address DynDNS last published"))
        let given = try self.frontdoor("export", "--view", "wan", "--wan", "203.0.113.5", directory)
        #expect(given.stdout.contains("IN\tA\t203.0.113.5") && given.stderr.isEmpty, "\(given.stderr)")
    }

    /// Issue 17: `init` with everything given as flags (the namespace script covers detection) writes a model
    /// that check accepts once the provider's secret exists; and a directory named as a secret is refused as
    /// that, not as "readable by others".
    @Test(.bug(id: "17")) func initTakesFlagsAndCheckNamesSecretMistakes() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = "\(directory)/model"
        let made = try self.frontdoor(
            "init", model, "--domain", "example.org", "--lan", "192.0.2.10/24", "--router", "192.0.2.1", "--site",
            "www=http://192.0.2.20:80", "--provider",
            "home dyndns2 url=https://dyn.example.net/nic/update hostname=h.example.net username=me password-file=dyndns.secret"
        )
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stderr.contains("hand out 192.0.2.10 as the DNS server (option 6)"))
        let config = Fixtures.textAt("\(model)/frontdoor.conf")
        #expect(config.contains("\nview lan 192.0.2.0/24 127.0.0.1/32 recursion\n"), "\(config)")
        #expect(config.contains("\nprovider home dyndns2 url=https://dyn.example.net/nic/update"))
        #expect(Fixtures.textAt("\(model)/example.org.zone").contains("$SITE www http://192.0.2.20:80"))
        let missing = try self.frontdoor("check", model)
        #expect(missing.status == 65 && missing.stderr.contains("dyndns.secret' does not exist"), "\(missing.stderr)")
        try "secret\n".write(toFile: "\(model)/dyndns.secret", atomically: true, encoding: .utf8)
        chmod("\(model)/dyndns.secret", 0o600)
        let good = try self.frontdoor("check", model)
        #expect(good.status == 0 && good.stderr.contains("0 error(s), 0 warning(s)"), "\(good.stderr)")
        try FileManager.default.removeItem(atPath: "\(model)/dyndns.secret")
        try FileManager.default.createDirectory(atPath: "\(model)/dyndns.secret", withIntermediateDirectories: true)
        chmod("\(model)/dyndns.secret", 0o755)
        let folder = try self.frontdoor("check", model)
        #expect(
            folder.status == 65 && folder.stderr.contains("dyndns.secret' is a directory; name the file"),
            "\(folder.stderr)")
        #expect(!folder.stderr.contains("readable by others"))
    }

    /// Issue 14, point 3: the proxy record may be a CNAME to a name kept elsewhere (a DynDNS service's) in
    /// one view: check accepts it, export writes it (and named-checkzone accepts that), explain shows the chain;
    /// a name beside addresses, a site at the apex, or a zone left without an NS by it are refused clearly.
    @Test(.bug(id: "14")) func theProxyMayBeACNAMEToADynDNSName() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "view lan 127.0.0.0/8 192.0.2.0/24 recursion\nview wan *\nupstream 127.0.0.1:9\n".write(
            toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        func zone(_ body: String) throws {
            try ("$ORIGIN example.com.\n$TTL 300\n" + body).write(
                toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        }
        try zone(
            "$PROXY reverseproxy lan=192.0.2.42 wan=home.dyndns.example.\n@ NS ns1\nns1 A 192.0.2.53\n"
                + "$SITE www http://192.0.2.69:80\n")
        let check = try self.frontdoor("check", directory)
        #expect(check.status == 0 && check.stderr.contains("0 error(s)"), "\(check.stderr)")
        let wan = try self.frontdoor("export", "--view", "wan", directory)
        #expect(wan.stdout.contains("reverseproxy.example.com.\t300\tIN\tCNAME\thome.dyndns.example."), "\(wan.stdout)")
        #expect(wan.stdout.contains("www.example.com.\t300\tIN\tCNAME\treverseproxy.example.com."))
        let lan = try self.frontdoor("export", "--view", "lan", directory)
        #expect(lan.stdout.contains("reverseproxy.example.com.\t300\tIN\tA\t192.0.2.42"))
        if let checker = Tool.find("named-checkzone") {
            try wan.stdout.write(toFile: "\(directory)/wan.export", atomically: true, encoding: .utf8)
            let checked = try Tool.run(checker, ["-k", "fail", "-i", "full", "example.com", "\(directory)/wan.export"])
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        }
        let explained = try self.frontdoor("explain", "www.example.com", "--from", "203.0.113.9", directory)
        #expect(
            explained.stdout.contains("reverseproxy.example.com.\t300\tIN\tCNAME\thome.dyndns.example."),
            "\(explained.stdout)")
        // Refused, each with the reason.
        for (body, reason) in [
            (
                "$PROXY reverseproxy lan=192.0.2.42 wan=home.dyndns.example.,203.0.113.1\n@ NS ns1\nns1 A 192.0.2.53\n",
                "names a host and something else"
            ),
            (
                "$PROXY reverseproxy lan=192.0.2.42 wan=home.dyndns.example.\n@ NS ns1\nns1 A 192.0.2.53\n$SITE @ http://192.0.2.69\n",
                "is the zone's apex, where its name would need the addresses of home.dyndns.example."
            ),
            (
                "$PROXY reverseproxy lan=192.0.2.42 wan=home.dyndns.example.\n",
                "an NS may not point at a CNAME"
            ),
        ] {
            try zone(body)
            let refused = try self.frontdoor("check", directory)
            #expect(refused.status == 65 && refused.stderr.contains(reason), "\(refused.stderr)")
        }
    }

    /// Issue 17, point 5: a state directory that cannot be made fails check and run with the reason; a
    /// missing one is made by run (0700), not only warned about.
    @Test(.bug(id: "17")) func theStateDirectoryIsMadeOrItsProblemNamed() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "a file, not a directory\n".write(toFile: "\(directory)/blocker", atomically: true, encoding: .utf8)
        try "$ORIGIN example.com.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1\n".write(
            toFile: "\(directory)/example.com.zone", atomically: true, encoding: .utf8)
        let base = "view lan 127.0.0.0/8 recursion\nview wan *\nupstream 127.0.0.1:9\n"
        try (base + "state-dir blocker/state\n").write(
            toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        let check = try self.frontdoor("check", directory)
        #expect(check.status == 65, "\(check.stderr)")
        #expect(
            check.stderr.contains("error: state-dir \(directory)/blocker/state cannot be created"), "\(check.stderr)")
        let run = try self.frontdoor("run", "--config", directory, "--dns", "off", "--http", "off", "--admin", "off")
        #expect(
            run.status == 65 && run.stderr.contains("state-dir \(directory)/blocker/state cannot be created"), "\(run)")
        // A missing one: check is content, and run makes it (0700) and keeps the serials there.
        try (base + "state-dir var/state\n").write(
            toFile: "\(directory)/frontdoor.conf", atomically: true, encoding: .utf8)
        #expect(try self.frontdoor("check", directory).status == 0)
        let pid = try Tool.spawn(
            Tool.frontdoor,
            [
                "run", "--config", directory, "--dns", "127.0.0.1:\(try freePort())", "--http", "off",
                "--admin", "off",
            ])
        defer { Tool.stop(pid) }
        var made = false
        for _ in 0..<100 where !made {
            made = FileManager.default.fileExists(atPath: "\(directory)/var/state/serials")
            if !made { usleep(20_000) }
        }
        #expect(made)
        let mode = (try? FileManager.default.attributesOfItem(atPath: "\(directory)/var/state"))?[.posixPermissions]
        #expect(mode as? Int == 0o700)
    }

    /// Record lines of an export, without comments and directives.
    func records(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.hasPrefix("$") }.map(String.init))
    }

    @Test func lanAndWANExportsPassNamedCheckzoneAndDifferOnlyInTheProxyAndTheLANSite() throws {
        let lan = try self.frontdoor("export", "--view", "lan", "zones")
        let wan = try self.frontdoor("export", "--view", "wan", "--wan", "203.0.113.1", "zones")
        #expect(lan.status == 0 && wan.status == 0, "\(lan.stderr)\(wan.stderr)")
        let onlyLAN = self.records(lan.stdout).subtracting(self.records(wan.stdout))
        let onlyWAN = self.records(wan.stdout).subtracting(self.records(lan.stdout))
        #expect(
            onlyLAN == [
                "reverseproxy.example.com.\t300\tIN\tA\t192.0.2.42",
                "nas.example.com.\t300\tIN\tCNAME\treverseproxy.example.com.",
            ])
        #expect(onlyWAN == ["reverseproxy.example.com.\t300\tIN\tA\t203.0.113.1"])
        guard let checker = Tool.find("named-checkzone") else {
            return Tool.skip("named-checkzone", package: "bind9-utils")
        }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, outcome) in [("lan", lan), ("wan", wan)] {
            let path = "\(directory)/\(name).zone"
            try outcome.stdout.write(toFile: path, atomically: true, encoding: .utf8)
            let checked = try Tool.run(checker, ["-k", "fail", "-i", "full", "example.com", path])
            #expect(checked.status == 0, "named-checkzone on the \(name) export: \(checked.stdout)\(checked.stderr)")
            #expect(checked.stdout.contains("OK"))
        }
    }

    @Test(arguments: ["syntax.zone", "sites.zone", "include.zone", "delegation.zone", "types.zone"])
    func everyGoodFixtureExportPassesNamedCheckzone(fixture: String) throws {
        guard let checker = Tool.find("named-checkzone") else {
            return Tool.skip("named-checkzone", package: "bind9-utils")
        }
        let snapshot = try #require(Fixtures.compileFixture("ok", fixture).snapshot)
        let apex = Fixtures.apex(of: Fixtures.text("Tests/Fixtures/zones/ok/\(fixture)"))
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for view in snapshot.views {
            let path = "\(directory)/\(view.name).zone"
            try #require(ZoneExporter.export(view, apex: apex)).write(toFile: path, atomically: true, encoding: .utf8)
            let checked = try Tool.run(checker, [apex.description, path])
            #expect(checked.status == 0, "\(fixture) view \(view.name): \(checked.stdout)\(checked.stderr)")
        }
    }

    @Test func explainShowsViewChainAnswerAndRoute() throws {
        let lan = try self.frontdoor("explain", "myapp.example.com", "--from", "192.0.2.100", "zones")
        #expect(lan.status == 0)
        #expect(
            lan.stdout == """
                question: myapp.example.com. A from 192.0.2.100
                view: lan (matched 192.0.2.0/24, recursion allowed)
                answer: NOERROR, 2 record(s)
                  myapp.example.com.\t300\tIN\tCNAME\treverseproxy.example.com.
                  reverseproxy.example.com.\t300\tIN\tA\t192.0.2.42
                proxy: site myapp.example.com. (least-conn, health /healthz): http://192.0.2.70:80 http://192.0.2.71:80

                """)
        let wan = try self.frontdoor("explain", "nas.example.com", "A", "--from", "198.51.100.7", "zones")
        #expect(wan.stdout.contains("view: wan (matched *)"))
        #expect(wan.stdout.contains("answer: NXDOMAIN"))
        #expect(wan.stdout.contains("proxy: site nas.example.com. is hidden from view 'wan'; the proxy answers 403"))
        let outside = try self.frontdoor("explain", "www.debian.org", "--from", "198.51.100.7", "zones")
        #expect(outside.stdout.contains("REFUSED (view 'wan' has no recursion)"))
    }

    @Test(arguments: ["run", "init", "check", "export", "explain", "status", "ca"])
    func everyCommandHasHelp(command: String) throws {
        let outcome = try self.frontdoor(command, "--help")
        #expect(outcome.status == 0)
        #expect(outcome.stdout.hasPrefix("usage: frontdoor \(command)"))
        let viaHelp = try self.frontdoor("help", command)
        #expect(viaHelp.stdout == outcome.stdout)
        // The README and the program agree on the commands: each is in the overview and in the README.
        #expect(try self.frontdoor("--help").stdout.contains("\n  \(command) "))
        #expect(Fixtures.text("README.md").contains("frontdoor \(command)"))
    }

    /// Every flag `run --help` lists is documented in the README, and every `--flag` the README shows for
    /// `run` is one it takes (issue 17, point 8: the words must match the program).
    @Test(.bug(id: "17")) func theReadmeAndRunHelpNameTheSameFlags() throws {
        let help = try self.frontdoor("run", "--help").stdout
        let readme = Fixtures.text("README.md")
        func flags(_ text: String) -> Set<String> {
            var found: Set<String> = []
            var rest = Substring(text)
            while let range = rest.range(of: "--") {
                let name = rest[range.upperBound...].prefix { $0.isLetter || $0 == "-" }
                if name.count > 2 { found.insert("--" + name) }
                rest = rest[range.upperBound...]
            }
            return found
        }
        let runFlags = flags(help.components(separatedBy: "\n\n").first ?? help)
        #expect(runFlags.contains("--wan") && runFlags.contains("--https"))
        for flag in runFlags { #expect(readme.contains(flag), "\(flag) is in run --help but not in the README") }
        #expect(help.contains("--wan fixes the address 'auto' stands for and turns the DynDNS updater off"))
        #expect(readme.contains("`--wan` fixes the address and turns the updater off"))
    }

    @Test(arguments: [
        ["frobnicate"], ["export", "zones"], ["explain", "--from", "192.0.2.1"],
        ["explain", "x.example.", "--from", "nope"],
        ["check", "--bogus"], ["export", "--view"],
    ])
    func misuseExitsWith64(arguments: [String]) throws {
        let outcome = try Tool.run(Tool.frontdoor, arguments, directory: Fixtures.root)
        #expect(outcome.status == 64, "\(arguments): \(outcome.stderr)")
        #expect(outcome.stderr.contains("usage: frontdoor"))
    }

    @Test func topLevelHelpListsTheCommands() throws {
        let outcome = try self.frontdoor("--help")
        #expect(outcome.status == 0)
        for command in ["run", "check", "export", "explain"] { #expect(outcome.stdout.contains("  \(command) ")) }
    }
}
