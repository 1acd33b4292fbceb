import DNSAuth
import DNSWire
import ZoneModel

/// A configured secondary as the server matches requests against it.
public struct TransferPeer: Equatable, Sendable {
    public var name: String
    public var address: IPAddress
    /// Index of the view it copies.
    public var view: Int
    public var key: TSIGKey?
}

/// What happened to one transfer-path request, for the log, the status page and metrics.
public struct TransferNote: Equatable, Sendable {
    /// The secondary it came from (nil: nobody configured).
    public var peer: String?
    public var zone: DomainName?
    /// "AXFR", "IXFR", "IXFR (full)", "IXFR (up to date)", "SOA", or "refused"/"NOTAUTH ...".
    public var kind: String
    public var serial: UInt32?
    /// Why it was refused, when it was.
    public var refusal: String?
}

/// What the server sends for a transfer-path request.
public enum TransferReply {
    case message([UInt8])
    /// Messages to send one after another (AXFR, IXFR over TCP).
    case stream(TransferStream)
    case drop
}

/// The hidden-primary side of the server, pure: zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) and
/// TSIG-signed queries (RFC 8945), each answered from the view of the secondary that asked — chosen by its
/// key, or by its address when it has none — never by the client address's view.
public enum ZoneTransfer {
    /// Messages of a transfer stay below this (pointers reach 16 KB; a TSIG fits after it).
    static let messageLimit = 16_000

