import ZoneModel

/// One change of one zone in one view: what IXFR (RFC 1995 §4) sends for it.
public struct JournalDelta: Equatable, Sendable {
    public var from: UInt32
    public var to: UInt32
    /// The SOA records before and after, as uncompressed wire records.
    public var oldSOA: [UInt8]
    public var newSOA: [UInt8]
    public var removed: [[UInt8]]
    public var added: [[UInt8]]

    public init(from: UInt32, to: UInt32, oldSOA: [UInt8], newSOA: [UInt8], removed: [[UInt8]], added: [[UInt8]]) {
        self.from = from
        self.to = to
        self.oldSOA = oldSOA
        self.newSOA = newSOA
        self.removed = removed
        self.added = added
    }

    var recordCount: Int { self.removed.count + self.added.count + 2 }
}

/// The recent changes of every zone in every view, so IXFR can send a secondary only what changed since
/// its serial. Bounded: a zone keeps at most `maximumDeltas` changes and `maximumRecords` records in them,
/// oldest dropped first; a change larger than that empties the zone's journal (IXFR then falls back to AXFR).
public struct TransferJournal: Equatable, Sendable {
    /// Keyed by `SerialBook.key(view:apex:)`, oldest change first; consecutive (each `from` is the previous `to`).
    public private(set) var zones: [String: [JournalDelta]] = [:]

    public static let maximumDeltas = 64
    public static let maximumRecords = 20_000

    public init(zones: [String: [JournalDelta]] = [:]) {
        self.zones = zones
    }

    /// The changes that lead from `serial` to the zone's current serial, or nil when the journal does not
    /// reach back that far.
    public func chain(_ key: String, from serial: UInt32, to current: UInt32) -> [JournalDelta]? {
        guard let deltas = self.zones[key], let start = deltas.firstIndex(where: { $0.from == serial }) else {
            return nil
        }
        let chain = Array(deltas[start...])
        guard chain.last?.to == current else { return nil }
        return chain
    }

    /// The journal after the model went from `old` to `new`: a delta for each zone whose serial moved; zones
    /// that are gone, or new, lose their journal.
    public func recording(old: Snapshot?, new: Snapshot) -> TransferJournal {
        var next = TransferJournal()
        for view in new.views {
            let oldView = old?.view(named: view.name)
            for (apex, zone) in view.zones {
                let key = SerialBook.key(view: view.name, apex: apex)
                guard let oldView, let oldZone = oldView.zones[apex] else { continue }
                let serial = ZoneTransfer.serial(of: zone.soa)
                let oldSerial = ZoneTransfer.serial(of: oldZone.soa)
                var deltas = self.zones[key] ?? []
                if serial != oldSerial {
                    let before = Set(ZoneTransfer.wireRecords(oldView, apex: apex))
                    let after = Set(ZoneTransfer.wireRecords(view, apex: apex))
                    let removed = before.subtracting(after).sorted { $0.lexicographicallyPrecedes($1) }
                    let added = after.subtracting(before).sorted { $0.lexicographicallyPrecedes($1) }
                    let delta = JournalDelta(
                        from: oldSerial, to: serial, oldSOA: ZoneTransfer.wire(oldZone.soa),
                        newSOA: ZoneTransfer.wire(zone.soa), removed: removed, added: added)
                    if delta.recordCount > TransferJournal.maximumRecords
                        || deltas.last.map({ $0.to != oldSerial }) == true
                    {
                        deltas = []
                    }
                    if delta.recordCount <= TransferJournal.maximumRecords { deltas.append(delta) }
                }
                while deltas.count > TransferJournal.maximumDeltas
                    || deltas.reduce(0, { $0 + $1.recordCount }) > TransferJournal.maximumRecords
                {
                    deltas.removeFirst()
                }
                if !deltas.isEmpty { next.zones[key] = deltas }
            }
        }
        return next
    }

    /// Keeps only the zones whose last change ends at the serial `snapshot` serves (a journal read at start
    /// must belong to the data being served).
    public func matching(_ snapshot: Snapshot) -> TransferJournal {
        var kept = TransferJournal()
        for view in snapshot.views {
            for (apex, zone) in view.zones {
                let key = SerialBook.key(view: view.name, apex: apex)
                if let deltas = self.zones[key], deltas.last?.to == ZoneTransfer.serial(of: zone.soa) {
                    kept.zones[key] = deltas
                }
            }
        }
        return kept
    }

    // MARK: The state file

    static let magic: [UInt8] = Array("FDJ1".utf8)

    /// The journal as the bytes of its state file.
    public var encoded: [UInt8] {
        var out = TransferJournal.magic
        func put32(_ value: UInt32) {
            out += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        func putBytes(_ bytes: [UInt8]) {
            put32(UInt32(bytes.count))
            out += bytes
        }
        put32(UInt32(self.zones.count))
        for key in self.zones.keys.sorted() {
            let deltas = self.zones[key] ?? []
            putBytes(Array(key.utf8))
            put32(UInt32(deltas.count))
            for delta in deltas {
                put32(delta.from)
                put32(delta.to)
                putBytes(delta.oldSOA)
                putBytes(delta.newSOA)
                put32(UInt32(delta.removed.count))
                for record in delta.removed { putBytes(record) }
                put32(UInt32(delta.added.count))
                for record in delta.added { putBytes(record) }
            }
        }
        return out
    }

    /// Reads a state file; nil when it is damaged in any way (the journal then starts empty: IXFR falls back
    /// to AXFR until the next change).
    public init?(encoded bytes: [UInt8]) {
        var position = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, position + count <= bytes.count else { return nil }
            defer { position += count }
            return bytes[position..<(position + count)]
        }
        func get32() -> UInt32? {
            guard let four = take(4) else { return nil }
            return four.reduce(0) { $0 << 8 | UInt32($1) }
        }
        func getBytes() -> [UInt8]? {
            guard let count = get32(), count <= 65_535 + 1024, let slice = take(Int(count)) else { return nil }
            return Array(slice)
        }
        func getRecords() -> [[UInt8]]? {
            guard let count = get32(), count <= UInt32(TransferJournal.maximumRecords) else { return nil }
            var records: [[UInt8]] = []
            for _ in 0..<count {
                guard let record = getBytes() else { return nil }
                records.append(record)
            }
            return records
        }
        guard take(4).map(Array.init) == TransferJournal.magic, let zoneCount = get32(), zoneCount <= 100_000 else {
            return nil
        }
        var zones: [String: [JournalDelta]] = [:]
        for _ in 0..<zoneCount {
            guard let key = getBytes(), let deltaCount = get32(), deltaCount <= UInt32(TransferJournal.maximumDeltas)
            else { return nil }
            var deltas: [JournalDelta] = []
            for _ in 0..<deltaCount {
                guard let from = get32(), let to = get32(), let oldSOA = getBytes(), let newSOA = getBytes(),
                    let removed = getRecords(), let added = getRecords()
                else { return nil }
                deltas.append(
                    JournalDelta(from: from, to: to, oldSOA: oldSOA, newSOA: newSOA, removed: removed, added: added))
            }
            zones[String(decoding: key, as: UTF8.self)] = deltas
        }
        guard position == bytes.count else { return nil }
        self.zones = zones
    }
}
