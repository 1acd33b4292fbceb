import CSys
import DNSServer
import DynDNS
import Files
import Synchronization
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Loads, compiles and publishes the model from a config directory; keeps the old model on failure.
public final class Appliance: @unchecked Sendable {
    public let directory: String
    public var wan: WANAddresses
    public private(set) var store: SnapshotStore?
    var serials = SerialBook()
    /// The last model that compiled, kept so a WAN change recompiles it without rereading the directory (a
    /// half-saved edit on disk must not block a WAN update).
    var model: Model?
    /// The last snapshot compiled, before named backends were resolved into it.
    var compiled: Snapshot?
    /// Counts compiles, so the backend resolver notices a reload.
    var compiledGeneration = 0
    /// What the named backends resolve to now (see BackendResolver), applied to every snapshot published.
    var backendAddresses: [String: [IPAddress]] = [:]
    /// Recent changes of every zone, for IXFR; nil until the first compile reads it from state-dir.
    var journal: TransferJournal?
    /// Called after each compile is published, with the snapshot it replaced (nil the first time): the
    /// notifier hangs here.
    public var published: (@Sendable (Snapshot?, Snapshot) -> Void)?
    /// Whether the first compile starts from the WAN address the DynDNS updater published last (its state
    /// file), so a restart serves the same wan view at once — no window without the address, no serial
    /// bump, no transfer for the secondaries — while the updater confirms it. Off with `--wan`.
    public var restoresWAN = false
    /// ACME DNS-01 proofs published now: TXT values per owner, added to every view serving the owner's zone.
    var challenges: [DomainName: [String]] = [:]
    let lock = Mutex<Void>(())

    public init(directory: String, wan: WANAddresses) {
        self.directory = directory
        self.wan = wan
    }

    /// Compiles the directory. On success publishes it (or creates the store) and returns nil; on failure
    /// returns the diagnostics and leaves the published snapshot alone.
    public func load(dateSerial: UInt32) -> Diagnostics? {
        self.lock.withLock { _ in
            let (model, diagnostics) = ModelLoader.load(directory: self.directory)
            return self.compile(model, diagnostics: diagnostics, dateSerial: dateSerial)
        }
    }

    /// Recompiles the last good model with a new WAN address and publishes it: the views that use
    /// `wan=auto` change (and their serials bump); the others compile to the same data and keep theirs.
    public func setWAN(_ wan: WANAddresses, dateSerial: UInt32) -> Diagnostics? {
        self.lock.withLock { _ in
            self.wan = wan
            guard let model = self.model else { return nil }
            return self.compile(model, diagnostics: Diagnostics(), dateSerial: dateSerial)
        }
    }

    /// Publishes `challenges` (TXT values per owner) in place of the previous ones, through the same path as
    /// a WAN change: the model compiled again, the changed zones' serials bumped, NOTIFY to secondaries.
    public func setChallenges(_ challenges: [DomainName: [String]], dateSerial: UInt32) -> Diagnostics? {
        self.lock.withLock { _ in
            guard challenges != self.challenges else { return nil }
            self.challenges = challenges
            guard let model = self.model else { return nil }
            return self.compile(model, diagnostics: Diagnostics(), dateSerial: dateSerial)
        }
    }

    /// The challenge TXT records, each in the served zone with the longest apex above its owner (60 s TTL, all
    /// views); an owner in no zone is left out.
    static func addChallenges(_ challenges: [DomainName: [String]], to model: inout Model) {
        for (owner, values) in challenges.sorted(by: { $0.key < $1.key }) {
            let candidates = model.zones.indices.filter { owner.isSubdomain(of: model.zones[$0].apex) }
            guard let index = candidates.max(by: { model.zones[$0].apex.labelCount < model.zones[$1].apex.labelCount })
            else { continue }
            for value in values {
                model.zones[index].records.append(
                    SourceRecord(
                        record: Record(owner: owner, type: .txt, ttl: 60, data: .txt([Array(value.utf8)])), scope: .all,
                        location: SourceLocation(file: "(acme challenge)", line: 1, column: 1)))
            }
        }
    }

