/// DNS over TCP's framing (RFC 1035 §4.2.2, RFC 7766 §8): every message is preceded by its length as a
/// two-octet big-endian number. One reader and one writer for every TCP path of the project.
public enum TCPFraming {
    /// The two length octets for a message of `length` bytes (at most 65,535).
    @inlinable
    public static func prefix(_ length: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// `message` with its length prefix.
    public static func framed(_ message: [UInt8]) -> [UInt8] {
        TCPFraming.prefix(message.count) + message
    }

    /// The message length the two octets at the start of `prefix` announce.
    public static func length(_ prefix: [UInt8]) -> Int {
        prefix.count >= 2 ? TCPFraming.length(prefix[0], prefix[1]) : 0
    }

    @inlinable
    public static func length(_ high: UInt8, _ low: UInt8) -> Int { Int(high) << 8 | Int(low) }

    /// The range of the first whole message in `buffer` from `start`, after its prefix; nil while more
    /// bytes are needed.
    public static func message(in buffer: [UInt8], from start: Int = 0) -> Range<Int>? {
        guard buffer.count - start >= 2 else { return nil }
        let length = TCPFraming.length(buffer[start], buffer[start + 1])
        guard buffer.count - start - 2 >= length else { return nil }
        return (start + 2)..<(start + 2 + length)
    }
}
