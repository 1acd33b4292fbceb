import DNSWire
import ZoneModel

/// What a precompiled answer is, beyond its bytes.
public enum TemplateKind: UInt8, Sendable, BitwiseCopyable {
    /// Authoritative data (AA=1): an answer, NODATA or NXDOMAIN.
    case authoritative
    /// A referral below a zone cut (AA=0).
    case referral
    /// A CNAME chain that leaves the served zones: recursive views resolve its end upstream.
    case partial
    /// A CNAME loop or overlong chain: SERVFAIL.
    case broken
}

/// What a template is and how its bytes divide: the part every reader of a template needs, shared by the
/// control plane's `AnswerTemplate` and the answering path's `FlatTemplate`.
public struct TemplateShape: Sendable, BitwiseCopyable {
    public let kind: TemplateKind
    public let rcode: UInt8
    public let answerCount: UInt16
    public let authorityCount: UInt16
    public let additionalCount: UInt16
    /// Template bytes without the additional section, for when the whole does not fit (RFC 2181 §9).
    public let lengthWithoutAdditional: Int
}

/// One answer compiled to wire bytes: everything after the question, for any question name.
///
/// Records owned by the question name point at offset 12; pointers to names inside the template are
/// written as if the question name were empty and move by its real length when copied (`relocations`).
/// A class, immutable: a forwarded answer keeps its chain prefix by one reference.
public final class AnswerTemplate: Sendable {
    public let shape: TemplateShape
    public let bytes: [UInt8]
    /// Offsets in `bytes` of compression pointers to relocate by the question name's length.
    public let relocations: [UInt16]
    /// For `.partial`: the name the chain ends at, which a recursive view resolves upstream.
    public let chainEnd: DomainName?

    init(shape: TemplateShape, bytes: [UInt8], relocations: [UInt16], chainEnd: DomainName?) {
        self.shape = shape
        self.bytes = bytes
        self.relocations = relocations
        self.chainEnd = chainEnd
    }
}

/// The answers of one view, compiled: names → nodes → templates.
///
/// A class, so that workers reach it through one reference instead of copying (and retaining) its arrays.
/// It owns the raw memory of its `index`, which is what answering reads.
public final class ViewAnswers: Sendable {
    /// Per node: where its (type, template) pairs start in `types`, how many, and its fallbacks.
    public struct NodeEntry: Sendable, BitwiseCopyable {
        public var typesStart: Int32
        public var typesCount: Int32
        /// The answer for any type the node lacks (NODATA, a referral, a chain ending in NODATA ...).
        public var otherType: Int32
        /// The answer to ANY: one RRset (RFC 8482 §4.2).
        public var anyType: Int32
        /// NXDOMAIN for missing names whose closest encloser is this node (its zone's SOA).
        public var nxDomain: Int32
    }

    public let name: String
    /// The templates as objects, for the control plane (a forwarded answer keeps its chain prefix).
    public let templates: [AnswerTemplate]
    /// Names, types and templates as raw memory this object owns (freed with it).
    public let index: AnswerIndex

    init(
        name: String, recursion: Bool, names: NameTable, types: [UInt16], typeTemplates: [Int32],
        templates: [AnswerTemplate]
    ) {
        self.name = name
        self.templates = templates
        self.index = AnswerIndex(
            names: names, types: types, typeTemplates: typeTemplates, templates: templates, recursion: recursion)
    }

    deinit { self.index.deallocate() }

    public var recursion: Bool { self.index.recursion }
}

/// One template as answering reads it: its shape and pointers into memory its view owns.
public struct FlatTemplate: BitwiseCopyable, @unchecked Sendable {
    public let shape: TemplateShape
    public let bytes: UnsafeRawBufferPointer
    public let relocations: UnsafeBufferPointer<UInt16>
}

