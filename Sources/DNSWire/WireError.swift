/// Why bytes received from the network are not a well-formed DNS message (RFC 1035 §4).
///
/// Every decoding function throws only this; the server maps all of it to FORMERR in one place.
public enum WireError: Error, Equatable, Sendable {
    /// The message ends inside a field that starts at `offset`.
    case truncated(offset: Int)
    /// A compression pointer that does not point strictly backwards, or points outside the message.
    case badPointer(offset: Int)
    /// A name longer than 255 octets once expanded.
    case nameTooLong(offset: Int)
    /// A label type other than a plain label or a pointer (RFC 6891 §5 retired the extended ones).
    case badLabelType(offset: Int)
    /// Bytes after the last record the header announces.
    case trailingData(offset: Int)
    /// Structurally valid bytes that break a rule of the protocol (several OPT records, OPT not at the root).
    case malformed(String)
}