    /// Answers `packet`, which `Responder` sent here (a transfer, or a query with a TSIG).
    public static func respond(
        to packet: [UInt8], from client: IPAddress, tcp: Bool, tables: DNSTables, now: UInt64
    ) -> (TransferReply, TransferNote) {
        let message: DNSMessage
        do {
            message = try DNSMessage.decode(packet)
        } catch {
            return (.drop, TransferNote(kind: "malformed", refusal: "the request is malformed"))
        }
        guard let question = message.question, message.flags & DNSHeader.qr == 0 else {
            return (.drop, TransferNote(kind: "malformed", refusal: "no question"))
        }
        let questionEnd = 12 + question.name.wire.count + 4
        // Who asks: the key it signed with, else its address.
        let check = TSIG.check(request: packet, keys: tables.transferKeys, now: now)
        let peer: TransferPeer
        var signing: (key: TSIGKey, mac: [UInt8])?
        switch check {
        case .malformed:
            let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: DNSRcode.formErr.rawValue)
            return (.message(reply), TransferNote(kind: "FORMERR", refusal: "malformed TSIG"))
        case .badKey(let record), .badSignature(let record), .badTime(_, let record):
            let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: TSIG.notAuth)
            let reason: String
            switch check {
            case .badKey: reason = "BADKEY: key \(record.keyName) is not a configured secondary's"
            case .badSignature: reason = "BADSIG: signed with key \(record.keyName) but a different secret"
            default: reason = "BADTIME: its clock is off by more than \(record.fudge) s"
            }
            let name = tables.transferPeers.first { $0.key?.name == record.keyName }?.name
            return (
                .message(TSIG.errorReply(reply, check: check, now: now)),
                TransferNote(peer: name, zone: question.name, kind: "NOTAUTH", refusal: reason)
            )
        case .valid(let key, let mac):
            // Several secondaries may share a key: the one at this address, else the first with it.
            guard
                let found = tables.transferPeers.first(where: { $0.key == key && $0.address == client })
                    ?? tables.transferPeers.first(where: { $0.key == key })
            else {
                return (.drop, TransferNote(kind: "refused", refusal: "no peer"))
            }
            peer = found
            signing = (key, mac)
        case .unsigned:
            guard let found = tables.transferPeers.first(where: { $0.key == nil && $0.address == client }) else {
                let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: DNSRcode.refused.rawValue)
                let reason =
                    tables.transferPeers.contains(where: { $0.address == client })
                    ? "unsigned, but the secondary at \(client) has a key" : "\(client) is not a configured secondary"
                return (.message(reply), TransferNote(zone: question.name, kind: "refused", refusal: reason))
            }
            peer = found
        }
        func finish(_ reply: [UInt8]) -> [UInt8] {
            guard let signing else { return reply }
            return TSIG.signResponse(reply, key: signing.key, prior: signing.mac, time: now).message
        }
        let view = tables.snapshot.views[peer.view]
        let type = question.type
        guard type == RecordType.axfr.rawValue || type == RecordType.ixfr.rawValue else {
            return ZoneTransfer.query(
                packet, question: question, peer: peer, tcp: tcp, tables: tables, finish: finish)
        }
        // A transfer: of a zone this view serves, by its apex, over TCP (IXFR over UDP gets the SOA only).
        guard let zone = view.zones[question.name] else {
            let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: TSIG.notAuth)
            return (
                .message(finish(reply)),
                TransferNote(
                    peer: peer.name, zone: question.name, kind: "NOTAUTH",
                    refusal: "view '\(view.name)' serves no zone \(question.name)")
            )
        }
        let serial = ZoneTransfer.serial(of: zone.soa)
        let key = SerialBook.key(view: view.name, apex: zone.apex)
        var note = TransferNote(peer: peer.name, zone: zone.apex, kind: "AXFR", serial: serial)
        var items: [TransferStream.Item] = []
        var full = true
        if type == RecordType.ixfr.rawValue {
            guard let theirs = message.authority.first(where: { $0.type == RecordType.soa.rawValue }),
                let theirSerial = ZoneTransfer.serial(ofWire: theirs.data)
            else {
                let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: DNSRcode.formErr.rawValue)
                return (.message(finish(reply)), TransferNote(peer: peer.name, zone: zone.apex, kind: "FORMERR"))
            }
            if !ZoneTransfer.isNewer(serial, than: theirSerial) || !tcp {
                // Up to date (or over UDP): the current SOA alone (RFC 1995 §4).
                note.kind = tcp ? "IXFR (up to date)" : "IXFR over UDP (SOA only)"
                var stream = TransferStream(
                    request: packet, questionEnd: questionEnd, items: [.record(zone.soa)], signing: signing)
                return (.message(stream.next(now: now) ?? []), note)
            }
            if let chain = tables.journal.chain(key, from: theirSerial, to: serial) {
                note.kind = "IXFR"
                items.append(.record(zone.soa))
                for delta in chain {
                    items.append(.wire(delta.oldSOA))
                    items += delta.removed.map { .wire($0) }
                    items.append(.wire(delta.newSOA))
                    items += delta.added.map { .wire($0) }
                }
                items.append(.record(zone.soa))
                full = false
            } else {
                note.kind = "IXFR (full)"
            }
        }
        if full {
            if !tcp {
                let reply = ZoneTransfer.header(packet, questionEnd: questionEnd, rcode: DNSRcode.refused.rawValue)
                return (
                    .message(finish(reply)), TransferNote(peer: peer.name, kind: "refused", refusal: "AXFR over UDP")
                )
            }
            return (
                .stream(
                    TransferStream(
                        request: packet, questionEnd: questionEnd, view: view, apex: zone.apex, soa: zone.soa,
                        signing: signing)), note
            )
        }
        return (
            .stream(TransferStream(request: packet, questionEnd: questionEnd, items: items, signing: signing)), note
        )
    }

    /// A signed query that is not a transfer (a secondary's SOA check): answered from the peer's view, signed.
    static func query(
        _ packet: [UInt8], question: (name: DomainName, type: UInt16, qclass: UInt16), peer: TransferPeer, tcp: Bool,
        tables: DNSTables, finish: ([UInt8]) -> [UInt8]
    ) -> (TransferReply, TransferNote) {
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 16)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: Responder.maximumMessage + 2, alignment: 16)
        defer {
            key.deallocate()
            out.deallocate()
        }
        var note = TransferNote(peer: peer.name, zone: question.name, kind: "query")
        // The query as it was before it was signed, so the fast path's parser takes it.
        var unsigned = packet
        if case .signed(let stripped, _) = TSIG.split(packet) { unsigned = stripped }
        let reply: [UInt8]? = unsigned.withUnsafeBytes { raw in
            var prepared = Responder.prepare(raw, from: peer.address, tables: tables, key: key)
            guard case .success(let query) = prepared.parsed else { return nil }
            prepared.view = peer.view
            prepared.hash = NameTable.hash(UnsafeRawBufferPointer(rebasing: key[0..<query.nameLength]))
            let (action, _) = Responder.respond(
                prepared, packet: raw, key: UnsafeRawBufferPointer(key), tcp: tcp, tables: tables, scratch: key,
                into: out)
            switch action {
            case .reply(let length, _):
                return Array(UnsafeRawBufferPointer(rebasing: out[0..<length]))
            case .forward, .drop, .transfer:
                note.refusal = "not in view '\(tables.snapshot.views[peer.view].name)'"
                return ZoneTransfer.header(unsigned, questionEnd: query.questionEnd, rcode: DNSRcode.refused.rawValue)
            }
        }
        guard let reply else { return (.drop, note) }
        return (.message(finish(reply)), note)
    }

    /// A reply with no records: the request's ID, question and RD, QR set, `rcode`.
    static func header(_ packet: [UInt8], questionEnd: Int, rcode: UInt16) -> [UInt8] {
        let hasQuestion = questionEnd <= packet.count
        var out = Array(packet.prefix(12))
        out += [UInt8](repeating: 0, count: max(0, 12 - out.count))
        out[2] = (out[2] & 0x79) | 0x80  // QR, opcode kept, AA and TC clear, RD kept
        out[3] = UInt8(rcode & 0x0F)
        out[4] = 0
        out[5] = hasQuestion ? 1 : 0
        for index in 6..<12 { out[index] = 0 }
        if hasQuestion { out += packet[12..<questionEnd] }
        return out
    }

    // MARK: Records as a transfer sends them

    /// The serial of a SOA record.
    public static func serial(of soa: Record) -> UInt32 {
        if case .soa(let data) = soa.data { return data.serial }
        return 0
    }

    /// The serial inside SOA RDATA in wire form (names uncompressed).
    static func serial(ofWire data: [UInt8]) -> UInt32? {
        data.withUnsafeBytes { raw -> UInt32? in
            var reader = WireReader(raw)
            do throws(WireError) {
                try reader.skipName()
                try reader.skipName()
                return try reader.readUInt32()
            } catch {
                return nil
            }
        }
    }

    /// RFC 1982 serial arithmetic: whether `a` comes after `b`.
    public static func isNewer(_ a: UInt32, than b: UInt32) -> Bool {
        a != b && (a &- b) < 0x8000_0000
    }

    /// A record in uncompressed wire form: owner, type, class IN, TTL, length, data.
    public static func wire(_ record: Record) -> [UInt8] {
        let data = record.data.wire
        var out = record.owner.wire
        out.reserveCapacity(out.count + 10 + data.count)
        let type = record.type.rawValue
        out += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        out += [
            UInt8(record.ttl >> 24), UInt8(record.ttl >> 16 & 0xFF), UInt8(record.ttl >> 8 & 0xFF),
            UInt8(record.ttl & 0xFF),
        ]
        out += [UInt8(data.count >> 8), UInt8(data.count & 0xFF)]
        return out + data
    }

    /// Every record of zone `apex` in `view` but its SOA, in wire form (what a journal compares).
    public static func wireRecords(_ view: CompiledView, apex: DomainName) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for (name, node) in view.nodes where node.apex == apex {
            for rrset in node.rrsets where !(rrset.type == .soa && name == apex) {
                for data in rrset.data {
                    out.append(ZoneTransfer.wire(Record(owner: name, type: rrset.type, ttl: rrset.ttl, data: data)))
                }
            }
        }
        return out
    }
}

