import DNSWire
import ZoneModel

/// Everything the DNS workers need from one snapshot: the compiled answers of every view, in match order.
public final class DNSTables: @unchecked Sendable {
    public let snapshot: Snapshot
    public let views: [ViewAnswers]
    /// Per view, its `AnswerIndex` (what answering reads), in memory this object frees.
    @usableFromInline let indexes: UnsafeMutablePointer<AnswerIndex>

    /// Per view, in match order: whether it takes every client, else its networks. Kept apart from the
    /// snapshot's views, which are large values: walking those copied (and retained) them on every query.
    @usableFromInline let matchesAll: [Bool]
    @usableFromInline let networks: [[CIDR]]

    /// The configured secondaries (views resolved to indexes) and their keys, for `ZoneTransfer`.
    public let transferPeers: [TransferPeer]
    public let transferKeys: [TSIGKey]
    @usableFromInline let keylessPeers: [TransferPeer]
    /// Recent changes of every zone, for IXFR.
    public let journal: TransferJournal

    public init(snapshot: Snapshot, journal: TransferJournal = TransferJournal()) {
        self.snapshot = snapshot
        self.journal = journal
        var peers: [TransferPeer] = []
        for secondary in snapshot.settings.secondaries {
            guard let view = snapshot.views.firstIndex(where: { $0.name == secondary.view }) else { continue }
            peers.append(
                TransferPeer(name: secondary.name, address: secondary.address.address, view: view, key: secondary.key))
        }
        self.transferPeers = peers
        self.transferKeys = peers.compactMap(\.key)
        self.keylessPeers = peers.filter { $0.key == nil }
        self.views = snapshot.views.map(AnswerCompiler.compile)
        self.matchesAll = snapshot.views.map(\.matchesAll)
        self.networks = snapshot.views.map(\.networks)
        self.indexes = .allocate(capacity: max(1, self.views.count))
        self.indexes.initialize(from: self.views.map(\.index), count: self.views.count)
    }

    deinit { self.indexes.deallocate() }

    /// The answering data of view number `view` (0 ..< views.count). Valid while this object lives.
    @inlinable @inline(__always)
    public func index(_ view: Int) -> AnswerIndex { self.indexes[view] }

    /// The index of the first view matching `client`, or -1 (the client is refused). A secondary configured
    /// without a key is served its own view, whatever its address matches (its SOA checks must see the serial
    /// of the view it copies).
    @inlinable
    public func viewIndex(for client: IPAddress) -> Int {
        if !self.keylessPeers.isEmpty {
            for peer in self.keylessPeers where peer.address == client { return peer.view }
        }
        return self.matchesAll.withUnsafeBufferPointer { matchesAll in
            for index in matchesAll.indices {
                if matchesAll[index] || self.networks[index].contains(where: { $0.contains(client) }) { return index }
            }
            return -1
        }
    }
}

/// What to do with one query.
public enum ResponderAction: Equatable, Sendable {
    /// Send `length` bytes of the output buffer; `view` is the client's view (-1: none), for the caller's
    /// counters and rate limiting.
    case reply(length: Int, view: Int)
    /// Send nothing.
    case drop
    /// Resolve upstream; `prefix` is a template to put before the upstream answer (a CNAME chain) or -1.
    case forward(view: Int, prefix: Int32)
    /// A zone transfer or a TSIG-signed query: answered by `ZoneTransfer`, from the asking secondary's view.
    case transfer
}

/// A query read ahead of answering it (`Responder.prepare`).
public struct PreparedQuery: Sendable {
    public var parsed: Result<DNSQuery, QueryProblem>
    /// The client's view, -1 for none.
    public var view: Int
    /// `NameTable.hash` of the lower-cased question name (0 when not parsed or no view).
    public var hash: UInt64

    /// Whether answering it will look its name up (it parsed and its client has a view): then `hash` is set.
    @inlinable
    public var looksUp: Bool {
        guard self.view >= 0, case .success = self.parsed else { return false }
        return true
    }

    @inlinable
    public init(parsed: Result<DNSQuery, QueryProblem>, view: Int, hash: UInt64) {
        self.parsed = parsed
        self.view = view
        self.hash = hash
    }
}

