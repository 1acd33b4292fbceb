/// Which certificate a TLS client gets for the name it sent (SNI): exact names first, then a wildcard one
/// label up (`*.example.com` covers `a.example.com`, not `example.com` or `a.b.example.com`, as RFC 6125
/// §6.4.3 has browsers match), then the configured default — never some other site's certificate by
/// accident: with no default, an unknown name gets nothing (the handshake ends with an alert).
/// Pure, so the choice is table-tested without OpenSSL.
public struct CertificateTable<Entry>: Sendable where Entry: Sendable {
    var exact: [String: Entry] = [:]
    var wildcards: [String: Entry] = [:]
    public private(set) var fallback: Entry?

    public init() {}

    /// Serves `entry` for `name` (a DNS name, `*.parent` for a wildcard; any case, a trailing dot allowed).
    /// The first entry given for a name keeps it: a later certificate for the same name is a duplicate.
    /// Returns false for a duplicate or a name that is not a DNS name.
    @discardableResult
    public mutating func insert(_ name: String, _ entry: Entry) -> Bool {
        guard let key = CertificateTable.key(name) else { return false }
        if key.hasPrefix("*.") {
            let parent = String(key.dropFirst(2))
            guard !parent.isEmpty, !parent.contains("*"), self.wildcards[parent] == nil else { return false }
            self.wildcards[parent] = entry
        } else {
            guard !key.contains("*"), self.exact[key] == nil else { return false }
            self.exact[key] = entry
        }
        return true
    }

    /// What a client that sent no name, or a name nothing else covers, gets.
    public mutating func setFallback(_ entry: Entry) { self.fallback = entry }

    /// The entry for the name a client sent (nil: it sent none).
    public func lookup(_ serverName: String?) -> Entry? {
        guard let serverName else { return self.fallback }
        return self.covering(serverName) ?? self.fallback
    }

    /// The entry whose names cover `name` — exactly or by a wildcard, never the default. A wildcard name
    /// (`*.lab.example.com`, a wildcard site) is covered by the same wildcard.
    public func covering(_ name: String) -> Entry? {
        guard let key = CertificateTable.key(name) else { return nil }
        if let entry = self.exact[key] { return entry }
        if let dot = key.firstIndex(of: "."), let entry = self.wildcards[String(key[key.index(after: dot)...])] {
            return entry
        }
        return nil
    }

    /// Whether the table holds no name at all.
    public var isEmpty: Bool { self.exact.isEmpty && self.wildcards.isEmpty && self.fallback == nil }

    /// Names covered, exact then wildcards, sorted (for `check` and the status page).
    public var names: [String] { self.exact.keys.sorted() + self.wildcards.keys.sorted().map { "*." + $0 } }

    /// The name in lower case without a trailing dot; nil when it is not a host name (empty labels, bytes a
    /// host name cannot hold, over 253 octets).
    static func key(_ name: String) -> String? {
        var text = name.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        guard !text.isEmpty, text.utf8.count <= 253 else { return nil }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else { return nil }
            for byte in label.utf8 {
                let allowed =
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_") || (byte == UInt8(ascii: "*") && label == "*")
                guard allowed else { return nil }
            }
        }
        return text
    }
}
