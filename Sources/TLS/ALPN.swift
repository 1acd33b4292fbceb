/// Application-Layer Protocol Negotiation (RFC 7301) on the server's side, pure.
public enum ALPN {
    public static let http11: [UInt8] = Array("http/1.1".utf8)

    /// Where `protocol` sits in a client's protocol list (length-prefixed names, RFC 7301 §3.1); nil when it
    /// is not offered or the list is malformed.
    public static func select(_ wanted: [UInt8], from list: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var position = 0
        while position < list.count {
            let length = Int(list[position])
            let start = position + 1
            guard length > 0, start + length <= list.count else { return nil }
            if length == wanted.count && list[start..<start + length].elementsEqual(wanted) {
                return start..<start + length
            }
            position = start + length
        }
        return nil
    }
}
