import DynDNS
import Foundation
import Glibc
import TestSupport
import Testing

/// The state file survives a kill -9 at any moment: a reader finds the old version or the new one, whole.
@Suite struct StateFileTests {
    @Test func killedWritersLeaveAWholeFile() throws {
        let writer = URL(fileURLWithPath: Tool.frontdoor).deletingLastPathComponent().path + "/StateWriter"
        guard FileManager.default.isExecutableFile(atPath: writer) else {
            print("SKIP: \(writer) not built (swift build --build-tests builds it)")
            return
        }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/dyndns.json"
        var seen = Set<Int>()
        for attempt in 0..<40 {
            let pid = try Tool.spawn(writer, [path])
            usleep(UInt32(5_000 + (attempt * 7919) % 45_000))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            // A killed writer leaves at most its one temporary file (named by its pid), never more.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
                $0 != "dyndns.json"
            }
            #expect(leftovers.count <= 1, "\(leftovers)")
            for leftover in leftovers { try? FileManager.default.removeItem(atPath: directory + "/" + leftover) }
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let json = try #require(JSON.parse(Array(data)), "the file is whole JSON")
            let state = UpdaterState(json: json)
            #expect(state.address != nil)
            seen.insert(state.history.count)
        }
        #expect(seen.count > 1, "the writer got to write several versions")
        // A corrupt or missing file reads as a fresh state, never a crash.
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
        #expect(UpdaterState.load(path: path) == UpdaterState())
    }

    @Test func jsonRoundTripsAndRefusesGarbage() throws {
        var state = UpdaterState()
        state.recordChange("198.51.100.7", time: 1_764_000_000.5)
        state.address6 = "2001:db8::7"
        state.note = "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀"
        state.sources = [UpdaterState.SourceReport(source: "http", said: "198.51.100.7")]
        var record = UpdaterState.ProviderRecord()
        record.lastPushed = "198.51.100.7"
        record.failures = 3
        record.stopped = true
        state.providers["dyn"] = record
        let text = state.json.text(pretty: true)
        #expect(UpdaterState(json: try #require(JSON.parse(Array(text.utf8)))) == state)
        #expect(
            JSON.parse(Array("{\"a\": [1, 2.5, -3e2, true, null, \"\\u00e9\\ud83d\\ude00\"]}".utf8))
                == .object([
                    ("a", .array([.number(1), .number(2.5), .number(-300), .bool(true), .null, .string("é😀")]))
                ]))
        for bad in [
            "", "{", "{\"a\" 1}", "[1,]", "\"\u{1}\"", "tru", "{} x",
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ] {
            #expect(JSON.parse(Array(bad.utf8)) == nil, "\(bad.debugDescription)")
        }
    }
}
