import CSys
import EventLoop
import HTTPProxy
import HTTPWire
import Synchronization
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

// The loop's timer (deadlines, health, idle pools, draining) and the access log.
extension HTTPWorker {
    /// Runs four times a second: deadlines, health results, idle pools, the access log, draining.
    /// Returns true when the loop should end.
    func tick(now: UInt64) -> Bool {
        self.refreshSnapshot()
        if self.acceptBackoff.resumes(now: now) && self.openCount < self.options.maximumConnections {
            self.resumeAccepting()
        }
        let generation = self.board.generation
        if generation != self.boardGeneration {
            self.boardGeneration = generation
            let checks = self.board.results()
            for site in self.snapshot.routes.sites where site.healthPath != nil {
                let balancer = self.balancer(for: site)
                for (index, backend) in site.backends.enumerated() {
                    if let passed = checks[HealthKey(site: site.name, backend: backend.address)] {
                        balancer.pool.checked(index, passed: passed)
                    }
                }
            }
        }
        for slot in self.slots.indices {
            guard let connection = self.slots[slot] else { continue }
            if let parked = connection.parked, self.reuse.parkExpired(since: connection.parkedSince, now: now) {
                connection.parked = nil
                self.pool(parked, now: now)
            }
            guard connection.deadline <= now else { continue }
            if connection.closing || connection.tunnel {
                self.destroy(connection)
                continue
            }
            connection.session.timedOut(snapshot: self.snapshot, now: now, into: &self.actions)
            self.perform(connection, now: now)
        }
        // Idle pooled connections: close those idle too long (backends commonly close at 60–75 s).
        for (address, idle) in self.pools {
            let kept = idle.filter { !self.reuse.idleExpired(since: $0.since, now: now) }
            if kept.count != idle.count {
                for entry in idle where self.reuse.idleExpired(since: entry.since, now: now) {
                    self.idleAddresses[entry.fd] = nil
                    Sockets.close(entry.fd)
                }
                self.pools[address] = kept
            }
        }
        self.flushLog()
        self.flushRecentCount()
        let counts = self.counts
        self.publishedCounts.withLock { $0 = counts }
        let drainDeadline = self.drainDeadline.load(ordering: .acquiring)
        if drainDeadline != 0 {
            if !self.draining {
                self.draining = true
                self.pauseAccepting()
                for listener in self.listeners { Sockets.close(listener.fd) }
                self.listeners = []
            }
            for slot in self.slots.indices {
                guard let connection = self.slots[slot] else { continue }
                if connection.session.phase == .idle && !connection.tunnel && connection.clientQueueEmpty {
                    self.destroy(connection)
                }
            }
            if self.openCount == 0 || now >= drainDeadline { return true }
        }
        return false
    }

    // MARK: - Access log

    func log(_ record: AccessRecord, now: UInt64) {
        self.requests.add(1, ordering: .relaxed)
        let key = LoopCountKey(site: record.site, status: record.status)
        if key == self.recentKey {
            self.recentCount += 1
        } else {
            self.flushRecentCount()
            self.recentKey = key
            self.recentCount = 1
        }
        guard let accessLog = self.options.accessLog else { return }
        let line = accessLog.format(
            record, time: self.clock.now(), milliseconds: Int(now &- record.started))
        self.logBuffer += line.utf8
        self.logBuffer.append(10)
        if self.logBuffer.count > 32 * 1024 { self.flushLog() }
    }

    func flushRecentCount() {
        guard let key = self.recentKey, self.recentCount > 0 else { return }
        self.counts[key, default: 0] += self.recentCount
        self.recentCount = 0
    }

    func flushLog() {
        guard !self.logBuffer.isEmpty, let accessLog = self.options.accessLog else { return }
        accessLog.write(self.logBuffer)
        self.logBuffer.removeAll(keepingCapacity: true)
    }
}
