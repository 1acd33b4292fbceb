import ZoneModel

/// Builds query messages: for the forwarder's upstream questions and for tests.
public enum QueryBuilder {
    /// A QUERY for `name`/`type` in class IN, with an OPT record advertising `udpSize` when given.
    public static func query(
        id: UInt16, name: DomainName, type: UInt16, recursionDesired: Bool = true, udpSize: UInt16? = 1232,
        dnssecOK: Bool = false, qclass: UInt16 = 1
    ) -> [UInt8] {
        var writer = MessageWriter(base: 0)
        writer.writeUInt16(id)
        writer.writeUInt16(recursionDesired ? DNSHeader.rd : 0)
        writer.writeUInt16(1)
        writer.writeUInt16(0)
        writer.writeUInt16(0)
        writer.writeUInt16(udpSize == nil ? 0 : 1)
        writer.writeName(name, compress: false)
        writer.writeUInt16(type)
        writer.writeUInt16(qclass)
        if let udpSize {
            writer.writeName(.root, compress: false)
            writer.writeUInt16(RecordType.opt.rawValue)
            writer.writeUInt16(udpSize)
            writer.writeUInt32(dnssecOK ? 0x8000 : 0)
            writer.writeUInt16(0)
        }
        return writer.bytes
    }
}