    func compile(_ original: Model, diagnostics: Diagnostics, dateSerial: UInt32) -> Diagnostics? {
        var model = original
        if !self.challenges.isEmpty { Appliance.addChallenges(self.challenges, to: &model) }
        if self.store == nil {
            if let problem = Appliance.prepareStateDirectory(model.settings) {
                var failed = diagnostics
                failed.append(
                    Diagnostic(
                        .fileUnreadable, problem,
                        at: SourceLocation(file: joinPath(self.directory, "frontdoor.conf"), line: 1, column: 1)))
                return failed
            }
            self.serials = Appliance.readSerials(model.settings)
            Appliance.removeStaleTemporaries(model.settings)
            if self.restoresWAN, let directory = model.settings.stateDirectory {
                let state = UpdaterState.load(path: joinPath(directory, "dyndns.json"))
                if self.wan.v4 == nil, case .v4(let v4) = state.address.flatMap(IPAddress.init) { self.wan.v4 = v4 }
                if self.wan.v6 == nil, case .v6(let v6) = state.address6.flatMap(IPAddress.init) { self.wan.v6 = v6 }
            }
        }
        let result = Pipeline.finish(
            &model, diagnostics: diagnostics,
            inputs: CompileInputs(wan: self.wan, serials: self.serials, dateSerial: dateSerial))
        for warning in result.diagnostics.warnings { Log.warning(warning.description) }
        guard let snapshot = result.snapshot else { return result.diagnostics }
        self.model = original
        self.serials = snapshot.serials
        Appliance.writeSerials(snapshot.serials, settings: snapshot.settings)
        let previous = self.compiled
        let journal: TransferJournal
        if snapshot.settings.secondaries.isEmpty {
            // Nobody asks for IXFR: no differences computed on every reload and WAN change.
            journal = TransferJournal()
        } else if let known = self.journal {
            journal = known.recording(old: previous, new: snapshot)
        } else {
            journal = Appliance.readJournal(snapshot.settings).matching(snapshot)
        }
        if journal != self.journal {
            Appliance.writeJournal(journal, settings: snapshot.settings)
            self.journal = journal
        }
        self.compiled = snapshot
        self.compiledGeneration += 1
        let tables = DNSTables(snapshot: snapshot.resolvingBackends(self.backendAddresses), journal: journal)
        if let store = self.store {
            store.publish(tables)
        } else {
            self.store = SnapshotStore(tables)
        }
        self.published?(previous, snapshot)
        // Compiling a large model leaves much freed heap behind (the model's intermediate values, the name
        // tables' builders): hand it back to the system instead of keeping it resident.
        csys_trim_heap()
        return nil
    }

    /// The snapshot as compiled (named backends unresolved), for the backend resolver.
    public var compiledSnapshot: Snapshot? { self.lock.withLock { _ in self.compiled } }

    /// The same with its generation (which moves on each compile: a reload, a WAN change).
    var compiledWithGeneration: (Snapshot, Int)? {
        self.lock.withLock { _ in self.compiled.map { ($0, self.compiledGeneration) } }
    }

    /// Publishes the last good snapshot again with named backends resolved to `addresses` (when they
    /// changed); the DNS data is the same, so no serial moves.
    public func setBackendAddresses(_ addresses: [String: [IPAddress]]) {
        self.lock.withLock { _ in
            guard addresses != self.backendAddresses else { return }
            self.backendAddresses = addresses
            guard let compiled = self.compiled, let store = self.store else { return }
            store.publish(
                DNSTables(snapshot: compiled.resolvingBackends(addresses), journal: self.journal ?? TransferJournal()))
        }
    }

    /// Makes the state directory (0700, with its parents) when it does not exist, as daemons do with theirs;
    /// the reason when it cannot be made or is not a directory Frontdoor can write.
    public static func prepareStateDirectory(_ settings: Settings) -> String? {
        guard let directory = settings.stateDirectory else { return nil }
        var status = stat()
        if stat(directory, &status) != 0 {
            var path = directory.hasPrefix("/") ? "" : "."
            for part in directory.split(separator: "/") {
                path += "/" + part
                if mkdir(path, 0o700) != 0 && errno != EEXIST {
                    return "state-dir \(directory) cannot be created (\(String(cString: strerror(errno))) at \(path))"
                }
            }
            return nil
        }
        return Appliance.stateDirectoryProblem(settings)
    }