/// A view's answers laid out for the answering path: plain values and pointers, so a query is answered
/// without retaining or releasing anything (that was about a quarter of the server's own time per query).
/// `ViewAnswers` owns the memory; whoever reads an index keeps its `DNSTables` alive meanwhile.
public struct AnswerIndex: BitwiseCopyable, @unchecked Sendable {
    public let names: NameTable
    public let recursion: Bool
    @usableFromInline let types: UnsafeMutablePointer<UInt16>
    @usableFromInline let typeTemplates: UnsafeMutablePointer<Int32>
    @usableFromInline let templates: UnsafeMutablePointer<FlatTemplate>
    /// Every template's bytes, then every template's relocations.
    let arena: UnsafeMutableRawPointer

    init(names: NameTable, types: [UInt16], typeTemplates: [Int32], templates: [AnswerTemplate], recursion: Bool) {
        self.names = names
        self.recursion = recursion
        self.types = .allocate(capacity: max(1, types.count))
        self.types.initialize(from: types, count: types.count)
        self.typeTemplates = .allocate(capacity: max(1, typeTemplates.count))
        self.typeTemplates.initialize(from: typeTemplates, count: typeTemplates.count)
        let byteTotal = templates.reduce(0) { $0 + $1.bytes.count }
        let relocationTotal = templates.reduce(0) { $0 + $1.relocations.count }
        // Relocations (UInt16) after the bytes, at an even offset.
        let relocationStart = (byteTotal + 1) & ~1
        self.arena = .allocate(byteCount: max(1, relocationStart + relocationTotal * 2), alignment: 16)
        self.templates = .allocate(capacity: max(1, templates.count))
        var bytePosition = 0
        var relocationPosition = relocationStart
        for (number, template) in templates.enumerated() {
            let bytes = self.arena + bytePosition
            template.bytes.withUnsafeBytes { source in
                if let base = source.baseAddress { bytes.copyMemory(from: base, byteCount: source.count) }
            }
            let relocations = (self.arena + relocationPosition).bindMemory(
                to: UInt16.self, capacity: template.relocations.count)
            relocations.initialize(from: template.relocations, count: template.relocations.count)
            (self.templates + number).initialize(
                to: FlatTemplate(
                    shape: template.shape,
                    bytes: UnsafeRawBufferPointer(start: bytes, count: template.bytes.count),
                    relocations: UnsafeBufferPointer(start: relocations, count: template.relocations.count)))
            bytePosition += template.bytes.count
            relocationPosition += template.relocations.count * 2
        }
    }

    func deallocate() {
        self.names.deallocate()
        self.types.deallocate()
        self.typeTemplates.deallocate()
        self.templates.deallocate()
        self.arena.deallocate()
    }

    /// Template number `index` (from a `NodeEntry` or `template(_:type:)`: always in range).
    @inlinable @inline(__always)
    public func template(_ index: Int32) -> FlatTemplate { self.templates[Int(index)] }

    /// The template for `type` at the node described by `entry`.
    @inlinable
    public func template(_ entry: NameTable.Entry, type: UInt16) -> Int32 {
        if type == 255 { return entry.anyType }
        var index = Int(entry.typesStart)
        let end = index + Int(entry.typesCount)
        while index < end {
            if self.types[index] == type { return self.typeTemplates[index] }
            index += 1
        }
        return entry.otherType
    }
}

/// Compiles a `CompiledView` into `ViewAnswers`, sharing identical templates between names.
public enum AnswerCompiler {
    /// Stands for "the question name" in lookups being turned into templates.
    static let questionMarker = DomainName(uncheckedWire: [1, 0, 0])
    /// A type no node holds, to ask for "any type the node lacks".
    static let absentType = RecordType(rawValue: 65535)

