import ZoneFile
import ZoneModel

/// Paths and helpers shared by the test targets.
public enum Fixtures {
    /// The repository root, found from this file's path.
    public static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    public static func path(_ relative: String) -> String { root + "/" + relative }
}
