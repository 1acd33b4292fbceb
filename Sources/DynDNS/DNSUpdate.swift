import DNSAuth
import DNSWire
import EventLoop
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// RFC 2136 dynamic updates: replace the address records of one name, signed with TSIG.
public enum DNSUpdate {
    static let opcodeUpdate: UInt16 = 5 << 11

    /// An UPDATE for `zone` that deletes every record of `record`'s type and adds `address` with `ttl`.
    public static func message(id: UInt16, zone: DomainName, record: DomainName, address: IPAddress, ttl: UInt32)
        -> [UInt8]
    {
        let type: UInt16 = address.isV4 ? 1 : 28
        var out = be16(id) + be16(DNSUpdate.opcodeUpdate) + be16(1) + be16(0) + be16(2) + be16(0)
        // Zone section: the zone's SOA, class IN.
        out += zone.wire + be16(6) + be16(1)
        // Delete the RRset (class ANY, TTL 0, no data), then add the new record (RFC 2136 §2.5.2, §2.5.1).
        out += record.wire + be16(type) + be16(255) + be32(0) + be16(0)
        let data = address.bytes
        out += record.wire + be16(type) + be16(1) + be32(ttl) + be16(UInt16(data.count)) + data
        return out
    }

    /// An UPDATE for `zone` that adds the TXT records `add` at `owner` and deletes the ones `delete` (each one
    /// string; RFC 2136 §2.5.1 and §2.5.4: class NONE deletes that record only, others stay).
    public static func txtMessage(
        id: UInt16, zone: DomainName, owner: DomainName, add: [String], delete: [String], ttl: UInt32
    ) -> [UInt8] {
        var out = be16(id) + be16(DNSUpdate.opcodeUpdate) + be16(1) + be16(0) + be16(UInt16(add.count + delete.count))
        out += be16(0)
        out += zone.wire + be16(6) + be16(1)
        func data(_ text: String) -> [UInt8] {
            let bytes = Array(text.utf8.prefix(255))
            return be16(UInt16(bytes.count + 1)) + [UInt8(bytes.count)] + bytes
        }
        for text in delete { out += owner.wire + be16(16) + be16(254) + be32(0) + data(text) }
        for text in add { out += owner.wire + be16(16) + be16(1) + be32(ttl) + data(text) }
        return out
    }

    /// Adds and deletes TXT records at `owner` on the primary (a DNS-01 challenge), signed with `key`.
    public static func pushTXT(
        server: SocketAddress, zone: DomainName, owner: DomainName, add: [String], delete: [String], key: TSIGKey,
        timeout: UInt64 = 5_000
    ) throws(DynDNSError) {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        try DNSUpdate.send(
            DNSUpdate.txtMessage(id: id, zone: zone, owner: owner, add: add, delete: delete, ttl: 60), server: server,
            key: key, timeout: timeout)
    }

    /// Sends the signed update to the primary and checks the reply: its ID, its TSIG, its RCODE.
    public static func push(
        server: SocketAddress, zone: DomainName, record: DomainName, address: IPAddress, ttl: UInt32, key: TSIGKey,
        timeout: UInt64 = 5_000
    ) throws(DynDNSError) {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        try DNSUpdate.send(
            DNSUpdate.message(id: id, zone: zone, record: record, address: address, ttl: ttl), server: server, key: key,
            timeout: timeout)
    }

    /// Signs `message` with `key`, sends it to `server` and checks the reply: its ID, its TSIG, its RCODE.
    static func send(_ message: [UInt8], server: SocketAddress, key: TSIGKey, timeout: UInt64) throws(DynDNSError) {
        let now = UInt64(time(nil))
        let (signed, mac) = TSIG.sign(message, key: key, time: now)
        let reply = try BlockingSocket.dnsExchange(signed, server: server, timeout: timeout)
        guard reply.count >= 12, reply[0] == signed[0], reply[1] == signed[1] else {
            throw .badReply("the reply does not match the update (ID)")
        }
        let rcode = UInt16(reply[3] & 0x0F)
        let verdict = TSIG.verify(reply, requestMAC: mac, key: key, now: UInt64(time(nil)))
        switch verdict {
        case .serverError(let code):
            throw .refused("the server rejected the TSIG key '\(key.name.hostDescription)': \(TSIG.errorName(code))")
        case .badMAC:
            throw .badReply("the reply's TSIG does not verify (wrong key, or a forged reply)")
        case .malformed:
            throw .badReply("the reply is malformed")
        case .unsigned:
            // NOTAUTH without a TSIG: the server does not know the key.
            if rcode == 9 { throw .refused("the server does not accept key '\(key.name.hostDescription)' (NOTAUTH)") }
            throw .badReply("the reply is not signed")
        case .valid:
            break
        }
        guard rcode == 0 else { throw .refused("the server answered \(DNSRcode.name(rcode))") }
    }