    public static func compile(_ view: CompiledView) -> ViewAnswers {
        var builder = Builder()
        var names = NameTable.Builder(capacity: view.nodes.count)
        var types: [UInt16] = []
        var typeTemplates: [Int32] = []
        // Zone cuts below an apex: names under them get referrals, whatever they hold.
        let cuts = Set(view.nodes.compactMap { name, node in name != node.apex && node.rrset(.ns) != nil ? name : nil })
        // Every name whose only data is a CNAME to the same target (with the same TTL, in the same zone) has
        // the same answers with its own name as owner: compile those once (a site model is mostly these).
        // They share one range of `types` too, which then stays in the cache however many sites there are.
        var sameChain: [ChainKey: ViewAnswers.NodeEntry] = [:]
        for (name, node) in view.nodes {
            var chainKey: ChainKey? = nil
            if node.rrsets.count == 1, let cname = node.rrset(.cname), cname.data.count == 1,
                let target = cname.data.first?.target,
                !AnswerCompiler.isBelowCut(name, apex: node.apex, cuts: cuts)
            {
                chainKey = ChainKey(target: target, ttl: cname.ttl, apex: node.apex)
            }
            let start = Int32(types.count)
            if let chainKey, let shared = sameChain[chainKey] {
                names.insert(name.wire, entry: shared)
                continue
            }
            var wanted = node.rrsets.map(\.type)
            // A CNAME node answers every type its chain's end holds: compile those too.
            if node.rrset(.cname) != nil {
                wanted += AnswerCompiler.chainEndTypes(view, from: name)
            }
            // A delegation point answers DS itself (the parent's data), with or without a DS record.
            if cuts.contains(name) { wanted.append(.ds) }
            var seen: Set<RecordType> = []
            for type in wanted where seen.insert(type).inserted {
                types.append(type.rawValue)
                typeTemplates.append(builder.template(for: view.lookup(name, type), question: name))
            }
            let zoneSOA = view.zone(containing: name)?.negativeSOA
            let entry = ViewAnswers.NodeEntry(
                typesStart: start, typesCount: Int32(types.count) - start,
                otherType: builder.template(for: view.lookup(name, AnswerCompiler.absentType), question: name),
                anyType: builder.template(for: AnswerCompiler.minimalAny(view, name), question: name),
                nxDomain: zoneSOA.map { builder.template(for: .nxDomain(chain: [], soa: $0), question: name) } ?? -1)
            names.insert(name.wire, entry: entry)
            if let chainKey { sameChain[chainKey] = entry }
        }
        return ViewAnswers(
            name: view.name, recursion: view.recursion, names: names.build(), types: types,
            typeTemplates: typeTemplates, templates: builder.templates)
    }

    /// Identifies CNAME-only names whose answers are the same but for the owner.
    struct ChainKey: Hashable {
        var target: DomainName
        var ttl: UInt32
        var apex: DomainName
    }

    /// Whether `name` lies at or below a zone cut inside its zone.
    static func isBelowCut(_ name: DomainName, apex: DomainName, cuts: Set<DomainName>) -> Bool {
        guard !cuts.isEmpty else { return false }
        var candidate = name
        while candidate != apex && !candidate.isRoot {
            if cuts.contains(candidate) { return true }
            candidate = candidate.parent
        }
        return false
    }

    /// The types held where a CNAME chain from `name` ends (inside the view), a wildcard's when the chain
    /// ends at a name one synthesises (RFC 1034 §4.3.2 step 3c, RFC 4592).
    static func chainEndTypes(_ view: CompiledView, from name: DomainName) -> [RecordType] {
        var current = name
        for _ in 0...CompiledView.maximumChain {
            guard let node = view.answeringNode(for: current), let cname = node.rrset(.cname),
                let target = cname.data.first?.target
            else {
                return view.answeringNode(for: current)?.rrsets.map(\.type) ?? []
            }
            current = target
        }
        return []
    }

    /// RFC 8482 §4.2: answer ANY with one RRset, the first by type code, so ANY is never an amplifier.
    static func minimalAny(_ view: CompiledView, _ name: DomainName) -> Lookup {
        let full = view.lookup(name, .any)
        guard case .answer(let records, _) = full, let first = records.first else { return full }
        let selected = records.filter { $0.type == first.type }
        // The chosen RRset's additional records, as for a question of its type (MX, SRV, NS, SVCB targets).
        return .answer(selected, additional: view.additional(for: selected))
    }