/// The authoritative side of the server, pure: a query's bytes in, a response's bytes out.
///
/// It allocates nothing per query: the caller lends a 255-byte scratch buffer for the lower-cased
/// question name and an output buffer of at least `Responder.maximumMessage` bytes.
public enum Responder {
    /// The largest UDP payload Frontdoor sends and advertises (RFC 9715's avoid-fragmentation default).
    public static let advertisedUDPSize = 1232
    public static let maximumMessage = 65535
    /// The OPT record appended to EDNS responses: root owner, type 41, class, TTL, empty data.
    static let optLength = 11

    /// Answers `packet` from `tables` for `client`; `tcp` lifts the UDP size limit.
    public static func respond(
        to packet: UnsafeRawBufferPointer, from client: IPAddress, tcp: Bool, tables: DNSTables,
        scratch: UnsafeMutableRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) -> (ResponderAction, DNSQuery?) {
        let prepared = Responder.prepare(packet, from: client, tables: tables, key: scratch)
        return Responder.respond(
            prepared, packet: packet, key: UnsafeRawBufferPointer(scratch), tcp: tcp, tables: tables, scratch: scratch,
            into: out)
    }

    /// Reads `packet` ahead of answering it: parses it (its lower-cased question name goes into `key`, 255
    /// bytes), chooses the client's view and hashes the name. A server that prepares a whole batch can ask
    /// for the table's slots and records of every query before answering the first (see `NameTable`): with
    /// tens of thousands of names those reads miss the caches, and asked together they are waited for once.
    @inlinable
    public static func prepare(
        _ packet: UnsafeRawBufferPointer, from client: IPAddress, tables: DNSTables,
        key: UnsafeMutableRawBufferPointer
    ) -> PreparedQuery {
        let view = tables.viewIndex(for: client)
        let parsed = QueryParser.parse(packet, lowercasedName: key)
        var hash: UInt64 = 0
        if view >= 0, case .success(let query) = parsed {
            hash = NameTable.hash(UnsafeRawBufferPointer(rebasing: key[0..<query.nameLength]))
        }
        return PreparedQuery(parsed: parsed, view: view, hash: hash)
    }

    /// Answers a prepared query: `key` holds its lower-cased name, `scratch` lends 512 bytes for wildcards.
    public static func respond(
        _ prepared: PreparedQuery, packet: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, tcp: Bool,
        tables: DNSTables, scratch: UnsafeMutableRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) -> (ResponderAction, DNSQuery?) {
        let query: DNSQuery
        let viewIndex = prepared.view
        switch prepared.parsed {
        case .success(let parsed): query = parsed
        case .failure(.drop): return (.drop, nil)
        case .failure(.formErr(let questionEnd)):
            let length = Responder.error(.formErr, packet: packet, questionEnd: questionEnd, into: out)
            return (.reply(length: length, view: viewIndex), nil)
        case .failure(.notImp(let questionEnd)):
            let length = Responder.error(.notImp, packet: packet, questionEnd: questionEnd, into: out)
            return (.reply(length: length, view: viewIndex), nil)
        case .failure(.transfer):
            return (.transfer, nil)
        }
        guard viewIndex >= 0 else {
            return (.reply(length: Responder.refuse(query, packet: packet, into: out), view: -1), query)
        }
        let view = tables.index(viewIndex)
        if let edns = query.edns, edns.version != 0 {
            // RFC 6891 §6.1.3: BADVERS, with our OPT saying version 0.
            return (
                .reply(
                    length: Responder.empty(
                        query, rcode: .badVers, recursion: view.recursion, packet: packet, into: out),
                    view: viewIndex), query
            )
        }
        let type = query.type
        // (AXFR and IXFR never get here: the parser sends them to the transfer path.)
        if query.qclass != 1 {
            return (.reply(length: Responder.refuse(query, packet: packet, into: out), view: viewIndex), query)
        }
        if type == Responder.opt || (type >= 128 && type <= 250) {
            // Meta types cannot be asked for (RFC 6895 §3.1). MAILB and MAILA (253, 254) are QTYPEs, obsolete
            // but legal: answered as any type the name lacks, as NSD, Knot and BIND do (not FORMERR).
            return (
                .reply(
                    length: Responder.empty(
                        query, rcode: .formErr, recursion: view.recursion, packet: packet, into: out),
                    view: viewIndex), query
            )
        }
        let name = UnsafeRawBufferPointer(rebasing: key[0..<query.nameLength])
        let template = Responder.find(name, hash: prepared.hash, type: type, in: view, scratch: scratch)
        guard template >= 0 else {
            if view.recursion { return (.forward(view: viewIndex, prefix: -1), query) }
            return (.reply(length: Responder.refuse(query, packet: packet, into: out), view: viewIndex), query)
        }
        let answer = view.template(template)
        if answer.shape.kind == .partial && view.recursion && query.recursionDesired {
            return (.forward(view: viewIndex, prefix: template), query)
        }
        let length = Responder.write(
            answer, query: query, recursion: view.recursion, packet: packet, tcp: tcp, into: out)
        return (.reply(length: length, view: viewIndex), query)
    }

