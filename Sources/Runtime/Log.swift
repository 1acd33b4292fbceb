#if canImport(Glibc)
    import Glibc
#endif

/// One line per event on stderr, with a level; journald adds the time. Unbuffered, so nothing is lost on
/// a kill.
public enum Log {
    public static func info(_ message: String) { Log.write("info", message) }
    public static func warning(_ message: String) { Log.write("warning", message) }
    public static func error(_ message: String) { Log.write("error", message) }

    static func write(_ level: String, _ message: String) {
        let line = "frontdoor: \(level): \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { Glibc.write(2, $0.baseAddress, $0.count - 1) }
    }
}