    /// The TXT strings `owner` has on `server` (asked directly, no recursion; each record's strings joined).
    public static func txt(server: SocketAddress, owner: DomainName, timeout: UInt64 = 5_000) throws(DynDNSError)
        -> [String]
    {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        let query = QueryBuilder.query(id: id, name: owner, type: 16, recursionDesired: false, udpSize: nil)
        let reply = try BlockingSocket.dnsExchange(query, server: server, timeout: timeout)
        guard let message = try? DNSMessage.decode(reply), message.id == id else {
            throw .badReply("cannot read the answer for \(owner.hostDescription)")
        }
        return message.answers.filter { $0.owner == owner && $0.type == 16 }.map { answer in
            String(decoding: answer.characterStrings.joined(), as: UTF8.self)
        }
    }

    /// The CNAME target of `owner` as `server` (a resolver, asked with recursion) answers it; nil when it has
    /// none.
    public static func cname(server: SocketAddress, owner: DomainName, timeout: UInt64 = 5_000) throws(DynDNSError)
        -> DomainName?
    {
        try DNSUpdate.names(server: server, owner: owner, type: 5, timeout: timeout).first
    }

    /// The names in the `type` records (NS, CNAME, ...) of `owner` as `server` (a resolver) answers.
    public static func names(server: SocketAddress, owner: DomainName, type: UInt16, timeout: UInt64 = 5_000)
        throws(DynDNSError) -> [DomainName]
    {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        let query = QueryBuilder.query(id: id, name: owner, type: type, recursionDesired: true, udpSize: 1232)
        let reply = try BlockingSocket.dnsExchange(query, server: server, timeout: timeout)
        guard let message = try? DNSMessage.decode(reply), message.id == id else {
            throw .badReply("cannot read the answer for \(owner.hostDescription)")
        }
        return message.answers.filter { $0.owner == owner && $0.type == type }.compactMap(\.nameData)
    }

    /// The IPv4 and IPv6 addresses of `owner` as `server` (a resolver) answers.
    public static func addresses(server: SocketAddress, owner: DomainName, timeout: UInt64 = 5_000)
        throws(DynDNSError) -> [IPAddress]
    {
        var found: [IPAddress] = []
        for type: UInt16 in [1, 28] {
            let id = UInt16(truncatingIfNeeded: randomUInt32())
            let query = QueryBuilder.query(id: id, name: owner, type: type, recursionDesired: true, udpSize: 1232)
            let reply = try BlockingSocket.dnsExchange(query, server: server, timeout: timeout)
            guard let message = try? DNSMessage.decode(reply), message.id == id else { continue }
            found += message.answers.compactMap { answer in
                guard answer.type == type, answer.data.count == (type == 1 ? 4 : 16) else { return nil }
                return IPAddress(bytes: answer.data)
            }
        }
        return found
    }

    /// The addresses `record` has now on `server` (type A or AAAA), asked over TCP: the provider's own view,
    /// so an update is sent only when it differs.
    public static func current(server: SocketAddress, record: DomainName, v4: Bool, timeout: UInt64 = 5_000)
        throws(DynDNSError) -> [IPAddress]
    {
        let id = UInt16(truncatingIfNeeded: randomUInt32())
        let query = QueryBuilder.query(
            id: id, name: record, type: v4 ? 1 : 28, recursionDesired: false, udpSize: nil)
        let reply = try BlockingSocket.dnsExchange(query, server: server, timeout: timeout)
        guard let message = try? DNSMessage.decode(reply), message.id == id else {
            throw .badReply("cannot read the answer for \(record.hostDescription)")
        }
        return message.answers.compactMap { answer in
            guard answer.owner == record else { return nil }
            if answer.type == 1 && answer.data.count == 4 { return IPAddress(bytes: answer.data) }
            if answer.type == 28 && answer.data.count == 16 { return IPAddress(bytes: answer.data) }
            return nil
        }
    }
}
