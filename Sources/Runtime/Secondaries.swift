import CSys
import DNSServer
import EventLoop
import Files
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// What each secondary did lately: its last NOTIFY, its last transfer, its last refusal. Written by the DNS
/// workers (transfers) and the notifier, read by the status page, `/metrics` and `frontdoor status` (through
/// the state file the notifier keeps). Touched per transfer and per NOTIFY, never per query.
public final class SecondaryActivity: Sendable {
    public struct Entry: Sendable, Equatable {
        public var lastNotify: String?
        public var lastTransfer: String?
        public var lastRefusal: String?
        public var transfers = 0
        public var notifies = 0
    }

    let state = Mutex<(entries: [String: Entry], changes: Int, lastRefusalLog: UInt64)>(([:], 0, 0))
    public let refusals = Atomic<Int>(0)

    public init() {}

    /// A transfer-path request was answered (or refused); `stream` is set when a transfer completed.
    func record(_ note: TransferNote, stream: TransferStream? = nil) {
        let now = UInt64(time(nil))
        if let refusal = note.refusal {
            self.refusals.add(1, ordering: .relaxed)
            let logNow = self.state.withLock { state -> Bool in
                if let peer = note.peer {
                    state.entries[peer, default: Entry()].lastRefusal = "\(utcDateTime(Double(now))) \(refusal)"
                }
                state.changes += 1
                guard now >= state.lastRefusalLog + 60 else { return false }
                state.lastRefusalLog = now
                return true
            }
            if logNow {
                Log.warning(
                    "dns: \(note.kind) for \(note.zone?.description ?? "?") refused: \(refusal)"
                        + (note.peer.map { " (secondary \($0))" } ?? "") + "; at most one such line a minute")
            }
            return
        }
        guard let peer = note.peer, let stream, note.kind != "query" else { return }
        let line =
            "\(utcDateTime(Double(now))) \(note.kind) of \(note.zone?.description ?? "?") serial \(note.serial.map(String.init) ?? "?"): "
            + "\(stream.records) records, \(stream.messages) messages, \(stream.bytes) bytes"
        self.state.withLock { state in
            state.entries[peer, default: Entry()].lastTransfer = line
            state.entries[peer, default: Entry()].transfers += 1
            state.changes += 1
        }
        Log.info("dns: secondary \(peer): \(line)")
    }

    func notified(_ event: NotifyEvent) {
        let now = UInt64(time(nil))
        let target: NotifyTarget
        let line: String
        switch event {
        case .acknowledged(let acknowledged):
            target = acknowledged
            line = "\(utcDateTime(Double(now))) NOTIFY \(target.zone) serial \(target.serial): acknowledged"
            Log.info(
                "dns: secondary \(target.secondary) acknowledged NOTIFY for \(target.zone) serial \(target.serial)")
        case .rejected(let rejected, let reason):
            target = rejected
            line = "\(utcDateTime(Double(now))) NOTIFY \(target.zone) serial \(target.serial): \(reason)"
        case .gaveUp(let abandoned, let reason):
            target = abandoned
            line = "\(utcDateTime(Double(now))) NOTIFY \(target.zone) serial \(target.serial): gave up (\(reason))"
            Log.warning(
                "dns: secondary \(target.secondary) (\(target.address)) did not acknowledge NOTIFY for \(target.zone) "
                    + "serial \(target.serial): \(reason); it still picks the change up at its SOA refresh")
        }
        self.state.withLock { state in
            state.entries[target.secondary, default: Entry()].lastNotify = line
            if case .acknowledged = event { state.entries[target.secondary, default: Entry()].notifies += 1 }
            state.changes += 1
        }
    }

    /// Each secondary's entry, by name.
    public var report: [String: Entry] { self.state.withLock { $0.entries } }

    var changes: Int { self.state.withLock { $0.changes } }

    /// The state file `frontdoor status` reads: per secondary its lines.
    func text(names: [String]) -> String {
        let entries = self.report
        var out = ""
        for name in names {
            let entry = entries[name] ?? Entry()
            out += "\(name)\tnotify\t\(entry.lastNotify ?? "none yet")\n"
            out += "\(name)\ttransfer\t\(entry.lastTransfer ?? "none yet")\n"
            if let refusal = entry.lastRefusal { out += "\(name)\trefused\t\(refusal)\n" }
        }
        return out
    }
}

/// Sends NOTIFY to the secondaries when their view's serials move (`NotifySchedule` decides what and when);
/// one thread, its own UDP sockets, and the secondaries' state file in state-dir.
public final class Notifier: @unchecked Sendable {
    let activity: SecondaryActivity
    let inbox = Mutex<(targets: [NotifyTarget], names: [String], stateDirectory: String?)>(([], [], nil))
    let stopFlag = Atomic<Bool>(false)
    var schedule = NotifySchedule()
    /// Connected sockets of recent sends, closed after a while.
    var sockets: [(fd: Int32, address: SocketAddress, opened: UInt64)] = []
    var writtenChanges = -1

    public init(activity: SecondaryActivity) {
        self.activity = activity
    }

    /// The model changed from `old` to `new` (nil old: the first load): queue what is owed.
    public func changed(old: Snapshot?, new: Snapshot) {
        let targets = NotifyTarget.owed(old: old, new: new)
        self.inbox.withLock { inbox in
            inbox.targets += targets
            inbox.names = new.settings.secondaries.map(\.name)
            inbox.stateDirectory = new.settings.stateDirectory
        }
    }

    public func stop() { self.stopFlag.store(true, ordering: .releasing) }

    public func run() {
        while !self.stopFlag.load(ordering: .acquiring) {
            self.step(wait: 200)
        }
        for socket in self.sockets { Sockets.close(socket.fd) }
        self.sockets = []
    }

    /// One round: take new targets, send what is due, wait up to `wait` ms for replies.
    func step(wait: Int32) {
        let now = monotonicMilliseconds()
        let (targets, names, directory) = self.inbox.withLock { inbox in
            defer { inbox.targets = [] }
            return (inbox.targets, inbox.names, inbox.stateDirectory)
        }
        self.schedule.add(targets, now: now)
        let (sends, events) = self.schedule.due(now: now, wallClock: UInt64(time(nil))) {
            UInt16(truncatingIfNeeded: csys_random32())
        }
        for event in events { self.activity.notified(event) }
        for (address, message) in sends {
            guard let fd = try? Sockets.udpClient(address) else {
                Log.warning("dns: cannot send NOTIFY to \(address)")
                continue
            }
            _ = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            self.sockets.append((fd, address, now))
        }
        // Replies.
        var polls = self.sockets.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        if polls.isEmpty {
            usleep(UInt32(wait) * 1000)
        } else if poll(&polls, nfds_t(polls.count), wait) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            for (index, entry) in polls.enumerated() where entry.revents & Int16(POLLIN) != 0 {
                let count = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { continue }
                if let event = self.schedule.received(
                    Array(buffer[0..<count]), from: self.sockets[index].address.address, wallClock: UInt64(time(nil)))
                {
                    self.activity.notified(event)
                }
            }
        }
        // A socket lives as long as a reply to it could still matter.
        let later = monotonicMilliseconds()
        self.sockets.removeAll { socket in
            guard later > socket.opened + 40_000 else { return false }
            Sockets.close(socket.fd)
            return true
        }
        let changes = self.activity.changes
        if changes != self.writtenChanges, let directory {
            self.writtenChanges = changes
            _ = DiskFiles().writeAtomically(
                Array(self.activity.text(names: names).utf8), to: joinPath(directory, "secondaries"))
        }
    }
}