    /// Encodes lookups into templates, reusing one template for every lookup that encodes alike.
    struct Builder {
        var templates: [AnswerTemplate] = []
        var index: [Key: Int32] = [:]

        /// A lookup with the question name replaced by a marker, so names with the same answer share it.
        struct Key: Hashable {
            var lookup: Lookup
        }

        mutating func template(for lookup: Lookup, question: DomainName) -> Int32 {
            let key = Key(lookup: lookup.replacingOwner(question, with: AnswerCompiler.questionMarker))
            if let existing = self.index[key] { return existing }
            let template = AnswerCompiler.encode(key.lookup)
            self.templates.append(template)
            let id = Int32(self.templates.count - 1)
            self.index[key] = id
            return id
        }
    }

    /// Encodes a lookup (question name already replaced by the marker) after an empty question name.
    static func encode(_ lookup: Lookup) -> AnswerTemplate {
        // Base: header (12) + empty question name (0) + type and class (4); see `relocations`.
        var writer = MessageWriter(base: 16)
        var kind = TemplateKind.authoritative
        var rcode: UInt8 = 0
        var answer: [Record] = []
        var authority: [Record] = []
        var additional: [Record] = []
        var chainEnd: DomainName? = nil
        switch lookup {
        case .answer(let records, let extra):
            answer = records
            additional = extra
        case .noData(let chain, let soa):
            answer = chain
            authority = [soa]
        case .nxDomain(let chain, let soa):
            answer = chain
            authority = [soa]
            rcode = UInt8(DNSRcode.nxDomain.rawValue)
        case .referral(let chain, let nameServers, let glue):
            answer = chain
            authority = nameServers
            additional = glue
            kind = chain.isEmpty ? .referral : .authoritative
        case .partial(let chain):
            answer = chain
            kind = .partial
            chainEnd = chain.last?.data.target
        case .notAuthoritative:
            kind = .broken
            rcode = UInt8(DNSRcode.refused.rawValue)
        case .chainTooLong:
            kind = .broken
            rcode = UInt8(DNSRcode.servFail.rawValue)
        }
        for record in answer + authority {
            writer.writeRecord(record, ownerPointer: record.owner == AnswerCompiler.questionMarker ? 12 : nil)
        }
        let withoutAdditional = writer.bytes.count
        for record in additional {
            writer.writeRecord(record, ownerPointer: record.owner == AnswerCompiler.questionMarker ? 12 : nil)
        }
        let shape = TemplateShape(
            kind: kind, rcode: rcode, answerCount: UInt16(answer.count), authorityCount: UInt16(authority.count),
            additionalCount: UInt16(additional.count), lengthWithoutAdditional: withoutAdditional)
        return AnswerTemplate(
            shape: shape, bytes: writer.bytes,
            relocations: writer.relocations.map { UInt16($0) }, chainEnd: chainEnd)
    }
}

extension Lookup {
    /// The same outcome with every record owned by `name` owned by `marker` instead.
    func replacingOwner(_ name: DomainName, with marker: DomainName) -> Lookup {
        func swap(_ records: [Record]) -> [Record] { records.map { $0.owner == name ? $0.renamed(marker) : $0 } }
        switch self {
        case .answer(let records, let additional): return .answer(swap(records), additional: swap(additional))
        case .noData(let chain, let soa): return .noData(chain: swap(chain), soa: soa)
        case .nxDomain(let chain, let soa): return .nxDomain(chain: swap(chain), soa: soa)
        case .referral(let chain, let ns, let glue): return .referral(chain: swap(chain), nameServers: ns, glue: glue)
        case .partial(let chain): return .partial(chain: swap(chain))
        case .notAuthoritative, .chainTooLong: return self
        }
    }
}
