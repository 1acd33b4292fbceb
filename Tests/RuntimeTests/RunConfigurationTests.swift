import Glibc
import Runtime
import Synchronization
import Testing
import ZoneModel

/// `run`'s precedence between frontdoor.conf and the command line, and the order it starts and stops in.
@Suite struct RunConfigurationTests {
    static let config: Settings = {
        var settings = Settings()
        settings.dnsListeners = [SocketAddress("0.0.0.0:53")!]
        settings.httpListeners = [SocketAddress("0.0.0.0:80")!]
        settings.adminListeners = [SocketAddress("127.0.0.1:9053")!]
        settings.user = "frontdoor"
        settings.wanSources = [
            WANSource(
                kind: .interface(name: "eth0"), location: SourceLocation(file: "frontdoor.conf", line: 1, column: 1))
        ]
        return settings
    }()

    @Test func theConfigStandsWhereNoFlagIsGiven() {
        let configuration = RunConfiguration(settings: Self.config, flags: .init())
        #expect(configuration.dnsListeners == Self.config.dnsListeners)
        #expect(configuration.httpListeners == Self.config.httpListeners)
        #expect(configuration.adminListeners == Self.config.adminListeners)
        #expect(configuration.user == "frontdoor" && configuration.dynDNS)
    }

    @Test func aFlagWinsAndOffTurnsAServiceOff() {
        let local = [SocketAddress("127.0.0.1:5353")!]
        let configuration = RunConfiguration(
            settings: Self.config, flags: .init(dns: local, http: [], admin: [], user: "nobody", wanFixed: true))
        #expect(configuration.dnsListeners == local)
        #expect(configuration.httpListeners.isEmpty && configuration.adminListeners.isEmpty, "off")
        #expect(configuration.user == "nobody")
        #expect(!configuration.dynDNS, "--wan fixes the address: nothing to detect")
        #expect(!RunConfiguration(settings: Settings(), flags: .init()).dynDNS, "no sources, no providers")
    }

    @Test func theSupervisorStopsInReverseOrderAndJoinsItsThreads() {
        let log = Mutex<[String]>([])
        let supervisor = Supervisor()
        supervisor.start(
            "dns", start: { log.withLock { $0.append("start dns") } }, stop: { log.withLock { $0.append("stop dns") } })
        let running = Atomic<Bool>(true)
        let started = supervisor.startThread(
            "worker",
            {
                while running.load(ordering: .acquiring) { usleep(1000) }
                log.withLock { $0.append("worker ended") }
            },
            stop: { running.store(false, ordering: .releasing) })
        #expect(started)
        supervisor.start(
            "http", start: { log.withLock { $0.append("start http") } },
            stop: { log.withLock { $0.append("stop http") } })
        #expect(supervisor.running == ["dns", "worker", "http"])
        supervisor.stopAll()
        #expect(
            log.withLock { $0 } == ["start dns", "start http", "stop http", "worker ended", "stop dns"],
            "the thread is joined before what started before it stops")
        #expect(supervisor.running.isEmpty)
    }
}
