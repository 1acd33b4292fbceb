/// An absolute domain name, kept as lower-cased uncompressed wire format (RFC 1035 §3.1).
///
/// DNS compares names without regard to ASCII case (RFC 4343), so the model folds case once at parse time;
/// the server restores the question's own letters when it answers.
public struct DomainName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Length-prefixed labels ending with the zero-length root label.
    public let wire: [UInt8]

    /// The root name `.`.
    public static let root = DomainName(uncheckedWire: [0])

    /// Wraps wire bytes the caller already checked and lower-cased.
    package init(uncheckedWire: [UInt8]) {
        self.wire = uncheckedWire
    }

    /// Builds a name from raw labels, checking the RFC 1035 §2.3.4 limits.
    public init(labels: [[UInt8]]) throws(NameError) {
        var wire: [UInt8] = []
        wire.reserveCapacity(labels.reduce(1) { $0 + $1.count + 1 })
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= 63 else { throw .labelTooLong(length: label.count) }
            wire.append(UInt8(label.count))
            for byte in label { wire.append(DomainName.lowercase(byte)) }
        }
        wire.append(0)
        guard wire.count <= 255 else { throw .nameTooLong(length: wire.count) }
        self.wire = wire
    }

    /// Parses presentation format (RFC 1035 §5.1): `\X` and `\DDD` escapes, `@` for the origin, and names
    /// without a final dot taken relative to `origin`.
    public init(parsing text: some Collection<UInt8>, origin: DomainName?) throws(NameError) {
        let bytes = Array(text)
        if bytes == [UInt8(ascii: "@")] {
            guard let origin else { throw .relativeWithoutOrigin }
            self = origin
            return
        }
        if bytes == [UInt8(ascii: ".")] {
            self = .root
            return
        }
        guard !bytes.isEmpty else { throw .emptyLabel }
        var labels: [[UInt8]] = []
        var label: [UInt8] = []
        var absolute = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                let (value, next) = try DomainName.readEscape(bytes, at: index)
                label.append(value)
                index = next
                continue
            }
            if byte == UInt8(ascii: ".") {
                guard !label.isEmpty else { throw .emptyLabel }
                labels.append(label)
                label = []
                index += 1
                if index == bytes.count { absolute = true }
                continue
            }
            label.append(byte)
            index += 1
        }
        if !label.isEmpty { labels.append(label) }
        if absolute {
            self = try DomainName(labels: labels)
            return
        }
        guard let origin else { throw .relativeWithoutOrigin }
        self = try DomainName(labels: labels + origin.labels)
    }

    /// Parses a name given as a Swift string (command lines, config files).
    public init(_ text: String, origin: DomainName? = nil) throws(NameError) {
        var absolute = text
        if origin == nil && !absolute.hasSuffix(".") { absolute += "." }
        try self.init(parsing: Array(absolute.utf8), origin: origin)
    }

    /// Reads one `\X` or `\DDD` escape starting at `index` (the backslash); returns the byte and the next index.
    package static func readEscape(_ bytes: [UInt8], at index: Int) throws(NameError) -> (UInt8, Int) {
        guard index + 1 < bytes.count else { throw .badEscape }
        let first = bytes[index + 1]
        guard first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { return (first, index + 2) }
        guard index + 3 < bytes.count else { throw .badEscape }
        var value = 0
        for offset in 1...3 {
            let digit = bytes[index + offset]
            guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { throw .badEscape }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        guard value <= 255 else { throw .badEscape }
        return (UInt8(value), index + 4)
    }

    @inlinable
    package static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Hashes the wire bytes in one call (the synthesised conformance feeds the hasher byte by byte, which
    /// dominated compiling large models).
    public func hash(into hasher: inout Hasher) {
        self.wire.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (lhs: DomainName, rhs: DomainName) -> Bool { lhs.wire == rhs.wire }

    /// The labels from the leftmost to the last before the root.
    public var labels: [[UInt8]] {
        var result: [[UInt8]] = []
        var index = 0
        while index < self.wire.count, self.wire[index] != 0 {
            let length = Int(self.wire[index])
            result.append(Array(self.wire[(index + 1)..<(index + 1 + length)]))
            index += 1 + length
        }
        return result
    }

    /// How many labels, not counting the root.
    public var labelCount: Int {
        var count = 0
        var index = 0
        while index < self.wire.count, self.wire[index] != 0 {
            count += 1
            index += 1 + Int(self.wire[index])
        }
        return count
    }

    public var isRoot: Bool { self.wire.count == 1 }

    /// Whether the leftmost label is `*` (RFC 4592 §2.1.1).
    public var isWildcard: Bool { self.wire.count >= 2 && self.wire[0] == 1 && self.wire[1] == UInt8(ascii: "*") }

    /// The name without its leftmost label; the root for the root.
    public var parent: DomainName {
        guard !self.isRoot else { return self }
        return DomainName(uncheckedWire: Array(self.wire[(1 + Int(self.wire[0]))...]))
    }

    /// This name with `label` prepended.
    public func prepending(_ label: [UInt8]) throws(NameError) -> DomainName {
        guard !label.isEmpty else { throw .emptyLabel }
        guard label.count <= 63 else { throw .labelTooLong(length: label.count) }
        guard self.wire.count + label.count + 1 <= 255 else {
            throw .nameTooLong(length: self.wire.count + label.count + 1)
        }
        return DomainName(uncheckedWire: [UInt8(label.count)] + label.map(DomainName.lowercase) + self.wire)
    }

    /// `*.` + this name.
    public var wildcardChild: DomainName? { try? self.prepending([UInt8(ascii: "*")]) }

    /// Whether this name equals `ancestor` or lies below it.
    public func isSubdomain(of ancestor: DomainName) -> Bool {
        let suffix = ancestor.wire
        guard suffix.count <= self.wire.count else { return false }
        // Walk label boundaries so that `xample.com` is not taken for a suffix of `example.com`.
        var index = 0
        while true {
            if self.wire.count - index == suffix.count {
                return self.wire[index...].elementsEqual(suffix)
            }
            guard self.wire[index] != 0 else { return false }
            index += 1 + Int(self.wire[index])
            if self.wire.count - index < suffix.count { return false }
        }
    }

    /// Presentation format with a final dot, escaping what RFC 1035 §5.1 requires.
    public var description: String {
        guard !self.isRoot else { return "." }
        var text = ""
        for label in self.labels {
            DomainName.appendEscaped(label, to: &text)
            text += "."
        }
        return text
    }

    /// Presentation format relative to `origin` (`@` for the origin itself), as zone files are written.
    public func relativeDescription(to origin: DomainName) -> String {
        if self == origin { return "@" }
        guard self.isSubdomain(of: origin) else { return self.description }
        let keep = self.labelCount - origin.labelCount
        var text = ""
        for (index, label) in self.labels.prefix(keep).enumerated() {
            if index > 0 { text += "." }
            DomainName.appendEscaped(label, to: &text)
        }
        return text
    }

    /// The name as a host string: no final dot, as the HTTP Host header carries it.
    public var hostDescription: String {
        var text = self.description
        if text.count > 1 { text.removeLast() }
        return text
    }

    static func appendEscaped(_ label: [UInt8], to text: inout String) {
        for byte in label {
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                text += "\\" + String(UnicodeScalar(byte))
            case 0x21...0x7E:
                text += String(UnicodeScalar(byte))
            default:
                text += "\\" + DomainName.threeDigits(byte)
            }
        }
    }

    package static func threeDigits(_ byte: UInt8) -> String {
        let digits = String(byte)
        return String(repeating: "0", count: 3 - digits.count) + digits
    }

    /// RFC 4034 §6.1 canonical order: compare label by label from the right.
    public static func < (lhs: DomainName, rhs: DomainName) -> Bool {
        let left = lhs.labels
        let right = rhs.labels
        var leftIndex = left.count - 1
        var rightIndex = right.count - 1
        while leftIndex >= 0 && rightIndex >= 0 {
            let a = left[leftIndex]
            let b = right[rightIndex]
            if a != b { return a.lexicographicallyPrecedes(b) }
            leftIndex -= 1
            rightIndex -= 1
        }
        return left.count < right.count
    }
}

/// Why a domain name was rejected.
public enum NameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Two dots in a row, or a leading dot.
    case emptyLabel
    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    case labelTooLong(length: Int)
    /// RFC 1035 §2.3.4: a name is at most 255 octets on the wire.
    case nameTooLong(length: Int)
    /// A `\` not followed by a character or by three decimal digits up to 255.
    case badEscape
    /// A relative name where no `$ORIGIN` is known.
    case relativeWithoutOrigin

    public var description: String {
        switch self {
        case .emptyLabel: "empty label"
        case .labelTooLong(let length): "label is \(length) octets long (the limit is 63)"
        case .nameTooLong(let length): "name is \(length) octets long (the limit is 255)"
        case .badEscape: "bad escape (use \\X or \\DDD with DDD up to 255)"
        case .relativeWithoutOrigin: "relative name with no $ORIGIN"
        }
    }
}