/// The messages of one transfer, made as the connection drains so a large zone never sits in memory twice.
public struct TransferStream {
    enum Item {
        case record(Record)
        /// An uncompressed wire record (from the journal).
        case wire([UInt8])
    }

    let id: (UInt8, UInt8)
    let rd: Bool
    let question: [UInt8]
    var signing: (key: TSIGKey, mac: [UInt8])?
    // Either a list of items, or a whole zone walked in place.
    var items: [Item] = []
    var itemIndex = 0
    var nodes: [DomainName: Node] = [:]
    /// Where the walk is in `nodes` (no lookup per name).
    var nodeIndex: Dictionary<DomainName, Node>.Index
    var apex = DomainName.root
    var soa: Record?
    /// The walk: 0 the first SOA, 1 the names, 2 the closing SOA, 3 done.
    var phase = 0
    var rrsetIndex = 0
    var dataIndex = 0
    var pending: Item?
    public private(set) var messages = 0
    public private(set) var bytes = 0
    public private(set) var records = 0

    init(request: [UInt8], questionEnd: Int, items: [Item], signing: (key: TSIGKey, mac: [UInt8])?) {
        self.id = (request[0], request[1])
        self.rd = request[2] & 0x01 != 0
        self.question = Array(request[12..<questionEnd])
        self.items = items
        self.signing = signing
        self.nodeIndex = self.nodes.endIndex
        self.phase = 3
    }

