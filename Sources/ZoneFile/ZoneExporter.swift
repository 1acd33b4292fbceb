import ZoneModel

/// Prints a compiled view's zone as plain RFC 1035 text that NSD, BIND and `named-checkzone` accept.
package enum ZoneExporter {
    /// The zone `apex` as one view sees it: SOA first, then apex NS, then every name in canonical order.
    package static func export(_ view: CompiledView, apex: DomainName) -> String? {
        guard let zone = view.zones[apex] else { return nil }
        var text = "; zone \(apex) as view '\(view.name)' sees it, exported by frontdoor\n"
        text += "$ORIGIN \(apex)\n"
        text += ZoneExporter.line(zone.soa) + "\n"
        let names = view.nodes.filter { $0.value.apex == apex }.keys.sorted()
        for name in names {
            guard let node = view.nodes[name] else { continue }
            let ordered = node.rrsets.sorted { ZoneExporter.order($0.type) < ZoneExporter.order($1.type) }
            for rrset in ordered where !(name == apex && rrset.type == .soa) {
                for record in rrset.records(owner: name) { text += ZoneExporter.line(record) + "\n" }
            }
        }
        return text
    }

    /// NS right after SOA at the apex, then by type code.
    static func order(_ type: RecordType) -> Int {
        switch type {
        case .soa: -2
        case .ns: -1
        default: Int(type.rawValue)
        }
    }

    /// One record in presentation format with an absolute owner.
    package static func line(_ record: Record) -> String {
        "\(record.owner)\t\(record.ttl)\tIN\t\(record.type)\t\(ZoneExporter.presentation(record.data, type: record.type))"
    }

    /// RDATA in presentation format (RFC 1035 §5.1, RFC 3597 §5 for other types).
    package static func presentation(_ data: RData, type: RecordType) -> String {
        switch data {
        case .a(let address): address.description
        case .aaaa(let address): address.description
        case .name(let name): name.description
        case .mx(let preference, let exchange): "\(preference) \(exchange)"
        case .srv(let priority, let weight, let port, let target): "\(priority) \(weight) \(port) \(target)"
        case .soa(let soa):
            "\(soa.mname) \(soa.rname) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .txt(let strings): strings.map(ZoneExporter.quoted).joined(separator: " ")
        case .caa(let flags, let tag, let value):
            "\(flags) \(String(decoding: tag, as: UTF8.self)) \(ZoneExporter.quoted(value))"
        case .generic(let bytes):
            RDataSchema.presentation(type, bytes)
                ?? (bytes.isEmpty ? "\\# 0" : "\\# \(bytes.count) " + bytes.map { ZoneExporter.hex($0) }.joined())
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    /// A character-string between quotes: `"` and `\` escaped, anything unprintable as `\DDD`.
    package static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20...0x7E: text += String(UnicodeScalar(byte))
            default: text += "\\" + DomainName.threeDigits(byte)
            }
        }
        return text + "\""
    }
}
