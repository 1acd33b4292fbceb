import DNSWire
import ZoneModel

/// A client waiting for an upstream answer, with what its response needs.
public struct Waiter: Sendable {
    public var id: UInt16
    public var flags: UInt16
    /// The question section exactly as the client sent it (its letter case included).
    public var question: [UInt8]
    public var nameLength: Int
    public var edns: EDNSInfo?
    /// A CNAME chain from our own zones to put first. Kept by value: a reload while the question is out
    /// must not change (or invalidate) what this client's answer starts with.
    public var prefix: AnswerTemplate?
    public var view: Int
    public var tcp: Bool

    public init(
        id: UInt16, flags: UInt16, question: [UInt8], nameLength: Int, edns: EDNSInfo?, prefix: AnswerTemplate?,
        view: Int, tcp: Bool
    ) {
        self.id = id
        self.flags = flags
        self.question = question
        self.nameLength = nameLength
        self.edns = edns
        self.prefix = prefix
        self.view = view
        self.tcp = tcp
    }

    /// Captures a parsed query for later; `prefix` is a template index of `tables`' view `view`, or -1.
    public init(query: DNSQuery, packet: UnsafeRawBufferPointer, prefix: Int32, view: Int, tables: DNSTables, tcp: Bool)
    {
        let template: AnswerTemplate? =
            prefix >= 0 && view < tables.views.count && Int(prefix) < tables.views[view].templates.count
            ? tables.views[view].templates[Int(prefix)] : nil
        self.init(
            id: query.id, flags: query.flags, question: Array(packet[DNSHeader.size..<query.questionEnd]),
            nameLength: query.nameLength, edns: query.edns, prefix: template, view: view, tcp: tcp)
    }

    /// The name to ask upstream: where our CNAME chain leaves the served zones, else the question itself.
    public var upstreamName: DomainName {
        if let end = self.prefix?.chainEnd { return end }
        // The question's name, lower-cased as the cache keys it.
        let wire = self.question[0..<self.nameLength].map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        return DomainName(uncheckedWire: wire)
    }

    /// The question's type.
    public var type: UInt16 {
        UInt16(self.question[self.nameLength]) << 8 | UInt16(self.question[self.nameLength + 1])
    }
}

/// Builds responses from upstream (or cached) answers for waiting clients.
public enum ForwardedAnswer {
    /// The response for `waiter`: its ID and question, any chain prefix, then `answer`'s sections (or
    /// SERVFAIL with no records when `answer` is nil). Over UDP it drops the additional section, then
    /// sets TC, when the client's size is exceeded.
    public static func response(for waiter: Waiter, answer: CachedAnswer?) -> [UInt8] {
        let limit =
            waiter.tcp ? Responder.maximumMessage : min(waiter.edns?.udpSize ?? 512, Responder.advertisedUDPSize)
        let prefix = waiter.prefix
        let rcode = answer?.rcode ?? DNSRcode.servFail.rawValue
        for attempt in 0..<3 {
            // 0: everything; 1: without additional records; 2: truncated.
            let message = ForwardedAnswer.encode(
                waiter, prefix: attempt < 2 ? prefix : nil, answer: attempt < 2 ? answer : nil, rcode: rcode,
                withAdditional: attempt == 0, truncated: attempt == 2)
            if message.count <= limit || attempt == 2 { return message }
        }
        return []
    }

    public static func encode(
        _ waiter: Waiter, prefix: AnswerTemplate?, answer: CachedAnswer?, rcode: UInt16, withAdditional: Bool,
        truncated: Bool
    ) -> [UInt8] {
        var flags = DNSHeader.qr | DNSHeader.ra | (waiter.flags & (DNSHeader.rd | DNSHeader.cd)) | (rcode & 0xF)
        if truncated { flags |= DNSHeader.tc }
        let prefixCount = prefix.map { Int($0.shape.answerCount) } ?? 0
        let answers = answer?.answer ?? []
        let authority = answer?.authority ?? []
        let additional = withAdditional ? answer?.additional ?? [] : []
        var header = MessageWriter(base: 0)
        header.writeUInt16(waiter.id)
        header.writeUInt16(flags)
        header.writeUInt16(1)
        header.writeUInt16(UInt16(prefixCount + answers.count))
        header.writeUInt16(UInt16(authority.count))
        header.writeUInt16(UInt16(additional.count + (waiter.edns == nil ? 0 : 1)))
        var bytes = header.bytes + waiter.question
        if let prefix {
            // The chain's own bytes, relocated as the responder does, without its additional section.
            var body = Array(prefix.bytes[0..<prefix.shape.lengthWithoutAdditional])
            for relocation in prefix.relocations where Int(relocation) + 1 < body.count {
                let at = Int(relocation)
                let pointer = (Int(body[at]) & 0x3F) << 8 | Int(body[at + 1])
                let moved = pointer + waiter.nameLength
                body[at] = 0xC0 | UInt8(moved >> 8)
                body[at + 1] = UInt8(moved & 0xFF)
            }
            bytes += body
        }
        var writer = MessageWriter(base: bytes.count)
        for record in answers + authority + additional {
            writer.writeRecord(
                owner: record.owner, type: record.type, rrClass: record.rrClass, ttl: record.ttl, data: record.data)
        }
        bytes += writer.bytes
        if let edns = waiter.edns {
            bytes += [0, 0, 41, UInt8(Responder.advertisedUDPSize >> 8), UInt8(Responder.advertisedUDPSize & 0xFF)]
            bytes += [UInt8(truncatingIfNeeded: rcode >> 4), 0, edns.dnssecOK ? 0x80 : 0, 0, 0, 0]
        }
        return bytes
    }
}
