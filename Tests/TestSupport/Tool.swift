import CSys
import Foundation
import Runtime

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
    ///
    /// posix_spawn and poll(2) rather than Foundation's Process: a long-lived daemon started by a test must
    /// not hold up, or be reaped by, the waiting for a short command.
    package static func run(_ executable: String, _ arguments: [String], directory: String? = nil) throws -> Outcome {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        // Close-on-exec from the start: a program another test starts meanwhile must not inherit a write end
        // (this call would then wait for that program to end before it saw the end of this one's output).
        guard csys_pipe_cloexec(&outPipe) == 0, csys_pipe_cloexec(&errPipe) == 0 else {
            throw FixtureError(message: "pipe failed")
        }
        let pid = try Tool.spawn(executable, arguments, directory: directory, stdout: outPipe[1], stderr: errPipe[1])
        close(outPipe[1])
        close(errPipe[1])
        var out: [UInt8] = []
        var err: [UInt8] = []
        var open = [outPipe[0], errPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // A signal (another test's child ending) interrupts poll and read: that is no end of output.
            let ready = poll(&fds, nfds_t(fds.count), 30_000)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            for entry in fds where entry.revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count > 0 {
                    if entry.fd == outPipe[0] { out += buffer[0..<count] } else { err += buffer[0..<count] }
                } else {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        close(outPipe[0])
        close(errPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        return Outcome(
            status: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }

    /// Starts a program with stdin from /dev/null and the given output descriptors (or /dev/null).
    package static func spawn(
        _ executable: String, _ arguments: [String], directory: String? = nil, stdout: Int32? = nil,
        stderr: Int32? = nil, environment extra: [String] = []
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let stdout {
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if let stderr {
            posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // In another directory: through the shell, which changes there and then becomes the program.
        let words =
            directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments }
            ?? [executable] + arguments
        let argv = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // Its own process group, so that `stop` can end it and every child it forks.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A child starts with no signal blocked: a test of this process may have blocked some (SIGHUP for
        // sigtimedwait), and a spawned server (NSD, frontdoor) would then never see its reload signal.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var pid: pid_t = 0
        // Extra "NAME=value" entries go to the child only: setenv in a test would race with the others.
        var inherited: [UnsafeMutablePointer<CChar>?] = []
        var cursor = environ
        while let entry = cursor.pointee {
            inherited.append(entry)
            cursor += 1
        }
        let added = extra.map { strdup($0) }
        defer { for pointer in added { free(pointer) } }
        var envp = added + inherited + [nil]
        let result = posix_spawn(&pid, words[0], &actions, &attributes, argv, &envp)
        guard result == 0 else {
            throw FixtureError(message: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Ends a program started by `spawn` and everything it forked: SIGTERM, then SIGKILL after a second.
    package static func stop(_ pid: pid_t) {
        // Already reaped by a caller that waited for it: the number may be another test's process group by
        // now, which must not be signalled.
        var reaped: Int32 = 0
        let state = waitpid(pid, &reaped, WNOHANG)
        if state < 0 && errno == ECHILD { return }
        if state == pid {
            // It had ended; what it forked may still run in its group.
            kill(-pid, SIGKILL)
            return
        }
        kill(-pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<20 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(50_000)
        }
        kill(-pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
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

/// Runs `body` on a thread of its own inside a new network namespace (unshare(CLONE_NEWNET) applies to the
/// calling thread only, so the test's other threads stay where they are), with the namespace's ephemeral
/// ports narrowed to `ports`. Only its loopback device exists, and it is down. Nil, with the reason printed,
/// when namespaces are not allowed (not root).
package func inNewNetworkNamespace<T>(ephemeralPorts ports: ClosedRange<UInt16>, _ body: () throws -> T) throws -> T? {
    return try withoutActuallyEscaping(body) { body throws -> T? in
        // The thread runs while this function waits for it, so nothing here is touched by two threads at once.
        nonisolated(unsafe) let body = body
        nonisolated(unsafe) var outcome: Result<T, any Error>?
        nonisolated(unsafe) var refused: String?
        // Joined before returning, so `body` does not outlive this call.
        let thread = startThread(name: "netns") {
            let unshared = csys_unshare_network()
            guard unshared == 0 else {
                refused = "unshare(CLONE_NEWNET): \(String(cString: strerror(-unshared))) (CI runs the tests as root)"
                return
            }
            // /proc/sys/net shows the namespace of the thread that reads it.
            let range = "\(ports.lowerBound) \(ports.upperBound)\n"
            let fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY)
            defer { if fd >= 0 { close(fd) } }
            guard fd >= 0, write(fd, range, range.utf8.count) == range.utf8.count else {
                refused = "cannot narrow the ephemeral ports: \(String(cString: strerror(errno)))"
                return
            }
            outcome = Result { try body() }
        }
        guard let thread else { throw FixtureError(message: "cannot start a thread") }
        joinThread(thread)
        // A thread started from inside (a thread pool growing, say) would stay in the namespace and take the
        // work of later tests there.
        let home = networkNamespace("/proc/self/ns/net")
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        let strays = tasks.filter { networkNamespace("/proc/self/task/\($0)/ns/net") ?? home != home }
        guard strays.isEmpty else { throw FixtureError(message: "threads left in the namespace: \(strays)") }
        if let refused {
            print("SKIP: \(refused)")
            return nil
        }
        return try outcome?.get()
    }
}

/// The namespace a /proc ns link names ("net:[4026531840]").
private func networkNamespace(_ link: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink(link, &buffer, buffer.count - 1)
    return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
}
