#if canImport(Glibc)
    import Glibc
#endif

/// Dropping root once the ports are bound: after this the process runs as `user` with its primary group
/// and no supplementary groups. (glibc applies set*id to every thread of the process.)
public enum Privileges {
    /// Switches to `user`; returns a problem in words, or nil when done (or already that user).
    public static func drop(to user: String) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &result) == 0, result != nil else {
            return "no user named '\(user)' (create it, e.g. 'useradd --system --no-create-home \(user)')"
        }
        if getuid() == entry.pw_uid && geteuid() == entry.pw_uid { return nil }
        guard geteuid() == 0 else {
            return "cannot switch to user '\(user)': only root can (run as root, or leave 'user' out)"
        }
        guard setgroups(0, nil) == 0, setgid(entry.pw_gid) == 0, setuid(entry.pw_uid) == 0 else {
            return "cannot switch to user '\(user)': \(String(cString: strerror(errno)))"
        }
        // Make sure there is no way back.
        guard setuid(0) != 0, geteuid() == entry.pw_uid else { return "switching to user '\(user)' did not stick" }
        return nil
    }
}
