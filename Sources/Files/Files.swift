#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The file access the loader needs, so parsing can run on files held in memory in tests.
package protocol SourceFiles: Sendable {
    /// The whole file, or a sentence saying why it could not be read.
    func read(_ path: String) -> Result<[UInt8], FileProblem>
    /// Names of the entries in a directory (no `.` or `..`), or nil when it cannot be listed.
    func list(_ directory: String) -> [String]?
    /// The path with every symbolic link and `..` resolved, or nil when it does not exist.
    func resolve(_ path: String) -> String?
    /// Permission bits of the file, or nil when it does not exist.
    func mode(_ path: String) -> UInt32?
}

/// Why a file could not be read.
package struct FileProblem: Error, Sendable, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}

/// Joins a directory and a relative path; an absolute `path` stands alone.
package func joinPath(_ directory: String, _ path: String) -> String {
    if path.hasPrefix("/") || directory.isEmpty { return path }
    return directory.hasSuffix("/") ? directory + path : directory + "/" + path
}

/// The real file system, through the C library.
package struct DiskFiles: SourceFiles {
    /// Zone and config files above this size are refused rather than read into memory.
    static let maximumSize = 256 << 20

    package init() {}

    package func read(_ path: String) -> Result<[UInt8], FileProblem> {
        // O_NONBLOCK so that opening a FIFO does not wait for a writer; regular files ignore it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(FileProblem(DiskFiles.errorText())) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return .failure(FileProblem(DiskFiles.errorText())) }
        // Only regular files: a FIFO or a device (say /dev/zero through $INCLUDE) would block or never end.
        guard status.st_mode & S_IFMT != S_IFDIR else { return .failure(FileProblem("is a directory")) }
        guard status.st_mode & S_IFMT == S_IFREG else { return .failure(FileProblem("is not a regular file")) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(FileProblem(DiskFiles.errorText()))
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            guard bytes.count <= DiskFiles.maximumSize else {
                return .failure(FileProblem("larger than \(DiskFiles.maximumSize >> 20) MiB"))
            }
        }
        return .success(bytes)
    }

    package func list(_ directory: String) -> [String]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    package func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    package func mode(_ path: String) -> UInt32? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return UInt32(status.st_mode) & 0o7777
    }

    /// Replaces `path` with `bytes` so that a crash at any moment leaves the old file or the new one, never
    /// a torn one: write a temporary file beside it, fsync it, rename it over, fsync the directory.
    package func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) -> FileProblem? {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return FileProblem("cannot create \(temporary): \(DiskFiles.errorText())") }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let problem = FileProblem("cannot write \(temporary): \(DiskFiles.errorText())")
                close(fd)
                unlink(temporary)
                return problem
            }
            written += count
        }
        guard fsync(fd) == 0, close(fd) == 0 else {
            let problem = FileProblem("cannot flush \(temporary): \(DiskFiles.errorText())")
            unlink(temporary)
            return problem
        }
        guard rename(temporary, path) == 0 else {
            let problem = FileProblem("cannot rename \(temporary) to \(path): \(DiskFiles.errorText())")
            unlink(temporary)
            return problem
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let directoryFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
        return nil
    }

    static func errorText() -> String {
        String(cString: strerror(errno)).lowercased()
    }
}

/// Files held in memory: path → contents; for tests and for parsing text handed over directly.
package struct MemoryFiles: SourceFiles {
    package var files: [String: [UInt8]]
    package var modes: [String: UInt32]

    package init(_ files: [String: String], modes: [String: UInt32] = [:]) {
        self.files = files.mapValues { Array($0.utf8) }
        self.modes = modes
    }

    package func read(_ path: String) -> Result<[UInt8], FileProblem> {
        guard let bytes = self.files[MemoryFiles.normalise(path)] else {
            return .failure(FileProblem("no such file or directory"))
        }
        return .success(bytes)
    }

    package func list(_ directory: String) -> [String]? {
        let prefix = MemoryFiles.normalise(directory) + "/"
        let names = self.files.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        return names.filter { !$0.contains("/") }.sorted()
    }

    package func resolve(_ path: String) -> String? {
        let normal = MemoryFiles.normalise(path)
        return self.files[normal] != nil || self.list(normal)?.isEmpty == false ? normal : nil
    }

    package func mode(_ path: String) -> UInt32? {
        let normal = MemoryFiles.normalise(path)
        guard self.files[normal] != nil else { return nil }
        return self.modes[normal] ?? 0o600
    }

    static func normalise(_ path: String) -> String { normalisePath(path) }
}

/// Removes `.` and resolves `..` textually, as realpath would without links.
package func normalisePath(_ path: String) -> String {
    var parts: [Substring] = []
    for part in path.split(separator: "/") {
        if part == "." { continue }
        if part == ".." {
            if !parts.isEmpty { parts.removeLast() }
            continue
        }
        parts.append(part)
    }
    return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
}

/// Where a secret file named in the config is read from. Under systemd with `LoadCredential=NAME:PATH`, the
/// service gets its credentials in `$CREDENTIALS_DIRECTORY` (readable by the service's user alone, even a
/// `DynamicUser=`): a secret whose file name is a credential there is read from there.
package enum SecretFiles {
    /// The credential directory systemd gave this process, if any.
    package static var credentialsDirectory: String? {
        guard let value = getenv("CREDENTIALS_DIRECTORY") else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The file to read for the secret configured as `path`: `$CREDENTIALS_DIRECTORY/<its name>` when that
    /// exists, else `path`.
    package static func resolve(_ path: String, files: some SourceFiles = DiskFiles()) -> String {
        guard let directory = SecretFiles.credentialsDirectory else { return path }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let credential = joinPath(directory, name)
        return files.mode(credential) != nil ? credential : path
    }
}