    /// Type codes compared on every query, as plain constants (`RecordType`'s statics are lazily made globals).
    @usableFromInline static let axfr = UInt16(252)
    @usableFromInline static let ixfr = UInt16(251)
    @usableFromInline static let opt = UInt16(41)

    /// The template for a lower-cased name: exact node, else referral, wildcard or NXDOMAIN from the closest
    /// encloser (RFC 4592 §3.3.1), else -1 when no served zone holds the name.
    @inlinable
    static func find(
        _ key: UnsafeRawBufferPointer, hash: UInt64, type: UInt16, in view: AnswerIndex,
        scratch: UnsafeMutableRawBufferPointer
    ) -> Int32 {
        if let entry = view.names.find(key, hash: hash) { return view.template(entry, type: type) }
        var offset = Int(key[0]) + 1
        while offset < key.count {
            let ancestor = UnsafeRawBufferPointer(rebasing: key[offset...])
            if let entry = view.names.find(ancestor) {
                let fallback = view.template(entry.otherType)
                if fallback.shape.kind == .referral { return entry.otherType }
                // `*.` + encloser, built in the scratch buffer after where the name would be (the name may
                // be in it).
                let wildcardLength = ancestor.count + 2
                if key.count + wildcardLength <= scratch.count {
                    let base = key.count
                    scratch[base] = 1
                    scratch[base + 1] = UInt8(ascii: "*")
                    for index in 0..<ancestor.count { scratch[base + 2 + index] = ancestor[index] }
                    if let wildcard = view.names.find(
                        UnsafeRawBufferPointer(rebasing: scratch[base..<(base + wildcardLength)]))
                    {
                        return view.template(wildcard, type: type)
                    }
                }
                return entry.nxDomain
            }
            offset += Int(key[offset]) + 1
        }
        return -1
    }

    /// Writes header, question, the template (relocated) and OPT; drops the additional section, then sets
    /// TC, when the result would exceed what the client can take.
    static func write(
        _ answer: FlatTemplate, query: DNSQuery, recursion: Bool, packet: UnsafeRawBufferPointer, tcp: Bool,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        let shape = answer.shape
        let limit = tcp ? Responder.maximumMessage : min(query.edns?.udpSize ?? 512, Responder.advertisedUDPSize)
        let optLength = query.edns == nil ? 0 : Responder.optLength
        let questionLength = query.questionEnd - DNSHeader.size
        let fixed = DNSHeader.size + questionLength + optLength
        var bodyLength = answer.bytes.count
        var additional = shape.additionalCount
        var truncated = false
        if fixed + bodyLength > limit {
            bodyLength = shape.lengthWithoutAdditional
            additional = 0
            if fixed + bodyLength > limit {
                bodyLength = 0
                truncated = true
            }
        }
        var flags = DNSHeader.qr | (query.flags & (DNSHeader.rd | DNSHeader.cd)) | UInt16(shape.rcode)
        if shape.kind != .referral { flags |= DNSHeader.aa }
        if recursion { flags |= DNSHeader.ra }
        if truncated { flags |= DNSHeader.tc }
        Responder.header(
            out, id: query.id, flags: flags, qd: 1, an: truncated ? 0 : shape.answerCount,
            ns: truncated ? 0 : shape.authorityCount, ar: additional + (optLength > 0 ? 1 : 0))
        guard let destination = out.baseAddress, let source = packet.baseAddress else { return 0 }
        (destination + DNSHeader.size).copyMemory(from: source + DNSHeader.size, byteCount: questionLength)
        var position = fixed - optLength
        if bodyLength > 0, let body = answer.bytes.baseAddress {
            (destination + position).copyMemory(from: body, byteCount: bodyLength)
            let delta = query.nameLength
            for relocation in answer.relocations where Int(relocation) < bodyLength {
                let at = position + Int(relocation)
                let pointer = (Int(out[at]) & 0x3F) << 8 | Int(out[at + 1])
                let moved = pointer + delta
                out[at] = 0xC0 | UInt8(moved >> 8)
                out[at + 1] = UInt8(moved & 0xFF)
            }
            position += bodyLength
        }
        if let edns = query.edns { position = Responder.writeOPT(out, at: position, rcode: 0, dnssecOK: edns.dnssecOK) }
        return position
    }