    init(
        request: [UInt8], questionEnd: Int, view: CompiledView, apex: DomainName, soa: Record,
        signing: (key: TSIGKey, mac: [UInt8])?
    ) {
        self.id = (request[0], request[1])
        self.rd = request[2] & 0x01 != 0
        self.question = Array(request[12..<questionEnd])
        self.signing = signing
        self.nodes = view.nodes
        self.nodeIndex = view.nodes.startIndex
        self.apex = apex
        self.soa = soa
        self.phase = 0
    }

    /// The most octets `data` takes uncompressed, without building its wire form.
    static func dataBound(_ data: RData) -> Int {
        switch data {
        case .a: 4
        case .aaaa: 16
        case .name(let name): name.wire.count
        case .mx(_, let exchange): 2 + exchange.wire.count
        case .srv(_, _, _, let target): 6 + target.wire.count
        case .soa(let soa): soa.mname.wire.count + soa.rname.wire.count + 20
        case .txt(let strings): strings.reduce(0) { $0 + 1 + $1.count }
        case .caa(_, let tag, let value): 2 + tag.count + value.count
        case .generic(let bytes): bytes.count
        }
    }

    public var isFinished: Bool { self.pending == nil && self.itemIndex >= self.items.count && self.phase >= 3 }

    /// The next item, from the list first, then from the walk.
    mutating func nextItem() -> Item? {
        if let pending = self.pending {
            self.pending = nil
            return pending
        }
        if self.itemIndex < self.items.count {
            defer { self.itemIndex += 1 }
            return self.items[self.itemIndex]
        }
        while true {
            switch self.phase {
            case 0:
                self.phase = 1
                if let soa = self.soa { return .record(soa) }
            case 1:
                guard self.nodeIndex != self.nodes.endIndex else {
                    self.phase = 2
                    continue
                }
                let (name, node) = self.nodes[self.nodeIndex]
                guard node.apex == self.apex, self.rrsetIndex < node.rrsets.count else {
                    self.nodeIndex = self.nodes.index(after: self.nodeIndex)
                    self.rrsetIndex = 0
                    self.dataIndex = 0
                    continue
                }
                let rrset = node.rrsets[self.rrsetIndex]
                guard self.dataIndex < rrset.data.count, !(rrset.type == .soa && name == self.apex) else {
                    self.rrsetIndex += 1
                    self.dataIndex = 0
                    continue
                }
                defer { self.dataIndex += 1 }
                return .record(Record(owner: name, type: rrset.type, ttl: rrset.ttl, data: rrset.data[self.dataIndex]))
            case 2:
                self.phase = 3
                if let soa = self.soa { return .record(soa) }
            default:
                return nil
            }
        }
    }

    /// The next message (signed when the request was), or nil when the transfer is complete.
    public mutating func next(now: UInt64) -> [UInt8]? {
        let first = self.messages == 0
        guard let item = self.nextItem() else { return nil }
        let headerLength = 12 + (first ? self.question.count : 0)
        var writer = MessageWriter(base: headerLength)
        var count = 0
        var current: Item? = item
        while let item = current {
            let estimate: Int
            switch item {
            case .record(let record): estimate = record.owner.wire.count + 10 + TransferStream.dataBound(record.data)
            case .wire(let bytes): estimate = bytes.count
            }
            if count > 0 && headerLength + writer.bytes.count + estimate > ZoneTransfer.messageLimit {
                self.pending = item
                break
            }
            switch item {
            case .record(let record): writer.writeRecord(record)
            case .wire(let bytes): writer.writeRaw(bytes)
            }
            count += 1
            current = self.nextItem()
        }
        var message: [UInt8] = [
            self.id.0, self.id.1, 0x84 | (self.rd ? 1 : 0), 0, 0, first ? 1 : 0, UInt8(count >> 8), UInt8(count & 0xFF),
            0,
            0, 0, 0,
        ]
        message.reserveCapacity(headerLength + writer.bytes.count + 128)
        if first { message += self.question }
        message += writer.bytes
        if let signing = self.signing {
            let signed = TSIG.signResponse(message, key: signing.key, prior: signing.mac, time: now, timersOnly: !first)
            self.signing = (signing.key, signed.mac)
            message = signed.message
        }
        self.messages += 1
        self.records += count
        self.bytes += message.count
        return message
    }
}
