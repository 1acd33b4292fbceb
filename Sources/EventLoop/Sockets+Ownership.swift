import CSys
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

extension Sockets {
    /// Throws when another socket already holds `address` (UDP, or TCP when `stream`): SO_REUSEPORT would
    /// otherwise let a second Frontdoor (or any program of the same user that sets it) join the listener
    /// and take half of its traffic. Only this process's own worker sockets may share a listener, and they
    /// are bound after this check. The error names the holder when /proc tells it.
    public static func ensureUnclaimed(_ address: SocketAddress, stream: Bool, service: String) throws(SocketError) {
        let result = address.withSockaddr { csys_probe_listener(stream ? 1 : 0, $0, $1) }
        guard result < 0 else { return }
        let protocolName = stream ? "tcp" : "udp"
        guard -result == EADDRINUSE else {
            throw SocketError(errno: -result, context: "cannot listen on \(protocolName) \(address)")
        }
        let holder = Sockets.holder(port: address.port, stream: stream).map { " by \($0)" } ?? ""
        throw SocketError(
            errno: EADDRINUSE,
            context: "the \(service) listener \(address) (\(protocolName)) is already in use\(holder); "
                + "is another Frontdoor running? Stop it, or give this one other listeners")
    }

    /// "process PID (NAME)" for the process holding a socket bound to local `port`, from /proc/net and
    /// /proc/PID/fd; nil when it cannot be told (another user's process, no /proc).
    static func holder(port: UInt16, stream: Bool) -> String? {
        var inodes: Set<String> = []
        for table in stream ? ["tcp", "tcp6"] : ["udp", "udp6"] {
            for line in Sockets.lines(of: "/proc/net/\(table)").dropFirst() {
                let columns = line.split(separator: " ")
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                guard columns.count > 9, let colon = columns[1].lastIndex(of: ":"),
                    UInt16(columns[1][columns[1].index(after: colon)...], radix: 16) == port
                else { continue }
                // For TCP only listening sockets (state 0A) hold a port against a listener.
                if stream && columns[3] != "0A" { continue }
                inodes.insert("socket:[\(columns[9])]")
            }
        }
        guard !inodes.isEmpty, let proc = opendir("/proc") else { return nil }
        defer { closedir(proc) }
        let me = getpid()
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != me, let fds = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(fds) }
            while let fd = readdir(fds) {
                let fdName = withUnsafeBytes(of: fd.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                var target = [CChar](repeating: 0, count: 64)
                let count = readlink("/proc/\(pid)/fd/\(fdName)", &target, 63)
                guard count > 0 else { continue }
                let link = String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if inodes.contains(link) {
                    let command = Sockets.lines(of: "/proc/\(pid)/comm").first ?? "?"
                    return "process \(pid) (\(command))"
                }
            }
        }
        return nil
    }

    /// The lines of a small text file (a /proc table); empty when it cannot be read.
    static func lines(of path: String) -> [Substring] {
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            text += chunk[0..<count]
        }
        return String(decoding: text, as: UTF8.self).split(separator: "\n")
    }
}