    /// The 12-byte header.
    @inlinable
    static func header(
        _ out: UnsafeMutableRawBufferPointer, id: UInt16, flags: UInt16, qd: UInt16, an: UInt16, ns: UInt16, ar: UInt16
    ) {
        out[0] = UInt8(id >> 8)
        out[1] = UInt8(id & 0xFF)
        out[2] = UInt8(flags >> 8)
        out[3] = UInt8(flags & 0xFF)
        out[4] = UInt8(qd >> 8)
        out[5] = UInt8(qd & 0xFF)
        out[6] = UInt8(an >> 8)
        out[7] = UInt8(an & 0xFF)
        out[8] = UInt8(ns >> 8)
        out[9] = UInt8(ns & 0xFF)
        out[10] = UInt8(ar >> 8)
        out[11] = UInt8(ar & 0xFF)
    }

    /// Our OPT record: payload size 1232, version 0, the DO bit echoed, extended rcode bits.
    static func writeOPT(_ out: UnsafeMutableRawBufferPointer, at position: Int, rcode: UInt16, dnssecOK: Bool) -> Int {
        let size = UInt16(Responder.advertisedUDPSize)
        out[position] = 0
        out[position + 1] = 0
        out[position + 2] = 41
        out[position + 3] = UInt8(size >> 8)
        out[position + 4] = UInt8(size & 0xFF)
        out[position + 5] = UInt8(truncatingIfNeeded: rcode >> 4)
        out[position + 6] = 0
        out[position + 7] = dnssecOK ? 0x80 : 0
        out[position + 8] = 0
        out[position + 9] = 0
        out[position + 10] = 0
        return position + Responder.optLength
    }

    /// REFUSED: the view may not recurse, or no view matches, or the question is not for us.
    static func refuse(_ query: DNSQuery, packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer)
        -> Int
    {
        Responder.empty(query, rcode: .refused, recursion: false, packet: packet, into: out)
    }

    /// A response with the question and no records (REFUSED, FORMERR, BADVERS), with OPT when asked.
    static func empty(
        _ query: DNSQuery, rcode: DNSRcode, recursion: Bool, packet: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        var flags = DNSHeader.qr | (query.flags & (DNSHeader.rd | DNSHeader.cd)) | (rcode.rawValue & 0xF)
        if recursion { flags |= DNSHeader.ra }
        Responder.header(out, id: query.id, flags: flags, qd: 1, an: 0, ns: 0, ar: query.edns == nil ? 0 : 1)
        for index in DNSHeader.size..<query.questionEnd { out[index] = packet[index] }
        var position = query.questionEnd
        if let edns = query.edns {
            position = Responder.writeOPT(out, at: position, rcode: rcode.rawValue, dnssecOK: edns.dnssecOK)
        }
        return position
    }

    /// FORMERR or NOTIMP for a query that could not be fully parsed: ID, opcode and RD kept.
    static func error(
        _ rcode: DNSRcode, packet: UnsafeRawBufferPointer, questionEnd: Int?, into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        let id = UInt16(packet[0]) << 8 | UInt16(packet[1])
        let queryFlags = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let flags = DNSHeader.qr | (queryFlags & (DNSHeader.opcodeMask | DNSHeader.rd)) | rcode.rawValue
        Responder.header(out, id: id, flags: flags, qd: questionEnd == nil ? 0 : 1, an: 0, ns: 0, ar: 0)
        guard let questionEnd else { return DNSHeader.size }
        for index in DNSHeader.size..<questionEnd { out[index] = packet[index] }
        return questionEnd
    }
}
