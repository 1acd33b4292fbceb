/// What went wrong talking to a provider or reading its configuration.
public enum DynDNSError: Error, Equatable, Sendable, CustomStringConvertible {
    case badKey(String)
    /// The provider could not be reached or did not answer in time.
    case unreachable(String)
    /// The provider answered something we cannot read.
    case badReply(String)
    /// The provider refused (bad key, no such host, ...): stop and report.
    case refused(String)

    public var description: String {
        switch self {
        case .badKey(let text): "bad key: \(text)"
        case .unreachable(let text): "unreachable: \(text)"
        case .badReply(let text): "bad reply: \(text)"
        case .refused(let text): "refused: \(text)"
        }
    }
}