    /// What `prepareStateDirectory` would fail on, without making anything (for `check`): an existing one
    /// must be a writable directory; a missing one needs its nearest existing parent writable.
    public static func stateDirectoryProblem(_ settings: Settings) -> String? {
        guard let directory = settings.stateDirectory else { return nil }
        var status = stat()
        if stat(directory, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else { return "state-dir \(directory) is not a directory" }
            guard access(directory, W_OK | X_OK) == 0 else {
                return "state-dir \(directory) cannot be written (\(String(cString: strerror(errno))))"
            }
            return nil
        }
        var parent = directory
        while let slash = parent.lastIndex(of: "/") {
            parent = slash == parent.startIndex ? "/" : String(parent[..<slash])
            if stat(parent, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR, access(parent, W_OK | X_OK) == 0 else {
                    return "state-dir \(directory) cannot be created: \(parent) is not a directory this user can write"
                }
                return nil
            }
            if parent == "/" { break }
        }
        return nil
    }

    /// Hands the state directory and what is in it to `user` (the account `run` switches to), so it can keep
    /// writing there after dropping root. The reason when that fails.
    public static func handStateDirectory(_ settings: Settings, to user: String) -> String? {
        guard let directory = settings.stateDirectory else { return nil }
        guard let account = getpwnam(user) else { return "no user '\(user)' to hand state-dir \(directory) to" }
        let uid = account.pointee.pw_uid
        let gid = account.pointee.pw_gid
        var paths = [directory]
        for name in DiskFiles().list(directory) ?? [] {
            let path = joinPath(directory, name)
            paths.append(path)
            // The internal CA's directory: its root, which renewals sign with.
            if name == "ca" { paths += (DiskFiles().list(path) ?? []).map { joinPath(path, $0) } }
        }
        for path in paths where chown(path, uid, gid) != 0 {
            return "cannot hand \(path) to user \(user): \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// A write killed halfway leaves `NAME.tmp.PID` beside the state file; at start nothing else writes there.
    static func removeStaleTemporaries(_ settings: Settings) {
        guard let directory = settings.stateDirectory, let names = DiskFiles().list(directory) else { return }
        for name in names
        where ["serials.tmp.", "dyndns.json.tmp.", "journal.tmp.", "secondaries.tmp."].contains(where: name.hasPrefix) {
            unlink(joinPath(directory, name))
        }
    }

    static func readSerials(_ settings: Settings) -> SerialBook {
        guard let directory = settings.stateDirectory,
            case .success(let bytes) = DiskFiles().read(joinPath(directory, "serials"))
        else { return SerialBook() }
        return SerialBook(text: String(decoding: bytes, as: UTF8.self))
    }

    /// The IXFR journal kept in state-dir (empty when there is none or it is damaged).
    static func readJournal(_ settings: Settings) -> TransferJournal {
        guard let directory = settings.stateDirectory,
            case .success(let bytes) = DiskFiles().read(joinPath(directory, "journal"))
        else { return TransferJournal() }
        return TransferJournal(encoded: bytes) ?? TransferJournal()
    }

    /// Persists the journal so a restart can still answer IXFR; a failed write only warns.
    static func writeJournal(_ journal: TransferJournal, settings: Settings) {
        guard let directory = settings.stateDirectory, !settings.secondaries.isEmpty else { return }
        if let problem = DiskFiles().writeAtomically(journal.encoded, to: joinPath(directory, "journal")) {
            Log.warning("cannot save the IXFR journal in state-dir \(directory): \(problem); IXFR falls back to AXFR")
        }
    }

    /// Persists serials so they never go backwards across restarts; a failed write only warns.
    static func writeSerials(_ book: SerialBook, settings: Settings) {
        guard let directory = settings.stateDirectory else { return }
        if let problem = DiskFiles().writeAtomically(Array(book.text.utf8), to: joinPath(directory, "serials")) {
            Log.warning("cannot save serials in state-dir \(directory): \(problem); they restart from today's date")
        }
    }
}

/// Today's date as the serial `YYYYMMDD00` (UTC).
public func todaySerial() -> UInt32 {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    let date = (Int(parts.tm_year) + 1900) * 10000 + (Int(parts.tm_mon) + 1) * 100 + Int(parts.tm_mday)
    return UInt32(date) * 100
}
