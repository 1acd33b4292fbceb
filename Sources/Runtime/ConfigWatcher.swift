import CSys
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Watches the config directory (inotify) and asks for a reload — by raising SIGHUP, so edits and `kill -HUP`
/// take the same path — once a burst of changes has settled for 300 ms. State files Frontdoor writes itself
/// and editors' temporary files are ignored.
public final class ConfigWatcher: Sendable {
    let fd: Int32
    let stopped = Atomic<Bool>(false)

    public init?(directory: String) {
        let fd = csys_inotify_watch(directory)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    public func stop() { self.stopped.store(true, ordering: .releasing) }

    static func matters(_ name: Substring) -> Bool {
        if name.hasPrefix(".") || name.hasSuffix("~") || name.hasSuffix(".swp") || name.hasSuffix(".tmp") {
            return false
        }
        // Frontdoor's own state files, when state-dir is the config directory.
        for own in ["serials", "dyndns.json", "journal", "secondaries", "4913"] where name.hasPrefix(own) {
            return false
        }
        return true
    }

    static func text(_ names: [CChar]) -> String {
        String(decoding: names.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func run() {
        var names = [CChar](repeating: 0, count: 8192)
        while !self.stopped.load(ordering: .acquiring) {
            let got = csys_inotify_read(self.fd, &names, Int32(names.count), 250)
            guard got > 0 else { continue }
            var relevant = ConfigWatcher.text(names).split(separator: "\n").contains(where: ConfigWatcher.matters)
            // Let the burst settle (an editor writes, renames, deletes).
            while !self.stopped.load(ordering: .acquiring) {
                let more = csys_inotify_read(self.fd, &names, Int32(names.count), 300)
                if more <= 0 { break }
                relevant =
                    relevant || ConfigWatcher.text(names).split(separator: "\n").contains(where: ConfigWatcher.matters)
            }
            if relevant && !self.stopped.load(ordering: .acquiring) { kill(getpid(), SIGHUP) }
        }
        close(self.fd)
    }
}

/// Tells systemd (Type=notify) where the service stands; nothing happens outside systemd.
public enum ServiceManager {
    public static func ready(_ status: String) { ServiceManager.notify("READY=1\nSTATUS=\(status)") }

    public static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        ServiceManager.notify("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    public static func stopping() { ServiceManager.notify("STOPPING=1") }

    static func notify(_ state: String) {
        let result = csys_sd_notify(state)
        if result < 0 { Log.warning("cannot notify systemd: \(String(cString: strerror(-result)))") }
    }
}
