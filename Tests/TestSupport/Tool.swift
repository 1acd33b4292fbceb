import Foundation

/// Runs programs for end-to-end tests: the built `frontdoor` and Debian peers such as `named-checkzone`.
package enum Tool {
    /// What a finished program left behind.
    package struct Outcome {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    /// The `frontdoor` binary `swift build`/`swift test` produced next to the test bundle.
    package static let frontdoor: String = {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let candidates = [
            bundleDirectory + "/frontdoor", Fixtures.root + "/.build/debug/frontdoor",
            Fixtures.root + "/.build/release/frontdoor",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }()

    /// The full path of a program on PATH (or the usual sbin directories), nil when it is not installed.
    package static func find(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/local/sbin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` with `arguments` to completion, in `directory` when given.
    package static func run(_ executable: String, _ arguments: [String], directory: String? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a chatty program cannot block on a full pipe.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh temporary directory, removed by the caller.
    package static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "frontdoor-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Prints why a test that needs a Debian tool is skipped (the test then returns early).
    package static func skip(_ tool: String, package: String) {
        print("SKIP: \(tool) not installed (apt-get install \(package)); .ci/run installs it")
    }
}
