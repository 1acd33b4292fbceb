// Test helper: rewrites a DynDNS state file as fast as it can, each version a little different, until
// killed. DynDNSTests kill it with SIGKILL at random moments and check the file is always whole.
import DynDNS

let path = CommandLine.arguments[1]
var state = UpdaterState()
var round = 0
while true {
    round += 1
    state.recordChange("198.51.100.\(round % 250 + 1)", time: Double(round))
    state.note = String(repeating: "x", count: round % 5000)
    var record = UpdaterState.ProviderRecord()
    record.lastPushed = "198.51.100.\(round % 250 + 1)"
    record.failures = round
    state.providers["p\(round % 7)"] = record
    _ = state.save(path: path)
}
